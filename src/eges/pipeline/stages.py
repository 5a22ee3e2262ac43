"""The BGE pipeline's stages: sessions -> graph -> walks -> skipgram, each Parquet in / Parquet out.

Each stage is a thin wrapper: it opens its inputs, calls the pure code in ``eges.sessions``,
``eges.graph``, ``eges.walks`` or ``eges.train``, and writes its outputs atomically.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.duck import duckdb_session, duckdb_table
from eges.errors import InputError, StageError
from eges.graph.csr import CSRGraph, edge_sources, from_sorted_edges, graph_stats
from eges.graph.transitions import (
    EDGES_TABLE,
    NODES_TABLE,
    bad_weights_message,
    bucket_by_destination,
    count_bucketed,
    edge_list_sql,
    mixed_id_kinds_message,
    null_ids_message,
    weight_type_message,
)
from eges.layout import (
    BGE_KEYED_VECTORS,
    BGE_VECTORS,
    EDGES,
    GRAPH_STATS,
    NODES,
    SESSIONS,
    SESSIONS_DELTA,
    VOCAB,
    WALKS,
    WALKS_SCHEMA,
)
from eges.methods import METHODS
from eges.pipeline import io
from eges.pipeline.registry import RunInputs, StageContext, StageResult, run_method, stage
from eges.sessions.clean import SessionsReport, gather_batches, index_items, sessionize_stream, vocabulary_sql
from eges.sessions.events import open_events


def _uses_events(inputs: RunInputs, config: Any) -> bool:
    return inputs.edges is None


class _NoProgress:
    """What ``_progress`` gives under ``--quiet``: not even importing tqdm, whose import lands in the stage's time."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


def _progress(ctx: StageContext, total: int | None, unit: str, desc: str):
    """A tqdm bar on a terminal; nothing under --quiet or when stderr is a pipe or file (a log fills with
    carriage returns otherwise)."""
    if not ctx.progress or not sys.stderr.isatty():
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, leave=False)


# --------------------------------------------------------------------------------------------- sessions
@stage("sessions", sections=("sessions",), outputs=(SESSIONS, VOCAB),
       inputs=lambda inp, cfg: ("@events",), enabled=_uses_events)
def sessions_stage(ctx: StageContext) -> StageResult:
    """Clean the event log and cut it into sessions; write the sessions and the item vocabulary."""
    if ctx.config.engine.backend == "spark":
        from eges.spark import stages as spark_stages

        return spark_stages.sessions(ctx)
    cfg = ctx.config.sessions
    report = SessionsReport()
    scratch = io.ScratchFile(ctx.spill_dir, "sessions_with_item_ids")
    try:
        with duckdb_session(ctx.config.engine, ctx.spill_dir) as con:
            source = open_events(con, ctx.input_path("@events"), cfg)
            # Pass 1: sessions with the original item ids, streamed to a scratch file (bounded memory); the
            # copy into the file runs on a second thread while the next batch is sorted and cut.
            # The bar has no total: how many events cleaning keeps is known at the end.
            with io.BackgroundWriter(scratch) as background, _progress(ctx, None, "event", "sessions: cut") as bar:
                for table in sessionize_stream(con, source.view, cfg, has_behaviour=source.has_behaviour,
                                               has_dwell=source.has_dwell, report=report):
                    background.write(table)
                    bar.update(table.num_rows)
            scratch.close()
            report.check_not_empty(cfg)
            con.register("eges_scratch", scratch.reader())
            vocab = duckdb_table(con, vocabulary_sql("eges_scratch"))
        report.items_out = vocab.num_rows
        # Pass 2: item ids -> vocabulary indices, still in (user, session, position) order.
        # Parquet encoding overlaps indexing the next batch; it is the critical path of this pass, so integer
        # columns are delta-encoded instead of compressed (docs/benchmarks.md).
        with io.AtomicParquetWriter(ctx.path(SESSIONS), delta_columns=SESSIONS_DELTA) as out, \
                io.BackgroundWriter(out) as background, \
                _progress(ctx, report.events_out, "event", "sessions: index") as bar:
            for batch in gather_batches(scratch.batches(), 1_000_000):
                background.write(index_items(batch, vocab.column("item_id")))
                bar.update(batch.num_rows)
        io.write_table(vocab, ctx.path(VOCAB))
    finally:
        scratch.remove()
    r = report
    r.timestamp_unit = source.timestamp_unit
    r.columns_recognised = dict(source.recognised)
    found = "".join(f"{role} column {col!r} (no {role}_col column), " for role, col in source.recognised)
    summary = (f"{found}times read in {r.timestamp_unit}; {r.sessions_out:,} sessions, {r.users_out:,} users, "
               f"{r.items_out:,} items; dropped "
               f"{r.spam_events:,} events of {r.spam_users:,} over-active users, {r.behaviour_dropped:,} by "
               f"behaviour, {r.short_dwell_dropped:,} with short dwell, {r.repeats_collapsed:,} repeats, "
               f"{r.short_session_events_dropped:,} in {r.short_sessions_dropped:,} short sessions")
    details = r.as_dict()
    return StageResult(r.events_in, r.events_out, summary, details)


