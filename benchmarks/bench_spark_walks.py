"""The walks stage alone, Spark ``local[2]`` against the local compiled walks, on an existing run's graph.

    .venv/bin/python benchmarks/bench_spark_walks.py --run /tmp/eges-bench/spark_bench_spark [--partitions 64]

Copies the graph of a finished run folder (e.g. the 100 M-event run of ``bench_spark.py --until graph``) into a fresh
folder for each engine and runs ``eges stage walks`` there as a fresh process: wall time and the peak memory of
the whole process tree (driver JVM and Python workers included), then checks that both engines wrote the same
walks. Default walk settings (20 walks of 10 nodes per node with out-edges).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from bench_spark import run_tree
from common import EGES, WORK

FILES = ("manifest.json", "sessions/sessions.parquet", "sessions/items.parquet", "graph/edges.parquet",
         "graph/nodes.parquet", "graph/stats.json")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True, help="a run folder whose graph stage is done")
    ap.add_argument("--partitions", type=int, default=64)
    ap.add_argument("--driver-memory", default="6g")
    args = ap.parse_args()
    engines = {
        "duckdb": ["--set", "engine.backend=duckdb"],
        "spark": ["--set", "engine.backend=spark", "--set", 'engine.spark_master="local[2]"', "--set",
                  f'engine.spark_conf=["spark.driver.memory={args.driver_memory}",'
                  f'"spark.sql.shuffle.partitions={args.partitions}","spark.local.dir={WORK / "spark_local"}"]'],
    }
    walks = {}
    for name, sets in engines.items():
        out = WORK / f"walks_{name}"
        shutil.rmtree(out, ignore_errors=True)
        for rel in FILES:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.run / rel, out / rel)
        seconds, peak = run_tree([*EGES, "stage", "walks", "--out", str(out), "--quiet", *sets])
        meta = pq.ParquetFile(out / "walks" / "walks.parquet").metadata
        print(f"{name}: walks stage {seconds:.1f} s, peak {peak:,.0f} MiB (process tree); {meta.num_rows:,} walks")
        walks[name] = out / "walks" / "walks.parquet"
    same = pq.read_table(walks["duckdb"]).equals(pq.read_table(walks["spark"]))
    print(f"identical walks: {same}")


if __name__ == "__main__":
    main()
