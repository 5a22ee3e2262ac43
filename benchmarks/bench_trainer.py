"""The numba skip-gram trainer against gensim and against an earlier revision's trainer, on the same walks.

    .venv/bin/python benchmarks/bench_trainer.py [--repeat 3] [--against REV] [--threads 1 2]
        [--data sample gen1m wide] [--max-pairs N] [--trainers gensim old bge eges ges old_eges old_ges]

Data: the repository's sample (data/events.parquet + data/items.parquet), a generated log of about one
million events (`eges sample --events 1000000`, 7.6 k items in the graph: the model fits in a core's cache) and
``wide``, the same with 100,000 items (`--items 100000`: rows miss the caches, as on taobao's 53 k items;
score it with ``--max-pairs 10000``). Each log is split by time (the last 10% of its events are held out);
`eges run --to walks` makes the walks from the first 90%. Every trainer sees the same walks with
the same settings (dimension 64, window 5, negative 5, down-sampling 1e-3, alpha 0.025 -> 0.0001, one epoch):

- gensim: Word2Vec sg=1, hs=0, min_count=1 (BGE); the time of ``train()`` only, vocabulary built before;
- old: the trainer (``eges.train.stream.train``, ``eges.side_info.train.train`` before it moved) of revision
  ``--against`` in BGE mode (no side fields);
- bge / eges / ges: this tree's trainer with no side fields / with the catalogue's four fields (EGES attention;
  GES, which also trains each centre's cold-start vector at its default ``train.cold_share``);
- old_eges / old_ges: ``--against``'s trainer with the four fields (EGES / GES), to see a kernel change's cost.

Runs alternate (gensim, old, bge, eges, gensim, ...), each in a fresh process, so drift on a shared machine
hits all alike; figures are medians of tokens per second of training time. Quality of every run's item
vectors on the held-out part: HitRate@50 of the next distinct item a user viewed (cosine top 50 of the
previous item) and link AUC of those pairs against the previous item paired with a uniformly drawn item.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from common import EGES, PYTHON, ROOT, WORK, measured, median, report, source_tree, until_flag

SETTINGS = {"dimension": 64, "window": 5, "negative": 5, "epochs": 1}

RUN = r'''
import json, sys, time
import numpy as np, pandas as pd, pyarrow.parquet as pq
args = json.loads(sys.argv[1])
col = pq.read_table(args["walks"])["walk"].combine_chunks()
off = col.offsets.to_numpy().astype(np.int64)
flat = col.values.to_numpy()[off[0]:off[-1]].astype(np.int32)
off = off - off[0]
nodes = pq.read_table(args["nodes"]).to_pandas().sort_values("item_index")
n = len(nodes)
s = args["settings"]
if args["trainer"] == "gensim":
    from gensim.models import Word2Vec
    walks = [flat[a:b].tolist() for a, b in zip(off[:-1], off[1:])]
    model = Word2Vec(vector_size=s["dimension"], window=s["window"], negative=s["negative"], sg=1, hs=0,
                     min_count=1, sample=0.001, alpha=0.025, min_alpha=0.0001, workers=args["threads"], seed=42)
    model.build_vocab(walks)
    t0 = time.perf_counter()
    model.train(walks, total_examples=len(walks), epochs=s["epochs"])
    seconds = time.perf_counter() - t0
    vecs = np.zeros((n, s["dimension"]), np.float32)
    keys = np.array(model.wv.index_to_key)
    vecs[keys] = model.wv.vectors
else:
    from eges.side_info.encode import SideInfo
    try:
        from eges.train.stream import behaviour_vectors, train
    except ImportError:  # revisions before the trainer had its own package
        from eges.side_info.train import behaviour_vectors, train
    if args["trainer"] in ("eges", "ges"):
        items = pq.read_table(args["items"]).to_pandas().set_index("item_id").reindex(nodes["item_id"])
        fields, codes, values = [], [], []
        for name in ("category", "brand", "shop", "price"):
            col = items[name]
            if name == "price":
                col = pd.qcut(col, 10, duplicates="drop").astype(str).where(col.notna())
            c, uniq = pd.factorize(col)
            fields.append(name)
            codes.append(c)
            values.append([str(u) for u in uniq])
        side = SideInfo(fields, np.stack(codes, axis=1).astype(np.int32), values)
        method = args["trainer"]
    else:
        side = SideInfo([], np.zeros((n, 0), np.int32), [])
        method = "ges"  # no fields: the same kernel as bge, and a name every revision accepts
    try:  # revisions before the one [train] section took TrainSettings
        from eges.side_info.train import TrainSettings
        cfg, extra = TrainSettings(method=method, threads=args["threads"], seed=42, **s), ()
    except ImportError:
        from eges.config import TrainConfig
        cfg, extra = TrainConfig(threads=args["threads"], seed=42, **s), (method,)
    t0 = time.perf_counter()
    model = train(flat, off, n, side, cfg, *extra)
    seconds = time.perf_counter() - t0
    vecs = behaviour_vectors(model)
np.save(args["vectors"], vecs)
print(len(flat) * s["epochs"], seconds)
'''


def prepare(name: str, events: Path, items: Path) -> dict[str, Path]:
    """Time split of ``events``; walks of the first 90% (made once, then reused)."""
    out = WORK / f"trainer_{name}"
    train_events, test_events = out / "train_events.parquet", out / "test_events.parquet"
    if not test_events.exists():
        out.mkdir(parents=True, exist_ok=True)
        df = pq.read_table(events).to_pandas()
        ts = df["timestamp"]
        cut = ts.quantile(0.9)
        df[ts < cut].to_parquet(train_events)
        df[ts >= cut].to_parquet(test_events)
    run = out / "run"
    if not (run / "walks" / "walks.parquet").exists():
        subprocess.run([*EGES, "run", "--events", str(train_events), "--out", str(run), until_flag(None), "walks",
                        "--quiet"],
                       check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return {"walks": run / "walks" / "walks.parquet", "nodes": run / "graph" / "nodes.parquet",
            "items": items, "test": test_events}


def held_out_pairs(paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) node pairs of consecutive distinct items per user in the held-out period."""
    nodes = pq.read_table(paths["nodes"]).to_pandas()
    index = dict(zip(nodes["item_id"], nodes["item_index"]))
    df = pq.read_table(paths["test"]).to_pandas().sort_values(["user_id", "timestamp"], kind="stable")
    df["node"] = df["item_id"].map(index)
    prev_user, prev_node = df["user_id"].shift(), df["node"].shift()
    ok = (df["user_id"] == prev_user) & df["node"].notna() & prev_node.notna() & (df["node"] != prev_node)
    return prev_node[ok].to_numpy(np.int64), df["node"][ok].to_numpy(np.int64)


