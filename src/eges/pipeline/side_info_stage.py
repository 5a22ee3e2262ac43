"""The GES/EGES stage: walks + item catalog -> item vectors (behaviour and cold start), side-info value
vectors and, for EGES, per-item attention weights."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.config import Config
from eges.errors import InputError, plain
from eges.layout import ATTENTION, EGES_KEYED_VECTORS, EGES_STATE, EGES_VECTORS, NODES, SIDE_VECTORS, WALKS
from eges.methods import starting_own_weight
from eges.pipeline import io
from eges.pipeline.progress import progress as _progress
from eges.pipeline.registry import RunInputs, StageContext, StageResult, resolved_method, run_method, stage
from eges.pipeline.stages import UPDATE_IGNORED, parent_input, walk_batches, walk_counts
from eges.pipeline.validate_stage import (
    UNDIRECTED_NOTE,
    candidates,
    centre_for_writing,
    chosen_training,
    chosen_walks,
    stop_after,
    training_inputs,
)
from eges.update.align import check_reference, onto_reference, reference_inputs

log = logging.getLogger("eges")


def read_catalog(path: Any, cfg: Any, id_type: pa.DataType | None = None) -> tuple[Any, list[str], dict[str, Any]]:
    """The catalog as pandas with the fields to use; raises or warns, by name, on bad catalogs.

    Ids must be integers or text (whole floats are read as integers); with ``id_type`` (the event log's) they are
    read in that type, exactly.
    """

    from eges.columns import resolve
    from eges.config import SideInfoConfig
    from eges.ids import align_ids, check_id_array
    from eges.side_info.encode import is_number

    table = io.read_table(path, what="item catalog")
    where = f"item catalog file {path}"
    id_col, guessed = resolve(table.column_names, "item", cfg.id_col, SideInfoConfig().id_col, "side_info.id_col", where)
    if guessed:  # read under the configured name, so everything downstream finds it
        table = table.rename_columns([cfg.id_col if c == id_col else c for c in table.column_names])
    ids = align_ids(table[cfg.id_col], id_type, where, cfg.id_col) if id_type is not None else \
        check_id_array(table[cfg.id_col], where, cfg.id_col, "item id")
    table = table.set_column(table.column_names.index(cfg.id_col), cfg.id_col, ids)
    frame = catalog_frame(table, cfg.id_col)
    notes: dict[str, Any] = {"id_column_recognised": id_col} if guessed else {}
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
                   f"{conflicting} with conflicting side information, e.g. {plain(frame[cfg.id_col][dup].iloc[0])!r}")
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
    # A number column with no finite value (all inf, or inf and NaN) says as little as an empty one: encoding
    # would make every item's value unknown.
    unknown = [f for f in fields if f not in empty and is_number(frame[f])
               and not np.isfinite(frame[f].to_numpy(dtype=np.float64, na_value=np.nan)).any()]
    if unknown:
        log.warning("item catalog file %s: number column(s) %s hold no finite value (only inf, -inf or NaN) and are "
                    "not used", path, ", ".join(unknown))
        notes["non_finite_fields_skipped"] = unknown
    fields = [f for f in fields if f not in empty and f not in unknown]
    if not fields:
        raise InputError(f"item catalog file {path} has no usable side-information column")
    not_numbers = [f for f in cfg.numeric if f not in fields or not is_number(frame[f])]
    if not_numbers:
        raise InputError(f"item catalog file {path}: side_info.numeric names {', '.join(map(repr, not_numbers))}, "
                         f"not a number column among the side-information fields ({', '.join(fields)})")
    return frame, fields, notes


def catalog_frame(table: pa.Table, id_col: str) -> Any:
    """The catalog as pandas, an integer column with nulls kept integer (nullable Int64 or UInt64, not float64): an
    integer column is a code (side_info/encode.py), so a missing category id must not turn its column into a
    bucketed quantity, nor show its ids as 1234.0 beside items."""
    import pandas as pd

    frame = table.to_pandas()
    for name, column in zip(table.column_names, table.columns):
        if name != id_col and pa.types.is_integer(column.type) and column.null_count:
            nullable = pd.UInt64Dtype() if column.type == pa.uint64() else pd.Int64Dtype()  # 2**63 and up fit
            frame[name] = column.to_pandas(types_mapper=lambda t, nullable=nullable: nullable).array
    return frame


def catalog_by_id(path: Any, id_col: str) -> Any:
    """The catalog as pandas indexed by item id (the first row of a duplicated id), for showing side
    information beside items in exports and reports."""
    frame = catalog_frame(io.read_table(path, what="item catalog"), id_col)
    io.require_columns(list(frame.columns), [id_col], f"item catalog file {path}")
    return frame.drop_duplicates(id_col).set_index(id_col)


def _uses_side_info(inputs: RunInputs, config: Config) -> bool:
    return run_method(inputs, config).side_info


def _check_catalog(ctx: StageContext, will_run: set[str]) -> None:
    """Before anything runs: the method has a catalog, and the catalog has a usable id (in the log's id type) and
    side information; when the graph is already built and stays, its ids must occur in the catalog too."""
    method = resolved_method(ctx.inputs, ctx.config)
    if ctx.inputs.items is None:
        raise InputError(f"method {method} trains on side information and needs an item catalog: give --items "
                         "(or --method bge)")
    nodes_path = ctx.input_path(NODES)
    nodes = pq.read_table(nodes_path, columns=["item_id"]) if nodes_path.exists() and "graph" not in will_run \
        else None
    id_type = nodes.schema.field("item_id").type if nodes is not None else _events_id_type(ctx)
    catalog, _, _ = read_catalog(ctx.input_path("@items"), ctx.config.side_info, id_type)
    if nodes is not None:
        from eges.side_info.fit import check_overlap

        check_overlap(catalog[ctx.config.side_info.id_col], nodes["item_id"].to_pylist(), ctx.config.side_info.id_col)


def _events_id_type(ctx: StageContext) -> pa.DataType | None:
    """The item id type of a Parquet event log, from its schema (None for CSV or an edge list: checked later)."""
    path = ctx.inputs.events
    if path is None or io.spark_only(path) or io.is_csv(Path(path)):
        return None
    try:
        field = pq.read_schema(path).field(ctx.config.sessions.item_col)
    except (KeyError, OSError, pa.ArrowException):
        return None  # the sessions stage names the problem
    return pa.int64() if pa.types.is_floating(field.type) else field.type


def _check_inputs(ctx: StageContext, will_run: set[str]) -> None:
    """The catalog, and the run to align to (--align-to), before anything is written; again once the graph is built."""
    _check_catalog(ctx, will_run)
    check_reference(ctx, will_run)


@stage("eges", sections=("side_info", "train", "update"),
       outputs=(EGES_VECTORS, EGES_KEYED_VECTORS, SIDE_VECTORS, ATTENTION, EGES_STATE),
       ignores=("train.backend", *UPDATE_IGNORED), check=_check_inputs, recheck_after=("graph",),
       inputs=lambda inp, cfg: (WALKS, NODES, "@items", *training_inputs(inp, cfg), *parent_input(inp),
                                *reference_inputs(inp)), enabled=_uses_side_info,
       trains=candidates)  # the method given, or any the slice may choose (train.method = auto)
def eges_stage(ctx: StageContext) -> StageResult:
    """GES/EGES on the walks with the catalog's side information; cold items placed from side info."""
    from eges.pipeline.parent import start_for, write_model_state
    from eges.pipeline.parent_buckets import parent_cuts
    from eges.side_info.fit import fit_side_info
    from eges.train.stream import compile_kernel

    scfg, tcfg = ctx.config.side_info, ctx.config.train
    nodes = pq.read_table(ctx.input_path(NODES), columns=["item_id", "item_index"])
    catalog, fields, notes = read_catalog(ctx.input_path("@items"), scfg, nodes.schema.field("item_id").type)
    walks_file = chosen_walks(ctx)  # the walks stage's, or the undirected ones the slice chose
    walks = ctx.input_path(walks_file)
    counts = walk_counts(walks, nodes.num_rows)
    # The validate stage's passes and method, when it ran: a method without side information (it won on the
    # validation slice) trains here too, and its cold items are placed from side information all the same.
    from eges.pipeline.parent import update_walks

    batches, train_counts, focus = update_walks(ctx, lambda: walk_batches(walks), counts)  # update.other_walks
    tcfg, method, passes = chosen_training(ctx, tcfg, int(counts.sum()), focus.get("tokens_kept", 1.0))
    n_walks = io.parquet_num_rows(walks)
    warm: dict[str, Any] = {}

    def start_from(side: Any) -> Any:  # the parent's rows, aligned to this run's items and values
        start, details = start_for(ctx, nodes["item_id"].to_pylist(), side, tcfg.seed,
                                   starting_own_weight(method, tcfg.own_weight))
        warm.update(details)
        return start

    compile_kernel()  # before the bar: its rate and ETA are training's
    counts = train_counts
    warm.update({"focus": focus} if focus else {})
    with _progress(ctx, int(counts.sum()) * passes, "token", method) as bar:
        emb = fit_side_info(batches, counts, nodes["item_id"].to_pylist(), catalog, scfg.id_col,
                            fields, scfg.numeric_buckets, tcfg, method, on_tokens=bar.update,
                            on_epoch=stop_after(passes), start_from=start_from, numeric=scfg.numeric,
                            cuts=parent_cuts(ctx.inputs.parent, catalog, scfg))  # a warm start: the parent's buckets
    write_model_state(ctx.path(EGES_STATE), nodes["item_id"], emb.model, method, warm.pop("tail", None))
    ids = pa.array(emb.item_ids, type=nodes["item_id"].type)
    # centred when the slice scored the chosen pass higher centred (validate.try_centred)
    centring = centre_for_writing(ctx, emb.vectors, np.asarray(emb.source) == "behaviour", emb.value_vectors)
    emb.vectors, emb.value_vectors = centring.rows
    aligned = onto_reference(ctx, ids, emb.vectors, (emb.value_vectors,))  # --align-to: onto the reference's space
    emb.vectors, emb.value_vectors = aligned.vectors, aligned.extra[0]
    io.write_table(pa.table({"item_id": ids, "vector": io.vector_column(emb.vectors), "source": emb.source}),
                   ctx.path(EGES_VECTORS), compression="none")
    io.write_keyed_vectors(ids.to_pylist(), emb.vectors, ctx.path(EGES_KEYED_VECTORS))
    io.write_table(pa.table({"field": emb.value_field, "value": emb.value_label,
                             "vector": io.vector_column(emb.value_vectors)}), ctx.path(SIDE_VECTORS), compression="none")
    attention = {"item_id": nodes["item_id"], "item": pa.array(emb.attention[:, 0], pa.float32())}
    attention.update({f: pa.array(emb.attention[:, s + 1], pa.float32()) for s, f in enumerate(fields)})
    io.write_table(pa.table(attention), ctx.path(ATTENTION))
    d = {**emb.details, **notes, **warm, **aligned.details, "window": tcfg.window, "walks": walks_file,
         **centring.details}
    weights_text = ", ".join(f"{k} {v:.2f}" for k, v in emb.mean_attention.items())
    summary = (f"{method}: {nodes.num_rows:,} behaviour + {d['cold_with_vector']:,} cold-start vectors "
               f"({d['cold_without_vector']:,} cold items without known side info); "
               f"{passes} epoch(s), cold share {d['cold_share']:g}, {d['words_per_second'] / 1e3:,.0f}k words/s; "
               f"mean weights: {weights_text}{UNDIRECTED_NOTE if walks_file != WALKS else ''}"
               f"{centring.note}{aligned.note}")
    return StageResult(n_walks, len(emb.item_ids), summary, d)
