"""The graph stage's rules as Spark jobs: transition counts of consecutive session events, or a supplied edge list.

Edge i->j counts how often j directly follows i in a session (``undirected`` adds j->i for i != j); edges lighter
than ``min_edge_weight`` are dropped. The edge-list queries are :func:`eges.graph.transitions.edge_list_queries`,
shared with DuckDB.
"""

from __future__ import annotations

from typing import Any

from eges.config import GraphConfig
from eges.graph.transitions import edge_list_queries


def transition_edges(spark: Any, sessions: Any, cfg: GraphConfig) -> Any:
    """Edges (src INT, dst INT, weight DOUBLE) sorted by (src, dst) from a sessions DataFrame."""
    sessions.createOrReplaceTempView("eges_spark_graph_sessions")
    pairs = """
        SELECT src, item_index AS dst FROM (
            SELECT item_index, lag(item_index) OVER (PARTITION BY user_id, session ORDER BY position) AS src
            FROM eges_spark_graph_sessions) p
        WHERE src IS NOT NULL"""
    if cfg.undirected:
        pairs = f"SELECT src, dst FROM ({pairs}) a UNION ALL SELECT dst AS src, src AS dst FROM ({pairs}) b " \
                "WHERE src <> dst"
    return spark.sql(f"""
        SELECT CAST(src AS INT) AS src, CAST(dst AS INT) AS dst, CAST(count(*) AS DOUBLE) AS weight
        FROM ({pairs}) t GROUP BY src, dst
        HAVING count(*) >= {float(cfg.min_edge_weight)!r}
        ORDER BY src, dst""")


def edge_list_graph(spark: Any, edges: Any, cfg: GraphConfig, has_weight: bool) -> tuple[Any, Any]:
    """(edges sorted by src, dst; nodes sorted by item_index) from a supplied edge list DataFrame."""
    edges.createOrReplaceTempView("eges_spark_edge_input")
    ids, nodes, weighted = edge_list_queries("eges_spark_edge_input", "eges_spark_nodes", cfg, has_weight,
                                             quote="`")
    spark.sql(ids).createOrReplaceTempView("eges_edge_ids")
    nodes_df = spark.sql(nodes).persist()
    nodes_df.createOrReplaceTempView("eges_spark_nodes")
    return spark.sql(weighted).orderBy("src", "dst"), nodes_df.orderBy("item_index")
