"""The Spark backend gives the DuckDB path's sessions, vocabulary and graph, file for file.

Skipped when pyspark is not importable, unless EGES_REQUIRE_SPARK=1 (set by .ci/run), where it fails instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TEST_JVM_OPTIONS
from eges.pipeline import runner
from trust import BAD_EDGE_LISTS, late_fraction

try:
    import pyspark  # noqa: F401

    HAVE_SPARK = True
except ImportError:
    HAVE_SPARK = False
if not HAVE_SPARK and os.environ.get("EGES_REQUIRE_SPARK") != "1":
    pytest.skip("pyspark is not installed (pip install 'eges[spark]'); EGES_REQUIRE_SPARK=1 makes this fail",
                allow_module_level=True)

OUTPUTS = ("sessions/sessions.parquet", "sessions/items.parquet", "graph/edges.parquet", "graph/nodes.parquet",
           "walks/walks.parquet")
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "events.parquet"


def _run(out: Path, events: Path | None, sets: list[str], edges: Path | None = None,
         until: str = "walks") -> dict[str, pa.Table]:
    config, inputs, _ = runner.resolve(out, overrides=sets, events=str(events) if events else None,
                                       edges=str(edges) if edges else None)
    runner.run(out, config, inputs, to_stage=until, progress=False, echo=lambda s: None)
    return {f: pq.read_table(out / f) for f in OUTPUTS if (out / f).exists()}


def _same(tmp: Path, events: Path | None, sets: list[str], edges: Path | None = None,
          until: str = "walks") -> dict[str, pa.Table]:
    sets = ["walks.walks_per_node=2", "walks.walk_length=4", *sets]  # fewer, shorter walks keep the tests quick
    duck = _run(tmp / "duck", events, sets, edges, until)
    spark = _run(tmp / "spark", events, [*sets, "engine.backend=spark"], edges, until)
    assert spark.keys() == duck.keys()
    for name in duck:
        assert spark[name].schema == duck[name].schema, name
        assert spark[name].equals(duck[name]), name
    _same_stats(tmp / "duck", tmp / "spark")
    return duck


def _same_stats(duck: Path, spark: Path) -> None:
    """The graph statistics (weak components, degrees...) accumulated from Spark's streamed parts are the
    DuckDB path's, from its whole CSR."""
    stats = "graph/stats.json"
    if (duck / stats).exists():
        a, b = (json.loads((d / stats).read_text()) for d in (duck, spark))
        assert b.pop("total_weight") == pytest.approx(a.pop("total_weight"), rel=1e-12)
        assert a == b


def test_sample_slice_identical(spark, tmp_path):
    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 5_000), events)
    out = _same(tmp_path, events, ["graph.min_edge_weight=2"])
    assert out["graph/edges.parquet"].num_rows > 20


def test_sample_slice_undirected_with_behaviour_filter(spark, tmp_path):
    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 4_000), events)
    _same(tmp_path, events, ["graph.undirected=true", "sessions.max_user_clicks=200",
                             "sessions.min_session_length=3"], until="graph")  # walks: the other tests


def test_edge_list_identical(spark, tmp_path):
    rng = np.random.default_rng(1)
    edges = tmp_path / "edges.parquet"
    pq.write_table(pa.table({"src": rng.integers(0, 40, 500), "dst": rng.integers(0, 40, 500),
                             "weight": rng.random(500).round(2)}), edges)
    _same(tmp_path, None, ["graph.undirected=true", "graph.min_edge_weight=0.5",  # walks by rule, in 0.5 units
                           "walks.walks_per_node=0", "walks.walks_per_transition=0.2"], edges=edges)


