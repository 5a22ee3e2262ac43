"""Edge weights from sessions: edge i->j counts how often j directly follows i in a session.

Session rows come in (user, session, position) order, so a transition is a row whose position is
not 0, paired with the row before it. :func:`count_transitions` turns them into CSR arrays with two
counting-sort passes compiled with numba (by destination, then stably by source, so every source's
destinations come out ascending) and one run-length pass: linear time, no comparison sort, no hash
table, and no separate sort for the CSR order (docs/studies/sessions-graph-kernel.md has the figures against DuckDB's hash
aggregation). The edge-list path (user-supplied item ids of any type)
stays relational: DuckDB indexes the ids with a join. No files are touched here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from eges.config import GraphConfig

EDGES_TABLE = "eges_edges"
NODES_TABLE = "eges_nodes"


def count_transitions(items: np.ndarray, position: np.ndarray, n_nodes: int, undirected: bool,
                      min_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays ``(indptr, indices, weights)`` of the transition counts in session rows.

    Args:
        items: item index per session row (int32), rows in (session, position) order.
        position: position within the session per row (int32); a row with position > 0 follows the row before.
        n_nodes: number of items; every index must lie in ``[0, n_nodes)``.
        undirected: count each transition i->j (i != j) in both directions.
        min_weight: drop edges with a smaller count.

    Returns:
        ``indptr`` (int64, n_nodes + 1), ``indices`` (int32, ascending within each source) and ``weights``
        (float64 counts). A caller short of memory calls the two halves itself and drops the session columns in
        between (see the graph stage).
    """
    return count_bucketed(*bucket_by_destination(items, position, n_nodes, undirected), min_weight)


