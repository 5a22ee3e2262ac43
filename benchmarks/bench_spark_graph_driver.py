"""The Spark graph stage's driver memory: what the eges Python process holds while Spark builds the graph.

    .venv/bin/python benchmarks/bench_spark_graph_driver.py --run /tmp/eges-bench/spark_bench_spark [--source SRC]

Copies the sessions of an existing run folder (e.g. the 100 M-event run of ``bench_spark.py --until graph``) into a
fresh folder and runs only the graph stage with the spark engine (``local[2]``) in this process; prints the wall time
and the peak resident memory of this Python process (the driver's Python side, where the edges used to be gathered;
the JVM is a separate process and not counted). ``--source`` imports eges from another ``src`` tree (an older commit,
for an A/B).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

from common import WORK


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True, help="a run folder whose sessions stage is done")
    ap.add_argument("--source", type=Path, help="import eges from this src folder")
    ap.add_argument("--partitions", type=int, default=64)
    args = ap.parse_args()
    if args.source:
        sys.path.insert(0, str(args.source))
    from eges.pipeline import runner

    out = WORK / "graph_driver"
    shutil.rmtree(out, ignore_errors=True)
    (out / "sessions").mkdir(parents=True)
    for name in ("sessions/sessions.parquet", "sessions/items.parquet", "manifest.json"):
        shutil.copy(args.run / name, out / name)
    manifest = json.loads((args.run / "manifest.json").read_text())
    events = manifest["inputs"]["events"]
    sets = ["engine.backend=spark", 'engine.spark_master="local[2]"',
            f'engine.spark_conf=["spark.driver.memory=6g","spark.sql.shuffle.partitions={args.partitions}"]']
    config, inputs, _ = runner.resolve(out, overrides=sets, events=events)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    runner.run(out, config, inputs, only="graph", progress=False, echo=lambda s: None)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats = json.loads((out / "graph" / "stats.json").read_text())
    print(f"graph stage on Spark: {stats['nodes']:,} nodes, {stats['edges']:,} edges; {wall:.1f} s; driver Python "
          f"peak RSS {peak:,.0f} MiB (before the stage {base:,.0f} MiB)")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
