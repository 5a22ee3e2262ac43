"""The BGE pipeline's stages: sessions -> graph -> walks -> skipgram, each Parquet in / Parquet out.

Each stage is a thin wrapper. The sessions, graph and walks stages call the run's engine (``ctx.engine``,
``eges.engines``: DuckDB and the compiled kernels, or Spark), which writes the contract files; the stage keeps the
contract's log line and details, the same on every engine. The skipgram stage calls the trainer (``eges.train``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.config import GRAPH_UPDATE_KEYS, UPDATE_TRAIN_KEYS, UpdateConfig
from eges.errors import InputError, StageError
from eges.layout import (
    BGE_KEYED_VECTORS,
    BGE_STATE,
    BGE_VECTORS,
    EDGES,
    GRAPH_STATS,
    NODES,
    SESSIONS,
    VOCAB,
    WALKS,
)
from eges.methods import METHODS
from eges.pipeline import io
from eges.pipeline.progress import progress as _progress
from eges.pipeline.registry import RunInputs, StageContext, StageResult, run_method, stage
from eges.pipeline.validate_stage import (
    UNDIRECTED_NOTE,
    centre_for_writing,
    chosen_training,
    chosen_walks,
    stop_after,
    training_inputs,
)
from eges.update.align import check_reference, onto_reference, reference_inputs


def _uses_events(inputs: RunInputs, config: Any) -> bool:
    return inputs.edges is None


# --------------------------------------------------------------------------------------------- sessions
@stage("sessions", sections=("sessions",), outputs=(SESSIONS, VOCAB),
       inputs=lambda inp, cfg: ("@events",), enabled=_uses_events)
def sessions_stage(ctx: StageContext) -> StageResult:
    """Clean the event log and cut it into sessions; write the sessions and the item vocabulary."""
    engine = ctx.engine
    report = engine.sessions(ctx)
    return StageResult(report.events_in, report.events_out, report.summary(engine.label), report.as_dict())


# --------------------------------------------------------------------------------------------- graph
def _graph_inputs(inp: RunInputs, config: Any) -> tuple[str, ...]:
    """The parent run is an input only when its graph is carried over, so a window update never goes stale when
    the parent changes."""
    from eges.pipeline.parent_graph import carries_parent

    if inp.edges is not None:
        return ("@edges",)
    return (SESSIONS, VOCAB, "@parent") if carries_parent(inp, config) else (SESSIONS, VOCAB)


def _check_parent_graph(ctx: StageContext, will_run: set[str]) -> None:
    """A parent whose graph cannot be carried over is refused before the first stage writes anything."""
    from eges.pipeline.parent_graph import parent_graph

    if "graph" in will_run:
        found = parent_graph(ctx)
        if found is not None:
            from eges.graph.carry import require_last_seen

            require_last_seen(found.nodes, found.where)


def update_keys_except(read: tuple[str, ...]) -> tuple[str, ...]:
    """The [update] keys a stage does not read (the section holds the graph's and the training stages' keys), so
    they never make it stale."""
    return tuple(f"update.{f.name}" for f in dataclasses.fields(UpdateConfig) if f.name not in read)


_NOT_GRAPH_UPDATE_KEYS = update_keys_except(GRAPH_UPDATE_KEYS)


@stage("graph", sections=("graph", "update"), outputs=(EDGES, NODES, GRAPH_STATS), inputs=_graph_inputs,
       ignores=_NOT_GRAPH_UPDATE_KEYS, check=_check_parent_graph)
def graph_stage(ctx: StageContext) -> StageResult:
    """Build the weighted directed item graph (edge i->j = times j directly follows i in a session); with a parent
    and update.events = 'new', add the parent's edges carried over (``eges.graph.carry``)."""
    rows_in, stats = ctx.engine.graph(ctx)
    with io.atomic_path(ctx.path(GRAPH_STATS)) as tmp:
        tmp.write_text(json.dumps(stats, indent=2))
    summary = (f"{stats['nodes']:,} nodes, {stats['edges']:,} edges, {stats['dangling_nodes']:,} dangling, "
               f"{stats['weak_components']:,} weak components")
    if "update" in stats:
        from eges.graph.carry import update_summary

        summary += f"; {update_summary(stats['update'])}"
    return StageResult(rows_in, stats["edges"], summary, stats)


