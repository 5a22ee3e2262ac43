"""Settings chosen on a held-out slice of the user's own log: the slice (holdout), per-pass scoring (score), and
early stopping and the choice of method (select), the later trials (variants) and their order within the token
budget (sequence). Pure arrays; the validate stage reads and writes the files."""

from __future__ import annotations

from eges.validation.holdout import Holdout, made_undirected, make_edge_holdout, make_holdout
from eges.validation.score import METRIC_KEYS, metric_value, score_vectors
from eges.validation.select import Trial, choose, fit_and_score, training_walks

__all__ = ["METRIC_KEYS", "Holdout", "Trial", "choose", "fit_and_score", "made_undirected", "make_edge_holdout",
           "make_holdout", "metric_value",
           "score_vectors", "training_walks"]
