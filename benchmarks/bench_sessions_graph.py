"""Sessions + graph on a 10-million-event log, Parquet in and out: events per second and peak memory.

    .venv/bin/python benchmarks/bench_sessions_graph.py [--repeat 3] [--events 10000000] [--no-peer] [--against REV]

The peer, run on the same file in the same run, is a straightforward pandas implementation of the same
cleaning and counting (sort, shift, groupby), the way most public EGES code does it. ``--against REV`` also
runs an older revision's code (extracted with ``git archive``), alternating with ours, so a change is judged
against its predecessor under the same machine conditions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from common import (
    EGES,
    PYTHON,
    WORK,
    measured,
    median,
    report,
    sample_events,
    source_tree,
    stage_seconds,
    until_flag,
)

PANDAS_PEER = r'''
import sys, time
import numpy as np, pandas as pd
t0 = time.perf_counter()
ev = pd.read_parquet(sys.argv[1], columns=["user_id", "item_id", "timestamp", "behaviour", "dwell"])
clicks = ev["behaviour"].eq("pv").groupby(ev["user_id"]).sum()
buys = ev["behaviour"].eq("buy").groupby(ev["user_id"]).sum()
spam = clicks.index[(clicks > 3500) | (buys > 1000)]
ev = ev[~ev["user_id"].isin(spam) & ~(ev["dwell"] < 1.0)]
ev = ev.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
new_user = ev["user_id"].ne(ev["user_id"].shift(fill_value=-1))
new_sess = new_user | ev["timestamp"].diff().gt(3600)
rep = ~new_sess & ev["item_id"].eq(ev["item_id"].shift(fill_value=-1))
ev = ev.assign(sess=new_sess.cumsum())[~rep]
ev = ev[ev.groupby("sess")["item_id"].transform("size") >= 2]
prev = ev["item_id"].shift(fill_value=-1)
same = ev["sess"].eq(ev["sess"].shift(fill_value=-1))
edges = pd.DataFrame({"src": prev[same], "dst": ev["item_id"][same]}).value_counts().rename("weight").reset_index()
ev.to_parquet(sys.argv[2] + "/sessions.parquet")
edges.to_parquet(sys.argv[2] + "/edges.parquet")
print(len(ev), len(edges), time.perf_counter() - t0)
'''


def run_eges(events: Path, out: Path, source: Path | None = None) -> tuple[float, float, float, int]:
    """One fresh-process ``eges run --until graph``: (sessions + graph stage seconds, peak MiB, wall, events in)."""
    shutil.rmtree(out, ignore_errors=True)
    wall, peak, _ = measured([*EGES, "run", "--events", str(events), "--out", str(out), until_flag(source), "graph",
                              "--quiet"],
                             source)
    secs = stage_seconds(out)
    n_in = json.loads((out / "manifest.json").read_text())["stages"]["sessions"]["rows_in"]
    return secs["sessions"] + secs["graph"], peak, wall, n_in


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--against", metavar="REV", help="also run git revision REV's code, alternating with ours")
    args = ap.parse_args()
    events = sample_events(args.events, 200_000)
    out = WORK / "sessions_graph_out"
    baseline_src = source_tree(args.against) if args.against else None
    ours, rss, walls, n_in = [], [], [], 0
    baseline: list[float] = []
    peer, peer_rss = [], []
    if baseline_src is not None:  # numba caches machine code per source path: compile the baseline's first
        run_eges(events, WORK / "baseline_out", baseline_src)
    for _ in range(args.repeat):
        seconds, peak, wall, n_in = run_eges(events, out)
        ours.append(seconds)
        rss.append(peak)
        walls.append(wall)
        if baseline_src is not None:
            baseline.append(run_eges(events, WORK / "baseline_out", baseline_src)[0])
        if not args.no_peer:
            peer_out = WORK / "pandas_peer_out"
            shutil.rmtree(peer_out, ignore_errors=True)
            peer_out.mkdir(parents=True)
            _, ppeak, stdout = measured([PYTHON, "-c", PANDAS_PEER, str(events), str(peer_out)])
            peer.append(float(stdout.split()[-1]))
            peer_rss.append(ppeak)
    rows = [("events", f"{n_in:,}"),
            ("eges sessions+graph (stage time)", f"{median(ours):.2f} s median of {[round(x, 2) for x in ours]}"),
            ("eges events/s", f"{n_in / median(ours) / 1e6:.2f} M"),
            ("eges process wall (incl. start-up)", f"{median(walls):.2f} s"),
            ("eges peak RSS", f"{median(rss):.0f} MiB")]
    if baseline:
        rows += [(f"eges at {args.against} (same run)", f"{median(baseline):.2f} s median of "
                  f"{[round(x, 2) for x in baseline]}, {n_in / median(baseline) / 1e6:.2f} M events/s")]
    if peer:
        rows += [("pandas peer", f"{median(peer):.2f} s median of {[round(p, 2) for p in peer]}"),
                 ("pandas peer events/s", f"{n_in / median(peer) / 1e6:.2f} M"),
                 ("pandas peer peak RSS", f"{median(peer_rss):.0f} MiB")]
    report("sessions + graph", rows)


if __name__ == "__main__":
    sys.exit(main())
