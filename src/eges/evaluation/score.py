"""Scoring every method and baseline on one protocol's pairs: the rows of a metrics table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eges.evaluation.metrics import hits_and_recall, rank_auc


@dataclass(frozen=True)
class Pairs:
    """A protocol's test: positive pairs (query -> target) and as many negative pairs.

    Next-item and cold start pair each query with a random item; link prediction draws negative node pairs
    with no edge, independent of the positives (so ``neg_query`` is separate).
    """

    query: np.ndarray
    target: np.ndarray
    neg_query: np.ndarray
    neg_target: np.ndarray

    def __len__(self) -> int:
        return len(self.query)


def score(protocol: str, scorer: Any, kind: str, pairs: Pairs, ks: Sequence[int] = ()) -> list[dict[str, Any]]:
    """AUC of positives against negatives (and HitRate@K / Recall@K of the targets among each query's K nearest
    when ``ks`` is given) for one scorer.

    A pair the scorer cannot score (an item it has no vector for) counts as a miss: it ranks below every scored
    pair. Every scorer is measured on the same pairs, so ``coverage`` (the share of positives it could score)
    is reported beside each figure; a scorer that covers nothing reports NaN.
    """
    pos = scorer.pairs(pairs.query, pairs.target)
    neg = scorer.pairs(pairs.neg_query, pairs.neg_target)
    coverage = float(np.mean(~np.isnan(pos))) if len(pos) else 0.0
    base = {"protocol": protocol, "method": scorer.name, "kind": kind, "pairs": len(pairs), "coverage": coverage}
    if coverage == 0:
        auc = float("nan")
    else:
        auc = rank_auc(np.nan_to_num(pos, nan=-np.inf), np.nan_to_num(neg, nan=-np.inf))
    rows = [{**base, "metric": "auc", "k": 0, "value": auc}]
    if ks:
        queries, query_of_pair = np.unique(pairs.query, return_inverse=True)
        neighbours = scorer.top_k(queries, max(ks))
        for k, (hit, recall) in hits_and_recall(neighbours, query_of_pair, pairs.target, ks).items():
            rows.append({**base, "metric": "hit_rate", "k": k, "value": hit if coverage else float("nan")})
            rows.append({**base, "metric": "recall", "k": k, "value": recall if coverage else float("nan")})
    return rows


def summary(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{method: {'auc': .., 'hit_rate@10': .., ...}} for the JSON summary and the one-line report."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        name = r["metric"] if not r["k"] else f"{r['metric']}@{r['k']}"
        value = r["value"]
        out.setdefault(r["method"], {})[name] = None if value != value else round(float(value), 4)
        out[r["method"]]["coverage"] = round(r["coverage"], 4)
    return out
