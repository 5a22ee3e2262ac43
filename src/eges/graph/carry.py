"""A parent run's graph carried into an update: the decay, the floor and the forgetting rule, for both engines.

An update with ``update.events = "new"`` reads only the events since its parent, so its graph is the new transition
counts (``graph.min_edge_weight`` applied to them) plus the parent's edges, each weight multiplied by
``update.carry_over``; a carried weight below ``update.min_carried_weight`` is dropped (carried weights fall below 1,
so the count threshold cannot apply to them). An edge both carried and new weighs the sum. Parent items that no
update has seen for ``update.forget_days`` (their ``last_seen``, the latest event time of the item, against the
newest event of the update) fall out with their edges; items of the new events always stay.

The rule is written once: the nodes' merge is Arrow/NumPy on the driver (:func:`merge_nodes`; both engines hold the
nodes, never the edges, there) and the edges' merge is SQL text read by DuckDB and Spark alike
(:func:`carried_edges_queries`). Parent and child are matched by item id: the child's indices are its new events'
vocabulary (most frequent first), and the parent's remaining items are appended in the parent's index order.
No files are touched here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eges.errors import InputError
from eges.ids import align_ids

DAY_MS = 86_400_000
#: Table names the edges' queries read: the new counts (src, dst, weight), the parent's edges (src, dst, weight,
#: parent indices) and the parent -> child index map of the kept parent items (parent_index, child_index).
NEW_EDGES = "eges_new_edges"
PARENT_EDGES = "eges_parent_edges"
CARRY_MAP = "eges_carry_map"
MERGED_EDGES = "eges_merged_edges"


@dataclass(frozen=True)
class CarryRule:
    """The update's carry-over settings (``[update]``), as numbers the queries and the node merge use."""

    factor: float
    floor: float
    forget_days: float

    @classmethod
    def from_config(cls, cfg: Any) -> CarryRule:
        return cls(float(cfg.carry_over), float(cfg.min_carried_weight), float(cfg.forget_days))


def last_seen_sql(sessions_view: str) -> str:
    """Each item's latest event time in the sessions (ms): the ``last_seen`` column of ``graph/nodes.parquet``."""
    return f"SELECT item_index, max(ts) AS last_seen FROM {sessions_view} GROUP BY item_index"


def with_last_seen(vocab: pa.Table, item_index: np.ndarray, last_seen: np.ndarray) -> pa.Table:
    """The vocabulary (item_id, item_index, count; row i has index i) with each item's ``last_seen`` (int64 ms)."""
    seen = np.zeros(vocab.num_rows, dtype=np.int64)
    seen[np.asarray(item_index, dtype=np.int64)] = np.asarray(last_seen, dtype=np.int64)
    return vocab.append_column("last_seen", pa.array(seen, pa.int64()))


def require_last_seen(parent: pa.Table, where: str) -> None:
    """A parent's nodes must say when each item was last seen, or nothing could be forgotten."""
    if "last_seen" not in parent.column_names:
        raise InputError(f"{where} has no last_seen column (a graph made by an older eges or from an edge list); "
                         "rerun the parent's graph stage from its events, or use update.events = 'window'")


@dataclass(frozen=True)
class NodeMerge:
    """The child's nodes, the parent -> child index map of the kept parent items, and what the merge counted."""

    nodes: pa.Table
    index_map: pa.Table
    counts: dict[str, int]


def merge_nodes(today: pa.Table, parent: pa.Table, rule: CarryRule, where: str) -> NodeMerge:
    """Today's nodes (item_id, item_index, count, last_seen; row i has index i) merged with the parent's by id.

    Today's items keep their indices (and so match ``sessions.parquet``); the parent's other items are appended in
    the parent's index order with count 0, unless forgotten. ``last_seen`` is the later of the two runs'.
    """
    require_last_seen(parent, where)
    parent = parent.sort_by("item_index")
    today_ids, parent_ids = today["item_id"], parent["item_id"]
    text = [pa.types.is_string(t) or pa.types.is_large_string(t) for t in (today_ids.type, parent_ids.type)]
    if text[0] != text[1]:
        kinds = ["text" if t else "integers" for t in text]
        raise InputError(f"{where} has item ids of another kind ({kinds[1]}, {parent_ids.type}) than these events "
                         f"({kinds[0]}, {today_ids.type}); a parent must use the same item ids")
    parent_ids = align_ids(parent_ids, today_ids.type, where, "item_id")
    if text[0] and parent_ids.type != today_ids.type:
        parent_ids = parent_ids.cast(today_ids.type)
    n_today, n_parent = today.num_rows, parent.num_rows
    found = pc.fill_null(pc.index_in(parent_ids, value_set=today_ids.combine_chunks()), -1).to_numpy()
    found = found.astype(np.int64)
    in_today = found >= 0
    today_seen = today["last_seen"].to_numpy().astype(np.int64)
    parent_seen = parent["last_seen"].to_numpy().astype(np.int64)
    now = int(today_seen.max()) if n_today else 0
    kept = ~in_today
    if rule.forget_days > 0:
        kept &= parent_seen >= now - rule.forget_days * DAY_MS
    child = np.full(n_parent, -1, dtype=np.int64)
    child[in_today] = found[in_today]
    child[kept] = n_today + np.arange(int(kept.sum()))
    seen = today_seen.copy()
    both = np.flatnonzero(in_today)
    np.maximum.at(seen, found[both], parent_seen[both])
    nodes = pa.table({
        "item_id": pa.concat_arrays([today_ids.combine_chunks(), parent_ids.combine_chunks().filter(pa.array(kept))]),
        "item_index": pa.array(np.arange(n_today + int(kept.sum())), pa.int32()),
        "count": pa.array(np.r_[today["count"].to_numpy().astype(np.int64), np.zeros(int(kept.sum()), np.int64)]),
        "last_seen": pa.array(np.r_[seen, parent_seen[kept]], pa.int64()),
    })
    mapped = child >= 0
    index_map = pa.table({"parent_index": pa.array(parent["item_index"].to_numpy()[mapped], pa.int32()),
                          "child_index": pa.array(child[mapped], pa.int32())})
    counts = {"nodes_new": int(n_today - in_today.sum()), "nodes_seen_again": int(in_today.sum()),
              "nodes_carried": int(kept.sum()), "nodes_forgotten": int(n_parent - in_today.sum() - kept.sum())}
    return NodeMerge(nodes, index_map, counts)


