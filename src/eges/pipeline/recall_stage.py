"""The neighbours stage: each item's top-K most similar items, from the vectors of the run's method."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.errors import ConfigError, InputError
from eges.layout import FAISS_IDS, FAISS_INDEX, NEIGHBOURS, NODES, PROVENANCE_KEY, SESSIONS, USERS, VOCAB
from eges.pipeline import io
from eges.pipeline.progress import progress as _progress
from eges.pipeline.registry import RunInputs, StageContext, StageResult, resolved_method, run_method, stage

log = logging.getLogger("eges")


def method_vectors(inputs: RunInputs, config: Any) -> str:
    """The vectors file the run's method writes."""
    return run_method(inputs, config).vectors


def _check_k(ctx: StageContext, will_run: set[str]) -> None:
    """neighbours.k against the items, as soon as their number is known: before the first stage when the graph
    stays, else again right after the graph stage (before walks and training). A method without cold-start
    vectors has at most one vector per graph node, so a k that is not below the node count cannot be met."""
    nodes = ctx.input_path(NODES)
    if run_method(ctx.inputs, ctx.config).cold_start or not nodes.exists() or "graph" in will_run:
        return
    n = io.parquet_num_rows(nodes)
    if ctx.config.neighbours.k >= n:
        raise InputError(f"neighbours.k = {ctx.config.neighbours.k} but the graph has only {n} items; use at most "
                         f"{n - 1}")


def provenance(ctx: StageContext) -> dict[str, str]:
    """What a neighbours or users output was computed from: the method, its vectors file and that file's digest
    (the same digest the manifest records), so an output says which vectors it belongs to after the method changed."""
    rel = method_vectors(ctx.inputs, ctx.config)
    return {"method": resolved_method(ctx.inputs, ctx.config), "vectors": rel,
            "vectors_digest": io.fingerprint(ctx.input_path(rel))["digest"]}


def read_provenance(path: str | Path) -> dict[str, str] | None:
    """The provenance recorded in a neighbours or users Parquet file; None when absent (an older run) or unreadable."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(PROVENANCE_KEY)
        found = json.loads(raw) if raw else None
    except (OSError, ValueError, pa.ArrowException):
        return None
    return found if isinstance(found, dict) else None


def _with_provenance(schema: pa.Schema, prov: dict[str, str]) -> pa.Schema:
    return schema.with_metadata({**(schema.metadata or {}), PROVENANCE_KEY: json.dumps(prov)})


@stage("neighbours", sections=("neighbours",), outputs=(NEIGHBOURS,), may_write=(FAISS_INDEX, FAISS_IDS),
       inputs=lambda inp, cfg: (method_vectors(inp, cfg),), check=_check_k, recheck_after=("graph",))
def neighbours_stage(ctx: StageContext) -> StageResult:
    """Top-K neighbours of every item (exact blocked matrix products, or a faiss HNSW index for very many items),
    for item-to-item recall."""
    from eges.recall.neighbours import top_k_blocks, top_k_faiss_blocks

    cfg = ctx.config.neighbours
    prov = provenance(ctx)
    ids, vectors = io.read_vectors(ctx.input_path(method_vectors(ctx.inputs, ctx.config)))
    n = len(ids)
    if cfg.k >= n:
        raise InputError(f"neighbours.k = {cfg.k} but there are only {n} items with vectors; use at most {n - 1}")
    index = "faiss" if cfg.index == "faiss" or (cfg.index == "auto" and n > cfg.approximate_above) else "exact"
    if index == "faiss" and importlib.util.find_spec("faiss") is None:
        if cfg.index == "faiss":
            raise ConfigError("neighbours.index = 'faiss' needs faiss: pip install faiss-cpu (a dependency of eges)")
        log.warning("%s items are above neighbours.approximate_above but faiss is not installed "
                    "(pip install faiss-cpu); searching exactly, which takes long", f"{n:,}")
        index = "exact"
    built: list = []
    blocks = (top_k_faiss_blocks(vectors, cfg.k, cfg.metric, cfg.block, cfg.hnsw_m, cfg.ef_search, built)
              if index == "faiss" else top_k_blocks(vectors, cfg.k, cfg.metric, cfg.block))
    schema = _with_provenance(pa.schema([("item_id", ids.type), ("neighbours", pa.list_(ids.type)),
                                         ("scores", pa.list_(pa.float32()))]), prov)
    offsets = np.arange(0, cfg.block * cfg.k + 1, cfg.k, dtype=np.int32)
    with io.AtomicParquetWriter(ctx.path(NEIGHBOURS), schema) as out, _progress(ctx, n, "item", "neighbours") as bar:
        for lo, idx, scores in blocks:
            rows = len(idx)
            offs = pa.array(offsets[: rows + 1])
            flat = idx.reshape(-1)
            out.write(pa.table({
                "item_id": ids.slice(lo, rows),
                # an approximate index may find fewer than k: those places are null
                "neighbours": pa.ListArray.from_arrays(offs, ids.take(pa.array(flat, mask=flat < 0))),
                "scores": pa.ListArray.from_arrays(offs, pa.array(scores.reshape(-1), pa.float32())),
            }, schema=schema))
            bar.update(rows)
    _save_index(ctx, built[0] if built else None, ids)
    return StageResult(n, n, f"top {cfg.k} {cfg.metric} neighbours of {n:,} items ({index}), from the {prov['method']} vectors",
                       {"index": index, **prov})


def _save_index(ctx: StageContext, index: Any, ids: pa.Array) -> None:
    """Keep the faiss index the stage built, with its row -> item id map, for serving user-to-item recall; an
    earlier run's index goes with the old folder when this one searched exactly (it would describe other vectors)."""
    if index is None:
        return
    import faiss

    with io.atomic_path(ctx.path(FAISS_INDEX)) as tmp:
        faiss.write_index(index, str(tmp))
    io.write_table(pa.table({"row": pa.array(np.arange(len(ids), dtype=np.int64)), "item_id": ids}), ctx.path(FAISS_IDS))


