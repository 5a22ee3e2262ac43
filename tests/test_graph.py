"""Graph kernels: edge weights equal transition counts; CSR, statistics and networkx interop."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eges.api import build_graph
from eges.config import GraphConfig
from eges.graph.csr import from_edges, from_networkx, graph_stats, to_networkx


def sessions_table(seqs: list[list[int]]) -> pa.Table:
    user, sess, pos, item = [], [], [], []
    for k, seq in enumerate(seqs):
        for p, i in enumerate(seq):
            user.append(k % 3)
            sess.append(k)
            pos.append(p)
            item.append(i)
    return pa.table({"user_id": user, "session": pa.array(sess, pa.int32()), "position": pa.array(pos, pa.int32()),
                     "item_index": pa.array(item, pa.int32())})


def edge_dict(g) -> dict[tuple[int, int], float]:
    src = np.repeat(np.arange(g.n_nodes), np.diff(g.indptr))
    return {(int(s), int(d)): float(w) for s, d, w in zip(src, g.indices, g.weights)}


def test_weights_are_transition_counts():
    g = build_graph(sessions_table([[0, 1, 2], [0, 1], [2, 0, 1], [1, 0]]), n_items=4)
    assert edge_dict(g) == {(0, 1): 3.0, (1, 2): 1.0, (2, 0): 1.0, (1, 0): 1.0}
    assert g.n_nodes == 4 and g.out_degree().tolist() == [1, 2, 1, 0]


def test_undirected_and_min_weight():
    seqs = [[0, 1, 2], [0, 1], [1, 0]]
    g = build_graph(sessions_table(seqs), 3, GraphConfig(undirected=True))
    assert edge_dict(g) == {(0, 1): 3.0, (1, 0): 3.0, (1, 2): 1.0, (2, 1): 1.0}
    g = build_graph(sessions_table(seqs), 3, GraphConfig(min_edge_weight=2))
    assert edge_dict(g) == {(0, 1): 2.0}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), min_size=2, max_size=8), min_size=1, max_size=12))
def test_weights_match_counting_in_python(seqs):
    expected = Counter((a, b) for seq in seqs for a, b in zip(seq, seq[1:]))
    g = build_graph(sessions_table(seqs), n_items=7)
    assert edge_dict(g) == {k: float(v) for k, v in expected.items()}
    assert g.weights.sum() == sum(len(s) - 1 for s in seqs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=7), min_size=1, max_size=10),
       st.booleans(), st.integers(1, 3))
def test_counting_sort_kernel_matches_python_in_every_mode(seqs, undirected, min_weight):
    counted: Counter[tuple[int, int]] = Counter()
    for seq in seqs:
        for a, b in zip(seq, seq[1:]):
            counted[(a, b)] += 1
            if undirected and a != b:
                counted[(b, a)] += 1
    expected = {k: float(v) for k, v in counted.items() if v >= min_weight}
    g = build_graph(sessions_table(seqs), 6, GraphConfig(undirected=undirected, min_edge_weight=min_weight))
    assert edge_dict(g) == expected
    for v in range(g.n_nodes):  # destinations ascending within each source, as the CSR consumers expect
        row = g.indices[g.indptr[v]:g.indptr[v + 1]]
        assert (np.diff(row) > 0).all()


def test_build_graph_sorts_rows_and_checks_indices():
    rows = sessions_table([[0, 1, 2], [2, 1]])
    shuffled = rows.take(pa.array([4, 2, 0, 3, 1]))
    assert edge_dict(build_graph(shuffled, 3)) == {(0, 1): 1.0, (1, 2): 1.0, (2, 1): 1.0}
    with pytest.raises(ValueError, match="item_index"):
        build_graph(rows, 2)


def test_from_edges_sums_duplicates_and_checks_range():
    g = from_edges(np.array([2, 0, 2, 0]), np.array([1, 1, 1, 2]), np.array([1.0, 2.0, 0.5, 1.0]), 3)
    assert g.indptr.tolist() == [0, 2, 2, 3]
    assert edge_dict(g) == {(0, 1): 2.0, (0, 2): 1.0, (2, 1): 1.5}
    with pytest.raises(ValueError):
        from_edges(np.array([0]), np.array([3]), None, 3)
    with pytest.raises(ValueError):
        from_edges(np.array([0]), np.array([1]), np.array([-1.0]), 3)


def test_stats_on_a_fixed_graph():
    # 0->1->2 and 3->4, plus node 5 alone: three weak components; 2, 4, 5 are dangling.
    g = from_edges(np.array([0, 1, 3]), np.array([1, 2, 4]), np.array([1.0, 2.0, 3.0]), 6)
    stats = graph_stats(g)
    assert stats["nodes"] == 6 and stats["edges"] == 3
    assert stats["dangling_nodes"] == 3
    assert stats["weak_components"] == 3 and stats["largest_component_nodes"] == 3
    assert stats["total_weight"] == 6.0
    assert stats["out_degree"]["max"] == 1.0 and stats["in_degree"]["max"] == 1.0


def test_networkx_roundtrip():
    g = from_edges(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([1.0, 4.0, 2.0]), 3)
    ng = to_networkx(g, node_ids=["a", "b", "c"])
    assert nx.utils.graphs_equal(ng, g.to_networkx(["a", "b", "c"]))
    assert isinstance(ng, nx.DiGraph)
    assert ng["a"]["c"]["weight"] == 4.0 and ng.number_of_edges() == 3
    back, nodes = from_networkx(ng)
    assert nodes == ["a", "b", "c"]
    assert edge_dict(back) == edge_dict(g)
    undirected, _ = from_networkx(nx.Graph([(0, 1)]))
    assert edge_dict(undirected) == {(0, 1): 1.0, (1, 0): 1.0}


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), max_size=60))
def test_weak_components_match_networkx(n, edges):
    from eges.graph.components import component_labels, union_edges

    edges = [(a % n, b % n) for a, b in edges]
    parent = np.arange(n, dtype=np.int64)  # as graph.stats joins them: edge batches into one union-find
    union_edges(parent, np.array([a for a, _ in edges], dtype=np.int64), np.array([b for _, b in edges], dtype=np.int64))
    labels = component_labels(parent)
    ng = nx.DiGraph()
    ng.add_nodes_from(range(n))
    ng.add_edges_from(edges)
    expected = list(nx.weakly_connected_components(ng))
    assert len(set(labels.tolist())) == len(expected)
    for comp in expected:
        assert len({labels[v] for v in comp}) == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), min_size=1, max_size=60),
       st.integers(1, 5), st.randoms(use_true_random=False))
def test_stats_from_batches_in_any_order_match_the_whole_graph(n, edges, n_batches, rnd):
    """The Spark graph stage adds its streamed row groups one by one; the result must not depend on the cut."""
    from eges.graph.stats import GraphStatsAccumulator

    edges = sorted({(a % n, b % n) for a, b in edges})
    src = np.array([a for a, _ in edges], dtype=np.int32)
    dst = np.array([b for _, b in edges], dtype=np.int32)
    weight = np.arange(1, len(edges) + 1, dtype=np.float64)
    whole = graph_stats(from_edges(src, dst, weight, n))
    order = list(range(len(edges)))
    rnd.shuffle(order)
    acc = GraphStatsAccumulator(n)
    for part in np.array_split(np.array(order, dtype=np.int64), n_batches):
        acc.add(src[part], dst[part], weight[part])
    assert acc.result() == whole
    ng = nx.DiGraph()
    ng.add_nodes_from(range(n))
    ng.add_edges_from(edges)
    assert whole["weak_components"] == nx.number_weakly_connected_components(ng)
    assert whole["largest_component_nodes"] == max(len(c) for c in nx.weakly_connected_components(ng))
    assert whole["self_loops"] == nx.number_of_selfloops(ng)
    assert whole["dangling_nodes"] == sum(1 for v in ng if ng.out_degree(v) == 0)