def test_edge_list_folder_of_parts_and_two_id_widths(spark, tmp_path):
    """An edge list given as a folder of parts (only Spark reads it), with int32 sources beside int64
    destinations, makes the single file's graph and statistics; the statistics span several streamed parts."""
    rng = np.random.default_rng(2)
    table = pa.table({"src": pa.array(rng.integers(0, 300, 3_000), pa.int32()),
                      "dst": pa.array(rng.integers(0, 400, 3_000), pa.int64()),
                      "weight": rng.integers(1, 5, 3_000).astype(float)})
    single, folder = tmp_path / "edges.parquet", tmp_path / "parts"
    pq.write_table(table, single)
    folder.mkdir()
    for k, lo in enumerate(range(0, table.num_rows, 1_000)):
        pq.write_table(table.slice(lo, 1_000), folder / f"part-{k:05d}.parquet")
    sets = ["walks.walks_per_node=2", "walks.walk_length=4"]
    duck = _run(tmp_path / "duck", None, sets, edges=single, until="graph")
    split = _run(tmp_path / "spark", None, [*sets, "engine.backend=spark"], edges=folder, until="graph")
    for name in ("graph/edges.parquet", "graph/nodes.parquet"):
        assert split[name].equals(duck[name]), name
    assert len(list((tmp_path / "spark").rglob("part-*"))) == 0  # the scratch parts are gone
    _same_stats(tmp_path / "duck", tmp_path / "spark")


@pytest.mark.parametrize("case", list(BAD_EDGE_LISTS), ids=list(BAD_EDGE_LISTS))
def test_bad_edge_lists_get_the_duckdb_message(spark, tmp_path, case):
    from eges.errors import InputError

    table, message = BAD_EDGE_LISTS[case]
    edges = tmp_path / "edges.parquet"
    pq.write_table(table, edges)
    errors = []
    for name, extra in (("duck", []), ("spark", ["engine.backend=spark"])):
        with pytest.raises(InputError, match=re.escape(message)) as caught:
            _run(tmp_path / name, None, extra, edges=edges, until="graph")
        errors.append(str(caught.value))
        assert not (tmp_path / name / "graph").exists()
    if case not in ("list ids", "mixed id types"):  # those name types in each engine's words (int64 / bigint)
        assert errors[0] == errors[1]


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


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
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

    try:  # until the graph: the walks' equality is checked on the sample slices
        duck = _run(tmp / "duck", events, sets, until="graph")
    except InputError:  # nothing left after cleaning: Spark must say so too
        with pytest.raises(InputError):
            _run(tmp / "spark", events, [*sets, "engine.backend=spark"], until="graph")
        return
    spark_out = _run(tmp / "spark", events, [*sets, "engine.backend=spark"], until="graph")
    for name in OUTPUTS[:4]:
        assert spark_out[name].schema == duck[name].schema, name
        assert spark_out[name].equals(duck[name]), name
    _same_stats(tmp / "duck", tmp / "spark")


def test_ties_keep_input_order(spark, tmp_path):
    """Two events of a user at the same time: the session follows the file's order, not the item ids."""
    log = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": [9, 3, 5, 4, 2],
                        "timestamp": [BASE_MS, BASE_MS, BASE_MS + 1, BASE_MS, BASE_MS]})
    events = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(log, preserve_index=False), events)
    out = _same(tmp_path, events, [], until="sessions")
    vocab = out["sessions/items.parquet"]
    back = dict(zip(vocab["item_index"].to_pylist(), vocab["item_id"].to_pylist()))
    assert [back[i] for i in out["sessions/sessions.parquet"]["item_index"].to_pylist()] == [9, 3, 5, 4, 2]


def test_missing_pyspark_is_a_named_error(monkeypatch):
    import sys

    from eges.config import EngineConfig
    from eges.engines.spark.session import SparkUnavailable, spark_session

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(SparkUnavailable, match=r"pip install 'eges\[spark\]'"):
        spark_session(EngineConfig(backend="spark"))


CLUSTER_SETS = ["walks.walk_length=3", "walks.walks_per_node=2"]


@dataclass
class ClusterJob:
    """The local-cluster ``eges run`` started in the background (conftest's ``background`` fixture)."""

    proc: subprocess.Popen
    edges: Path
    out: Path
    stdout: Path
    stderr: Path