def quality(vectors: np.ndarray, src: np.ndarray, dst: np.ndarray, k: int = 50) -> tuple[float, float]:
    """(HitRate@k, link AUC) of the held-out pairs."""
    from eges.evaluation.metrics import rank_auc

    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    hits = 0
    for a in range(0, len(src), 2048):
        s = v[src[a:a + 2048]] @ v.T
        s[np.arange(len(s)), src[a:a + 2048]] = -np.inf
        target = s[np.arange(len(s)), dst[a:a + 2048]]
        hits += int(((s > target[:, None]).sum(axis=1) < k).sum())
    neg = np.random.default_rng(0).integers(0, len(v), len(src))
    auc = rank_auc(np.einsum("ij,ij->i", v[src], v[dst]), np.einsum("ij,ij->i", v[src], v[neg]))
    return hits / len(src), float(auc)


def _kernel(trainer: str) -> str:
    """The RUN script's trainer for a benchmark row: 'old' is BGE, 'old_eges' EGES and 'old_ges' GES of the old
    revision."""
    return {"old": "bge", "old_eges": "eges", "old_ges": "ges"}.get(trainer, trainer)


def run_trainer(trainer: str, threads: int, paths: dict[str, Path], vectors: Path, old_src: Path) -> str:
    """One benchmark row's trainer in a fresh process (the old revision's source for 'old*' rows); its stdout."""
    spec = {**{k: str(p) for k, p in paths.items()}, "trainer": _kernel(trainer), "threads": threads,
            "settings": SETTINGS, "vectors": str(vectors)}
    source = old_src if trainer.startswith("old") else ROOT / "src"
    return measured([PYTHON, "-c", RUN, json.dumps(spec)], source=source)[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", default="5a1b68b", help="revision whose trainer is 'old'")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--data", nargs="+", default=["sample", "gen1m"], choices=["sample", "gen1m", "wide"])
    ap.add_argument("--max-pairs", type=int, default=0,
                    help="score at most this many held-out pairs (a seeded sample; 0: all). On `wide` every pair "
                         "ranks 86 k items, which takes longer than the training")
    ap.add_argument("--trainers", nargs="+", default=["gensim", "old", "bge", "eges"],
                    choices=["gensim", "old", "bge", "eges", "ges", "old_eges", "old_ges"])
    args = ap.parse_args()
    old_src = source_tree(args.against)
    logs = {"sample": (ROOT / "data" / "events.parquet", ROOT / "data" / "items.parquet")}
    if "gen1m" in args.data:
        gen = WORK / "sample_1m"
        if not (gen / "events.parquet").exists():
            subprocess.run([*EGES, "sample", "--out", str(gen), "--events", "1000000"], check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        logs["gen1m"] = (gen / "events.parquet", gen / "items.parquet")
    if "wide" in args.data:  # rows that miss the caches, as on taobao's 53 k items
        wide = WORK / "sample_1m_100k_items"
        if not (wide / "events.parquet").exists():
            subprocess.run([*EGES, "sample", "--out", str(wide), "--events", "1000000", "--items", "100000"],
                           check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        logs["wide"] = (wide / "events.parquet", wide / "items.parquet")
    trainers = tuple(dict.fromkeys(["gensim", *args.trainers]))  # gensim is every row's reference
    for name in args.data:
        paths = prepare(name, *logs[name])
        src, dst = held_out_pairs(paths)
        if 0 < args.max_pairs < len(src):
            keep = np.sort(np.random.default_rng(0).choice(len(src), args.max_pairs, replace=False))
            src, dst = src[keep], dst[keep]
        results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
        vec_file = WORK / "trainer_vectors.npy"

        for threads in args.threads:  # warm numba's caches (old and new) before timing
            for trainer in trainers[1:]:
                run_trainer(trainer, threads, paths, vec_file, old_src)
        tokens = 0
        for _ in range(args.repeat):
            for threads in args.threads:
                for trainer in trainers:
                    stdout = run_trainer(trainer, threads, paths, vec_file, old_src)
                    n, secs = stdout.split()
                    tokens = int(n)
                    hr, auc = quality(np.load(vec_file), src, dst)
                    results.setdefault((trainer, threads), []).append((tokens / float(secs), hr, auc))
        rows = [("tokens", f"{tokens:,} per run; {len(src):,} held-out pairs; {SETTINGS}")]
        for threads in args.threads:
            base = median([r[0] for r in results[("gensim", threads)]])
            for trainer in trainers:
                runs = results[(trainer, threads)]
                speed = median([r[0] for r in runs])
                rows.append((f"{trainer} {threads}t",
                             f"{speed / 1e3:7.0f}k tokens/s  x{speed / base:.2f} gensim  "
                             f"HR@50 {median([r[1] for r in runs]):.4f}  AUC {median([r[2] for r in runs]):.4f}  "
                             f"(k tokens/s {[round(r[0] / 1e3) for r in runs]})"))
        report(f"trainer on {name} (against {args.against})", rows)


if __name__ == "__main__":
    sys.exit(main())
