"""The parent run of a warm start (``eges run --warm-start PARENT``): the state file a training stage leaves for its
children, the checks a child makes before anything is written, the parent's fingerprint and the chain of updates.

The arrays themselves are aligned in :mod:`eges.update.warm`; this module reads and writes the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.config import Config, TrainConfig, UpdateConfig
from eges.errors import EgesError, ParentError
from eges.layout import MANIFEST, NODES, SIDE_VECTORS, STATE_KEY
from eges.methods import METHODS, Method, allowed
from eges.pipeline import io
from eges.pipeline.registry import RunInputs, StageContext, run_method

RERUN = "rerun the parent with this eges version"


# --------------------------------------------------------------------------------------------- writing the state
@dataclass
class StateTail:
    """What a warm start adds to its state file: its items' export slots and the chain's next free slot, and the
    parent's items this run has no behaviour for (ids, rows, context rows, attention, slots), kept as they were so
    an item that returns continues from its rows and every item keeps its export row."""

    slots: np.ndarray
    next_slot: int
    kept_ids: pa.Array
    kept_rows: np.ndarray
    kept_context: np.ndarray
    kept_attention: np.ndarray
    kept_slots: np.ndarray


def write_state(path: Path, item_ids: pa.Array, rows: np.ndarray, context: np.ndarray, attention: np.ndarray,
                method: str, fields: list[str], tail: StateTail | None = None,
                slots: np.ndarray | None = None) -> None:
    """The state a child continues from: per item its own row, context row and attention logits (float32,
    uncompressed like the vectors) and its export slot (a fresh run's are ``slots``, by default the item indices;
    a warm start's come with its ``tail``); the method, dimension, fields and next slot in the schema metadata."""
    slot = np.arange(len(rows), dtype=np.int64) if slots is None else np.asarray(slots, dtype=np.int64)
    next_slot = int(slot.max(initial=-1)) + 1
    ids = pa.chunked_array([item_ids]).combine_chunks() if not isinstance(item_ids, pa.Array) else item_ids
    if tail is not None:
        ids = pa.concat_arrays([ids, tail.kept_ids.cast(ids.type)])
        slot, next_slot = np.concatenate([tail.slots, tail.kept_slots]), tail.next_slot
        rows, context = np.concatenate([rows, tail.kept_rows]), np.concatenate([context, tail.kept_context])
        attention = np.concatenate([attention, tail.kept_attention])
    meta = {"method": method, "dimension": int(rows.shape[1]), "fields": list(fields), "next_slot": next_slot}
    table = pa.table({"item_id": ids, "slot": pa.array(slot, pa.int64()), "row": io.vector_column(rows),
                      "context": io.vector_column(context), "attention": io.vector_column(attention)})
    io.write_table(table.replace_schema_metadata({STATE_KEY: json.dumps(meta).encode()}), path, compression="none")


def write_model_state(path: Path, item_ids: Any, model: Any, method: str, tail: StateTail | None = None) -> None:
    """:func:`write_state` of a trained model (``eges.train.stream.EgesModel``) over ``item_ids`` (its nodes)."""
    write_state(path, item_ids, model.table[: model.n_nodes], model.context, model.attention, method,
                list(model.side.fields), tail)


# --------------------------------------------------------------------------------------------- the parent run
def parent_manifest(parent: str) -> dict[str, Any]:
    """The parent's manifest: the folder must hold an eges run that finished a stage, else a named error."""
    from eges.pipeline.runner import load_manifest

    path = Path(parent)
    if not path.is_dir():
        raise ParentError(f"--warm-start {parent}: no such run folder")
    if not (path / MANIFEST).is_file():
        raise ParentError(f"--warm-start {parent} holds no eges run (no {MANIFEST})")
    try:
        manifest = load_manifest(path)
    except EgesError as exc:
        raise ParentError(f"--warm-start {parent}: {exc}") from None
    if "inputs" not in manifest:
        raise ParentError(f"--warm-start {parent} is an eges run that has not finished a stage")
    return manifest


def parent_training(parent: str, manifest: dict[str, Any]) -> tuple[Method, dict[str, Any], Path]:
    """The method the parent trained, its training stage's manifest entry and its state file. The method is the
    state's: the eges stage may have trained BGE (chosen on the validation slice), its state beside the eges vectors."""
    from eges.methods import resolve

    stages = manifest.get("stages", {})
    try:  # the method the parent's remembered config trains first (a folder may hold an older method's vectors too)
        current = resolve(manifest.get("config", {}).get("train", {}).get("method", "auto"),
                          bool(manifest.get("inputs", {}).get("items")))
    except EgesError:
        current = None
    for method in sorted(METHODS.values(), key=lambda m: m != current):
        entry = stages.get(method.stage)
        if entry is None or method.vectors not in entry.get("outputs", {}):
            continue
        if method.state not in entry.get("outputs", {}):
            raise ParentError(f"--warm-start {parent} was trained by an eges without state files; {RERUN}")
        meta = state_meta(Path(parent) / method.state, parent)
        return METHODS[meta["method"]], entry, Path(parent) / method.state
    raise ParentError(f"--warm-start {parent} has no trained vectors yet (its run stopped before training); "
                      "finish it with `eges run --out` first")


def state_meta(path: Path, parent: str) -> dict[str, Any]:
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[STATE_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        raise ParentError(f"--warm-start {parent}: its state file {path} is missing or unreadable; {RERUN}") from None


def warm_method(inputs: RunInputs, config: Config) -> str:
    """The method a run trains: with a parent and train.method = auto, the parent's (a warm start continues what
    the parent trained, which its validation slice may have chosen), else the run's own."""
    if inputs.parent is not None and config.train.method == "auto":
        method, _, _ = parent_training(inputs.parent, parent_manifest(inputs.parent))
        if method.name in allowed(inputs.items is not None):
            return method.name
    return run_method(inputs, config).name


def check_parent(config: Config, inputs: RunInputs) -> None:
    """Before anything is written: the parent is a finished eges run with a state, trained by this run's method with
    its dimension and side-information fields, and this run trains natively (gensim cannot start from rows)."""
    if inputs.parent is None:
        return
    if inputs.align_to is not None:  # its state rows would stay in the parent's space, its vectors in REF's
        raise ParentError("give --warm-start or --align-to, not both: a warm start already stays in its parent's "
                          "space (drift is measured against the parent); --align-to is for a cold retrain")
    manifest = parent_manifest(inputs.parent)
    parent_method, entry, state = parent_training(inputs.parent, manifest)
    meta = state_meta(state, inputs.parent)
    parent_readable(state, inputs.parent)  # its footer alone said nothing of damaged pages
    method = METHODS[warm_method(inputs, config)]
    if method.name != parent_method.name:
        raise ParentError(f"--warm-start {inputs.parent} was trained with method {parent_method.name}, this run "
                          f"trains {method.name}; a warm start continues the same method")
    if meta["dimension"] != config.train.dimension:
        raise ParentError(f"--warm-start {inputs.parent} has dimension {meta['dimension']}, this run "
                          f"{config.train.dimension} (train.dimension); a warm start keeps the dimension: give --set "
                          f"train.dimension={meta['dimension']}")
    from eges.methods import backend

    if backend(method.name, config.train.backend) != "native":
        raise ParentError("a warm start needs the native trainer (train.backend = native or auto): gensim cannot "
                          "start from given rows")
    if method.side_info and inputs.items is not None:
        from eges.pipeline.side_info_stage import read_catalog

        catalog, fields, _ = read_catalog(inputs.items, config.side_info)
        if sorted(fields) != sorted(meta["fields"]):
            raise ParentError(f"--warm-start {inputs.parent} was trained on side-information fields "
                              f"{', '.join(meta['fields'])}; this catalog has {', '.join(fields)}; give a catalog "
                              "with the same fields (or set side_info.fields)")
        treated = entry.get("details", {}).get("fields", {})  # 'categorical' or 'numeric (...)' per field
        _check_field_kinds(inputs.parent, treated if isinstance(treated, dict) else {}, catalog, fields,
                           config.side_info)
        parent_readable(Path(inputs.parent) / SIDE_VECTORS, inputs.parent)  # its value rows
    if inputs.items is not None:  # the validate and eges stages cut the catalog with its bounds whatever they train
        from eges.pipeline.parent_buckets import parent_cuts

        parent_cuts(inputs.parent)  # readable, before anything is written


def _check_field_kinds(parent: str, treated: dict[str, str], catalog: Any, fields: list[str], scfg: Any) -> None:
    """A field the parent cut into buckets and this run reads as codes (or the reverse) whose values share no label
    with the parent's: every value would start from the field's mean and the parent's rows would go unused,
    silently (side_info.numeric changed, a column's type changed, or the parent predates integer codes). Small
    whole numbers label alike both ways (a bucket per value is labelled by its value), so those still match."""
    from eges.side_info.encode import encode_column, is_quantity

    kinds = {f: is_quantity(catalog[f], f in scfg.numeric) for f in fields if f in treated}
    turned = [f for f, numeric in kinds.items() if treated[f].startswith("numeric") != numeric]
    if not turned:
        return
    labels = {f: set(found) for f, found in parent_value_labels(parent, turned).items()}
    changed = [f"{f} ({treated[f].split(' ')[0]} in the parent, {'numeric' if kinds[f] else 'categorical'} here)"
               for f in turned
               if not labels[f] & set(encode_column(catalog[f], scfg.numeric_buckets, f in scfg.numeric)[1])]
    if changed:
        raise ParentError(f"--warm-start {parent}: side-information field(s) {'; '.join(changed)} would share no "
                          "value with the parent's; keep the column's type and side_info.numeric as the parent had "
                          "them, or retrain")


def run_fingerprint(parent: str) -> dict[str, Any]:
    """A run folder as an input: the digests its manifest records for its training outputs (vectors and state),
    each file checked against its record by size and mtime (rehashed only when they moved), so a rerun or a
    hand-edited parent changes it without hashing the whole folder."""
    try:
        manifest = parent_manifest(parent)
        method, entry, _ = parent_training(parent, manifest)
    except ParentError as exc:
        return {"digest": f"unusable: {exc}"}
    h = hashlib.blake2b(digest_size=16)
    for rel, known in sorted(entry["outputs"].items()):
        path = Path(parent) / rel
        digest = io.fingerprint(path, known)["digest"] if path.exists() else "missing"
        h.update(f"{rel}\0{digest}\0".encode())
    return {"run": str(parent), "method": method.name, "digest": h.hexdigest()}


def lineage(parent: str) -> dict[str, Any]:
    """The parent (path, method, fingerprint) and the chain of updates, oldest first: the parent's chain, then it."""
    manifest = parent_manifest(parent)
    method, entry, _ = parent_training(parent, manifest)
    own = {"path": str(parent), "method": method.name, "digest": run_fingerprint(parent)["digest"],
           "finished_at": entry.get("finished_at")}
    before = entry.get("details", {}).get("lineage", {}).get("chain", [])
    return {"parent": own, "chain": [*before, own]}


def parent_centring(parent: str) -> np.ndarray | None:
    """The vector the parent's training stage subtracted from every row it wrote (validate.try_centred), or None
    when it wrote them as trained. Its state file keeps the trained rows; its value rows are read from the written
    side-information vectors, so a warm start adds this back to them."""
    _, entry, _ = parent_training(parent, parent_manifest(parent))
    return _centred_shift(entry)


def _centred_shift(entry: dict[str, Any]) -> np.ndarray | None:
    shift = entry.get("details", {}).get("centred_shift")
    return np.asarray(shift, dtype=np.float32) if shift else None


def parent_table(path: Path, parent: str, columns: list[str] | None = None) -> pa.Table:
    """A file of the parent's run read whole (or ``columns``), a damaged one a named error."""
    with _named_if_unreadable(path, parent):
        return pq.read_table(path, columns=columns)


def parent_value_labels(parent: str, fields: list[str]) -> dict[str, list[str]]:
    """The labels of the parent's value rows of each of ``fields``, in its row order."""
    import pyarrow.compute as pc

    table = parent_table(Path(parent) / SIDE_VECTORS, parent, ["field", "value"])
    return {f: table.filter(pc.equal(table["field"], f))["value"].to_pylist() for f in fields}


def parent_readable(path: Path, parent: str) -> None:
    """Every page of a parent's file decodes, read batch by batch (memory: one row group), else a named error:
    checked before anything is written, where the training stage would read it whole only after the sessions,
    graph and walks."""
    with _named_if_unreadable(path, parent):
        for _ in pq.ParquetFile(path).iter_batches():
            pass


@contextlib.contextmanager
def _named_if_unreadable(path: Path, parent: str) -> Iterator[None]:
    try:
        yield
    except (OSError, pa.ArrowException):
        raise ParentError(f"--warm-start {parent}: its file {path} is missing or unreadable; {RERUN}") from None


def read_parent_state(parent: str, fields: list[str]) -> Any:
    """The parent's rows as a :class:`eges.update.warm.ParentState`, attention columns in this run's field order;
    value rows as the parent trained them (its centring, if any, added back: :func:`parent_centring`)."""
    from eges.update.warm import ParentState

    method, entry, path = parent_training(parent, parent_manifest(parent))
    state = parent_table(path, parent)
    meta = state_meta(path, parent)
    attention = _matrix(state["attention"]) if state.num_rows else np.zeros((0, 1 + len(fields)), np.float32)
    order = [0, *(1 + meta["fields"].index(f) for f in fields)] if method.side_info else [0]
    values = parent_table(Path(parent) / SIDE_VECTORS, parent) if method.side_info else None
    value_rows = _matrix(values["vector"]) if values is not None else np.zeros((0, meta["dimension"]), np.float32)
    shift = _centred_shift(entry)
    if shift is not None and values is not None:  # written centred: the trained value rows are the written ones
        value_rows = value_rows + shift  # plus the shift
    return ParentState(
        item_ids=state["item_id"].to_pylist(), rows=_matrix(state["row"]), context=_matrix(state["context"]),
        attention=np.ascontiguousarray(attention[:, order]),
        value_field=values["field"].to_pylist() if values is not None else [],
        value_label=values["value"].to_pylist() if values is not None else [],
        value_rows=value_rows,
        slots=state["slot"].to_numpy() if "slot" in state.column_names else None,  # an early state: item order
        next_slot=int(meta.get("next_slot", state.num_rows)))


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    col = column.combine_chunks()
    return np.ascontiguousarray(col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size),
                                dtype=np.float32)


def warm_train_config(tcfg: TrainConfig, ucfg: UpdateConfig, selection: dict[str, Any] | None = None,
                      kept: float = 1.0, alpha_by_rule: bool = False) -> tuple[TrainConfig, int]:
    """The [train] settings of a warm start and the passes it trains: the passes the new slice chose
    (update.epochs = 0: ``selection``, the validate stage's; the learning rate decays over the passes the slice's
    curve tried, as on the curve), -1: a third of a fresh run's walk tokens (``kept``: the share of each pass's
    tokens update.other_walks keeps, so focused walks buy more passes, never more than a fresh run's; at least
    one; also when the slice could not be cut), N: N; at update.alpha decaying to train.min_alpha (or alpha, if
    lower). update.alpha = 0 trains no pass (nothing would move). ``tcfg`` has its epochs resolved; ``ucfg`` its
    rule resolved (:func:`resolved_update`; a -1 left in it reads as train.alpha, the rule on a day of no new items);
    ``alpha_by_rule``: update.alpha was -1, so the side-information value rows and the attention logits keep
    train.alpha (:mod:`eges.update.rule`; an explicit train.side_alpha or train.attention_alpha wins)."""
    import dataclasses
    import math

    from eges.update.rule import attention_alpha_by_rule, side_alpha_by_rule

    third = max(1, min(tcfg.epochs, math.floor(tcfg.epochs / (3 * max(kept, 1e-9)) + 1e-9)))
    epochs = passes = third if ucfg.epochs < 0 else ucfg.epochs
    if ucfg.epochs == 0:
        chosen = int((selection or {}).get("epochs") or 0)
        passes = chosen or third
        epochs = max(int((selection or {}).get("schedule_epochs") or 0), passes)
    alpha = tcfg.alpha if ucfg.alpha < 0 else ucfg.alpha  # unresolved (-1, no day read): the rule's floor
    if alpha == 0:
        epochs = passes = 0
    cfg = dataclasses.replace(tcfg, epochs=epochs, alpha=alpha, min_alpha=min(tcfg.min_alpha, alpha),
                              side_alpha=side_alpha_by_rule(tcfg.side_alpha, tcfg.alpha, alpha_by_rule),
                              attention_alpha=attention_alpha_by_rule(tcfg.attention_alpha, tcfg.alpha, alpha_by_rule))
    return cfg, passes


def start_for(ctx: StageContext, node_ids: list[Any], side: Any, seed: int,
              own_weight: float) -> tuple[Any, dict[str, Any]]:
    """What a training stage starts from: (StartState, or None without a parent; details for the manifest, and
    under "tail" the :class:`StateTail`, which the stage pops and passes to :func:`write_state`)."""
    if ctx.inputs.parent is None:
        return None, {}
    from eges.update.warm import warm_start

    parent = read_parent_state(ctx.inputs.parent, list(side.fields))
    start, counts = warm_start(parent, node_ids, side, seed, own_weight)
    kept = counts.pop("kept")
    parent_slots = parent.slots if parent.slots is not None else np.arange(len(parent.item_ids), dtype=np.int64)
    tail = StateTail(counts.pop("slots"), counts.pop("next_slot"), pa.array(parent.item_ids).take(pa.array(kept)),
                     parent.rows[kept], parent.context[kept], parent.attention[kept], parent_slots[kept])
    return start, {"warm_start": counts, "lineage": lineage(ctx.inputs.parent), "tail": tail}


def parent_newest(parent: str) -> int | None:
    """The parent's newest event time (ms, its graph's nodes' latest ``last_seen``), or None (an edge list)."""
    path = Path(parent) / NODES
    try:
        if "last_seen" not in pq.read_schema(path).names:
            return None
        seen = pq.read_table(path, columns=["last_seen"])["last_seen"].to_numpy()
    except (OSError, pa.ArrowException):
        return None
    return int(seen.max()) if len(seen) else None


def update_day(ctx: StageContext, with_new: bool = True) -> tuple[Any, np.ndarray | None]:
    """What the update rule reads of this run (:class:`eges.update.rule.Day`) and, per item index, whether the new
    events touched it (its ``last_seen`` after the parent's newest event; None without event times). Without
    ``with_new`` the parent's item ids are not read and the day counts no new item (only the rate reads them)."""
    import pandas as pd

    from eges.update.rule import Day

    nodes = pq.read_table(ctx.input_path(NODES))
    since = parent_newest(ctx.inputs.parent) if ctx.inputs.parent is not None else None
    if since is None or "last_seen" not in nodes.column_names:
        return Day(nodes.num_rows, None, 0), None
    index = nodes["item_index"].to_numpy()
    touched = np.zeros(nodes.num_rows, dtype=bool)
    touched[index] = nodes["last_seen"].to_numpy() > since
    new = np.zeros(nodes.num_rows, dtype=bool)
    if with_new:
        _, _, state = parent_training(ctx.inputs.parent, parent_manifest(ctx.inputs.parent))
        known = pd.Index(parent_table(state, ctx.inputs.parent, ["item_id"])["item_id"].to_pylist())
        new[index] = known.get_indexer(pd.Index(nodes["item_id"].to_pylist())) < 0
    return Day(nodes.num_rows, int(touched.sum()), int((touched & new).sum())), touched


def resolved_update(ctx: StageContext) -> tuple[UpdateConfig, dict[str, Any], np.ndarray | None]:
    """The [update] settings a warm start trains with, update.other_walks and update.alpha resolved (-1: by the
    rule of :mod:`eges.update.rule`, from this run's day; an explicit value wins); what the rule read, for the
    manifest (empty when neither key asked for it); and the touched items (None without event times)."""
    import dataclasses

    from eges.update.rule import attention_alpha_by_rule, resolve, side_alpha_by_rule

    ucfg = ctx.config.update
    if ucfg.other_walks >= 1 and ucfg.alpha >= 0:  # explicit settings that focus nothing: nothing to read
        return ucfg, {}, None
    day, touched = update_day(ctx, with_new=ucfg.alpha < 0)
    share, alpha = resolve(ucfg.other_walks, ucfg.alpha, ctx.config.train.alpha, day)
    side = side_alpha_by_rule(ctx.config.train.side_alpha, ctx.config.train.alpha, ucfg.alpha < 0)
    attention = attention_alpha_by_rule(ctx.config.train.attention_alpha, ctx.config.train.alpha, ucfg.alpha < 0)
    rule = {} if ucfg.other_walks >= 0 and ucfg.alpha >= 0 else {
        "items": day.items, "touched_items": day.touched, "new_touched_items": day.new if ucfg.alpha < 0 else None,
        "touched_share": round(day.touched_share, 4), "new_share": round(day.new_share, 4) if ucfg.alpha < 0 else None,
        "other_walks": round(share, 4), "alpha": round(alpha, 6),
        "side_alpha": round(side if side >= 0 else alpha, 6),  # the value rows' rate (GES/EGES)
        "attention_alpha": round(attention if attention >= 0 else alpha, 6)}  # the attention logits' (EGES)
    return dataclasses.replace(ucfg, other_walks=share, alpha=alpha), rule, touched


def update_walks(ctx: StageContext, batches: Any, counts: np.ndarray) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The walks a training stage trains on: with a parent and update.other_walks below 1 (set, or by rule), every
    walk that starts at an item the new events touched (its ``last_seen`` after the parent's newest event) and that
    share of the others (:mod:`eges.update.focus`); else ``batches`` as they are. (batches, token counts, details;
    with the rule's reading under "rule" when it set a key)."""
    from eges.update.focus import filter_walks, kept_walks, training_counts

    if ctx.inputs.parent is None:
        return batches, counts, {}
    ucfg, rule, found = resolved_update(ctx)
    share = float(ucfg.other_walks)
    extra = {"rule": rule} if rule else {}
    if found is None or share >= 1:
        return batches, counts, extra
    touched = np.zeros(len(counts), dtype=bool)
    touched[:len(found)] = found[:len(counts)]
    seed = int(ctx.config.train.seed)

    def focused() -> Any:
        for b, (values, offsets) in enumerate(batches()):
            yield filter_walks(values, offsets, kept_walks(values[offsets[:-1]], touched, share, seed + b))

    kept = np.zeros(len(counts), dtype=np.int64)
    for values, _ in focused():
        kept += np.bincount(values, minlength=len(counts))[:len(counts)]
    details = {"other_walks": share, "touched_items": int(touched.sum()),
               "tokens_kept": round(float(kept.sum()) / max(float(np.sum(counts)), 1.0), 4), **extra}
    return focused, training_counts(kept, counts), details
