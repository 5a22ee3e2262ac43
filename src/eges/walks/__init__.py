"""Weighted random walks: compiled alias-sampling kernels and batched generation."""

from __future__ import annotations

from eges.walks.generate import batch_to_arrow, iter_walk_batches, random_walks_array

__all__ = ["batch_to_arrow", "iter_walk_batches", "random_walks_array"]
