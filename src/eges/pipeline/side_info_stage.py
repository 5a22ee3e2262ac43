"""The GES/EGES stage: walks + item catalog -> item vectors (behaviour and cold start), side-info value
vectors and, for EGES, per-item attention weights."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.config import Config
from eges.errors import InputError, StageError
from eges.pipeline import io
from eges.pipeline.registry import RunInputs, StageContext, StageResult, resolved_method, stage
from eges.pipeline.stages import NODES, WALKS, _progress, walk_batches

VECTORS = "eges/vectors.parquet"
SIDE_VECTORS = "eges/side_info_vectors.parquet"
ATTENTION = "eges/attention.parquet"

log = logging.getLogger("eges")


def read_catalog(path: Any, cfg: Any) -> tuple[Any, list[str], dict[str, Any]]:
    """The catalog as pandas with the fields to use; raises or warns, by name, on bad catalogs."""
    table = io.read_table(path, what="item catalog")
    io.require_columns(table.column_names, [cfg.id_col], f"item catalog file {path}")
    frame = table.to_pandas()
    notes: dict[str, Any] = {}
    if frame[cfg.id_col].isna().any():
        raise InputError(f"item catalog file {path}: column {cfg.id_col!r} has {int(frame[cfg.id_col].isna().sum())} "
                         "null id(s)")
    fields = list(cfg.fields) or [c for c in frame.columns if c != cfg.id_col]
    io.require_columns(list(frame.columns), fields, f"item catalog file {path}")
    dup = frame[cfg.id_col].duplicated(keep="first")
    if dup.any():
        conflicting = int(frame[frame[cfg.id_col].duplicated(keep=False)].drop_duplicates().duplicated(
            subset=[cfg.id_col]).sum())
        message = (f"item catalog file {path}: {int(dup.sum())} duplicate item id row(s), "
                   f"{conflicting} with conflicting side information, e.g. {frame[cfg.id_col][dup].iloc[0]!r}")
        if cfg.duplicates == "error":
            raise InputError(message + " (side_info.duplicates = 'error')")
        log.warning("%s; keeping the first row of each", message)
        notes["duplicate_rows_dropped"] = int(dup.sum())
        notes["duplicate_ids_conflicting"] = conflicting
        frame = frame[~dup]
    empty = [f for f in fields if frame[f].isna().all()]
    if empty:
        log.warning("item catalog file %s: column(s) %s are entirely null and are not used", path, ", ".join(empty))
        notes["null_fields_skipped"] = empty
        fields = [f for f in fields if f not in empty]
    if not fields:
        raise InputError(f"item catalog file {path} has no usable side-information column")
    return frame, fields, notes


def _uses_side_info(inputs: RunInputs, config: Config) -> bool:
    return resolved_method(inputs, config) in ("ges", "eges")


@stage("eges", sections=("side_info", "train"), outputs=(VECTORS, SIDE_VECTORS, ATTENTION),
       inputs=lambda inp: (WALKS, NODES, "@items"), enabled=_uses_side_info)
def eges_stage(ctx: StageContext) -> StageResult:
    """GES/EGES on the walks with the catalog's side information; cold items placed from side info."""
    from eges.side_info.encode import encode
    from eges.side_info.train import (
        TrainSettings,
        behaviour_vectors,
        cold_start_vectors,
        seen_values,
        train,
    )

    if ctx.inputs.items is None:
        raise StageError(f"method {resolved_method(ctx.inputs, ctx.config)} needs an item catalog: give --items")
    scfg, tcfg = ctx.config.side_info, ctx.config.train
    catalog, fields, notes = read_catalog(ctx.input_path("@items"), scfg)
    nodes = pq.read_table(ctx.input_path(NODES), columns=["item_id", "item_index"])
    node_ids = nodes["item_id"].to_pandas()
    try:
        known = set(node_ids.tolist())
        cold_ids = [i for i in catalog[scfg.id_col].tolist() if i not in known]
    except TypeError as exc:
        raise InputError(f"item ids in the catalog and the log have different types: {exc}") from None
    all_ids = node_ids.tolist() + cold_ids
    side, how = encode(catalog, all_ids, scfg.id_col, fields, scfg.numeric_buckets)
    values, lengths = [], []
    for vals, batch_offsets in walk_batches(ctx.input_path(WALKS)):
        values.append(vals)
        lengths.append(np.diff(batch_offsets))
    flat = np.concatenate(values).astype(np.int32)
    offs = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
    method = resolved_method(ctx.inputs, ctx.config)
    settings = TrainSettings(method=method, dimension=tcfg.dimension, window=tcfg.window, negative=tcfg.negative,
                             epochs=tcfg.epochs, alpha=tcfg.alpha, min_alpha=tcfg.min_alpha,
                             ns_exponent=tcfg.ns_exponent, sample=tcfg.sample, threads=tcfg.threads,
                             seed=tcfg.seed)
    started = time.perf_counter()
    with _progress(ctx, tcfg.epochs, "epoch", method) as bar:
        model = train(flat, offs, len(node_ids), side, settings, on_epoch=lambda e, loss: bar.update(1))
    seconds = time.perf_counter() - started
    warm = behaviour_vectors(model)
    weights = model.attention_weights()
    mean_w = weights.mean(axis=0)
    field_weights = mean_w[1:] if tcfg.cold_start == "attention" else None
    cold_codes = side.codes[len(node_ids):]
    cold, cold_ok = cold_start_vectors(model, cold_codes, seen_values(side, len(node_ids)), field_weights)
    ids = pa.array(node_ids.tolist() + [c for c, ok in zip(cold_ids, cold_ok) if ok], type=nodes["item_id"].type)
    mat = np.concatenate([warm, cold[cold_ok]]).astype(np.float32)
    source = ["behaviour"] * len(warm) + ["cold_start"] * int(cold_ok.sum())
    io.write_table(pa.table({"item_id": ids, "vector": _vectors(mat), "source": source}), ctx.path(VECTORS),
                   compression="none")
    labels_field = [f for f, vals in zip(fields, side.values) for _ in vals]
    labels_value = [v for vals in side.values for v in vals]
    io.write_table(pa.table({"field": labels_field, "value": labels_value, "vector": _vectors(model.value_vectors())}),
                   ctx.path(SIDE_VECTORS), compression="none")
    attention = {"item_id": nodes["item_id"], "item": pa.array(weights[:, 0], pa.float32())}
    attention.update({f: pa.array(weights[:, s + 1], pa.float32()) for s, f in enumerate(fields)})
    io.write_table(pa.table(attention), ctx.path(ATTENTION))
    tokens = len(flat) * tcfg.epochs
    mean_weights = {"item": round(float(mean_w[0]), 4), **{f: round(float(mean_w[s + 1]), 4) for s, f in enumerate(fields)}}
    details = {"method": method, "fields": how, "mean_attention": mean_weights, "losses": model.losses,
               "cold_items": len(cold_ids), "cold_with_vector": int(cold_ok.sum()),
               "cold_without_vector": int((~cold_ok).sum()), "words_per_second": round(tokens / max(seconds, 1e-9)),
               "train_seconds": round(seconds, 3), **notes}
    weights_text = ", ".join(f"{k} {v:.2f}" for k, v in mean_weights.items())
    summary = (f"{method}: {len(warm):,} behaviour + {int(cold_ok.sum()):,} cold-start vectors "
               f"({int((~cold_ok).sum()):,} cold items without known side info); "
               f"{tokens / max(seconds, 1e-9) / 1e3:,.0f}k words/s; mean weights: {weights_text}")
    return StageResult(len(offs) - 1, len(mat), summary, details)


def _vectors(mat: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(mat, np.float32).reshape(-1)), mat.shape[1])
