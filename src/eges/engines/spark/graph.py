"""The graph stage's rules as Spark jobs: transition counts of consecutive session events, or a supplied edge list.

Edge i->j counts how often j directly follows i in a session (``undirected`` adds j->i for i != j); edges lighter
than ``min_edge_weight`` are dropped. The edge-list queries are :func:`eges.graph.transitions.edge_list_queries`,
shared with DuckDB, and a supplied list gets the DuckDB path's checks, computed by one Spark aggregation (the driver
reads the schema and a handful of counts, never the list).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eges.columns import missing_message
from eges.config import GraphConfig
from eges.engines.spark.session import read_source
from eges.errors import InputError
from eges.graph.transitions import (
    bad_weights_message,
    edge_list_queries,
    mixed_id_kinds_message,
    null_ids_message,
    weight_type_message,
)
from eges.ids import id_type_message, not_whole_message


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


def read_edge_list(spark: Any, source: str, cfg: GraphConfig) -> tuple[Any, int, bool]:
    """(the edge list with its ids checked and of one type, its rows, whether it has weights): the DuckDB path's
    rules and messages (null ids, ids that are not whole numbers, text beside integers, weights that are not
    numbers, negative, null or non-finite)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    df = read_source(spark, source, "auto", "edge list")
    where = f"edge list file {source}" if Path(source).is_file() else f"edge list {source}"
    columns = df.columns
    for col, key in ((cfg.src_col, "graph.src_col"), (cfg.dst_col, "graph.dst_col")):
        if col not in columns:
            raise InputError(missing_message(columns, col, key, where))
    has_weight = cfg.weight_col in columns
    kind = {f.name: f.dataType for f in df.schema.fields}
    ids = (cfg.src_col, cfg.dst_col)

    def c(name: str) -> Any:
        return F.col("`" + name.replace("`", "``") + "`")

    def not_whole(name: str) -> Any:
        x = c(name).cast("double")
        return c(name).isNotNull() & (F.isnan(x) | (F.abs(x) == float("inf")) | (x != F.round(x)))

    checks = [F.count(F.lit(1)).alias("rows")]
    for i, col in enumerate(ids):
        checks.append(F.sum(c(col).isNull().cast("long")).alias(f"null{i}"))
        if isinstance(kind[col], T.FractionalType):
            checks.append(F.sum(not_whole(col).cast("long")).alias(f"frac{i}"))
            checks.append(F.first(F.when(not_whole(col), c(col).cast("double")), ignorenulls=True).alias(f"eg{i}"))
    if has_weight and isinstance(kind[cfg.weight_col], T.NumericType):
        w = c(cfg.weight_col).cast("double")
        bad = w.isNull() | F.isnan(w) | (F.abs(w) == float("inf")) | (w < 0)
        checks.append(F.sum(bad.cast("long")).alias("bad_weights"))
    found = df.agg(*checks).collect()[0].asDict()
    for i, col in enumerate(ids):
        if found[f"null{i}"]:
            raise InputError(null_ids_message(where, col, found[f"null{i}"]))
        if found.get(f"frac{i}"):
            raise InputError(not_whole_message(where, col, "item id", found[f"frac{i}"], found[f"eg{i}"]))
        if not isinstance(kind[col], (T.IntegralType, T.StringType, T.FractionalType)):
            raise InputError(id_type_message(where, col, "item id", kind[col].simpleString()))
    text = {col: isinstance(kind[col], T.StringType) for col in ids}
    if text[cfg.src_col] != text[cfg.dst_col]:
        raise InputError(mixed_id_kinds_message(where, cfg, {col: kind[col].simpleString() for col in ids}, text))
    if has_weight:
        if not isinstance(kind[cfg.weight_col], T.NumericType):
            raise InputError(weight_type_message(where, cfg.weight_col, kind[cfg.weight_col].simpleString()))
        if found["bad_weights"]:
            raise InputError(bad_weights_message(where, cfg.weight_col))
    if not text[cfg.src_col]:  # whole numbers as bigint on both sides, as the DuckDB path casts them
        df = df.withColumn(cfg.src_col, c(cfg.src_col).cast("bigint")).withColumn(cfg.dst_col,
                                                                               c(cfg.dst_col).cast("bigint"))
    return df, int(found["rows"]), has_weight
