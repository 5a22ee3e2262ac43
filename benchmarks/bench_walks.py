"""Weighted first-order walks on a 200,000-node, 2,000,000-edge graph, 10 walks per node of 10 nodes.

    .venv/bin/python benchmarks/bench_walks.py [--repeat 5] [--pecanpy-python PATH]

Both tools run end to end in fresh processes: edge list in, walks out (ours to a Parquet file, PecanPy
to its in-memory lists). PecanPy needs numpy < 2, so it gets its own virtual environment, made on first
use at $EGES_BENCH_DIR/pecanpy-venv (``python3 -m venv ...; pip install 'numpy<2' pecanpy``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import PYTHON, WORK, measured, median, report

N_NODES, N_EDGES, WALKS, LENGTH = 200_000, 2_000_000, 10, 10

OURS = r'''
import sys, time
t0 = time.perf_counter()
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from eges.config import WalksConfig
from eges.graph.csr import from_edges
from eges.walks.generate import iter_walk_batches, batch_to_arrow
cfg = WalksConfig(walks_per_node=int(sys.argv[4]), walk_length=int(sys.argv[5]))
w0 = time.perf_counter()
list(iter_walk_batches(from_edges(np.array([0]), np.array([1]), None, 2), cfg))  # loads the cached machine code
load = time.perf_counter() - w0
edges = pq.read_table(sys.argv[1])
g = from_edges(edges["src"].to_numpy(), edges["dst"].to_numpy(), edges["weight"].to_numpy(), int(sys.argv[3]))
t1 = time.perf_counter()
schema = pa.schema([("walk", pa.list_(pa.int32()))])
steps, kernel = 0, 0.0
with pq.ParquetWriter(sys.argv[2], schema, compression="zstd", use_dictionary=False) as w:
    it = iter_walk_batches(g, cfg)
    while True:
        k0 = time.perf_counter()
        batch = next(it, None)
        kernel += time.perf_counter() - k0
        if batch is None:
            break
        col = batch_to_arrow(batch)
        steps += len(col.values)
        w.write_table(pa.table({"walk": col}))
t2 = time.perf_counter()
print(steps, t2 - t1, t2 - t0, kernel, load)
'''

PECANPY = r'''
import sys, time
t0 = time.perf_counter()
from pecanpy.pecanpy import PreCompFirstOrder
g = PreCompFirstOrder(p=1, q=1, workers=2, verbose=False)
g.read_edg(sys.argv[1], weighted=True, directed=True)
g.preprocess_transition_probs()
walks = g.simulate_walks(num_walks=int(sys.argv[2]), walk_length=int(sys.argv[3]))
t1 = time.perf_counter()
print(sum(len(w) for w in walks), t1 - t0)
'''


def make_graph() -> tuple[str, str]:
    parquet, edg = WORK / "walk_graph.parquet", WORK / "walk_graph.edg"
    if not parquet.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(1)
        # Skewed degrees, as in item graphs: endpoints drawn from a Zipf-like popularity.
        pop = 1.0 / np.arange(1, N_NODES + 1) ** 0.6
        pop /= pop.sum()
        src = rng.choice(N_NODES, N_EDGES, p=pop)
        dst = rng.choice(N_NODES, N_EDGES, p=pop)
        key = np.unique(src.astype(np.int64) * N_NODES + dst)
        src, dst = (key // N_NODES).astype(np.int32), (key % N_NODES).astype(np.int32)
        w = rng.integers(1, 20, len(src)).astype(np.float64)
        pq.write_table(pa.table({"src": src, "dst": dst, "weight": w}), parquet)
        with open(edg, "w") as fh:
            for a, b, c in zip(src.tolist(), dst.tolist(), w.tolist()):
                fh.write(f"{a}\t{b}\t{c}\n")
    return str(parquet), str(edg)


def pecanpy_python(path: str | None) -> str:
    if path:
        return path
    venv = WORK / "pecanpy-venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "numpy<2", "pecanpy"], check=True)
    return str(venv / "bin" / "python")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pecanpy-python")
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    parquet, edg = make_graph()
    n_edges = pq.ParquetFile(parquet).metadata.num_rows
    out = str(WORK / "walks_out.parquet")
    cmd = [PYTHON, "-c", OURS, parquet, out, str(N_NODES), str(WALKS), str(LENGTH)]
    measured(cmd)  # first run fills numba's on-disk cache; later processes load compiled code
    ours_e2e, ours_walk, ours_kernel, ours_rss, ours_load, steps = [], [], [], [], [], 0
    peer, peer_rss, peer_steps = [], [], 0
    py = None if args.no_peer else pecanpy_python(args.pecanpy_python)
    for _ in range(args.repeat):
        _, rss, stdout = measured(cmd)
        s, walk_s, e2e_s, kernel_s, load_s = stdout.split()
        ours_load.append(float(load_s))
        steps = int(s)
        ours_walk.append(float(walk_s))
        ours_e2e.append(float(e2e_s))
        ours_kernel.append(float(kernel_s))
        ours_rss.append(rss)
        if py:
            _, prss, pout = measured([py, "-c", PECANPY, edg, str(WALKS), str(LENGTH)])
            ps, pt = pout.split()
            peer_steps = int(ps)
            peer.append(float(pt))
            peer_rss.append(prss)
    rows = [("graph", f"{N_NODES:,} nodes, {n_edges:,} edges, {WALKS} walks/node of {LENGTH}"),
            ("eges steps", f"{steps:,}"),
            ("eges end to end (import, read, walk, write)", f"{median(ours_e2e):.2f} s -> "
             f"{steps / median(ours_e2e) / 1e6:.1f} M steps/s"),
            ("eges walks + write (graph loaded)", f"{median(ours_walk):.2f} s -> "
             f"{steps / median(ours_walk) / 1e6:.1f} M steps/s"),
            ("eges walk generation (alias tables + walks)", f"{median(ours_kernel):.2f} s -> "
             f"{steps / median(ours_kernel) / 1e6:.1f} M steps/s"),
            ("eges loading cached machine code (once per process)", f"{median(ours_load):.2f} s"),
            ("eges peak RSS", f"{median(ours_rss):.0f} MiB")]
    if peer:
        rows += [("PecanPy PreCompFirstOrder end to end", f"{median(peer):.2f} s -> "
                  f"{peer_steps / median(peer) / 1e6:.1f} M steps/s ({peer_steps:,} steps)"),
                 ("PecanPy peak RSS", f"{median(peer_rss):.0f} MiB")]
    report("walks", rows)


if __name__ == "__main__":
    sys.exit(main())
