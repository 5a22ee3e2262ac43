"""The Spark backend gives the DuckDB path's sessions, vocabulary and graph, file for file.

Skipped when pyspark is not importable, unless EGES_REQUIRE_SPARK=1 (set by .ci/run), where it fails instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eges.pipeline import runner

try:
    import pyspark  # noqa: F401

    HAVE_SPARK = True
except ImportError:
    HAVE_SPARK = False
if not HAVE_SPARK and os.environ.get("EGES_REQUIRE_SPARK") != "1":
    pytest.skip("pyspark is not installed (pip install 'eges[spark]'); EGES_REQUIRE_SPARK=1 makes this fail",
                allow_module_level=True)

OUTPUTS = ("sessions/sessions.parquet", "sessions/items.parquet", "graph/edges.parquet", "graph/nodes.parquet")
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "events.parquet"


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("eges-tests")
               .config("spark.sql.shuffle.partitions", "4").config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _run(out: Path, events: Path | None, sets: list[str], edges: Path | None = None) -> dict[str, pa.Table]:
    config, inputs, _ = runner.resolve(out, overrides=sets, events=str(events) if events else None,
                                       edges=str(edges) if edges else None)
    runner.run(out, config, inputs, to_stage="graph", progress=False, echo=lambda s: None)
    return {f: pq.read_table(out / f) for f in OUTPUTS if (out / f).exists()}


def _same(tmp: Path, events: Path | None, sets: list[str], edges: Path | None = None) -> dict[str, pa.Table]:
    duck = _run(tmp / "duck", events, sets, edges)
    spark = _run(tmp / "spark", events, [*sets, "engine.backend=spark"], edges)
    assert spark.keys() == duck.keys()
    for name in duck:
        assert spark[name].schema == duck[name].schema, name
        assert spark[name].equals(duck[name]), name
    return duck


def test_sample_slice_identical(spark, tmp_path):
    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 20_000), events)
    out = _same(tmp_path, events, ["graph.min_edge_weight=2"])
    assert out["graph/edges.parquet"].num_rows > 20


def test_sample_slice_undirected_with_behaviour_filter(spark, tmp_path):
    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 15_000), events)
    _same(tmp_path, events, ["graph.undirected=true", "sessions.max_user_clicks=200",
                             "sessions.min_session_length=3"])


def test_edge_list_identical(spark, tmp_path):
    rng = np.random.default_rng(1)
    edges = tmp_path / "edges.parquet"
    pq.write_table(pa.table({"src": rng.integers(0, 40, 500), "dst": rng.integers(0, 40, 500),
                             "weight": rng.random(500).round(2)}), edges)
    _same(tmp_path, None, ["graph.undirected=true", "graph.min_edge_weight=0.5"], edges=edges)


HOUR_MS = 3_600_000
BASE_MS = 1_700_000_000_000


@st.composite
def logs(draw):
    """Few users and items; gaps of 0 (ties with distinct items), exactly one hour, one hour + 1 ms and more;
    repeats; some users far over the click or purchase limits (set low in the test)."""
    n = draw(st.integers(5, 60))
    users = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    gaps = draw(st.lists(st.sampled_from([0, 0, 1, 60_000, HOUR_MS, HOUR_MS + 1, 5 * HOUR_MS]), min_size=n,
                         max_size=n))
    behaviour = draw(st.lists(st.sampled_from(["pv", "pv", "buy", "cart"]), min_size=n, max_size=n))
    ts = BASE_MS + np.cumsum(gaps)
    return pd.DataFrame({"user_id": users, "item_id": items, "timestamp": ts, "behaviour": behaviour})


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(log=logs(), kind=st.sampled_from(["ms", "s", "timestamp"]))
def test_generated_logs_identical(spark, tmp_path_factory, log, kind):
    tmp = tmp_path_factory.mktemp("gen")
    if kind == "s":
        log = log.assign(timestamp=log["timestamp"] // 1000)
    elif kind == "timestamp":
        log = log.assign(timestamp=pd.to_datetime(log["timestamp"], unit="ms"))
    events = tmp / "events.parquet"
    pq.write_table(pa.Table.from_pandas(log, preserve_index=False), events)
    sets = ["sessions.max_user_clicks=12", "sessions.max_user_purchases=4", "sessions.min_session_length=2",
            "graph.min_edge_weight=1"]
    from eges.errors import InputError

    try:
        duck = _run(tmp / "duck", events, sets)
    except InputError:  # nothing left after cleaning: Spark must say so too
        with pytest.raises(InputError):
            _run(tmp / "spark", events, [*sets, "engine.backend=spark"])
        return
    spark_out = _run(tmp / "spark", events, [*sets, "engine.backend=spark"])
    for name in OUTPUTS:
        assert spark_out[name].schema == duck[name].schema, name
        assert spark_out[name].equals(duck[name]), name


def test_ties_keep_input_order(spark, tmp_path):
    """Two events of a user at the same time: the session follows the file's order, not the item ids."""
    log = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": [9, 3, 5, 4, 2],
                        "timestamp": [BASE_MS, BASE_MS, BASE_MS + 1, BASE_MS, BASE_MS]})
    events = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(log, preserve_index=False), events)
    out = _same(tmp_path, events, [])
    vocab = out["sessions/items.parquet"]
    back = dict(zip(vocab["item_index"].to_pylist(), vocab["item_id"].to_pylist()))
    assert [back[i] for i in out["sessions/sessions.parquet"]["item_index"].to_pylist()] == [9, 3, 5, 4, 2]


def test_missing_pyspark_is_a_named_error(monkeypatch):
    import sys

    from eges.config import EngineConfig
    from eges.spark.session import SparkUnavailable, spark_session

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(SparkUnavailable, match=r"pip install 'eges\[spark\]'"):
        spark_session(EngineConfig(backend="spark"))


def test_local_cluster(tmp_path):
    """Real executor processes and shuffles: local-cluster needs a Spark distribution's scripts (SPARK_HOME with
    sbin and the launcher), which the pip package lacks; it runs only where SPARK_HOME provides them."""
    home = os.environ.get("SPARK_HOME")
    if not home or not (Path(home) / "bin" / "spark-class").exists():
        pytest.skip("local-cluster[2,1,1024] needs a Spark distribution (SPARK_HOME/bin/spark-class); the pip "
                    "package cannot start executor processes from it")
