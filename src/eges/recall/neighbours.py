"""Exact top-K nearest neighbours by blocked matrix products and partial sorts (no per-item Python loop).

Each block of query rows is scored against every item with one BLAS matrix product (all cores), the
item itself is excluded, ``argpartition`` picks the K best per row in linear time, and only those K are
sorted. Memory is one block of scores (``block`` x n floats) at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def top_k_blocks(vectors: np.ndarray, k: int, metric: str = "cosine",
                 block: int = 2048) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (first row, neighbour indices, scores) per block of rows; neighbours best first.

    Raises:
        ValueError: ``k`` is not below the number of items, or the metric is unknown.
    """
    n = len(vectors)
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and the number of items minus one ({n - 1}), got {k}")
    if metric not in ("cosine", "dot"):
        raise ValueError(f"metric must be 'cosine' or 'dot', got {metric!r}")
    mat = normalised(vectors) if metric == "cosine" else np.ascontiguousarray(vectors, dtype=np.float32)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        scores = mat[lo:hi] @ mat.T
        scores[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf  # an item is not its own neighbour
        part = np.argpartition(scores, -k, axis=1)[:, -k:]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        yield lo, np.take_along_axis(part, order, axis=1).astype(np.int32), np.take_along_axis(part_scores, order, axis=1)


def top_k(vectors: np.ndarray, k: int, metric: str = "cosine", block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """All neighbours at once: (indices (n, k) int32, scores (n, k) float32)."""
    idx = np.empty((len(vectors), k), dtype=np.int32)
    val = np.empty((len(vectors), k), dtype=np.float32)
    for lo, i, s in top_k_blocks(vectors, k, metric, block):
        idx[lo:lo + len(i)] = i
        val[lo:lo + len(i)] = s
    return idx, val