@njit(cache=True)
def bucket_by_destination(items: np.ndarray, position: np.ndarray, n_nodes: int,
                          undirected: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First half of :func:`count_transitions`: every transition's source, bucketed by its destination.

    Returns ``(sources, by_dst_ptr, by_src_ptr)``: the bucket of destination d is
    ``sources[by_dst_ptr[d]:by_dst_ptr[d + 1]]``, and ``by_src_ptr`` holds the offsets the same transitions
    take when bucketed by source.
    """
    n = len(items)
    by_dst_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
    by_src_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
    for i in range(1, n):
        if position[i] > 0:
            s = items[i - 1]
            d = items[i]
            by_dst_ptr[d + 1] += 1
            by_src_ptr[s + 1] += 1
            if undirected and s != d:
                by_dst_ptr[s + 1] += 1
                by_src_ptr[d + 1] += 1
    for v in range(n_nodes):
        by_dst_ptr[v + 1] += by_dst_ptr[v]
        by_src_ptr[v + 1] += by_src_ptr[v]
    sources = np.empty(by_dst_ptr[n_nodes], dtype=np.int32)
    fill = by_dst_ptr[:-1].copy()
    for i in range(1, n):
        if position[i] > 0:
            s = items[i - 1]
            d = items[i]
            sources[fill[d]] = s
            fill[d] += 1
            if undirected and s != d:
                sources[fill[s]] = d
                fill[s] += 1
    return sources, by_dst_ptr, by_src_ptr


@njit(cache=True)
def count_bucketed(sources: np.ndarray, by_dst_ptr: np.ndarray, by_src_ptr: np.ndarray,
                   min_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Second half of :func:`count_transitions`: CSR arrays from :func:`bucket_by_destination`'s buckets."""
    n_nodes = len(by_dst_ptr) - 1
    # Destinations bucketed by source, visiting destinations in ascending order (a stable counting sort).
    targets = np.empty(len(sources), dtype=np.int32)
    fill = by_src_ptr[:-1].copy()
    for d in range(n_nodes):
        for k in range(by_dst_ptr[d], by_dst_ptr[d + 1]):
            s = sources[k]
            targets[fill[s]] = d
            fill[s] += 1
    # Run lengths within each source's sorted destinations are the weights; compact in place.
    counts = sources  # no longer needed; reused for the counts (written at or before the read position)
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    w = 0
    for s in range(n_nodes):
        k = by_src_ptr[s]
        end = by_src_ptr[s + 1]
        while k < end:
            d = targets[k]
            run = 1
            k += 1
            while k < end and targets[k] == d:
                run += 1
                k += 1
            if run >= min_weight:
                targets[w] = d
                counts[w] = run
                w += 1
        indptr[s + 1] = w
    return indptr, targets[:w].copy(), counts[:w].astype(np.float64)


def edge_list_queries(edges_view: str, nodes_table: str, cfg: GraphConfig, has_weight: bool,
                      quote: str = '"') -> tuple[str, str, str]:
    """SQL (DuckDB and Spark SQL alike) for a user-supplied edge list: the id view's query over ``edges_view``,
    the nodes' query over that view (``eges_edge_ids``) and the edges' query joining it with ``nodes_table``.

    Nodes are indexed by weighted degree (largest first), like the session vocabulary. ``quote`` quotes column
    names: '"' in DuckDB, '`' in Spark.
    """
    q = quote
    w = f"CAST({q}{cfg.weight_col}{q} AS DOUBLE)" if has_weight else "CAST(1.0 AS DOUBLE)"
    ids = f"SELECT {q}{cfg.src_col}{q} AS src_id, {q}{cfg.dst_col}{q} AS dst_id, {w} AS weight FROM {edges_view}"
    nodes = """
        SELECT item_id, CAST(row_number() OVER (ORDER BY sum(weight) DESC, item_id) - 1 AS INTEGER) AS item_index,
               sum(weight) AS count
        FROM (SELECT src_id AS item_id, weight FROM eges_edge_ids
              UNION ALL SELECT dst_id AS item_id, weight FROM eges_edge_ids) t
        GROUP BY item_id
    """
    weighted = f"""
        SELECT s.item_index AS src, d.item_index AS dst, sum(e.weight) AS weight
        FROM eges_edge_ids e JOIN {nodes_table} s ON e.src_id = s.item_id
                             JOIN {nodes_table} d ON e.dst_id = d.item_id
        GROUP BY s.item_index, d.item_index
    """
    if cfg.undirected:
        weighted = f"""
            SELECT src, dst, sum(weight) AS weight FROM (
                SELECT src, dst, weight FROM ({weighted}) a
                UNION ALL SELECT dst AS src, src AS dst, weight FROM ({weighted}) b WHERE src <> dst
            ) u GROUP BY src, dst
        """
    edges = f"""
        SELECT CAST(src AS INTEGER) AS src, CAST(dst AS INTEGER) AS dst, weight FROM ({weighted}) w
        WHERE weight >= {float(cfg.min_edge_weight)!r}
    """
    return ids, nodes, edges


def symmetrized_edges_sql(edges_view: str) -> str:
    """SQL (DuckDB and Spark SQL alike) of :func:`eges.graph.csr.symmetrized` over ``edges_view`` (src, dst,
    weight): every edge i->j (i != j) also counted as j->i, weights summed; rows sorted by (src, dst)."""
    return f"""
        SELECT CAST(src AS INT) AS src, CAST(dst AS INT) AS dst, CAST(sum(weight) AS DOUBLE) AS weight FROM (
            SELECT src, dst, weight FROM {edges_view}
            UNION ALL SELECT dst AS src, src AS dst, weight FROM {edges_view} WHERE src <> dst
        ) u GROUP BY src, dst ORDER BY src, dst"""


def edge_list_sql(con: Any, edges_view: str, cfg: GraphConfig, has_weight: bool) -> None:
    """Create ``eges_nodes`` and the view ``eges_edges(src, dst, weight)`` from a user-supplied edge list.

    The edges view is not materialised: the caller's one query (sorted by src, dst) aggregates and sorts in one
    pipeline.
    """
    ids, nodes, edges = edge_list_queries(edges_view, NODES_TABLE, cfg, has_weight)
    con.execute(f"CREATE OR REPLACE TEMP VIEW eges_edge_ids AS {ids}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {NODES_TABLE} AS {nodes}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {EDGES_TABLE} AS {edges}")


# The named errors of a user-supplied edge list, one text for both engines.
def null_ids_message(where: str, col: str, count: int) -> str:
    return f"{where}: column {col!r} has {count} null id(s)"


def mixed_id_kinds_message(where: str, cfg: GraphConfig, types: dict[str, str], text: dict[str, bool]) -> str:
    kinds = {c: "text" if text[c] else "integers" for c in (cfg.src_col, cfg.dst_col)}
    return (f"{where}: column {cfg.src_col!r} holds {kinds[cfg.src_col]} ({types[cfg.src_col]}) but {cfg.dst_col!r} "
            f"holds {kinds[cfg.dst_col]} ({types[cfg.dst_col]}); give both the same id type")


def weight_type_message(where: str, col: str, t: object) -> str:
    return f"{where}: column {col!r} has type {t}; weights must be numbers"


def bad_weights_message(where: str, col: str) -> str:
    return f"{where}: column {col!r} has negative, null or non-finite weights"
