"""GES/EGES training throughput against gensim's skip-gram on the same walks, in one run.

    .venv/bin/python benchmarks/bench_eges.py [--repeat 3] [--walks 300000]

Walks: the first ``--walks`` walks of bench_walks.py's graph; side information: four fields (three
categorical with 1,000 / 5,000 / 20,000 values and one numeric in 10 buckets) drawn at random per node.
Same dimension (128), window (5), negatives (5), down-sampling (1e-3), one epoch, 2 threads. Figures are
raw tokens per second of training time; each trainer runs in a fresh process after a warm-up run (numba's
compiled code is cached on disk).
"""

from __future__ import annotations

import argparse
import sys

from common import GENSIM_SCRIPT, PYTHON, measured, median, report, walks_subset

EGES_RUN = r'''
import sys, time
import numpy as np, pyarrow.parquet as pq
from eges.side_info.encode import SideInfo
from eges.config import TrainConfig
from eges.train.stream import train
col = pq.read_table(sys.argv[1])["walk"].combine_chunks()
off = col.offsets.to_numpy().astype(np.int64)
flat = col.values.to_numpy()[off[0]:off[-1]].astype(np.int32)
off = off - off[0]
n = int(flat.max()) + 1
rng = np.random.default_rng(0)
codes = np.stack([rng.integers(0, k, n) for k in (1000, 5000, 20000, 10)], axis=1).astype(np.int32)
side = SideInfo(["cat", "brand", "shop", "price"], codes, [[str(i) for i in range(k)] for k in (1000, 5000, 20000, 10)])
cfg = TrainConfig(dimension=128, window=5, negative=5, epochs=1, sample=0.001, threads=2)
METHOD = sys.argv[2]
t0 = time.perf_counter()
train(flat, off, n, side, cfg, METHOD)
print(len(flat), time.perf_counter() - t0)
'''



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--walks", type=int, default=300_000)
    args = ap.parse_args()
    subset = walks_subset(args.walks)
    results: dict[str, list[float]] = {"eges": [], "ges": [], "gensim": []}
    measured([PYTHON, "-c", EGES_RUN, str(subset), "eges"])  # warm numba's cache
    tokens = 0
    for _ in range(args.repeat):
        for name in ("eges", "ges", "gensim"):
            cmd = [PYTHON, "-c", GENSIM_SCRIPT, str(subset)] if name == "gensim" else [PYTHON, "-c", EGES_RUN, str(subset), name]
            _, _, stdout = measured(cmd)
            n, secs = stdout.split()
            tokens = int(n)
            results[name].append(float(secs))
    rows = [("tokens", f"{tokens:,} ({args.walks:,} walks); dim 128, window 5, negative 5, sample 1e-3, 2 threads")]
    for name, secs in results.items():
        rows.append((name, f"{median(secs):.2f} s -> {tokens / median(secs) / 1e3:.0f}k tokens/s "
                     f"(runs {[round(s, 2) for s in secs]})"))
    rows.append(("eges / gensim throughput", f"{median(results['gensim']) / median(results['eges']):.2f}"))
    report("GES/EGES vs gensim skip-gram", rows)


if __name__ == "__main__":
    sys.exit(main())
