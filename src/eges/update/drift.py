"""How far a run's item vectors moved from a reference run's (yesterday's, or the run aligned to): pure numpy.

For the items both runs have (joined by item id) it measures the median cosine between each item's two vectors,
the same after the best rotation of this run onto the reference (``align.rotation``: a change that is only a
rotation reads 1.0 there), and the overlap of their top-k neighbours. Neighbours are searched among the shared
items only, in each run, so an item new today cannot lower the overlap; the queries are a seeded sample of at most
``queries`` shared items, so the measure stays cheap on millions of items (k neighbours of q queries cost q x n).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from eges.recall.neighbours import normalised, top_k_rows
from eges.update.align import rotation


@dataclass(frozen=True)
class Drift:
    """The drift of a run against a reference run (the manifest details and ``drift/drift.json``)."""

    shared: int  # items in both runs
    new: int  # items only in this run
    dropped: int  # items only in the reference
    median_cosine: float  # median over shared items of cos(reference vector, this run's vector); nan if none shared
    median_cosine_rotated: float  # the same after the best rotation of this run onto the reference
    neighbour_overlap: float  # mean share of a query item's top-k neighbours found in both runs (among shared items)
    k: int  # neighbours compared per query item (k, or fewer when few items are shared)
    queries: int  # query items sampled for the overlap

    def as_dict(self) -> dict[str, Any]:
        return {key: (None if isinstance(value, float) and np.isnan(value) else value)
                for key, value in asdict(self).items()}

    def summary(self) -> str:
        return (f"median cosine {_fmt(self.median_cosine)} ({_fmt(self.median_cosine_rotated)} after the best "
                f"rotation), top-{self.k} overlap {_fmt(self.neighbour_overlap)}, {self.new:,} new, "
                f"{self.dropped:,} dropped, {self.shared:,} shared")


def _fmt(value: float) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.2f}"


def shared_rows(reference_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows in the reference, rows in this run) of the items both hold, in the order of this run's rows.

    Ids are unique within a run (a vectors file holds each item once); integer and text ids never match each other.
    """
    reference_ids, ids = np.asarray(reference_ids), np.asarray(ids)
    if len(reference_ids) == 0 or len(ids) == 0 or id_kind(reference_ids) != id_kind(ids):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    _, ref_rows, rows = np.intersect1d(reference_ids, ids, assume_unique=True, return_indices=True)
    order = np.argsort(rows, kind="stable")
    return ref_rows[order].astype(np.int64), rows[order].astype(np.int64)


def id_kind(ids: np.ndarray) -> str:
    """'int' or 'text': which ids can equal which (an object array takes its first value's kind)."""
    if ids.dtype.kind in "iu":
        return "int"
    if ids.dtype.kind == "O" and len(ids) and isinstance(ids[0], (int, np.integer)):
        return "int"
    return "text"


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b`` (0 where either row is zero)."""
    return np.einsum("ij,ij->i", normalised(a), normalised(b), dtype=np.float64)


#: Scores (float32) one block of queries holds against every shared item.
SCORES_PER_BLOCK = 1 << 26


def neighbour_overlap(reference: np.ndarray, vectors: np.ndarray, k: int, queries: int,
                      seed: int) -> tuple[float, int, int]:
    """Mean share of the top-k cosine neighbours two aligned matrices (row i = the same item) agree on, over a
    seeded sample of at most ``queries`` rows. Returns (overlap, k used, queries used); k shrinks to n - 1 when few
    items are shared, and fewer than two items give nan."""
    n = len(vectors)
    k = min(k, n - 1)
    if k < 1:
        return float("nan"), 0, 0
    rows = np.arange(n) if queries >= n else np.sort(np.random.default_rng(seed).choice(n, queries, replace=False))
    block = max(1, min(1024, SCORES_PER_BLOCK // n))  # a block of scores stays near 256 MB on millions of items
    mine, _ = top_k_rows(vectors, rows, k, block=block)
    theirs, _ = top_k_rows(reference, rows, k, block=block)
    both = (mine[:, :, None] == theirs[:, None, :]) & (mine[:, :, None] >= 0)
    return float(both.any(axis=2).sum(axis=1).mean() / k), k, len(rows)


def measure(reference_ids: np.ndarray, reference: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int = 10,
            queries: int = 2_000, seed: int = 0) -> Drift:
    """The drift of (``ids``, ``vectors``) against (``reference_ids``, ``reference``); the dimensions may differ
    only when no item is shared."""
    ref_rows, rows = shared_rows(reference_ids, ids)
    shared = len(rows)
    new, dropped = len(ids) - shared, len(reference_ids) - shared
    if shared == 0:
        return Drift(0, new, dropped, float("nan"), float("nan"), float("nan"), 0, 0)
    ref_shared = np.asarray(reference[ref_rows], dtype=np.float64)
    own_shared = np.asarray(vectors[rows], dtype=np.float64)
    if ref_shared.shape[1] != own_shared.shape[1]:
        raise ValueError(f"the runs' vectors have dimensions {ref_shared.shape[1]} and {own_shared.shape[1]}")
    cosine = float(np.median(row_cosines(ref_shared, own_shared)))
    rotated = own_shared @ rotation(own_shared, ref_shared)
    cosine_rotated = float(np.median(row_cosines(ref_shared, rotated)))
    overlap, k_used, n_queries = neighbour_overlap(ref_shared, own_shared, k, queries, seed)
    return Drift(shared, new, dropped, cosine, cosine_rotated, overlap, k_used, n_queries)
