"""HitRate@50 of the validation slice's next-item pairs, from top-50 lists (``evaluate``'s way) against from the
targets' ranks (the slice's way since 2026-12-04), on a taobao-shaped slice: 53,366 items of which 42,712 are
candidates, 857 pairs from 746 query items, dimension 64. Both in one process, alternating, medians; they must
agree on the figure.

    .venv/bin/python benchmarks/bench_slice_scoring.py [--repeat 9] [--dimension 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from eges.evaluation.score import Pairs, score
from eges.evaluation.scorers import CosineScorer
from eges.validation.score import _hit_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--dimension", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, k = 53_366, 50
    centres = rng.standard_normal((300, args.dimension))
    label = rng.integers(0, 300, n)
    vectors = (centres[label] + rng.standard_normal((n, args.dimension))).astype(np.float32)
    has = np.zeros(n, dtype=bool)
    has[rng.choice(n, 42_712, replace=False)] = True
    queries = rng.choice(np.flatnonzero(has), 746, replace=False)
    query = np.concatenate([queries, rng.choice(queries, 857 - 746)])
    by_label = np.argsort(label, kind="stable")  # a target of the query's cluster, so some pairs are hits
    starts = np.searchsorted(label[by_label], np.arange(301))
    lo, hi = starts[label[query]], starts[label[query] + 1]
    target = by_label[lo + (rng.random(len(query)) * (hi - lo)).astype(np.int64)]
    pairs = Pairs(query, target, query, rng.integers(0, n, len(query)))
    scorer = CosineScorer("slice", vectors, has)
    seconds: dict[str, list[float]] = {"top-50 lists": [], "ranks": []}
    figures = {}
    for _ in range(args.repeat):
        for name in seconds:
            started = time.perf_counter()
            if name == "ranks":
                figures[name] = _hit_rate(scorer, pairs, k)
            else:
                rows = score("temporal", scorer, "method", pairs, (k,))
                figures[name] = next(r["value"] for r in rows if r["metric"] == "hit_rate")
            seconds[name].append(time.perf_counter() - started)
    for name, times in seconds.items():
        print(f"{name:14s} median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f}); "
              f"HitRate@{k} {figures[name]:.4f}")
    assert figures["ranks"] == figures["top-50 lists"], figures


if __name__ == "__main__":
    main()
