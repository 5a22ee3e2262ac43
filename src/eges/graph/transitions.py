"""Edge weights from sessions: edge i->j counts how often j directly follows i in a session.

Sessions arrive sorted by (user, session, position), so the transitions are simply consecutive rows of
the same session: NumPy finds them batch by batch, and DuckDB counts the pairs (hash aggregation on
all cores, spilling under its memory cap). No files are touched here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from eges.config import GraphConfig

EDGES_TABLE = "eges_edges"
NODES_TABLE = "eges_nodes"


PAIRS_SCHEMA = pa.schema([("src", pa.int32()), ("dst", pa.int32())])


def transition_pairs(sessions: Iterable[pa.Table | pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """(src, dst) item-index pairs of consecutive events in a session.

    ``sessions`` are batches of (user_id, session, item_index) sorted by (user_id, session, position);
    the last row of each batch is carried over so pairs across batch boundaries are not lost.
    """
    prev: pa.Table | None = None
    for batch in sessions:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        table = table.select(["user_id", "session", "item_index"])
        if prev is not None:
            table = pa.concat_tables([prev, table])
        n = table.num_rows
        if n == 0:
            continue
        prev = table.slice(n - 1)
        if n < 2:
            continue
        users = table.column("user_id").combine_chunks()
        same_user = pc.equal(users.slice(1), users.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        session = table.column("session").to_numpy()
        items = table.column("item_index").to_numpy()
        same = same_user & (session[1:] == session[:-1])
        yield pa.record_batch([pa.array(items[:-1][same]), pa.array(items[1:][same])], schema=PAIRS_SCHEMA)


def transitions_sql(con: Any, sessions: Iterable[pa.Table | pa.RecordBatch], cfg: GraphConfig) -> None:
    """Create ``eges_edges(src, dst, weight)`` by counting the transitions in sorted ``sessions``."""
    reader = pa.RecordBatchReader.from_batches(PAIRS_SCHEMA, transition_pairs(sessions))
    con.register("eges_pairs", reader)
    con.execute("CREATE OR REPLACE TEMP TABLE eges_counts AS "
                "SELECT src, dst, count(*)::DOUBLE AS weight FROM eges_pairs GROUP BY src, dst")
    con.unregister("eges_pairs")
    _finish(con, "SELECT * FROM eges_counts", cfg)


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
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {EDGES_TABLE} AS
        SELECT src::INTEGER AS src, dst::INTEGER AS dst, weight FROM ({weighted})
        WHERE weight >= {float(cfg.min_edge_weight)!r}
    """)