# --------------------------------------------------------------------------------------------- walks
@stage("walks", sections=("walks",), outputs=(WALKS,), inputs=lambda inp, cfg: (EDGES, NODES))
def walks_stage(ctx: StageContext) -> StageResult:
    """Weighted random walks from every node with out-edges, streamed to Parquet in row groups."""
    n_edges = io.parquet_num_rows(ctx.input_path(EDGES))
    if n_edges == 0:
        raise InputError("the graph has no edges, so there is nothing to walk; check the graph settings")
    engine = ctx.engine
    started = time.perf_counter()
    n_walks, steps = engine.walks(ctx)
    rate = steps / max(time.perf_counter() - started, 1e-9)
    details = {"walks": n_walks, "steps": steps, "steps_per_second": round(rate)}
    prefix = f"{engine.label}: " if engine.label else ""
    return StageResult(n_edges, n_walks, f"{prefix}{steps:,} steps, {rate / 1e6:.1f} M steps/s", details)


def walk_counts(path: Path, n_nodes: int) -> np.ndarray:
    """How often each node occurs in the walks (one streaming pass): the trainers' negatives and down-sampling."""
    counts = np.zeros(n_nodes, dtype=np.int64)
    for values, _ in walk_batches(path):
        counts += np.bincount(values, minlength=n_nodes)[:n_nodes]
    return counts


