"""Walks per node by rule (``walks.walks_per_node = 0``): a node's walks follow its out-weight (or the mean
out-weight, if that is more), an explicit count wins, and the walks are the seed's whatever the other nodes'
counts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eges.config import WalksConfig
from eges.graph.csr import from_edges
from eges.walks.generate import RULE_MAX_WALKS, node_walks, random_walks_array, total_walks


def _graph(scale: float = 1.0):
    """Node 0: one transition out; node 1: 2 + 3; node 2: 10; node 3: 7 to itself; node 4: dangling. Mean
    out-weight 23 / 4 = 5.75."""
    src, dst = np.array([0, 1, 1, 2, 3]), np.array([1, 2, 0, 4, 3])
    return from_edges(src, dst, np.array([1.0, 2.0, 3.0, 10.0, 7.0]) * scale, 5)


def _starts(walks: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(walks[:, 0], minlength=n)


def test_the_rule_gives_each_node_its_walks_on_a_fixed_graph():
    g = _graph()
    cfg = WalksConfig(walk_length=4, walks_per_node=0, walks_per_transition=1.0, seed=5)
    expected = [6, 6, 10, 7, 0]  # ceil(max(out-weight, 5.75)); none from a dangling node
    assert node_walks(g, cfg).tolist() == expected
    walks = random_walks_array(g, cfg)
    assert _starts(walks, 5).tolist() == expected
    assert total_walks(g, cfg) == len(walks) == sum(expected)
    half = WalksConfig(walk_length=4, walks_per_node=0, walks_per_transition=0.5, seed=5)
    assert node_walks(g, half).tolist() == [3, 3, 5, 4, 0]
    many = WalksConfig(walk_length=4, walks_per_node=0, walks_per_transition=3.0, seed=5)
    assert node_walks(g, many).tolist() == [18, 18, RULE_MAX_WALKS, RULE_MAX_WALKS, 0]  # at most 20
    tiny = WalksConfig(walk_length=4, walks_per_node=0, walks_per_transition=0.01, seed=5)
    assert node_walks(g, tiny).tolist() == [1, 1, 1, 1, 0]  # at least one from every start node


def test_out_weight_counts_in_the_smallest_edge_weight():
    """An edge list's weights in any unit give the counts of transition counts (the unit is the smallest weight)."""
    cfg = WalksConfig(walks_per_node=0, walks_per_transition=1.0)
    assert node_walks(_graph(0.25), cfg).tolist() == node_walks(_graph(), cfg).tolist() == [6, 6, 10, 7, 0]


def test_an_explicit_count_wins():
    g = _graph()
    for n in (1, 7, 40):
        cfg = WalksConfig(walk_length=4, walks_per_node=n, walks_per_transition=3.0, seed=5)
        assert _starts(random_walks_array(g, cfg), 5).tolist() == [n, n, n, n, 0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11), st.integers(1, 9)), min_size=1, max_size=40),
       st.sampled_from([0.3, 1.0, 2.0, 3.0]), st.integers(0, 2**31 - 1), st.sampled_from([7, 50, 1_000_000]))
def test_rule_walks_are_the_explicit_walks_of_their_rounds(edges, rate, seed, batch):
    """Whatever the graph: node v starts ``clip(ceil(rate x max(out-weight, mean)), 1, 20)`` walks, and they are
    exactly the first rounds' walks from v of an explicit 20 a node (same seed), in the same order, whatever the
    batching."""
    src, dst, weight = (np.array(c) for c in zip(*edges, strict=True))
    g = from_edges(src, dst, weight.astype(float), 12)
    rule = random_walks_array(g, WalksConfig(walk_length=5, walks_per_node=0, walks_per_transition=rate,
                                             seed=seed, batch_walks=batch))
    full = random_walks_array(g, WalksConfig(walk_length=5, walks_per_node=RULE_MAX_WALKS, seed=seed))
    out = np.array([g.weights[g.indptr[v]:g.indptr[v + 1]].sum() for v in range(12)])  # out-weight, one by one
    unit, starts = g.weights.min(), np.diff(g.indptr) > 0
    mean = g.weights.sum() / starts.sum()
    want = np.where(starts, np.clip(np.ceil(rate * np.maximum(out, mean) / unit - 1e-9), 1, RULE_MAX_WALKS), 0)
    assert _starts(rule, 12).tolist() == want.astype(int).tolist()
    n_starts = int((np.diff(g.indptr) > 0).sum())
    rounds = np.repeat(np.arange(RULE_MAX_WALKS), n_starts)  # the explicit walks come round by round
    keep = want[full[:, 0]] > rounds
    np.testing.assert_array_equal(rule, full[keep])


def test_same_seed_same_walks_by_rule_whatever_threads_and_batches():
    rng = np.random.default_rng(3)
    g = from_edges(rng.integers(0, 60, 400), rng.integers(0, 60, 400), rng.integers(1, 4, 400).astype(float), 60)
    runs = [random_walks_array(g, WalksConfig(walk_length=6, walks_per_node=0, seed=9, threads=t, batch_walks=b))
            for t, b in ((1, 1_000_000), (2, 37), (0, 500))]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    other = random_walks_array(g, WalksConfig(walk_length=6, walks_per_node=0, seed=10))
    assert not np.array_equal(runs[0], other)
