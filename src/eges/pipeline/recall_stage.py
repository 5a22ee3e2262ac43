"""The neighbours stage: each item's top-K most similar items, from the vectors of the run's method."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.errors import InputError
from eges.pipeline import io
from eges.pipeline.registry import RunInputs, StageContext, StageResult, resolved_method, stage
from eges.pipeline.side_info_stage import VECTORS as EGES_VECTORS
from eges.pipeline.stages import VECTORS as BGE_VECTORS
from eges.pipeline.stages import _progress

NEIGHBOURS = "neighbours/neighbours.parquet"


def method_vectors(inputs: RunInputs, config: Any) -> str:
    """The vectors file the run's method writes."""
    return BGE_VECTORS if resolved_method(inputs, config) == "bge" else EGES_VECTORS


def read_vectors(path: Any) -> tuple[pa.Array, np.ndarray]:
    """(item ids, float32 matrix) from a vectors file."""
    table = pq.read_table(path, columns=["item_id", "vector"])
    col = table["vector"].combine_chunks()
    dim = col.type.list_size
    return table["item_id"].combine_chunks(), col.values.to_numpy(zero_copy_only=False).reshape(-1, dim)


@stage("neighbours", sections=("neighbours",), outputs=(NEIGHBOURS,),
       inputs=lambda inp, cfg: (method_vectors(inp, cfg),))
def neighbours_stage(ctx: StageContext) -> StageResult:
    """Exact top-K neighbours of every item (blocked matrix products), for item-to-item recall."""
    from eges.recall.neighbours import top_k_blocks

    cfg = ctx.config.neighbours
    ids, vectors = read_vectors(ctx.input_path(method_vectors(ctx.inputs, ctx.config)))
    n = len(ids)
    if cfg.k >= n:
        raise InputError(f"neighbours.k = {cfg.k} but there are only {n} items with vectors; use at most {n - 1}")
    schema = pa.schema([("item_id", ids.type), ("neighbours", pa.list_(ids.type)), ("scores", pa.list_(pa.float32()))])
    offsets = np.arange(0, cfg.block * cfg.k + 1, cfg.k, dtype=np.int32)
    with io.AtomicParquetWriter(ctx.path(NEIGHBOURS), schema) as out, _progress(ctx, n, "item", "neighbours") as bar:
        for lo, idx, scores in top_k_blocks(vectors, cfg.k, cfg.metric, cfg.block):
            rows = len(idx)
            offs = pa.array(offsets[: rows + 1])
            out.write(pa.table({
                "item_id": ids.slice(lo, rows),
                "neighbours": pa.ListArray.from_arrays(offs, ids.take(pa.array(idx.reshape(-1)))),
                "scores": pa.ListArray.from_arrays(offs, pa.array(scores.reshape(-1), pa.float32())),
            }, schema=schema))
            bar.update(rows)
    return StageResult(n, n, f"top {cfg.k} {cfg.metric} neighbours of {n:,} items")
