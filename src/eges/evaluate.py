"""Scoring vectors against observed transitions (the start of the evaluation issue's toolkit)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rank_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney U / (n_pos * n_neg))."""
    scores = np.concatenate([positive, negative])
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def transition_auc(ids: np.ndarray, vectors: np.ndarray, src: np.ndarray, dst: np.ndarray,
                   candidates: np.ndarray, seed: int = 0) -> tuple[float, int]:
    """AUC of cosine(src, dst) for observed transitions against cosine(src, random candidate).

    Transitions whose ends have no vector are skipped; returns (AUC, transitions scored).
    """
    index = pd.Index(ids)
    s, d = index.get_indexer(src), index.get_indexer(dst)
    ok = (s >= 0) & (d >= 0)
    s, d = s[ok], d[ok]
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cand = index.get_indexer(candidates)
    cand = cand[cand >= 0]
    neg = np.random.default_rng(seed).choice(cand, size=len(s))
    pos_scores = np.einsum("ij,ij->i", unit[s], unit[d])
    neg_scores = np.einsum("ij,ij->i", unit[s], unit[neg])
    return rank_auc(pos_scores, neg_scores), int(len(s))
