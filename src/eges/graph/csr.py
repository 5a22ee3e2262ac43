"""The item graph as CSR arrays ``(indptr, indices, weights)``: construction, statistics, interop.

Pure array code: nothing here reads or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CSRGraph:
    """A weighted directed graph; out-edges of node v are ``indices[indptr[v]:indptr[v+1]]``."""

    indptr: np.ndarray  # int64, n_nodes + 1
    indices: np.ndarray  # int32, n_edges
    weights: np.ndarray  # float64, n_edges

    @property
    def n_nodes(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_edges(self) -> int:
        return len(self.indices)

    def out_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def to_networkx(self, node_ids: Any = None) -> Any:
        """This graph as a weighted ``networkx.DiGraph`` (see :func:`to_networkx`)."""
        return to_networkx(self, node_ids)


def from_edges(src: np.ndarray, dst: np.ndarray, weight: np.ndarray | None, n_nodes: int) -> CSRGraph:
    """Build a CSR graph from an edge list of node indices (duplicate edges have their weights summed).

    Raises:
        ValueError: an index is outside ``[0, n_nodes)`` or a weight is negative or not finite.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    w = np.ones(len(src)) if weight is None else np.asarray(weight, dtype=np.float64)
    if len(src) and (src.min() < 0 or dst.min() < 0 or src.max() >= n_nodes or dst.max() >= n_nodes):
        raise ValueError(f"edge endpoints must lie in [0, {n_nodes})")
    if len(w) and (not np.isfinite(w).all() or w.min() < 0):
        raise ValueError("edge weights must be finite and non-negative")
    key = src * n_nodes + dst
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    summed = np.add.reduceat(w[order], starts) if len(starts) else np.zeros(0)
    ukey = key[starts]
    usrc = ukey // n_nodes if n_nodes else ukey
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(usrc, minlength=n_nodes), out=indptr[1:])
    return CSRGraph(indptr, (ukey % max(n_nodes, 1)).astype(np.int32), summed.astype(np.float64))


def from_sorted_edges(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n_nodes: int) -> CSRGraph:
    """CSR arrays from an edge list already sorted by (src, dst) without duplicates: no sort needed."""
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    return CSRGraph(indptr, np.array(dst, dtype=np.int32), np.array(weight, dtype=np.float64))


def symmetrized(graph: CSRGraph) -> CSRGraph:
    """The undirected form of a directed graph: i->j and j->i merged into one edge each way, weights summed
    (a self-loop kept once), the rule of ``graph.undirected`` applied to a graph already built. The validate stage
    walks it when the slice finds the undirected graph scores higher (``validate.try_undirected``);
    :func:`eges.graph.transitions.symmetrized_edges_sql` is the same rule for Spark."""
    src = edge_sources(graph)
    back = src != graph.indices
    return from_edges(np.concatenate([src, graph.indices[back]]), np.concatenate([graph.indices, src[back]]),
                      np.concatenate([graph.weights, graph.weights[back]]), graph.n_nodes)


def edge_sources(graph: CSRGraph) -> np.ndarray:
    """The source node of every edge, aligned with ``graph.indices``."""
    return np.repeat(np.arange(graph.n_nodes, dtype=np.int32), np.diff(graph.indptr))


def graph_stats(graph: CSRGraph, sources: np.ndarray | None = None) -> dict[str, Any]:
    """Nodes, edges, dangling nodes, weakly connected components and degree quantiles (see ``graph.stats``).
    ``sources``: the edges' source nodes if the caller already has them (``edge_sources``), to save a copy."""
    from eges.graph.stats import GraphStatsAccumulator

    acc = GraphStatsAccumulator(graph.n_nodes)
    acc.add(edge_sources(graph) if sources is None else sources, graph.indices, graph.weights)
    return acc.result()


def to_networkx(graph: CSRGraph, node_ids: Any = None) -> Any:
    """A ``networkx.DiGraph`` with a ``weight`` on every edge; nodes are ``node_ids[i]`` if given, else i."""
    import networkx as nx

    g = nx.DiGraph()
    ids = list(range(graph.n_nodes)) if node_ids is None else list(node_ids)
    g.add_nodes_from(ids)
    src = edge_sources(graph)
    g.add_weighted_edges_from(
        (ids[s], ids[d], w) for s, d, w in zip(src.tolist(), graph.indices.tolist(), graph.weights.tolist())
    )
    return g


def from_networkx(g: Any, weight: str = "weight") -> tuple[CSRGraph, list[Any]]:
    """The CSR form of a networkx graph (undirected graphs get both directions) and its node ids."""
    nodes = list(g.nodes())
    index = {v: i for i, v in enumerate(nodes)}
    src, dst, w = [], [], []
    for a, b, data in g.edges(data=True):
        src.append(index[a])
        dst.append(index[b])
        w.append(float(data.get(weight, 1.0)))
        if not g.is_directed() and a != b:
            src.append(index[b])
            dst.append(index[a])
            w.append(float(data.get(weight, 1.0)))
    return from_edges(np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), np.array(w), len(nodes)), nodes
