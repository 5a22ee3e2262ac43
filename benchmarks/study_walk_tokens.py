"""Walk tokens a pass under the walks-per-node rule (docs/studies/walk-tokens.md, issue 19 cost).

For each prepared log in ~/.cache/eges-datasets (or $EGES_DATASETS) runs ``eges run --until graph`` into OUT/NAME
(kept and reused), then walks the graph with an explicit 20 walks a node and with the rule
(``walks.walks_per_node = 0``) at each ``--rate`` (``walks.walks_per_transition``), and prints one markdown row per
log: start nodes, transitions, median out-weight and walk tokens a pass (tokens do not depend on the machine's load,
seconds do). A default run trains its slice passes and its refit on these tokens, so its training cost follows them.

    python benchmarks/study_walk_tokens.py [--out /tmp/walk-tokens] [--rate 1 --rate 3 ...] NAME ...
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from eges.config import WalksConfig
from eges.engines.local import load_graph
from eges.walks.generate import random_walks_array

ROOT = Path(os.environ.get("EGES_DATASETS", Path.home() / ".cache" / "eges-datasets"))


def graph_of(name: str, out: Path) -> Path:
    """The log's graph stage output (run once)."""
    run = out / name
    if not (run / "graph" / "edges.parquet").exists():
        cmd = [sys.executable, "-m", "eges", "run", "--events", str(ROOT / name / "events.parquet"), "--out", str(run),
               "--until", "graph", "--quiet"]
        if (ROOT / name / "items.parquet").exists():
            cmd[6:6] = ["--items", str(ROOT / name / "items.parquet")]
        subprocess.run(cmd, check=True)
    return run


def tokens(graph, cfg: WalksConfig) -> int:
    return int((random_walks_array(graph, cfg) >= 0).sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+")
    ap.add_argument("--out", type=Path, default=Path("/tmp/walk-tokens"))
    ap.add_argument("--rate", type=float, action="append", default=None)
    args = ap.parse_args(argv)
    rates = args.rate or [1.0, 2.0, 3.0, 5.0]
    print("| log | start nodes | transitions | median out-weight | tokens at 20 a node | "
          + " | ".join(f"rule at {r:g}" for r in rates) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(rates))
    for name in args.names:
        graph = load_graph(graph_of(name, args.out))
        out_weight = np.add.reduceat(graph.weights, graph.indptr[:-1][np.diff(graph.indptr) > 0])
        full = tokens(graph, WalksConfig(walks_per_node=20))
        rule = [tokens(graph, WalksConfig(walks_per_node=0, walks_per_transition=r)) for r in rates]
        print(f"| {name} | {len(out_weight):,} | {graph.weights.sum():,.0f} | {np.median(out_weight):g} | "
              f"{full / 1e6:.2f} M | " + " | ".join(f"{t / 1e6:.2f} M ({t / full:.0%})" for t in rule) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
