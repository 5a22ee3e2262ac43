"""How many Spark jobs each eges stage starts, counted with Spark's status tracker (no timing: a count).

    .venv/bin/python benchmarks/bench_spark_jobs.py [--rows 5000] [--until walks]

Runs ``eges.run`` with ``engine.backend=spark`` on the first ``--rows`` events of ``data/events.parquet`` (the
slice tests/test_spark.py uses) in a ``local[2]`` session set up as the tests' fixture, and prints the jobs of each
stage's job group (``eges-STAGE``) and, inside the sessions stage, of its parts (the input checks, the totals, the
cut and its counts, the vocabulary, the writes). Each job start costs about 0.3-1 s locally and more on a cluster,
so the count is what the stage's fixed latency scales with; it does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "events.parquet"
STAGES = ("sessions", "graph", "walks")


def local_session() -> object:
    """A ``local[2]`` session configured like the tests' ``spark`` fixture."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("eges-bench-jobs")
               .config("spark.sql.shuffle.partitions", "2").config("spark.ui.enabled", "false")
               .config("spark.default.parallelism", "2").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


def stage_jobs(spark: object) -> dict[str, int]:
    """Jobs so far in each eges stage's job group."""
    tracker = spark.sparkContext.statusTracker()  # type: ignore[attr-defined]
    return {s: len(tracker.getJobIdsForGroup(f"eges-{s}")) for s in STAGES}


def count_parts(spark: object, parts: Counter) -> None:
    """Wrap the Spark sessions stage's steps so each adds the jobs it ran to ``parts`` (jobs run synchronously,
    so the sessions group's count before and after a step is that step's)."""
    from eges.engines.spark import engine, sessions

    def wrap(module: object, name: str, label: str) -> None:
        inner = getattr(module, name)

        def counted(*args: object, **kwargs: object) -> object:
            before = stage_jobs(spark)["sessions"]
            try:
                return inner(*args, **kwargs)
            finally:
                parts[label] += stage_jobs(spark)["sessions"] - before

        setattr(module, name, counted)

    steps = (("normalise", "input checks"), ("sessions_frame", "totals"), ("cut_and_count", "cut counts"),
             ("count_cut", "totals and cut counts"))  # older revisions' steps, then this one's
    for name, label in steps:
        if hasattr(sessions, name):
            wrap(sessions, name, label)
    wrap(engine, "write_folder", "writes (sessions, items)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--until", default="walks", choices=STAGES)
    args = parser.parse_args()
    import eges

    spark = local_session()
    parts: Counter = Counter()
    count_parts(spark, parts)
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.parquet"
        pq.write_table(pq.read_table(SAMPLE).slice(0, args.rows), events)
        sets = ["walks.walks_per_node=2", "walks.walk_length=4", "graph.min_edge_weight=2"]
        start = time.perf_counter()
        eges.run(Path(tmp) / "out", events=str(events), settings=sets, spark=spark, until=args.until)
        seconds = time.perf_counter() - start
    jobs = stage_jobs(spark)
    print(f"events: {args.rows:,} rows of {SAMPLE.name}; local[2]; {seconds:.1f} s (load: {os.getloadavg()[0]:.2f})")
    print(f"{'stage':<12}{'Spark jobs':>11}")
    for stage in STAGES:
        print(f"{stage:<12}{jobs[stage]:>11}")
    print(f"{'total':<12}{sum(jobs.values()):>11}")
    print("sessions stage, by step:")
    shown = 0
    for label, n in parts.items():  # the writes wrapper counts the sessions group only: the stage's two writes
        print(f"  {label:<26}{n:>5}")
        shown += n
    print(f"  {'the rest (input schema)':<26}{jobs['sessions'] - shown:>5}")
    spark.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
