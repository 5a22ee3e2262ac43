"""Evaluation kernels: splits, scorers (embeddings and baselines) and metrics. No files are touched here;
the evaluation stages in :mod:`eges.pipeline.evaluate_stage` read and write them."""

from __future__ import annotations

from eges.evaluation.metrics import hits_and_recall, rank_auc, transition_auc

__all__ = ["hits_and_recall", "rank_auc", "transition_auc"]