# --------------------------------------------------------------------------------------------- graph
def _graph_inputs(inp: RunInputs, config: Any) -> tuple[str, ...]:
    return ("@edges",) if inp.edges is not None else (SESSIONS, VOCAB)


@stage("graph", sections=("graph",), outputs=(EDGES, NODES, GRAPH_STATS), inputs=_graph_inputs)
def graph_stage(ctx: StageContext) -> StageResult:
    """Build the weighted directed item graph (edge i->j = times j directly follows i in a session)."""
    if ctx.config.engine.backend == "spark":
        from eges.spark import stages as spark_stages

        rows_in, stats = spark_stages.graph(ctx)  # streams the edges to the file; the driver never holds them
    else:
        if ctx.inputs.edges is not None:
            rows_in, graph, nodes = _graph_from_edge_list(ctx)
        else:
            rows_in, graph, nodes = _graph_from_sessions(ctx)
        # The edges' Parquet encoding runs on a second thread while the statistics are computed.
        sources = edge_sources(graph)
        edges = pa.table({"src": sources, "dst": graph.indices, "weight": graph.weights})
        with io.BackgroundWriter(_TableWriter(ctx.path(EDGES)), depth=1) as background:
            background.write(edges)
            io.write_table(nodes, ctx.path(NODES))
            stats = graph_stats(graph, sources)
    with io.atomic_path(ctx.path(GRAPH_STATS)) as tmp:
        tmp.write_text(json.dumps(stats, indent=2))
    summary = (f"{stats['nodes']:,} nodes, {stats['edges']:,} edges, {stats['dangling_nodes']:,} dangling, "
               f"{stats['weak_components']:,} weak components")
    return StageResult(rows_in, stats["edges"], summary, stats)


class _TableWriter:
    """``write(table)`` writes one whole Parquet file atomically (for :class:`io.BackgroundWriter`)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, table: pa.Table) -> None:
        io.write_table(table, self.path)


def _graph_from_sessions(ctx: StageContext) -> tuple[int, CSRGraph, pa.Table]:
    """Transition counts of the sessions stage's output as CSR (rows read, graph, nodes table)."""
    cfg = ctx.config.graph
    path = ctx.input_path(SESSIONS)
    nodes = pq.read_table(ctx.input_path(VOCAB))
    items = io.read_column(path, "item_index", np.int32)
    rows = len(items)
    buckets = bucket_by_destination(items, io.read_column(path, "position", np.int32), nodes.num_rows,
                                    cfg.undirected)
    del items  # the session columns go before the second half allocates (it lowers the stage's peak)
    indptr, indices, weights = count_bucketed(*buckets, float(cfg.min_edge_weight))
    return rows, CSRGraph(indptr, indices, weights), nodes


