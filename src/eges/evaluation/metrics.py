"""Metrics: rank AUC of positive against negative pairs, HitRate@K and Recall@K of neighbour lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from eges.recall.neighbours import normalised


def rank_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney U / (n_pos * n_neg)).

    NaN when either side is empty, so a method that can score nothing reports no number rather than 0.5.
    """
    n_pos, n_neg = len(positive), len(negative)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    scores = np.concatenate([positive, negative])
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hits_and_recall(neighbours: np.ndarray, query_of_pair: np.ndarray, target: np.ndarray,
                    ks: Sequence[int]) -> dict[int, tuple[float, float]]:
    """HitRate@K and Recall@K of observed pairs (query -> target) against each query's neighbour list.

    Args:
        neighbours: (n_queries, K_max) item indices, best first; -1 pads lists with fewer candidates.
        query_of_pair: for each observed pair, the row of its query in ``neighbours``.
        target: for each observed pair, the item it went to.
        ks: cut-offs, each at most K_max.

    Returns:
        {k: (hit rate, recall)}. HitRate@K is the share of observed pairs (with repeats) whose target is
        among the query's K nearest; Recall@K is, per query, the share of its distinct targets found in
        its K nearest, averaged over queries.
    """
    if len(query_of_pair) == 0:
        return {k: (float("nan"), float("nan")) for k in ks}
    n_items = int(max(neighbours.max(initial=0), target.max(initial=0))) + 1
    pair_keys = query_of_pair.astype(np.int64) * n_items + target
    distinct = np.unique(pair_keys)
    distinct_query = distinct // n_items
    per_query = np.bincount(distinct_query, minlength=len(neighbours))
    out = {}
    for k in ks:
        if k > neighbours.shape[1]:
            raise ValueError(f"k = {k} is larger than the neighbour lists ({neighbours.shape[1]})")
        top = neighbours[:, :k]
        rows = np.repeat(np.arange(len(neighbours), dtype=np.int64), k)
        keys = rows * n_items + top.reshape(-1)
        keys = np.sort(keys[top.reshape(-1) >= 0])
        hit_pairs = _isin_sorted(pair_keys, keys)
        hit_distinct = _isin_sorted(distinct, keys)
        found = np.bincount(distinct_query[hit_distinct], minlength=len(neighbours))
        queried = per_query > 0
        out[k] = (float(hit_pairs.mean()), float((found[queried] / per_query[queried]).mean()))
    return out


def _isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, values)
    pos = np.minimum(pos, max(len(sorted_keys) - 1, 0))
    return (sorted_keys[pos] == values) if len(sorted_keys) else np.zeros(len(values), dtype=bool)


def transition_auc(ids: np.ndarray, vectors: np.ndarray, src: np.ndarray, dst: np.ndarray,
                   candidates: np.ndarray, seed: int = 0) -> tuple[float, int]:
    """AUC of cosine(src, dst) for observed transitions against cosine(src, random candidate).

    Transitions whose ends have no vector are skipped; returns (AUC, transitions scored).
    """
    index = pd.Index(ids)
    s, d = index.get_indexer(src), index.get_indexer(dst)
    ok = (s >= 0) & (d >= 0)
    s, d = s[ok], d[ok]
    unit = normalised(vectors)
    cand = index.get_indexer(candidates)
    cand = cand[cand >= 0]
    neg = np.random.default_rng(seed).choice(cand, size=len(s))
    pos_scores = np.einsum("ij,ij->i", unit[s], unit[d])
    neg_scores = np.einsum("ij,ij->i", unit[s], unit[neg])
    return rank_auc(pos_scores, neg_scores), int(len(s))
