"""Sessions + graph on a 10-million-event log, Parquet in and out: events per second and peak memory.

    .venv/bin/python benchmarks/bench_sessions_graph.py [--repeat 3] [--events 10000000]

The peer, run on the same file in the same run, is a straightforward pandas implementation of the same
cleaning and counting (sort, shift, groupby), the way most public EGES code does it.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from common import EGES, PYTHON, WORK, measured, median, report, sample_events, stage_seconds

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    events = sample_events(args.events, 200_000)
    out = WORK / "sessions_graph_out"
    ours, rss, walls, n_in = [], [], [], 0
    peer, peer_rss = [], []
    for _ in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)
        wall, peak, _ = measured([*EGES, "run", "--events", str(events), "--out", str(out), "--to", "graph", "--quiet"])
        secs = stage_seconds(out)
        ours.append(secs["sessions"] + secs["graph"])
        rss.append(peak)
        walls.append(wall)
        import json

        n_in = json.loads((out / "manifest.json").read_text())["stages"]["sessions"]["rows_in"]
        if not args.no_peer:
            peer_out = WORK / "pandas_peer_out"
            shutil.rmtree(peer_out, ignore_errors=True)
            peer_out.mkdir(parents=True)
            _, ppeak, stdout = measured([PYTHON, "-c", PANDAS_PEER, str(events), str(peer_out)])
            peer.append(float(stdout.split()[-1]))
            peer_rss.append(ppeak)
    rows = [("events", f"{n_in:,}"),
            ("eges sessions+graph (stage time)", f"{median(ours):.2f} s median of {ours}"),
            ("eges events/s", f"{n_in / median(ours) / 1e6:.2f} M"),
            ("eges process wall (incl. start-up)", f"{median(walls):.2f} s"),
            ("eges peak RSS", f"{median(rss):.0f} MiB")]
    if peer:
        rows += [("pandas peer", f"{median(peer):.2f} s median of {[round(p, 2) for p in peer]}"),
                 ("pandas peer events/s", f"{n_in / median(peer) / 1e6:.2f} M"),
                 ("pandas peer peak RSS", f"{median(peer_rss):.0f} MiB")]
    report("sessions + graph", rows)


if __name__ == "__main__":
    sys.exit(main())
