"""Spark = DuckDB for the walks of the graph made undirected (the validate stage's WALKS_UNDIRECTED when the slice
chooses it): Spark walks the SQL form of the rule (:func:`eges.graph.transitions.symmetrized_edges_sql`), the local
engine the NumPy form. One small graph, the engines called directly (no training under Spark: the suite's slowest
part). Skipped without pyspark unless EGES_REQUIRE_SPARK=1 (the ``spark`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from eges.layout import EDGES, WALKS, WALKS_UNDIRECTED
from eges.pipeline import runner
from eges.pipeline.registry import StageContext

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "events.parquet"


def test_undirected_walks_are_the_local_engines(spark, tmp_path):
    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 3_000), events)
    out = tmp_path / "run"
    sets = ["walks.walks_per_node=2", "walks.walk_length=4", "train.epochs=1"]
    config, inputs, _ = runner.resolve(out, overrides=sets, events=str(events))
    runner.run(out, config, inputs, to_stage="graph", progress=False, echo=lambda s: None)
    (out / "validation").mkdir()
    got = {}
    for backend in ("duckdb", "spark"):
        ctx = StageContext(out, config.replace("engine", backend=backend), inputs, progress=False)
        ctx.engine.walks(ctx, WALKS_UNDIRECTED, undirected=True)
        got[backend] = pq.read_table(out / WALKS_UNDIRECTED)
    assert not (out / WALKS).exists()  # written where it was told, not over the walks stage's file
    assert got["spark"].schema == got["duckdb"].schema and got["spark"].equals(got["duckdb"])
    edges = pq.read_table(out / EDGES)
    directed = set(zip(edges["src"].to_pylist(), edges["dst"].to_pylist()))
    steps = {(a, b) for w in got["duckdb"]["walk"].to_pylist() for a, b in zip(w[:-1], w[1:])}
    assert steps - directed  # the walks took reversed edges
