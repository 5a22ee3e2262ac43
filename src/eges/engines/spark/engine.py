"""The Spark engine: the sessions, graph and walks stages as Spark jobs, with the local engine's contracts.

Spark computes and writes each output as a Parquet folder of parts, sorted across parts, under a scratch folder
(:func:`scratch_folder`: ``engine.temp_directory`` or the run's spill folder); the driver then streams the parts, one row group at a time, into the stage's single contract file
(written atomically), so every later stage, ``eges.load`` and a rerun read the same files whatever the engine.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eges.engines.spark.errors import named_failures
from eges.engines.spark.progress import SparkProgress
from eges.engines.spark.session import spark_session
from eges.layout import EDGES, NODES, SESSIONS, SESSIONS_DELTA, VOCAB, WALKS, WALKS_SCHEMA
from eges.pipeline import io
from eges.sessions.clean import SessionsReport


def _session(ctx: Any, stage: str) -> Any:
    """The session, with the stage's Spark jobs grouped as ``eges-STAGE`` (the UI, event logs, the benchmark)."""
    spark = spark_session(ctx.config.engine)
    spark.sparkContext.setJobGroup(f"eges-{stage}", f"eges {stage} stage")
    return spark


def scratch_folder(ctx: Any) -> Path:
    """Where Spark writes a stage's parts before the driver copies them into the run folder: under
    ``engine.temp_directory`` (on a cluster, a path the driver and every executor see) or OUT/.spill. One folder
    per stage run, so runs that share a temp directory never meet."""
    import os
    import uuid

    base = Path(ctx.config.engine.temp_directory) if ctx.config.engine.temp_directory else ctx.spill_dir
    folder = base / f"eges-spark-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def part_batches(folder: Path) -> Iterator[pa.Table]:
    """The rows of a Spark Parquet folder in order: part files by name (Spark numbers them in partition order)."""
    for part in sorted(folder.glob("part-*.parquet")):
        pf = pq.ParquetFile(part)
        for i in range(pf.metadata.num_row_groups):
            yield pf.read_row_group(i)


def _plain(table: pa.Table) -> pa.Table:
    """Spark writes every column nullable; the contracts' files do not mark that (same schema as DuckDB's)."""
    return pa.Table.from_arrays(table.columns, schema=pa.schema([pa.field(f.name, f.type) for f in table.schema]))


def read_parquet(spark: Any, path: Path) -> Any:
    """A Parquet file the driver wrote (a contract file, a scratch file), read with the schema of its footer: Spark
    would otherwise start a job to read that footer (a second or more on a cluster)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    try:
        schema = from_arrow_schema(pq.read_schema(path))
    except TypeError:  # an Arrow type Spark has no name for (a dictionary): Spark reads the footer itself
        return spark.read.parquet(str(path))
    return spark.read.schema(schema).parquet(str(path))


def write_folder(df: Any, folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    df.write.parquet(str(folder))
    return folder


def copy_parts(folder: Path, path: Path, delta: tuple[str, ...] = (),
               each: Callable[[pa.Table], None] | None = None) -> int:
    """Stream a Spark Parquet folder into one contract file, calling ``each`` on every row group on the way."""
    with io.AtomicParquetWriter(path, delta_columns=delta) as out:
        for table in part_batches(folder):
            table = _plain(table)
            out.write(table)
            if each is not None:
                each(table)
        if out.rows == 0:  # no parts with rows: an empty file of the folder's schema
            out.write(_plain(pq.read_table(folder).slice(0, 0)))
        return out.rows


class SparkEngine:
    """Spark jobs (``engine.backend = "spark"``); each output is copied from Spark's parts into its one file."""

    label = "spark"
    reads_sources = True

    def sessions(self, ctx: Any) -> SessionsReport:
        with named_failures("sessions", f"events {ctx.input_source('@events')}"), SparkProgress("sessions", ctx):
            return sessions(ctx)

    def graph(self, ctx: Any) -> tuple[int, dict[str, Any]]:
        what = f"edge list {ctx.input_source('@edges')}" if ctx.inputs.edges is not None else \
            f"sessions {ctx.input_path(SESSIONS)}"
        with named_failures("graph", what), SparkProgress("graph", ctx):
            return graph(ctx)

    def walks(self, ctx: Any, out: str = WALKS, undirected: bool = False) -> tuple[int, int]:
        with named_failures("walks", f"edges {ctx.input_path(EDGES)}"), SparkProgress("walks", ctx):
            return walks(ctx, out, undirected)


def sessions(ctx: Any) -> SessionsReport:
    from eges.engines.spark.sessions import spark_sessions

    spark = _session(ctx, "sessions")
    cfg = ctx.config.sessions
    report = SessionsReport()
    source = ctx.input_source("@events")
    scratch = scratch_folder(ctx)
    try:
        indexed, vocab, events = spark_sessions(spark, source, cfg, report, f"events {source}")
        copy_parts(write_folder(indexed, scratch / "sessions"), ctx.path(SESSIONS), SESSIONS_DELTA)
        report.items_out = copy_parts(write_folder(vocab, scratch / "items"), ctx.path(VOCAB))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.timestamp_unit = events.timestamp_unit
    report.columns_recognised = dict(events.recognised)
    return report