def walk_batches(path: Path, rows: int = 1_000_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(flat node indices, offsets) for about ``rows`` walks at a time from a walks file."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=["walk"]):
        col = batch.column(0)
        offsets = col.offsets.to_numpy().astype(np.int64)
        values = col.values.to_numpy()
        yield values[offsets[0]:offsets[-1]], offsets - offsets[0]


# --------------------------------------------------------------------------------------------- skipgram
_SKIPGRAM = next(m for m in METHODS.values() if m.stage == "skipgram")  # the method this stage trains (BGE)


def parent_input(inp: RunInputs) -> tuple[str, ...]:
    """A warm start's parent run is an input of the training stages (a rerun parent makes them stale)."""
    return ("@parent",) if inp.parent is not None else ()


#: The [update] keys that are not the training stages' (the graph stage's carry-over).
UPDATE_IGNORED = update_keys_except(UPDATE_TRAIN_KEYS)


@stage("skipgram", sections=("train", "update"), outputs=(BGE_VECTORS, BGE_KEYED_VECTORS, BGE_STATE),
       inputs=lambda inp, cfg: (WALKS, NODES, *training_inputs(inp, cfg), *parent_input(inp), *reference_inputs(inp)),
       enabled=lambda inp, cfg: run_method(inp, cfg).stage == "skipgram",
       ignores=("train.method", *(f"train.{key}" for key in _SKIPGRAM.ignores), *UPDATE_IGNORED),
       check=check_reference, recheck_after=("graph",))
def skipgram_stage(ctx: StageContext) -> StageResult:
    """BGE: skip-gram with negative sampling on the walks (gensim or the native trainer); vectors and KeyedVectors."""
    from eges.methods import backend

    cfg = ctx.config.train
    walks_file = chosen_walks(ctx)  # the walks stage's, or the undirected ones the slice chose
    walks_path = ctx.input_path(walks_file)
    nodes = pq.read_table(ctx.input_path(NODES), columns=["item_id", "item_index"])
    n_nodes = nodes.num_rows
    counts = walk_counts(walks_path, n_nodes)
    n_walks = io.parquet_num_rows(walks_path)
    if n_walks == 0:
        raise StageError(f"{walks_path} holds no walks")
    from eges.pipeline.parent import update_walks

    batches, train_counts, focus = update_walks(ctx, lambda: walk_batches(walks_path), counts)  # other_walks
    cfg, method, passes = chosen_training(ctx, cfg, int(counts.sum()),  # the validate stage's, when it ran
                                          focus.get("tokens_kept", 1.0))
    trainer = backend(method, cfg.backend)
    if trainer == "gensim":  # gensim cannot stop mid-schedule: its schedule is the passes it trains
        cfg = dataclasses.replace(cfg, epochs=passes)
    from eges.pipeline.parent import start_for, write_model_state, write_state
    from eges.side_info.encode import SideInfo

    no_fields = SideInfo([], np.zeros((n_nodes, 0), dtype=np.int32), [])
    start, warm = start_for(ctx, nodes["item_id"].to_pylist(), no_fields, cfg.seed, cfg.own_weight)
    tail = warm.pop("tail", None)
    started = time.perf_counter()
    if trainer == "gensim":
        from eges.train.gensim_ref import WalkCorpus, train_bge, vectors_by_index

        with _progress(ctx, n_walks * cfg.epochs, "walk", "skipgram") as bar:
            corpus = WalkCorpus(lambda: walk_batches(walks_path, rows=100_000), on_batch=bar.update)
            model = train_bge(corpus, counts, n_walks, cfg)
        index, vectors = vectors_by_index(model, n_nodes)
        order = np.argsort(np.asarray(model.wv.index_to_key, dtype=np.int64))
        write_state(ctx.path(BGE_STATE), nodes["item_id"].take(pa.array(index)), vectors,
                    np.asarray(model.syn1neg[order], dtype=np.float32), np.zeros((len(index), 1), np.float32),
                    method, [], slots=index)  # gensim never warm-starts: slots are item indices
    else:
        from eges.train.stream import behaviour_vectors, compile_kernel, native_skipgram_model

        compile_kernel()
        warm.update({"focus": focus} if focus else {})
        with _progress(ctx, int(train_counts.sum()) * passes, "token", "skipgram") as bar:
            trained = native_skipgram_model(batches, train_counts, n_nodes, cfg, method,
                                            on_tokens=bar.update, start=start, on_epoch=stop_after(passes))
        index = np.flatnonzero(counts[:n_nodes] > 0)
        vectors = np.ascontiguousarray(behaviour_vectors(trained)[index])
        write_model_state(ctx.path(BGE_STATE), nodes["item_id"], trained, method, tail)
    seconds = time.perf_counter() - started
    ids = nodes["item_id"].take(pa.array(index))
    # centred when the slice scored the chosen pass higher centred (validate.try_centred)
    centring = centre_for_writing(ctx, vectors, np.ones(len(vectors), dtype=bool))
    (vectors,) = centring.rows
    aligned = onto_reference(ctx, ids, vectors)  # --align-to: rotated onto the reference run's space
    vectors = aligned.vectors
    table = pa.table({"item_id": ids, "vector": io.vector_column(vectors)})
    io.write_table(table, ctx.path(BGE_VECTORS), compression="none")  # float vectors barely compress
    io.write_keyed_vectors(ids.to_pylist(), vectors, ctx.path(BGE_KEYED_VECTORS))
    words = int(counts.sum()) * passes
    unvisited = n_nodes - len(index)
    details = {"words_per_second": round(words / max(seconds, 1e-9)), "train_seconds": round(seconds, 3),
               "vocabulary": len(index), "backend": trainer, "unvisited_nodes": unvisited, "epochs": passes,
               "method": method, "window": cfg.window, "walks": walks_file, **centring.details, **warm,
               **aligned.details}
    note = f"; {unvisited:,} items no walk visits have no vector" if unvisited else ""
    note += UNDIRECTED_NOTE if walks_file != WALKS else ""
    note += centring.note
    return StageResult(n_walks, table.num_rows,
                       f"{trainer}: {len(index):,} vectors, {passes} epoch(s), "
                       f"{words / max(seconds, 1e-9) / 1e3:,.0f}k words/s{note}{aligned.note}",
                       details)
