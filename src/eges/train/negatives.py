"""What the trainer samples and how far each row steps, from the node counts of the walks: word2vec's unigram table
of negatives, its down-sampling keep probabilities, and the step scale of each side-information row."""

from __future__ import annotations

import numpy as np

from eges.side_info.encode import SideInfo


def negative_table(counts: np.ndarray, exponent: float, size: int | None = None) -> np.ndarray:
    """Node indices laid out so a uniform draw follows counts**exponent (word2vec's unigram table)."""
    p = counts.astype(np.float64) ** exponent
    p /= p.sum()
    size = size or int(min(max(10 * len(counts), 1_000_000), 50_000_000))
    return np.searchsorted(np.cumsum(p), (np.arange(size) + 0.5) / size).astype(np.int32).clip(0, len(counts) - 1)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's down-sampling: the chance each occurrence of a node is kept (1 for rare nodes)."""
    if sample <= 0:
        return np.ones(len(counts), dtype=np.float64)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.sqrt(counts / threshold) + 1) * threshold / counts
    return np.where(counts > 0, np.minimum(p, 1.0), 1.0)


def side_rates(counts: np.ndarray, side: SideInfo, power: float) -> np.ndarray:
    """Step scale of each side-information value's row: (mean item frequency / the value's frequency)^power, at most
    1, where a value's frequency is its items' occurrences in the walks.

    Why: the row of a value receives the gradient of every item that has it, so with plain steps its norm grows with
    its items' total frequency (on the sample, category rows end three times as long as the items' own rows) and an
    item's H_v points mostly along its category. Scaling each row's step by its frequency, as per-row adaptive
    optimisers do, keeps shared rows on the scale of the item rows (docs/studies/shared-rows.md)."""
    n_nodes = len(counts)
    freq = np.zeros(side.n_values, dtype=np.float64)
    codes = side.codes[:n_nodes]
    for s, off in enumerate(side.field_offset):
        known = codes[:, s] >= 0
        np.add.at(freq, off + codes[known, s], counts[known])
    seen = counts[counts > 0]
    mean_item = float(seen.mean()) if len(seen) else 1.0
    rate = np.ones(side.n_values, dtype=np.float64)
    used = freq > 0
    rate[used] = np.minimum(1.0, mean_item / freq[used]) ** power
    return rate.astype(np.float32)