def _graph_from_edge_list(ctx: StageContext) -> tuple[int, CSRGraph, pa.Table]:
    """A user-supplied edge list of item ids, indexed and aggregated in DuckDB (rows read, graph, nodes)."""
    cfg = ctx.config.graph
    path = ctx.input_path("@edges")
    table = io.read_table(path, what="edge list")
    from eges.columns import missing_message

    for col, key in ((cfg.src_col, "graph.src_col"), (cfg.dst_col, "graph.dst_col")):
        if col not in table.column_names:
            raise InputError(missing_message(table.column_names, col, key, f"edge list file {path}"))
    from eges.ids import check_id_array

    where = f"edge list file {path}"
    for col in (cfg.src_col, cfg.dst_col):
        if table[col].null_count:
            raise InputError(null_ids_message(where, col, table[col].null_count))
        ids = check_id_array(table[col], where, col, "item id")
        table = table.set_column(table.column_names.index(col), col, ids)
    text = {c: pa.types.is_string(table[c].type) or pa.types.is_large_string(table[c].type)
            for c in (cfg.src_col, cfg.dst_col)}
    if text[cfg.src_col] != text[cfg.dst_col]:
        raise InputError(mixed_id_kinds_message(where, cfg, {c: str(table[c].type) for c in text}, text))
    if table[cfg.src_col].type != table[cfg.dst_col].type:  # int32 beside int64, or string beside large_string
        wide = pa.large_string() if text[cfg.src_col] else pa.int64()
        for col in (cfg.src_col, cfg.dst_col):
            table = table.set_column(table.column_names.index(col), col, table[col].cast(wide))
    has_weight = cfg.weight_col in table.column_names
    if has_weight:
        wtype = table[cfg.weight_col].type
        if not (pa.types.is_integer(wtype) or pa.types.is_floating(wtype) or pa.types.is_decimal(wtype)):
            raise InputError(weight_type_message(where, cfg.weight_col, wtype))
        w = table[cfg.weight_col].cast(pa.float64()).to_numpy(zero_copy_only=False)
        if not np.isfinite(w).all() or (w < 0).any():
            raise InputError(bad_weights_message(where, cfg.weight_col))
    with duckdb_session(ctx.config.engine, ctx.spill_dir) as con:
        con.register("eges_edge_input", table)
        edge_list_sql(con, "eges_edge_input", cfg, has_weight)
        edges = duckdb_table(con, f"SELECT * FROM {EDGES_TABLE} ORDER BY src, dst")
        nodes = duckdb_table(con, f"SELECT * FROM {NODES_TABLE} ORDER BY item_index")
    return table.num_rows, _graph_from_edges(edges, nodes.num_rows), nodes


def load_graph(out_dir: Path) -> CSRGraph:
    """The graph stage's edges as CSR arrays (edges are stored sorted by src, dst and unique)."""
    return _graph_from_edges(pq.read_table(out_dir / EDGES), pq.ParquetFile(out_dir / NODES).metadata.num_rows)


def _graph_from_edges(edges: pa.Table, n_nodes: int) -> CSRGraph:
    return from_sorted_edges(edges["src"].to_numpy(), edges["dst"].to_numpy(), edges["weight"].to_numpy(), n_nodes)


# --------------------------------------------------------------------------------------------- walks
@stage("walks", sections=("walks",), outputs=(WALKS,), inputs=lambda inp, cfg: (EDGES, NODES))
def walks_stage(ctx: StageContext) -> StageResult:
    """Weighted random walks from every node with out-edges, streamed to Parquet in row groups."""
    from eges.walks.generate import batch_to_arrow, iter_walk_batches, numba_threads, total_walks

    cfg = ctx.config.walks
    if ctx.config.engine.backend == "spark":
        from eges.spark import stages as spark_stages

        n_edges = pq.ParquetFile(ctx.input_path(EDGES)).metadata.num_rows
        if n_edges == 0:
            raise InputError("the graph has no edges, so there is nothing to walk; check the graph settings")
        started = time.perf_counter()
        n_walks, steps = spark_stages.walks(ctx, WALKS_SCHEMA)
        seconds = time.perf_counter() - started
        details = {"walks": n_walks, "steps": steps, "steps_per_second": round(steps / max(seconds, 1e-9))}
        return StageResult(n_edges, n_walks, f"spark: {steps:,} steps, {steps / max(seconds, 1e-9):,.0f} steps/s",
                           details)
    graph = load_graph(ctx.out_dir)
    if graph.n_edges == 0:
        raise InputError("the graph has no edges, so there is nothing to walk; check the graph settings")
    total = total_walks(graph, cfg)
    steps = 0
    started = time.perf_counter()
    with numba_threads(cfg.threads), io.AtomicParquetWriter(ctx.path(WALKS), WALKS_SCHEMA) as writer, \
            _progress(ctx, total, "walk", "walks") as bar:
        for batch in iter_walk_batches(graph, cfg):
            column = batch_to_arrow(batch)
            steps += len(column.values)
            writer.write(pa.table({"walk": column}, schema=WALKS_SCHEMA))
            bar.update(len(batch))
    seconds = time.perf_counter() - started
    details = {"walks": writer.rows, "steps": steps, "steps_per_second": round(steps / max(seconds, 1e-9))}
    return StageResult(graph.n_edges, writer.rows,
                       f"{steps:,} steps, {steps / max(seconds, 1e-9) / 1e6:.1f} M steps/s", details)


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


