"""An update's training walks focused on what the new events touched (``update.other_walks``): pure arrays.

Most of what an update must learn sits around the items its new events touched (new items, new edges); the rest of
the graph already holds the parent's rows. Keeping every walk that starts at a touched item, and a seeded share of
the others (so old items keep being trained and do not drift), spends an update's tokens where the change is and
buys more passes for the same time.
"""

from __future__ import annotations

import numpy as np


def touched_items(item: np.ndarray, ts: np.ndarray, n_items: int, since_ms: int,
                  before_ms: int | None = None) -> np.ndarray:
    """bool per item: it has an event after ``since_ms`` (the parent's newest event) and before ``before_ms``."""
    late = np.asarray(ts) > since_ms
    if before_ms is not None:
        late &= np.asarray(ts) < before_ms
    touched = np.zeros(n_items, dtype=bool)
    touched[np.asarray(item, dtype=np.int64)[late]] = True
    return touched


def kept_walks(starts: np.ndarray, touched: np.ndarray, share: float, seed: int) -> np.ndarray:
    """bool per walk: it starts at a touched item, or it is in the seeded ``share`` of the others."""
    rng = np.random.default_rng(seed)
    return touched[np.asarray(starts, dtype=np.int64)] | (rng.random(len(starts)) < share)


def filter_walks(values: np.ndarray, offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kept walks of (flat node indices, offsets)."""
    lengths = np.diff(offsets)
    out = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=out[1:])
    return values[np.repeat(keep, lengths)], out


def training_counts(kept_counts: np.ndarray, all_counts: np.ndarray) -> np.ndarray:
    """Token counts of the kept walks, at least 1 for every item some walk visits: the trainer gives an item its
    own row (and the stage a vector) by its count, so an item only the dropped walks visit keeps its parent row."""
    return np.maximum(kept_counts, (np.asarray(all_counts) > 0).astype(kept_counts.dtype))
