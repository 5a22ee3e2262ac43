"""Top-50 neighbours of 100,000 items of dimension 128 (cosine), in a fresh process per run.

    .venv/bin/python benchmarks/bench_neighbours.py [--repeat 3] [--items 100000] [--dimension 128] [--k 50] [--faiss]
        [--peer] [--against REV]

Exact search (blocked products + numba selection) always; ``--faiss`` adds the approximate HNSW index of the
neighbours stage (index build + search, default settings) and its recall@k against the exact lists.
``--against REV`` runs the exact search of an older revision's code too, alternating with ours.
Peer in the same run (``--peer``, slow): the same blocked products with ``np.argpartition`` and a sort
of the K best, the usual NumPy way.
"""

from __future__ import annotations

import argparse
import sys

from common import PYTHON, measured, median, report, source_tree

SCRIPT = r'''
import sys, time
import numpy as np
from eges.recall.neighbours import top_k, normalised, top_k_faiss_blocks
n, k, mode, dim = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(0)
centres = rng.normal(size=(500, dim))
vectors = (centres[rng.integers(0, 500, n)] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)
t0 = time.perf_counter()
if mode == "eges":
    top_k(vectors, k)
elif mode == "faiss":
    approx = np.concatenate([idx for _, idx, _ in top_k_faiss_blocks(vectors, k, block=4096)])
    seconds = time.perf_counter() - t0
    exact, _ = top_k(vectors, k)
    hits = (np.sort(approx, axis=1)[:, :, None] == exact[:, None, :]).any(axis=2).sum()
    print(seconds, hits / exact.size)
    sys.exit(0)
else:
    mat = normalised(vectors)
    for lo in range(0, n, 1024):
        s = mat[lo:lo + 1024] @ mat.T
        part = np.argpartition(s, -k - 1, axis=1)[:, -k - 1:]
        np.take_along_axis(part, np.argsort(-np.take_along_axis(s, part, axis=1), axis=1), axis=1)
print(time.perf_counter() - t0)
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--peer", action="store_true")
    ap.add_argument("--faiss", action="store_true")
    ap.add_argument("--dimension", type=int, default=128)
    ap.add_argument("--against", help="also time this git revision's exact search, alternating with ours")
    args = ap.parse_args()
    ours, peer, rss, ann, ann_recall, older = [], [], [], [], [], []
    common = [str(args.items), str(args.k)]
    old_src = source_tree(args.against) if args.against else None
    for _ in range(args.repeat):
        _, peak, out = measured([PYTHON, "-c", SCRIPT, *common, "eges", str(args.dimension)])
        ours.append(float(out))
        rss.append(peak)
        if old_src is not None:
            _, _, out = measured([PYTHON, "-c", SCRIPT, *common, "eges", str(args.dimension)], old_src)
            older.append(float(out))
        if args.peer:
            _, _, out = measured([PYTHON, "-c", SCRIPT, *common, "argsort", str(args.dimension)])
            peer.append(float(out))
        if args.faiss:
            _, _, out = measured([PYTHON, "-c", SCRIPT, *common, "faiss", str(args.dimension)])
            ann.append(float(out.split()[0]))
            ann_recall.append(float(out.split()[1]))
    rows = [("items x dim, k", f"{args.items:,} x {args.dimension}, top {args.k}, cosine"),
            ("eges top_k (blocked matmul + numba selection)", f"{median(ours):.1f} s (runs {[round(x, 1) for x in ours]})"),
            ("peak RSS", f"{median(rss):.0f} MiB")]
    if older:
        rows.append((f"the same at {args.against}", f"{median(older):.1f} s (runs {[round(x, 1) for x in older]})"))
    if peer:
        rows.append(("blocked matmul + np.argpartition", f"{median(peer):.1f} s (runs {[round(x, 1) for x in peer]})"))
    if ann:
        rows.append(("faiss HNSW (M 32, efSearch 128), build + search",
                     f"{median(ann):.1f} s (runs {[round(x, 1) for x in ann]}), recall@{args.k} {median(ann_recall):.4f}"))
    report("neighbours", rows)


if __name__ == "__main__":
    sys.exit(main())