@stage("users", sections=("users",), outputs=(USERS,),
       inputs=lambda inp, cfg: (SESSIONS, VOCAB, method_vectors(inp, cfg)), enabled=lambda inp, cfg: inp.edges is None)
def users_stage(ctx: StageContext) -> StageResult:
    """User vectors: the (optionally time-decayed) mean of each user's most recent items' vectors."""
    import pandas as pd

    from eges.recall.neighbours import user_vectors
    from eges.sessions.clean import user_starts

    cfg = ctx.config.users
    prov = provenance(ctx)
    ids, vectors = io.read_vectors(ctx.input_path(method_vectors(ctx.inputs, ctx.config)))
    sessions = pq.read_table(ctx.input_path(SESSIONS), columns=["user_id", "item_index"])
    vocab_ids = pq.read_table(ctx.input_path(VOCAB), columns=["item_id"])["item_id"].to_pandas()
    # item_index -> row of the vectors file (-1 where an item has no vector)
    index_to_row = pd.Index(ids.to_pandas()).get_indexer(vocab_ids)
    users = sessions["user_id"].combine_chunks()
    first = user_starts(users)
    vecs, used = user_vectors(first, index_to_row[sessions["item_index"].to_numpy()], vectors, cfg.recent_items,
                              cfg.half_life)
    table = pa.table({"user_id": users.take(pa.array(first)),
                      "vector": io.vector_column(vecs),
                      "n_events": pa.array(used.astype(np.int32))})
    table = table.filter(pa.array(used > 0))
    table = table.replace_schema_metadata(_with_provenance(table.schema, prov).metadata)
    io.write_table(table, ctx.path(USERS), compression="none")
    return StageResult(sessions.num_rows, table.num_rows,
                       f"{table.num_rows:,} user vectors from up to {cfg.recent_items} recent events "
                       f"each, from the {prov['method']} vectors", dict(prov))