def start_local_cluster(folder: Path) -> ClusterJob:
    """Start ``eges run`` on a random edge list with Spark's ``local-cluster[2,1,1024]`` master, in its own process
    group (its JVMs with it), output to files: nothing reads its pipes until the test waits for it."""
    import pyspark

    rng = np.random.default_rng(3)
    edges = folder / "edges.parquet"
    pq.write_table(pa.table({"src": rng.integers(0, 60, 400), "dst": rng.integers(0, 60, 400),
                             "weight": rng.integers(1, 4, 400)}), edges)
    env = {**os.environ, "SPARK_HOME": os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)}
    env.pop("PYSPARK_PYTHON", None)  # eges sets it for local masters itself
    jvm = TEST_JVM_OPTIONS  # the driver's JVM options also carry eges' own log4j file (checked by the test)
    extra = ["--set", "engine.backend=spark", "--set", 'engine.spark_master="local-cluster[2,1,1024]"', "--set",
             'engine.spark_conf=["spark.sql.shuffle.partitions=2", "spark.default.parallelism=2", '
             f'"spark.driver.extraJavaOptions={jvm}", "spark.executor.extraJavaOptions={jvm}"]']
    out, logs = folder / "cluster", (folder / "stdout.txt", folder / "stderr.txt")
    with open(logs[0], "w") as stdout, open(logs[1], "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "eges", "run", "--edges", str(edges), "--out", str(out),
                                 "--until", "walks", *[a for s in CLUSTER_SETS for a in ("--set", s)], *extra],
                                env=env, stdout=stdout, stderr=stderr, text=True, start_new_session=True)
    return ClusterJob(proc, edges, out, *logs)


@pytest.mark.background.with_args(start_local_cluster)  # (a lone callable would be decorated)
def test_local_cluster_cli(background, request, tmp_path):
    """Real executor processes and shuffles between them: ``eges run`` with Spark's ``local-cluster[2,1,1024]``
    master (two executor JVMs of one core, started from the pip package's own launcher) gives the DuckDB path's
    graph and walks; Spark's own log stays off the terminal. What a cluster changes is where the work runs: the
    walks' Python workers on the executors, the graph's shuffle between them, files read and written there. An
    edge list exercises all of that without the sessions stage's SQL (about half of the run's Spark jobs, each a
    second or more here; the sessions stage runs the same SQL on every master and the local-master tests compare
    it with DuckDB's file for file). The run was started with the session (``start_local_cluster``)."""
    job = background[request.node.nodeid]
    duck = _run(tmp_path / "duck", None, CLUSTER_SETS, edges=job.edges)
    returncode = job.proc.wait(timeout=600)
    stdout, stderr = job.stdout.read_text(), job.stderr.read_text()
    assert returncode == 0, stderr[-3000:]
    assert "spark:" in stdout
    assert " INFO " not in stderr and "log4j profile" not in stderr, stderr[-3000:]
    assert set(duck) == {"graph/edges.parquet", "graph/nodes.parquet", "walks/walks.parquet"}
    for name in duck:
        assert pq.read_table(job.out / name).equals(duck[name]), name
    _same_stats(tmp_path / "duck", job.out)