def graph(ctx: Any) -> tuple[int, dict[str, Any]]:
    """Write the graph stage's edges and nodes; (rows read, the statistics of ``graph/stats.json``).

    The edges stream from Spark's parts into the contract file one row group at a time, and the statistics are
    accumulated on the way (``eges.graph.stats``: per-node counters, no per-edge state), so the driver's memory is
    bounded by the nodes, never the edges."""
    from eges.engines.spark.graph import edge_list_graph, read_edge_list, transition_edges
    from eges.graph.stats import GraphStatsAccumulator
    from eges.pipeline.parent_graph import parent_graph

    spark = _session(ctx, "graph")
    cfg = ctx.config.graph
    scratch = scratch_folder(ctx)
    parent, carried = None, None
    try:
        if ctx.inputs.edges is not None:
            edge_list, rows, has_weight = read_edge_list(spark, ctx.input_source("@edges"), cfg)
            edges, nodes = edge_list_graph(spark, edge_list, cfg, has_weight)
            nodes_folder = write_folder(nodes, scratch / "nodes")
            n_nodes = sum(pq.ParquetFile(p).metadata.num_rows for p in nodes_folder.glob("part-*.parquet"))
        else:
            rows = pq.ParquetFile(ctx.input_path(SESSIONS)).metadata.num_rows
            sessions_df = read_parquet(spark, ctx.input_path(SESSIONS))
            edges = transition_edges(spark, sessions_df, cfg)
            nodes = _nodes_with_last_seen(spark, sessions_df, pq.read_table(ctx.input_path(VOCAB)), scratch)
            parent = parent_graph(ctx)
            if parent is not None:
                edges, nodes, fates = _carry_parent(spark, edges, nodes, parent, scratch)
            n_nodes = nodes.num_rows
        stats = GraphStatsAccumulator(n_nodes)
        copy_parts(write_folder(edges, scratch / "edges"), ctx.path(EDGES),
                   each=lambda t: stats.add(t["src"].to_numpy(), t["dst"].to_numpy(), t["weight"].to_numpy()))
        if ctx.inputs.edges is not None:
            copy_parts(nodes_folder, ctx.path(NODES))
        else:
            io.write_table(nodes, ctx.path(NODES))
            if parent is not None:
                carried = fates()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = stats.result()
    if carried is not None:
        result["update"] = carried
    return rows, result


def _nodes_with_last_seen(spark: Any, sessions: Any, vocab: pa.Table, scratch: Path) -> pa.Table:
    """The vocabulary with each item's latest event time (``eges.graph.carry.last_seen_sql``), as nodes.parquet
    holds it; the per-item times are written by Spark and read on the driver (it holds the nodes)."""
    from eges.graph.carry import last_seen_sql, with_last_seen

    sessions.createOrReplaceTempView("eges_spark_last_seen_sessions")
    seen = pq.read_table(write_folder(spark.sql(last_seen_sql("eges_spark_last_seen_sessions")),
                                      scratch / "last_seen"))
    return with_last_seen(vocab, seen["item_index"].to_numpy(), seen["last_seen"].to_numpy())


def _carry_parent(spark: Any, new_edges: Any, nodes: pa.Table, parent: Any,
                  scratch: Path) -> tuple[Any, pa.Table, Callable[[], dict[str, int]]]:
    """The new counts merged with the parent's decayed edges in Spark SQL (``eges.graph.carry``'s rule, the
    queries DuckDB runs); the nodes merge on the driver. Returns the edges, the nodes and a function giving the
    counts (a Spark job, run after the edges are written)."""
    from eges.graph.carry import (
        CARRY_MAP,
        MERGED_EDGES,
        NEW_EDGES,
        PARENT_EDGES,
        carried_edges_queries,
        merge_nodes,
    )

    merge = merge_nodes(nodes, parent.nodes, parent.rule, parent.where)
    map_file = scratch / "carry_map.parquet"
    pq.write_table(merge.index_map, map_file)
    new_edges.createOrReplaceTempView(NEW_EDGES)
    read_parquet(spark, map_file).createOrReplaceTempView(CARRY_MAP)
    read_parquet(spark, parent.edges).createOrReplaceTempView(PARENT_EDGES)
    merged_sql, edges_sql, fates_sql = carried_edges_queries(parent.rule)
    spark.sql(merged_sql).persist().createOrReplaceTempView(MERGED_EDGES)  # read twice: edges, then counts

    def fates() -> dict[str, int]:
        row = spark.sql(fates_sql).collect()[0].asDict()
        return {**{k: int(v) for k, v in row.items()}, **merge.counts}

    return spark.sql(edges_sql), merge.nodes, fates


def walks(ctx: Any, path: str = WALKS, undirected: bool = False) -> tuple[int, int]:
    """Walks written to ``path`` (the walks stage's contract file) in the local engine's order, over the graph
    made undirected when ``undirected`` (the validate stage's choice); (walks, steps)."""
    from eges.engines.spark.walks import spark_walks
    from eges.graph.transitions import symmetrized_edges_sql

    spark = _session(ctx, "walks")
    scratch = scratch_folder(ctx)
    n_nodes = pq.ParquetFile(ctx.input_path(NODES)).metadata.num_rows
    n_walks = steps = 0
    schema = WALKS_SCHEMA
    edges = read_parquet(spark, ctx.input_path(EDGES))
    if undirected:  # the local engine's rule (eges.graph.csr.symmetrized) in SQL
        edges.createOrReplaceTempView("eges_spark_walk_edges")
        edges = spark.sql(symmetrized_edges_sql("eges_spark_walk_edges"))
    try:
        folder = write_folder(spark_walks(spark, edges, n_nodes, ctx.config.walks).select("walk"), scratch / "walks")
        with io.AtomicParquetWriter(ctx.path(path), schema) as out:
            for table in part_batches(folder):
                column = table.column("walk").combine_chunks().cast(schema.field("walk").type)
                out.write(pa.table({"walk": column}, schema=schema))
                n_walks += len(column)
                steps += len(column.flatten())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return n_walks, steps
