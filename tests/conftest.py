from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from eges.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"

#: The numba kernels' OpenMP threads (and those of every eges the tests start) sleep when a parallel loop ends
#: instead of spinning: the tests run thousands of short loops, whose spinning threads took about a sixth of the
#: training-heavy test files' CPU-seconds and a core from the JVMs beside them (docs/benchmarks.md). Set before
#: numba loads its threading layer; real runs keep OpenMP's default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def events(rows: list[tuple]) -> pd.DataFrame:
    """Events from (user, item, seconds[, behaviour[, dwell]]) tuples."""
    cols = ["user_id", "item_id", "timestamp", "behaviour", "dwell"][: len(rows[0])]
    return pd.DataFrame(rows, columns=cols)


def invoke_cli(*args, ok: bool = True):
    """Run the CLI in-process; with ``ok``, fail the test with the output unless it exits with 0."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def cli():
    return invoke_cli


@pytest.fixture(scope="session")
def trust_template(tmp_path_factory):
    """(events file, run folder) of one complete small run; copy it (trust.copy_run) before changing it."""
    from trust import build_template

    return build_template(tmp_path_factory.mktemp("trust_template"))


@pytest.fixture
def good_run(trust_template, tmp_path):
    """(events file, a copy of the template run) for one test to run hostile commands against."""
    from trust import copy_run

    events, template = trust_template
    return events, copy_run(template, tmp_path / "run")


#: JVM options for the tests' Spark JVMs: the C1 compiler only and the serial collector. A test's JVM lives for
#: seconds on small data, where C2's optimising compiles and the parallel collector's threads are mostly overhead:
#: they halve the JVM's CPU-seconds on the Spark tests (docs/benchmarks.md). Real runs keep Java's defaults.
TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _spark_session():
    """The tests' local SparkSession: two threads, two partitions, UTC, the tests' JVM options."""
    import sys

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this interpreter's packages
    session = (SparkSession.builder.master("local[2]").appName("eges-tests")
               .config("spark.sql.shuffle.partitions", "2").config("spark.ui.enabled", "false")
               .config("spark.default.parallelism", "2").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.extraJavaOptions", TEST_JVM_OPTIONS).getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture(scope="session", autouse=True)
def spark_starting(request):
    """The SparkSession being started on a thread of its own when the test session starts, if a selected test
    needs the ``spark`` fixture and pyspark is installed (else None): its JVM starts beside the tests before
    the first Spark test instead of in that test's wall time (5-7 s)."""
    from concurrent.futures import ThreadPoolExecutor
    from importlib.util import find_spec

    if find_spec("pyspark") is None or not any("spark" in item.fixturenames for item in request.session.items):
        yield None
        return
    with ThreadPoolExecutor(1, thread_name_prefix="eges-tests-spark") as pool:
        starting = pool.submit(_spark_session)
        yield starting
    if starting.exception() is None:
        starting.result().stop()  # if no test asked for it (a no-op after the spark fixture's stop)


@pytest.fixture(scope="session")
def spark(spark_starting):
    """One local SparkSession for every test that needs Spark (started with the test session: starting one costs
    seconds); skipped without pyspark unless EGES_REQUIRE_SPARK=1 (set by .ci/run), where it fails instead."""
    try:
        import pyspark.sql  # noqa: F401
    except ImportError:
        if os.environ.get("EGES_REQUIRE_SPARK") == "1":
            raise
        pytest.skip("pyspark is not installed (pip install 'eges[spark]')")
    session = spark_starting.result() if spark_starting is not None else _spark_session()
    # Spark's active session is per thread: make it this one's too, as eges looks for it (getActiveSession).
    session._jvm.SparkSession.setActiveSession(session._jsparkSession)
    yield session
    session.stop()


def _terminated(signum, frame):  # noqa: ANN001, ANN202
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    config.addinivalue_line("markers", "background(start): start(folder) starts the test's slow subprocess when the "
                            "session starts (the `background` fixture)")
    # A SIGTERM (a CI timeout, kill of the process group) ends the run as Ctrl-C does, through the teardown, which
    # kills the background jobs: they run in sessions of their own, so the group's signal does not reach them.
    signal.signal(signal.SIGTERM, _terminated)


@pytest.fixture(scope="session", autouse=True)
def background(request, tmp_path_factory):
    """Test id -> what its ``background`` marker's start function returned (an object with a ``proc``), for every
    selected test so marked: started with the session, its subprocess runs beside the tests before it. The suite
    runs one test at a time, mostly on one core; the local-cluster test's ``eges run`` (three JVMs starting,
    30-40 s) uses the other instead of adding its own wall time. A job its test did not wait for is killed with
    its process group at the end."""
    jobs = {}
    for item in request.session.items:
        marker = item.get_closest_marker("background")
        if marker is not None:
            jobs[item.nodeid] = marker.args[0](tmp_path_factory.mktemp("background"))
    yield jobs
    for job in jobs.values():
        if job.proc.poll() is None:
            os.killpg(job.proc.pid, signal.SIGKILL)
            job.proc.wait()