def test_folder_table_and_python_api(spark, tmp_path):
    """A folder of parts, a table and a session handed to ``eges.run`` give the single file's outputs."""
    import eges

    table = pq.read_table(SAMPLE).slice(0, 4_000)
    single, folder = tmp_path / "events.parquet", tmp_path / "parts"
    pq.write_table(table, single)
    folder.mkdir()
    for k, lo in enumerate(range(0, table.num_rows, 1_500)):
        pq.write_table(table.slice(lo, 1_500), folder / f"part-{k:05d}.parquet")
    sets = ["graph.min_edge_weight=1"]
    duck = _run(tmp_path / "duck", single, sets, until="graph")
    spark.read.parquet(str(single)).createOrReplaceTempView("eges_test_events")
    tracker = spark.sparkContext.statusTracker()
    for name, source, until in (("folder", str(folder), "graph"), ("table", "table:eges_test_events", "sessions")):
        before = set(tracker.getJobIdsForGroup("eges-sessions"))
        manifest = eges.run(tmp_path / name, events=source, settings=sets, spark=spark, until=until)
        # The sessions stage's Spark jobs (each a second or more on a cluster): the input checks are one
        # aggregation (2 jobs), the totals and the cut's counts another (4: the shuffle by user, its cache, the
        # aggregation), the vocabulary is counted as it is written (the sorted sessions with their item index 7,
        # the vocabulary's file 1) and a Parquet input's schema is 1 more: 15 on a file, 14 on a table (29 and
        # 28 with the checks, totals, counts and vocabulary size as actions of their own).
        jobs = set(tracker.getJobIdsForGroup("eges-sessions")) - before
        assert 0 < len(jobs) <= 16, (name, sorted(jobs))
        assert manifest["config"]["engine"]["backend"] == "spark"
        for rel in OUTPUTS[:4 if until == "graph" else 2]:
            assert pq.read_table(tmp_path / name / rel).equals(duck[rel]), (name, rel)
    assert spark.sparkContext._jsc is not None  # eges left the caller's session running
    status = runner.plan(tmp_path / "folder", *runner.resolve(tmp_path / "folder")[:2])
    assert {s.name: s.state for s in status}["sessions"] == "fresh"
    (folder / "part-00001.parquet").unlink()  # a part removed from the folder: the sessions stage is stale
    status = runner.plan(tmp_path / "folder", *runner.resolve(tmp_path / "folder")[:2])
    assert {s.name: s.state for s in status}["sessions"] == "stale"


@pytest.mark.parametrize("value", ["0.5", "1.5"])
def test_a_late_fraction_in_a_csv_id_is_the_same_named_error(spark, tmp_path, value):
    """45,000 whole item ids, then a fraction on the last line: both engines refuse it by name (issue 21, item 1;
    DuckDB's sniffer rounded it into an id)."""
    from eges.errors import InputError

    events = late_fraction(tmp_path, value)
    for name, extra in (("duck", []), ("spark", ["engine.backend=spark"])):
        with pytest.raises(InputError, match=re.escape(f"holds 1 number(s) that are not whole, e.g. {value}")):
            _run(tmp_path / name, events, extra, until="sessions")
        assert not (tmp_path / name / "sessions").exists()


def test_spark_failures_are_one_named_line(spark, tmp_path, monkeypatch):
    """A corrupt Parquet file (alone or as one part of a folder) is named as DuckDB names it, a missing path is
    'does not exist', and any other failure names the stage and the input: one line, exit 2 (issue 21, item 6)."""
    import eges.engines.spark.engine as spark_engine
    from conftest import invoke_cli

    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1" + np.random.default_rng(0).bytes(3000) + b"PAR1")
    parts = tmp_path / "parts"
    parts.mkdir()
    pq.write_table(pq.read_table(SAMPLE).slice(0, 500), parts / "part-00000.parquet")
    (parts / "part-00001.parquet").write_bytes(corrupt.read_bytes())
    good = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 2_000), good)

    def boom(*args, **kwargs):
        raise RuntimeError("the disk went away\nat org.apache.spark.SomeClass")

    cases = [(corrupt, f"{corrupt} is not a readable Parquet file"),
             (parts, f"{parts / 'part-00001.parquet'} is not a readable Parquet file"),
             (tmp_path / "nowhere", "does not exist"),
             (good, f"error: spark failed in the sessions stage reading events {good}: the disk went away")]
    for k, (events, message) in enumerate(cases):
        if k == 3:
            monkeypatch.setattr(spark_engine, "copy_parts", boom)
        result = invoke_cli("run", "--events", events, "--out", tmp_path / f"out{k}", "--until", "sessions",
                            "--set", "engine.backend=spark", ok=False)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
        assert "Traceback" not in result.output


