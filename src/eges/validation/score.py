"""Scoring item vectors on the validation slice after a pass: HitRate@K and AUC of the next item, link AUC of the
slice's new edges, and cold-start AUC of the hidden items' side-information vectors.

The figures are the ``evaluate`` protocols' (:func:`eges.evaluation.score.score` with a
:class:`eges.evaluation.scorers.CosineScorer`) on the slice's bounded pairs; nothing is written.
"""

from __future__ import annotations

import numpy as np

from eges.evaluation.score import Pairs, score
from eges.evaluation.scorers import CosineScorer
from eges.validation.holdout import Holdout

#: ``validate.metric`` -> the curve's key it reads; ``auc`` falls back to the next-item AUC when the slice has no
#: new links to score (a graph too dense for non-edges).
METRIC_KEYS = {"hitrate": "hitrate", "auc": "link_auc"}


def _value(rows: list[dict], metric: str, k: int = 0) -> float:
    return next((float(r["value"]) for r in rows if r["metric"] == metric and r["k"] == k), float("nan"))


def score_vectors(holdout: Holdout, vectors: np.ndarray, has: np.ndarray, k: int,
                  cold_vectors: np.ndarray | None = None, cold_has: np.ndarray | None = None,
                  centre: bool = False) -> dict[str, float]:
    """{hitrate, next_auc, link_auc, cold_auc, centred} of ``vectors`` (rows = item indices, ``has`` = which have
    one).

    ``cold_vectors``/``cold_has`` are rows for the hidden items (``holdout.hidden``) placed from side information;
    without them the cold AUC is NaN. With ``centre`` the vectors are also scored centred (:func:`shared_direction`
    subtracted from every row, the hidden items' too), and the figures are the centred ones when those score the
    higher AUC (``centred`` True): what the pass would give if the training stage wrote it centred.
    """
    n = holdout.n_items
    matrix = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    rows = min(n, len(vectors))
    matrix[:rows] = vectors[:rows]
    known = np.zeros(n, dtype=bool)
    known[:rows] = has[:rows]
    known &= ~holdout.hidden
    k = min(k, max(int(known.sum()) - 1, 1))
    out = _figures(holdout, matrix, known, k, cold_vectors, cold_has)
    if centre and known.any():
        shift = shared_direction(matrix, known)
        shifted = matrix - shift
        cold_centred = cold_vectors - shift if cold_vectors is not None else None
        centred = _figures(holdout, shifted, known, k, cold_centred, cold_has, with_hitrate=False)
        if metric_value(centred, "auc") > metric_value(out, "auc"):  # a NaN figure never wins
            if len(holdout.temporal):  # the top-k search only for the pass that counts centred
                centred["hitrate"] = _hit_rate(CosineScorer("validation", shifted, known), holdout.temporal, k)
            return {**centred, "centred": True}
    return {**out, "centred": False}


def shared_direction(matrix: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The mean of the rows in ``known``: the direction skip-gram vectors share (validate.try_centred), which the
    training stages subtract from every vector they write when the slice chose centred vectors."""
    return np.asarray(matrix, dtype=np.float64)[known].mean(axis=0).astype(np.float32)


def _figures(holdout: Holdout, matrix: np.ndarray, known: np.ndarray, k: int, cold_vectors: np.ndarray | None,
             cold_has: np.ndarray | None, with_hitrate: bool = True) -> dict[str, float]:
    scorer = CosineScorer("validation", matrix, known)
    pairs = holdout.temporal
    temporal = score("temporal", scorer, "method", pairs) if len(pairs) else []
    hitrate = _hit_rate(scorer, pairs, k) if len(pairs) and with_hitrate else float("nan")
    out = {"hitrate": hitrate, "next_auc": _value(temporal, "auc"),
           "link_auc": _pair_auc(scorer, holdout.link), "cold_auc": float("nan")}
    if holdout.cold is not None and len(holdout.cold) and cold_vectors is not None and cold_has is not None:
        with_cold = scorer.with_rows(np.flatnonzero(holdout.hidden), cold_vectors, cold_has)
        out["cold_auc"] = _pair_auc(with_cold, holdout.cold)
    return out


def _hit_rate(scorer: CosineScorer, pairs: Pairs, k: int) -> float:
    """HitRate@K of the next-item pairs from the targets' ranks (:meth:`CosineScorer.target_ranks`): the figure
    ``evaluate``'s top-K lists give, without building them (docs/benchmarks.md); NaN when no pair can
    be scored (unknown items, or vectors with NaN or infinite entries: a diverged pass never wins)."""
    usable = scorer.usable()
    if not (usable[pairs.query] & usable[pairs.target]).any():
        return float("nan")
    ranks = scorer.target_ranks(pairs.query, pairs.target, usable=usable)
    return float(np.mean((ranks >= 0) & (ranks < k)))


def _pair_auc(scorer: CosineScorer, pairs: Pairs) -> float:
    return _value(score("link", scorer, "method", pairs), "auc") if len(pairs) else float("nan")


def metric_value(row: dict[str, float], metric: str) -> float:
    """The figure ``validate.metric`` optimises in a curve row (NaN when the slice cannot measure it)."""
    value = row.get(METRIC_KEYS[metric], float("nan"))
    if value != value and metric == "auc":
        value = row.get("next_auc", float("nan"))
    return float(value)
