"""Walk kernels: alias tables are exact, walks follow edges, neighbours are picked in proportion to weight."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eges.config import WalksConfig
from eges.graph.csr import from_edges
from eges.walks.generate import batch_to_arrow, numba_threads, random_walks_array
from eges.walks.kernels import build_alias, pack_edges


def alias_distribution(prob, alias, lo, deg):
    """The exact sampling distribution an alias table encodes."""
    p = np.zeros(deg)
    for k in range(deg):
        p[k] += prob[lo + k]
        p[alias[lo + k]] += 1 - prob[lo + k]
    return p / deg


def test_alias_tables_encode_the_weights_exactly():
    g = from_edges(np.array([0, 0, 0, 0, 1, 1]), np.array([1, 2, 3, 4, 0, 2]),
                   np.array([1.0, 2.0, 3.0, 4.0, 5.0, 5.0]), 5)
    prob, alias = build_alias(g.indptr, g.weights)
    np.testing.assert_allclose(alias_distribution(prob, alias, 0, 4), [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(alias_distribution(prob, alias, 4, 2), [0.5, 0.5])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.01, 100.0), min_size=1, max_size=30))
def test_alias_property(weights):
    w = np.array(weights)
    g = from_edges(np.zeros(len(w), dtype=np.int64), np.arange(len(w)), w, len(w))
    prob, alias = build_alias(g.indptr, g.weights)
    np.testing.assert_allclose(alias_distribution(prob, alias, 0, len(w)), w / w.sum(), atol=1e-9)


def test_walks_follow_edges_and_stop_at_dangling_nodes():
    # 0 -> 1 -> 2 (dangling); 3 <-> 4 cycle.
    g = from_edges(np.array([0, 1, 3, 4]), np.array([1, 2, 4, 3]), None, 5)
    walks = random_walks_array(g, WalksConfig(walk_length=5, walks_per_node=2, seed=1))
    assert walks.shape == (8, 5)  # 4 start nodes with out-edges x 2
    rows = {tuple(w) for w in walks.tolist()}
    assert rows == {(0, 1, 2, -1, -1), (1, 2, -1, -1, -1), (3, 4, 3, 4, 3), (4, 3, 4, 3, 4)}


def test_neighbours_are_picked_in_proportion_to_weight():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    g = from_edges(np.zeros(4, dtype=np.int64), np.arange(1, 5), w, 5)
    walks = random_walks_array(g, WalksConfig(walk_length=2, walks_per_node=40_000, seed=3))
    freq = np.bincount(walks[:, 1], minlength=5)[1:] / len(walks)
    # 40,000 draws: the standard error of each frequency is under 0.0025.
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.01)


def test_same_seed_same_walks_whatever_the_threads():
    rng = np.random.default_rng(0)
    g = from_edges(rng.integers(0, 300, 3000), rng.integers(0, 300, 3000), rng.random(3000) + 0.1, 300)
    cfg = WalksConfig(walk_length=8, walks_per_node=3, seed=11, batch_walks=200)
    with numba_threads(1):
        one = random_walks_array(g, cfg)
    two = random_walks_array(g, WalksConfig(walk_length=8, walks_per_node=3, seed=11, threads=2, batch_walks=500))
    np.testing.assert_array_equal(one, two)
    other = random_walks_array(g, WalksConfig(walk_length=8, walks_per_node=3, seed=12))
    assert not np.array_equal(one, other)


def test_rounds_packed_into_one_call_give_the_walks_of_one_call_per_round():
    """A graph with few start nodes packs many rounds into one kernel call: the walks, their order and their
    seeds are those of calls of a single walk each (batch_walks=1) and of one round per call (batch_walks=7)."""
    rng = np.random.default_rng(4)
    g = from_edges(rng.integers(0, 7, 30), rng.integers(0, 7, 30), rng.random(30) + 0.1, 7)
    runs = [random_walks_array(g, WalksConfig(walk_length=6, walks_per_node=50, seed=9, batch_walks=size))
            for size in (1, 7, 20, 1_000_000)]
    assert runs[0].shape == (7 * 50, 6)
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0], other)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.floats(0.1, 5.0)), min_size=1, max_size=40),
       st.integers(2, 12), st.integers(0, 2**31))
def test_every_step_is_an_edge(edges, length, seed):
    src, dst, w = (np.array(x) for x in zip(*edges))
    g = from_edges(src, dst, w, 10)
    walks = random_walks_array(g, WalksConfig(walk_length=length, walks_per_node=2, seed=seed))
    existing = {(int(s), int(d)) for s, d in zip(src, dst)}
    for walk in walks:
        steps = walk[walk >= 0]
        assert all((int(a), int(b)) in existing for a, b in zip(steps, steps[1:]))
        # A walk ends early only at a node without out-edges.
        if len(steps) < length:
            assert g.out_degree()[steps[-1]] == 0


def test_packed_table_and_arrow_conversion():
    g = from_edges(np.array([0, 0]), np.array([1, 2]), np.array([1.0, 3.0]), 3)
    prob, alias = build_alias(g.indptr, g.weights)
    table = pack_edges(g.indptr, g.indices, prob, alias)
    assert table.shape == (2, 3) and set(table[:, 1]) == {1, 2}
    arr = batch_to_arrow(np.array([[0, 1, -1], [0, 2, 1]], dtype=np.int32))
    assert arr.to_pylist() == [[0, 1], [0, 2, 1]]
