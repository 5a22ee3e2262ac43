"""Sessions + graph + walks on Spark (local[2]) against the DuckDB path, and a projection from Spark's stage metrics.

    .venv/bin/python benchmarks/bench_spark.py [--events 10000000] [--until walks] [--driver-memory 6g]
    .venv/bin/python benchmarks/bench_spark.py --log /tmp/eges-bench/events_100m_chunked.parquet --until graph

Both engines run ``eges run --until walks`` on the same generated log, one after the other, as fresh processes:
wall time, each eges stage's seconds, and the peak memory of the whole process tree (the Spark driver JVM and its
Python workers are separate processes, so the tree's resident set is summed, sampled every 0.2 s). The Spark run
writes an event log; its task metrics (executor run time, shuffle bytes, the longest task of each Spark stage),
grouped by the eges stage that ran them, give the projection for more cores: driver-side time (wall minus the Spark
stages' spans) plus, for each Spark stage, the larger of its task time spread over the cores and its longest task.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from common import EGES, WORK, report, sample_events, stage_seconds


def _tree_rss_mib(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (from /proc), MiB."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children[int(fields[1])].append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 2**20


def run_tree(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak MiB of the process tree) of a command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mib(proc.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-4000:]}")
    return seconds, peak


def spark_metrics(log_dir: Path) -> dict[str, dict[str, float]]:
    """Per eges stage (Spark job group ``eges-STAGE``): span of its Spark stages, task time, shuffle bytes, and
    the per-Spark-stage (task seconds, longest task seconds) list."""
    log = next(p for p in sorted(log_dir.rglob("*")) if p.is_file() and not p.name.startswith((".", "appstatus")))
    group_of_stage: dict[int, str] = {}
    tasks: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    spans: dict[int, float] = {}
    for line in log.read_text().splitlines():
        event = json.loads(line)
        kind = event.get("Event")
        if kind == "SparkListenerJobStart":
            group = (event.get("Properties") or {}).get("spark.jobGroup.id", "other")
            for sid in event["Stage IDs"]:
                group_of_stage[sid] = group.removeprefix("eges-")
        elif kind == "SparkListenerTaskEnd" and event.get("Task Metrics"):
            m = event["Task Metrics"]
            read = m.get("Shuffle Read Metrics", {})
            tasks[event["Stage ID"]].append((m.get("Executor Run Time", 0) / 1000,
                                             read.get("Remote Bytes Read", 0) + read.get("Local Bytes Read", 0),
                                             m.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0)))
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            if info.get("Submission Time") and info.get("Completion Time"):
                spans[info["Stage ID"]] = (info["Completion Time"] - info["Submission Time"]) / 1000
    out: dict[str, dict] = defaultdict(lambda: {"span": 0.0, "task": 0.0, "shuffle_read": 0, "shuffle_write": 0,
                                                "spark_stages": [], "tasks": 0})
    for sid, rows in tasks.items():
        g = out[group_of_stage.get(sid, "other")]
        g["span"] += spans.get(sid, 0.0)
        g["task"] += sum(r[0] for r in rows)
        g["shuffle_read"] += sum(r[1] for r in rows)
        g["shuffle_write"] += sum(r[2] for r in rows)
        g["tasks"] += len(rows)
        g["spark_stages"].append((sum(r[0] for r in rows), max(r[0] for r in rows)))
    return dict(out)


def projection(wall: float, metrics: dict, cores: int, even: bool = False) -> float:
    """Seconds of one eges stage on ``cores`` executor cores: its driver-side time plus each Spark stage's task time
    spread over the cores, bounded below by the stage's longest task (``even``: tasks split finer, as more
    partitions would, so only the spread counts)."""
    driver = max(wall - metrics["span"], 0.0)
    return driver + sum(task / cores if even else max(task / cores, longest)
                        for task, longest in metrics["spark_stages"])


def metric_rows(seconds: dict[str, float], metrics: dict) -> list[tuple[str, str]]:
    rows = []
    for stage, m in sorted(metrics.items()):
        wall_stage = seconds.get(stage, m["span"])
        proj = ", ".join(f"{c}: {projection(wall_stage, m, c):.0f} s / {projection(wall_stage, m, c, True):.0f} s"
                         for c in (2, 8, 32, 128))
        rows.append((f"spark {stage}", f"{m['tasks']:,} tasks in {len(m['spark_stages'])} Spark stages, task time "
                     f"{m['task']:.1f} s, Spark stage spans {m['span']:.1f} s, driver-side "
                     f"{max(wall_stage - m['span'], 0):.1f} s, shuffle write {m['shuffle_write'] / 2**20:,.0f} MiB, "
                     f"read {m['shuffle_read'] / 2**20:,.0f} MiB; projected seconds by cores (tasks as run / split "
                     f"evenly): {proj}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--items", type=int, default=0, help="catalogue size (default events / 20)")
    parser.add_argument("--until", default="walks", choices=["graph", "walks"])
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--partitions", type=int, default=16, help="spark.sql.shuffle.partitions")
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--log", help="an events file to use instead of a generated one (e.g. bench_memory_cap.py's "
                        "100-million-event log: --log /tmp/eges-bench/events_100m_chunked.parquet)")
    parser.add_argument("--metrics-only", action="store_true",
                        help="only recompute the projection from the last Spark run's event log and manifest")
    args = parser.parse_args()
    if args.metrics_only:
        seconds = stage_seconds(WORK / "spark_bench_spark")
        report("projection from the last Spark run", metric_rows(seconds, spark_metrics(WORK / "spark_bench_events")))
        return
    events = Path(args.log) if args.log else sample_events(args.events, args.items or args.events // 20)
    base = ["run", "--events", str(events), "--until", args.until, "--quiet"]
    rows = []
    if not args.skip_duckdb:
        out = WORK / "spark_bench_duck"
        shutil.rmtree(out, ignore_errors=True)
        wall, peak = run_tree([*EGES, *base, "--out", str(out)])
        seconds = stage_seconds(out)
        rows.append(("duckdb", f"{wall:.1f} s wall, peak {peak:,.0f} MiB; " +
                     ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())))
    out, logs = WORK / "spark_bench_spark", WORK / "spark_bench_events"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    conf = [f"spark.driver.memory={args.driver_memory}", "spark.eventLog.enabled=true",
            f"spark.eventLog.dir=file://{logs}", "spark.eventLog.compress=false", "spark.eventLog.rolling.enabled=false",
            f"spark.sql.shuffle.partitions={args.partitions}",
            f"spark.local.dir={WORK / 'spark_local'}"]
    wall, peak = run_tree([*EGES, *base, "--out", str(out), "--set", "engine.backend=spark",
                           "--set", 'engine.spark_master="local[2]"', "--set", f"engine.spark_conf={json.dumps(conf)}"])
    seconds = stage_seconds(out)
    rows.append(("spark local[2]", f"{wall:.1f} s wall, peak {peak:,.0f} MiB; " +
                 ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())))
    rows += metric_rows(seconds, spark_metrics(logs))
    import pyarrow.parquet as pq

    n_events = pq.ParquetFile(events).metadata.num_rows
    report(f"sessions + graph{' + walks' if args.until == 'walks' else ''}, {n_events:,} events", rows)


if __name__ == "__main__":
    main()
