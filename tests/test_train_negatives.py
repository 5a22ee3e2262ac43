"""What the trainer samples: word2vec's unigram table of negatives and its down-sampling keep probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from eges.train.negatives import keep_probabilities, negative_table


def test_negative_table_follows_unigram_power():
    counts = np.array([1, 0, 8, 27])
    table = negative_table(counts, 0.75, size=100_000)
    freq = np.bincount(table, minlength=4) / len(table)
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(freq, expected, atol=1e-3)


def test_negatives_follow_counts_to_the_three_quarters():
    """A uniform (or raw-count) negative table would fail: the draw frequencies follow counts ** 0.75."""
    counts = np.array([1, 10, 100, 1000, 0])
    table = negative_table(counts, 0.75, size=1_000_000)
    freq = np.bincount(table, minlength=5) / len(table)
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(freq, expected, atol=2e-3)
    assert freq[4] == 0  # a node no walk visits is never a negative


def test_down_sampling_keeps_rare_nodes_and_thins_frequent_ones():
    """word2vec's rule: keep probability 1 for rare nodes, falling with frequency (inverted, it would fail)."""
    counts = np.array([1, 10, 100, 10_000, 1_000_000])
    keep = keep_probabilities(counts, 1e-3)
    assert keep[0] == keep[1] == 1.0 and np.all(np.diff(keep) <= 0) and keep[-1] < 0.1
    threshold = 1e-3 * counts.sum()
    assert keep[-1] == pytest.approx((np.sqrt(counts[-1] / threshold) + 1) * threshold / counts[-1])
    np.testing.assert_array_equal(keep_probabilities(counts, 0), np.ones(5))
