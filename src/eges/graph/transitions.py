"""Edge weights from sessions: edge i->j counts how often j directly follows i in a session.

Every session row carries its predecessor (``prev_item_index``, see :mod:`eges.sessions.clean`), so
the weights are one parallel hash aggregation in DuckDB: no sort, no window, spilling under the memory
cap. The edge-list path indexes a user-supplied list the same way. No files are touched here.
"""

from __future__ import annotations

from typing import Any

from eges.config import GraphConfig

EDGES_TABLE = "eges_edges"
NODES_TABLE = "eges_nodes"


def transitions_sql(con: Any, sessions_view: str, cfg: GraphConfig) -> None:
    """Create ``eges_edges(src, dst, weight)`` from sessions carrying ``prev_item_index``."""
    counted = (f"SELECT prev_item_index AS src, item_index AS dst, count(*)::DOUBLE AS weight FROM {sessions_view} "
               "WHERE prev_item_index IS NOT NULL GROUP BY prev_item_index, item_index")
    _finish(con, counted, cfg)


def edge_list_sql(con: Any, edges_view: str, cfg: GraphConfig, has_weight: bool) -> None:
    """Create ``eges_nodes`` and ``eges_edges`` from a user-supplied edge list of item ids.

    Nodes are indexed by weighted degree (largest first), like the session vocabulary.
    """
    w = f'CAST("{cfg.weight_col}" AS DOUBLE)' if has_weight else "1.0"
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW eges_edge_ids AS
        SELECT "{cfg.src_col}" AS src_id, "{cfg.dst_col}" AS dst_id, {w} AS weight FROM {edges_view}
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {NODES_TABLE} AS
        SELECT item_id, (row_number() OVER (ORDER BY sum(weight) DESC, item_id) - 1)::INTEGER AS item_index,
               sum(weight) AS count
        FROM (SELECT src_id AS item_id, weight FROM eges_edge_ids
              UNION ALL SELECT dst_id, weight FROM eges_edge_ids)
        GROUP BY item_id
    """)
    indexed = f"""
        SELECT s.item_index AS src, d.item_index AS dst, sum(e.weight) AS weight
        FROM eges_edge_ids e JOIN {NODES_TABLE} s ON e.src_id = s.item_id
                             JOIN {NODES_TABLE} d ON e.dst_id = d.item_id
        GROUP BY 1, 2
    """
    _finish(con, indexed, cfg)


def _finish(con: Any, weighted: str, cfg: GraphConfig) -> None:
    if cfg.undirected:
        weighted = f"""
            SELECT src, dst, sum(weight) AS weight FROM (
                SELECT src, dst, weight FROM ({weighted})
                UNION ALL SELECT dst, src, weight FROM ({weighted}) WHERE src <> dst
            ) GROUP BY src, dst
        """
    # A view, not a table: the caller's one query (usually sorted by src, dst) aggregates and sorts in one
    # pipeline instead of materialising millions of edges first.
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW {EDGES_TABLE} AS
        SELECT src::INTEGER AS src, dst::INTEGER AS dst, weight FROM ({weighted})
        WHERE weight >= {float(cfg.min_edge_weight)!r}
    """)
