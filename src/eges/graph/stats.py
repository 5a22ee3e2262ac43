"""The graph stage's statistics (``graph/stats.json``), accumulated over batches of edges.

Both engines use this one accumulator: the local path adds its CSR arrays in one call, the Spark path adds each
row group as it streams the edges from Spark's parts into the contract file. What it keeps is per node (two
degree counters and a union-find parent, 24 bytes a node), so the driver never holds the edges.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from eges.graph.components import component_labels, union_edges

QUANTILES = (0.5, 0.9, 0.99)


@njit(cache=True)
def _count_degrees(out_deg: np.ndarray, in_deg: np.ndarray, src: np.ndarray, dst: np.ndarray) -> int:
    loops = 0
    for e in range(len(src)):
        out_deg[src[e]] += 1
        in_deg[dst[e]] += 1
        if src[e] == dst[e]:
            loops += 1
    return loops


class GraphStatsAccumulator:
    """Nodes, edges, total weight, dangling nodes, self-loops, weak components and degree quantiles."""

    def __init__(self, n_nodes: int):
        self.n_nodes = int(n_nodes)
        self.out_deg = np.zeros(self.n_nodes, dtype=np.int64)
        self.in_deg = np.zeros(self.n_nodes, dtype=np.int64)
        self.parent = np.arange(self.n_nodes, dtype=np.int64)
        self.edges = 0
        self.self_loops = 0
        self.total_weight = 0.0

    def add(self, src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> None:
        """One batch of edges (node indices in ``0..n_nodes-1``); batches may come in any order."""
        self.self_loops += int(_count_degrees(self.out_deg, self.in_deg, src, dst))
        union_edges(self.parent, src, dst)
        self.edges += len(src)
        self.total_weight += float(np.sum(weight, dtype=np.float64))

    def result(self) -> dict[str, Any]:
        n = self.n_nodes
        sizes = np.bincount(component_labels(self.parent)) if n else np.zeros(0, dtype=np.int64)
        return {
            "nodes": n,
            "edges": int(self.edges),
            "total_weight": float(self.total_weight),
            "dangling_nodes": int((self.out_deg == 0).sum()),
            "self_loops": int(self.self_loops),
            "weak_components": int(len(sizes)),
            "largest_component_nodes": int(sizes.max()) if n else 0,
            "out_degree": degree_summary(self.out_deg),
            "in_degree": degree_summary(self.in_deg),
        }


def degree_summary(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"mean": 0.0, **{f"p{int(q * 100)}": 0.0 for q in QUANTILES}, "max": 0.0}
    return {"mean": float(x.mean()), **{f"p{int(q * 100)}": float(np.quantile(x, q)) for q in QUANTILES},
            "max": float(x.max())}
