"""Why item2vec beats eges on amazon-beauty's link AUC (docs/studies/amazon-beauty-link.md, issue 19).

Makes the link protocol's split exactly as ``eges evaluate --protocol link`` does (seed 0: a third of the whole
log's graph edges held out; positives the held-out edges, negatives as many node pairs with no edge), trains
vectors straight on the split (item2vec on the sessions cut at held-out transitions, BGE / GES / EGES on walks of
the training graph, the native trainer throughout) and scores each four ways on the same pairs:

- ``cos``: the protocol's figure (cosine of the vectors as trained);
- ``dot``: dot product (norms carry how often an item was trained);
- ``centred``: cosine after the mean vector of the items is subtracted (validate.try_centred);
- ``matched``: cosine against *degree-matched* negatives (each positive's target swapped with another
  positive's), on which popularity alone scores 0.50: how well the vectors model the links themselves.

    python benchmarks/study_beauty_link.py [--out /tmp/beauty-link] [--name amazon-beauty] [--part item2vec ...]

Runs ``eges run --until graph`` once into OUT/NAME for the whole log's sessions and graph (reused). Each part
trains in seconds to a minute (2.4 M walk tokens a pass); the printed rows are markdown.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from eges.config import default_config
from eges.evaluation.nested import read_sessions
from eges.evaluation.score import Pairs, score
from eges.evaluation.scorers import CosineScorer, PopularityScorer
from eges.evaluation.splits import held_out_edges, sample_non_edges, segments_without
from eges.graph.csr import from_edges, symmetrized
from eges.layout import EDGES
from eges.side_info.encode import SideInfo, encode
from eges.train.stream import behaviour_vectors, train_stream
from eges.walks.generate import flatten_walks, iter_walk_batches

ROOT = Path(os.environ.get("EGES_DATASETS", Path.home() / ".cache" / "eges-datasets"))
PARTS = ("item2vec", "bge", "side")


def whole_log(name: str, out: Path) -> Path:
    """The log's sessions and graph (``eges run --until graph``, run once)."""
    run = out / name
    if not (run / EDGES).exists():
        subprocess.run([sys.executable, "-m", "eges", "run", "--events", str(ROOT / name / "events.parquet"),
                        "--out", str(run), "--until", "graph", "--quiet"], check=True)
    return run


class Split:
    """The link protocol's split of the whole log (eges.evaluation.protocols.link, undirected graph off)."""

    def __init__(self, run: Path, seed: int = 0):
        config = default_config()
        self.universe, start, item, prev = read_sessions(run)
        n = self.n = len(self.universe)
        edges = pq.read_table(run / EDGES)
        src, dst, weight = (edges[c].to_numpy() for c in ("src", "dst", "weight"))
        rng = np.random.default_rng(seed)
        held = held_out_edges(src, dst, config.evaluate.link_holdout, False, rng)
        train_nodes = np.unique(np.concatenate([src[~held], dst[~held]]))
        in_train = np.zeros(n, dtype=bool)
        in_train[train_nodes] = True
        test = np.flatnonzero(held & in_train[src] & in_train[dst] & (src != dst))
        neg_a, neg_b = sample_non_edges(src, dst, train_nodes, len(test), rng)
        self.pairs = Pairs(src[test], dst[test], neg_a, neg_b)
        self.matched = _matched(src, dst, test, n)
        segment = segments_without(start, prev, item, src[held].astype(np.int64) * n + dst[held], n)
        self.item, self.starts = item, np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
        self.graph = from_edges(src[~held], dst[~held], weight[~held], n)
        self.popularity = np.bincount(item, minlength=n)
        self.config = config


def _matched(src: np.ndarray, dst: np.ndarray, test: np.ndarray, n: int) -> Pairs:
    """The positives against degree-matched negatives: each target swapped with another positive's, pairs that
    are edges (either way) or loops dropped, so both sides draw their items by the same degrees."""
    a, b = src[test], dst[test][np.random.default_rng(1).permutation(len(test))]
    edges = np.concatenate([src.astype(np.int64) * n + dst, dst.astype(np.int64) * n + src])
    ok = (a != b) & ~np.isin(a.astype(np.int64) * n + b, edges)
    return Pairs(src[test][ok], dst[test][ok], a[ok], b[ok])


def _auc(scorer: Any, pairs: Pairs) -> float:
    return float(score("link", scorer, "m", pairs)[0]["value"])