@stage("skipgram", sections=("train",), outputs=(BGE_VECTORS, BGE_KEYED_VECTORS),
       inputs=lambda inp, cfg: (WALKS, NODES), enabled=lambda inp, cfg: run_method(inp, cfg).stage == "skipgram",
       ignores=("train.method", *(f"train.{key}" for key in _SKIPGRAM.ignores)))
def skipgram_stage(ctx: StageContext) -> StageResult:
    """BGE: skip-gram with negative sampling on the walks (gensim or the native trainer); vectors and KeyedVectors."""
    from eges.methods import backend

    cfg = ctx.config.train
    walks_path = ctx.input_path(WALKS)
    nodes = pq.read_table(ctx.input_path(NODES), columns=["item_id", "item_index"])
    n_nodes = nodes.num_rows
    counts = walk_counts(walks_path, n_nodes)
    n_walks = io.parquet_num_rows(walks_path)
    if n_walks == 0:
        raise StageError(f"{walks_path} holds no walks")
    from eges.train.stream import resolve_epochs

    method = run_method(ctx.inputs, ctx.config).name
    trainer = backend(method, cfg.backend)
    cfg = resolve_epochs(cfg, int(counts.sum()))
    started = time.perf_counter()
    if trainer == "gensim":
        from eges.train.gensim_ref import WalkCorpus, train_bge, vectors_by_index

        with _progress(ctx, n_walks * cfg.epochs, "walk", "skipgram") as bar:
            corpus = WalkCorpus(lambda: walk_batches(walks_path, rows=100_000), on_batch=bar.update)
            model = train_bge(corpus, counts, n_walks, cfg)
        index, vectors = vectors_by_index(model, n_nodes)
    else:
        from eges.train.stream import compile_kernel, native_skipgram

        compile_kernel()
        with _progress(ctx, int(counts.sum()) * cfg.epochs, "token", "skipgram") as bar:
            index, vectors = native_skipgram(lambda: walk_batches(walks_path), counts, n_nodes, cfg, method,
                                             on_tokens=bar.update)
    seconds = time.perf_counter() - started
    ids = nodes["item_id"].take(pa.array(index))
    table = pa.table({"item_id": ids, "vector": io.vector_column(vectors)})
    io.write_table(table, ctx.path(BGE_VECTORS), compression="none")  # float vectors barely compress
    io.write_keyed_vectors(ids.to_pylist(), vectors, ctx.path(BGE_KEYED_VECTORS))
    words = int(counts.sum()) * cfg.epochs
    unvisited = n_nodes - len(index)
    details = {"words_per_second": round(words / max(seconds, 1e-9)), "train_seconds": round(seconds, 3),
               "vocabulary": len(index), "backend": trainer, "unvisited_nodes": unvisited, "epochs": cfg.epochs}
    note = f"; {unvisited:,} items no walk visits have no vector" if unvisited else ""
    return StageResult(n_walks, table.num_rows,
                       f"{trainer}: {len(index):,} vectors, {cfg.epochs} epoch(s), "
                       f"{words / max(seconds, 1e-9) / 1e3:,.0f}k words/s{note}",
                       details)
