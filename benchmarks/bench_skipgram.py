"""The skipgram stage against gensim called directly on the same walks with the same settings.

    .venv/bin/python benchmarks/bench_skipgram.py [--repeat 3] [--walks 300000]

Uses the walks of bench_walks.py's graph (run that first, or this makes them). Our figure is the whole
stage (reading walks, counting, training, writing vectors and KeyedVectors); gensim's is training on
lists it already holds in memory. Both report raw tokens per second of wall time.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import pyarrow.parquet as pq
from common import GENSIM_SCRIPT, PYTHON, WORK, measured, median, report, walks_subset

OURS = r'''
import sys, json, time
from pathlib import Path
from eges.config import load_config
from eges.pipeline.registry import RunInputs, StageContext
from eges.pipeline.stages import skipgram_stage
out = Path(sys.argv[1])
cfg = load_config(None, ["train.threads=2"])
t0 = time.perf_counter()
res = skipgram_stage(StageContext(out, cfg, RunInputs(), progress=False))
print(time.perf_counter() - t0, res.details["train_seconds"])
'''



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--walks", type=int, default=300_000)
    args = ap.parse_args()
    subset = walks_subset(args.walks)
    out = WORK / "skipgram_out"
    shutil.rmtree(out, ignore_errors=True)
    (out / "walks").mkdir(parents=True)
    (out / "graph").mkdir(parents=True)
    shutil.copy(subset, out / "walks" / "walks.parquet")
    walks = pq.read_table(subset)
    n_nodes = int(max(max(w) for w in walks["walk"].to_pylist())) + 1
    import pyarrow as pa

    pq.write_table(pa.table({"item_id": pa.array(range(n_nodes), pa.int64()),
                             "item_index": pa.array(range(n_nodes), pa.int32())}), out / "graph" / "nodes.parquet")
    tokens = sum(len(w) for w in walks["walk"].to_pylist())
    ours, ours_train, peer = [], [], []
    for _ in range(args.repeat):
        _, _, stdout = measured([PYTHON, "-c", OURS, str(out)])
        total, train = map(float, stdout.split())
        ours.append(total)
        ours_train.append(train)
        _, _, stdout = measured([PYTHON, "-c", GENSIM_SCRIPT, str(out / "walks" / "walks.parquet")])
        peer.append(float(stdout.split()[-1]))
    rows = [("walks / tokens", f"{walks.num_rows:,} / {tokens:,}; dim 128, window 5, negative 5, 1 epoch, 2 threads"),
            ("eges skipgram stage (whole stage)", f"{median(ours):.2f} s -> {tokens / median(ours) / 1e3:.0f}k words/s"
             f" (runs {[round(x, 2) for x in ours]})"),
            ("eges training part", f"{median(ours_train):.2f} s -> {tokens / median(ours_train) / 1e3:.0f}k words/s"),
            ("gensim direct on in-memory lists", f"{median(peer):.2f} s -> {tokens / median(peer) / 1e3:.0f}k words/s"
             f" (runs {[round(x, 2) for x in peer]})"),
            ("stage / gensim throughput", f"{median(peer) / median(ours):.2f}")]
    report("skipgram", rows)


if __name__ == "__main__":
    sys.exit(main())