class _Dot:
    name = "dot"

    def __init__(self, matrix: np.ndarray, has: np.ndarray):
        self.matrix, self.has = matrix, has

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.einsum("ij,ij->i", self.matrix[a], self.matrix[b]).astype(np.float64)
        out[~(self.has[a] & self.has[b])] = np.nan
        return out


def row(split: Split, label: str, matrix: np.ndarray, has: np.ndarray, seconds: float) -> str:
    centred = (matrix - matrix[has].mean(axis=0)) * has[:, None]
    norms = np.linalg.norm(matrix, axis=1)
    corr = np.corrcoef(norms[has], np.log1p(split.popularity[has]))[0, 1]
    figures = (_auc(CosineScorer("c", matrix, has), split.pairs), _auc(_Dot(matrix, has), split.pairs),
               _auc(CosineScorer("c", centred, has), split.pairs), _auc(CosineScorer("c", matrix, has), split.matched),
               _auc(CosineScorer("c", centred, has), split.matched))
    return f"| {label} | " + " | ".join(f"{v:.4f}" for v in figures) + f" | {corr:+.2f} | {seconds:.0f} |"


def _train(split: Split, batches: list[tuple[np.ndarray, np.ndarray]], method: str, side: SideInfo, epochs: int,
           label: str, every_pass: bool, **train: Any) -> None:
    """Train ``epochs`` passes (the learning rate decaying over them); print a row after the last (every) pass."""
    n = split.n
    counts = np.zeros(n, dtype=np.int64)
    for values, _ in batches:
        counts += np.bincount(values, minlength=n)
    has = counts > 0
    clock = [time.perf_counter()]

    def on_epoch(done: int, _loss: float, model: Any) -> bool:
        if every_pass or done == epochs:
            vectors = behaviour_vectors(model) if side.fields else model.table[:n]
            print(row(split, f"{label}, pass {done} of {epochs}", vectors * has[:, None], has,
                      time.perf_counter() - clock[0]), flush=True)
            clock[0] = time.perf_counter()
        return False

    cfg = replace(split.config.train, epochs=epochs, **train)
    train_stream(lambda: iter(batches), counts, n, side, cfg, method, on_epoch=on_epoch)


def _walks(graph: Any, cfg: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    return [flatten_walks(b) for b in iter_walk_batches(graph, cfg)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/beauty-link"))
    parser.add_argument("--name", default="amazon-beauty")
    parser.add_argument("--part", action="append", choices=PARTS, help="what to train (default: all)")
    args = parser.parse_args(argv)
    split = Split(whole_log(args.name, args.out))
    parts = args.part or PARTS
    none = SideInfo([], np.zeros((split.n, 0), np.int32), [])
    print(f"{args.name}: {split.n} items, {len(split.pairs)} link pairs, {len(split.matched)} degree-matched; "
          f"popularity AUC {_auc(PopularityScorer(split.popularity), split.pairs):.4f} "
          f"(matched {_auc(PopularityScorer(split.popularity), split.matched):.4f})")
    print("| vectors | cos (protocol) | dot | centred | matched cos | matched centred | corr(norm, log pop) | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    if "item2vec" in parts:  # the baseline: skip-gram on the sessions cut at held-out transitions, window 5
        sessions = [(split.item.astype(np.int32), np.r_[split.starts, len(split.item)].astype(np.int64))]
        for epochs in (1, 2, 3, 5, 10, 20):
            _train(split, sessions, "bge", none, epochs, "item2vec (sessions)", False)
        for window in (1, 2):
            _train(split, sessions, "bge", none, 5, f"item2vec window {window}", False, window=window)
    directed = _walks(split.graph, split.config.walks)
    if "bge" in parts:
        for epochs in (1, 3, 10):
            _train(split, directed, "bge", none, epochs, "BGE, directed walks 20/node", False)
        for per_node in (2, 5):
            few = _walks(split.graph, replace(split.config.walks, walks_per_node=per_node))
            _train(split, few, "bge", none, 1, f"BGE, directed walks {per_node}/node", False)
    if "side" in parts:
        catalog = pd.read_parquet(ROOT / args.name / "items.parquet")
        side, _ = encode(catalog, split.universe.to_list(), "item_id",
                         [c for c in catalog.columns if c != "item_id"], split.config.side_info.numeric_buckets,
                         split.config.side_info.numeric)
        undirected = _walks(symmetrized(split.graph), split.config.walks)
        for method in ("ges", "eges"):
            _train(split, undirected, method, side, 1, f"{method.upper()}, undirected walks", False)
            _train(split, undirected, method, side, 10, f"{method.upper()}, undirected walks", True)


if __name__ == "__main__":
    main()
