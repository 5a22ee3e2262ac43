"""Evaluation: splits, scorers (embeddings and baselines) and metrics are pure kernels that touch no files;
``protocols`` (link, temporal, cold) and ``nested`` (nested training runs, split files) run them over a run
folder through the pipeline's io, and :mod:`eges.pipeline.evaluate_stage` registers the protocols as stages."""

from __future__ import annotations

from eges.evaluation.metrics import hits_and_recall, rank_auc, transition_auc

__all__ = ["hits_and_recall", "rank_auc", "transition_auc"]