def test_spark_scratch_goes_under_engine_temp_directory(spark, tmp_path, monkeypatch):
    """engine.temp_directory holds Spark's parts too (on a cluster, a shared path), never OUT/.spill; the
    scratch folder is gone afterwards."""
    import eges.engines.spark.engine as spark_engine

    folders = []
    write = spark_engine.write_folder
    monkeypatch.setattr(spark_engine, "write_folder", lambda df, folder: folders.append(folder) or write(df, folder))
    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 1_000), events)
    scratch = tmp_path / "scratch"
    _run(tmp_path / "out", events, ["engine.backend=spark", f"engine.temp_directory='{scratch}'"], until="sessions")
    assert folders and all(scratch in f.parents for f in folders)
    assert not list(scratch.rglob("*.parquet"))


def test_progress_line_sums_the_running_stages():
    from types import SimpleNamespace

    from eges.engines.spark.progress import progress_line

    infos = {3: SimpleNamespace(numTasks=8, numCompletedTasks=5), 4: SimpleNamespace(numTasks=2, numCompletedTasks=0)}
    tracker = SimpleNamespace(getActiveStageIds=lambda: [3, 4], getStageInfo=infos.get, getActiveJobsIds=lambda: [1, 2])
    assert progress_line("graph", tracker) == "graph: spark job 2, 2 stage(s), 5/10 tasks"
    idle = SimpleNamespace(getActiveStageIds=lambda: [], getStageInfo=infos.get, getActiveJobsIds=lambda: [])
    assert progress_line("graph", idle) == ""


def _bad_time(values: list) -> pa.Table:
    n = len(values)
    return pa.table({"user_id": pa.array(np.arange(n) % 3, pa.int64()), "item_id": pa.array(np.arange(n), pa.int64()),
                     "timestamp": values})


INPUT_CHECKS = {  # a table and the start of the message both engines must give
    "fraction in an id": (pa.table({"user_id": [1, 1, 2], "item_id": [1.0, 2.5, 3.0], "timestamp": [1, 2, 3]}),
                          "holds 1 number(s) that are not whole, e.g. 2.5"),
    "unparsable time": (_bad_time(["2020-01-01 10:00:00"] * 5 + ["yesterday"]),
                        "column 'timestamp' has 1 unparsable timestamp(s), e.g. 'yesterday'"),
    "negative time": (_bad_time([-5, 0, 3, 4]), "column 'timestamp' has 1 negative timestamp(s), e.g. -5000"),
    "NaN time": (_bad_time([1.5e9, float("nan"), 1.5e9]), "column 'timestamp' has 1 NaN or infinite timestamp(s)"),
    "mixed units": (_bad_time([1_511_539_235] * 5 + [1_511_539_235_000]),
                    "mixes timestamp units: most values are in s (median 1511539235), but 1 of 6 look like ms"),
}


def test_input_checks_give_the_duckdb_message(spark):
    """The input checks, one aggregation on either engine, fail with the same message on each (nulls before ids
    before times; the first failing check's)."""
    import duckdb

    from eges.config import SessionsConfig
    from eges.engines.spark.sessions import normalise
    from eges.errors import InputError
    from eges.sessions.events import register_events

    for case, (table, message) in INPUT_CHECKS.items():
        with pytest.raises(InputError) as duck:
            register_events(duckdb.connect(), table, SessionsConfig())
        kinds = {pa.int64(): "long", pa.float64(): "double", pa.string(): "string"}  # rows keep NaN (pandas: null)
        raw = spark.createDataFrame([tuple(r.values()) for r in table.to_pylist()],
                                    ", ".join(f"{f.name} {kinds[f.type]}" for f in table.schema))
        with pytest.raises(InputError) as on_spark:
            normalise(spark, raw.withColumn("eges_row", pyspark.sql.functions.monotonically_increasing_id()),
                      SessionsConfig(), "events table")
        assert message in str(duck.value), (case, str(duck.value))
        assert str(on_spark.value) == str(duck.value), case

