"""The weighted item graph: CSR kernels (numpy) and the transition-count SQL."""

from __future__ import annotations

from eges.graph.csr import CSRGraph, from_edges, from_networkx, graph_stats, to_networkx

__all__ = ["CSRGraph", "from_edges", "from_networkx", "graph_stats", "to_networkx"]