def _double(x: float) -> str:
    """A DOUBLE literal in DuckDB and Spark alike (a plain 0.8 is a DECIMAL in both)."""
    text = repr(float(x))
    return text if "e" in text or "inf" in text or "nan" in text else f"{text}E0"


def carried_edges_queries(rule: CarryRule) -> tuple[str, str, str]:
    """SQL (DuckDB and Spark SQL alike) of the edges' merge over :data:`NEW_EDGES`, :data:`PARENT_EDGES` and
    :data:`CARRY_MAP`: the merged view's query (src, dst, weight, is_new, is_carried), the edges' query over that
    view (``MERGED_EDGES``) sorted by (src, dst), and one row counting the parent's edges by fate."""
    f, floor = _double(rule.factor), _double(rule.floor)
    carried = f"""
        SELECT s.child_index AS src, d.child_index AS dst, p.weight * {f} AS weight
        FROM {PARENT_EDGES} p JOIN {CARRY_MAP} s ON p.src = s.parent_index
                              JOIN {CARRY_MAP} d ON p.dst = d.parent_index
        WHERE p.weight * {f} >= {floor}"""
    merged = f"""
        SELECT CAST(coalesce(n.src, c.src) AS INT) AS src, CAST(coalesce(n.dst, c.dst) AS INT) AS dst,
               coalesce(n.weight, {_double(0)}) + coalesce(c.weight, {_double(0)}) AS weight,
               CASE WHEN n.src IS NULL THEN 0 ELSE 1 END AS is_new,
               CASE WHEN c.src IS NULL THEN 0 ELSE 1 END AS is_carried
        FROM {NEW_EDGES} n FULL OUTER JOIN ({carried}) c ON n.src = c.src AND n.dst = c.dst"""
    edges = f"SELECT src, dst, weight FROM {MERGED_EDGES} ORDER BY src, dst"
    fates = f"""
        SELECT count(*) AS parent_edges,
               coalesce(sum(CASE WHEN s.child_index IS NULL OR d.child_index IS NULL THEN 1 ELSE 0 END), 0)
                   AS edges_forgotten,
               coalesce(sum(CASE WHEN s.child_index IS NOT NULL AND d.child_index IS NOT NULL
                                 AND p.weight * {f} < {floor} THEN 1 ELSE 0 END), 0) AS edges_decayed,
               (SELECT coalesce(sum(is_new * is_carried), 0) FROM {MERGED_EDGES}) AS edges_new_and_carried,
               (SELECT coalesce(sum(is_new), 0) FROM {MERGED_EDGES}) AS edges_new,
               (SELECT coalesce(sum(is_carried), 0) FROM {MERGED_EDGES}) AS edges_carried
        FROM {PARENT_EDGES} p LEFT JOIN {CARRY_MAP} s ON p.src = s.parent_index
                              LEFT JOIN {CARRY_MAP} d ON p.dst = d.parent_index"""
    return merged, edges, fates


def update_summary(counts: dict[str, Any]) -> str:
    """The graph stage's line about the carry-over: what was carried, new and forgotten."""
    return (f"carried {counts['edges_carried']:,} of the parent's {counts['parent_edges']:,} edges "
            f"({counts['edges_decayed']:,} decayed below the floor, {counts['edges_forgotten']:,} of forgotten items), "
            f"{counts['edges_new']:,} new ({counts['edges_new_and_carried']:,} both); items: {counts['nodes_new']:,} new, "
            f"{counts['nodes_carried']:,} carried unseen, {counts['nodes_forgotten']:,} forgotten")
