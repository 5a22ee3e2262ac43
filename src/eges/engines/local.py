"""The local engine: DuckDB for the relational steps and the compiled kernels for the rest, on this machine.

Sessions: DuckDB normalises, cleans and sorts the events (``eges.sessions.events``, ``eges.sessions.clean``), the
cut runs vectorised over the sorted stream, and the item ids become vocabulary indices in a second pass. Graph:
transition counts bucketed in NumPy (``eges.graph.transitions``) or a supplied edge list aggregated in DuckDB.
Walks: the numba kernels over the CSR graph (``eges.walks``). Parquet encoding overlaps the computing on a second
thread (:class:`eges.pipeline.io.BackgroundWriter`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.duck import duckdb_session, duckdb_table, sql_path
from eges.errors import InputError
from eges.graph.carry import (
    CARRY_MAP,
    MERGED_EDGES,
    NEW_EDGES,
    PARENT_EDGES,
    carried_edges_queries,
    last_seen_sql,
    merge_nodes,
    with_last_seen,
)
from eges.graph.csr import CSRGraph, edge_sources, from_sorted_edges, graph_stats, symmetrized
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
from eges.layout import EDGES, NODES, SESSIONS, SESSIONS_DELTA, VOCAB, WALKS, WALKS_SCHEMA
from eges.pipeline import io
from eges.pipeline.parent_graph import ParentGraph, parent_graph
from eges.pipeline.progress import progress
from eges.sessions.clean import SessionsReport, gather_batches, index_items, sessionize_stream, vocabulary_sql
from eges.sessions.events import open_events


class LocalEngine:
    """DuckDB and the compiled kernels (``engine.backend = "duckdb"``)."""

    label = ""
    reads_sources = False

    def sessions(self, ctx: Any) -> SessionsReport:
        cfg = ctx.config.sessions
        report = SessionsReport()
        scratch = io.ScratchFile(ctx.spill_dir, "sessions_with_item_ids")
        try:
            with duckdb_session(ctx.config.engine, ctx.spill_dir) as con:
                source = open_events(con, ctx.input_path("@events"), cfg)
                # Pass 1: sessions with the original item ids, streamed to a scratch file (bounded memory); the
                # copy into the file runs on a second thread while the next batch is sorted and cut.
                # The bar has no total: how many events cleaning keeps is known at the end.
                with io.BackgroundWriter(scratch) as background, \
                        progress(ctx, None, "event", "sessions: cut") as bar:
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
                    progress(ctx, report.events_out, "event", "sessions: index") as bar:
                for batch in gather_batches(scratch.batches(), 1_000_000):
                    background.write(index_items(batch, vocab.column("item_id")))
                    bar.update(batch.num_rows)
            io.write_table(vocab, ctx.path(VOCAB))
        finally:
            scratch.remove()
        report.timestamp_unit = source.timestamp_unit
        report.columns_recognised = dict(source.recognised)
        return report

    def graph(self, ctx: Any) -> tuple[int, dict[str, Any]]:
        carried: dict[str, int] | None = None
        if ctx.inputs.edges is not None:
            rows_in, graph, nodes = _graph_from_edge_list(ctx)
        else:
            rows_in, graph, nodes = _graph_from_sessions(ctx)
            nodes = _with_last_seen(ctx, nodes)
            parent = parent_graph(ctx)
            if parent is not None:
                graph, nodes, carried = _carry_parent(ctx, graph, nodes, parent)
        # The edges' Parquet encoding runs on a second thread while the statistics are computed.
        sources = edge_sources(graph)
        edges = pa.table({"src": sources, "dst": graph.indices, "weight": graph.weights})
        with io.BackgroundWriter(_TableWriter(ctx.path(EDGES)), depth=1) as background:
            background.write(edges)
            io.write_table(nodes, ctx.path(NODES))
            stats = graph_stats(graph, sources)
        if carried is not None:
            stats["update"] = carried
        return rows_in, stats

    def walks(self, ctx: Any, out: str = WALKS, undirected: bool = False) -> tuple[int, int]:
        from eges.walks.generate import batch_to_arrow, iter_walk_batches, numba_threads, total_walks

        cfg = ctx.config.walks
        graph = load_graph(ctx.out_dir)
        if undirected:
            graph = symmetrized(graph)
        total = total_walks(graph, cfg)
        steps = 0
        with numba_threads(cfg.threads), io.AtomicParquetWriter(ctx.path(out), WALKS_SCHEMA) as writer, \
                progress(ctx, total, "walk", "walks") as bar:
            for batch in iter_walk_batches(graph, cfg):
                column = batch_to_arrow(batch)
                steps += len(column.values)
                writer.write(pa.table({"walk": column}, schema=WALKS_SCHEMA))
                bar.update(len(batch))
        return writer.rows, steps


class _TableWriter:
    """``write(table)`` writes one whole Parquet file atomically (for :class:`io.BackgroundWriter`)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, table: pa.Table) -> None:
        io.write_table(table, self.path)


def _graph_from_sessions(ctx: Any) -> tuple[int, CSRGraph, pa.Table]:
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


def _with_last_seen(ctx: Any, vocab: pa.Table) -> pa.Table:
    """The vocabulary with each item's latest event time (``last_seen``, ms), as graph/nodes.parquet holds it."""
    with duckdb_session(ctx.config.engine, ctx.spill_dir) as con:
        seen = duckdb_table(con, last_seen_sql(f"read_parquet('{sql_path(ctx.input_path(SESSIONS))}')"))
    return with_last_seen(vocab, seen["item_index"].to_numpy(), seen["last_seen"].to_numpy())


def _carry_parent(ctx: Any, graph: CSRGraph, nodes: pa.Table,
                  parent: ParentGraph) -> tuple[CSRGraph, pa.Table, dict[str, int]]:
    """The new counts merged with the parent's decayed edges (``eges.graph.carry``'s rule, in DuckDB)."""
    merge = merge_nodes(nodes, parent.nodes, parent.rule, parent.where)
    merged_sql, edges_sql, fates_sql = carried_edges_queries(parent.rule)
    new_edges = pa.table({"src": edge_sources(graph).astype(np.int32), "dst": graph.indices, "weight": graph.weights})
    with duckdb_session(ctx.config.engine, ctx.spill_dir) as con:
        con.register(NEW_EDGES, new_edges)
        con.register(CARRY_MAP, merge.index_map)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {PARENT_EDGES} AS "
                    f"SELECT * FROM read_parquet('{sql_path(parent.edges)}')")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {MERGED_EDGES} AS {merged_sql}")
        edges = duckdb_table(con, edges_sql)
        fates = duckdb_table(con, fates_sql).to_pylist()[0]
    counts = {**{k: int(v) for k, v in fates.items()}, **merge.counts}
    return _graph_from_edges(edges, merge.nodes.num_rows), merge.nodes, counts


def _graph_from_edge_list(ctx: Any) -> tuple[int, CSRGraph, pa.Table]:
    """A user-supplied edge list of item ids, indexed and aggregated in DuckDB (rows read, graph, nodes)."""
    from eges.columns import missing_message
    from eges.ids import check_id_array

    cfg = ctx.config.graph
    path = ctx.input_path("@edges")
    table = io.read_table(path, what="edge list")
    for col, key in ((cfg.src_col, "graph.src_col"), (cfg.dst_col, "graph.dst_col")):
        if col not in table.column_names:
            raise InputError(missing_message(table.column_names, col, key, f"edge list file {path}"))
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
