"""The walks stage as Spark jobs, for graphs whose edges need not fit the driver.

Every walk advances one step per join of the walkers with the nodes' alias tables (distributed by node), and the
result is the local engine's walks for the same seed, walk for walk:

- a node's alias table is built by the same compiled functions (:func:`eges.walks.kernels.build_alias`,
  :func:`~eges.walks.kernels.pack_edges`) over its out-edges in the same (destination) order;
- each walk's generator is keyed by its round and start node (:func:`eges.walks.generate.walk_ids`) and is stateless
  (:func:`eges.rng.walk_draws`), so a step on any executor draws what the local kernel draws;
- the step itself is :func:`eges.walks.kernels.pick_next`;
- walks are ordered by round, then by the round's seeded start order (:func:`eges.rng.start_order_keys`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from eges.config import WalksConfig

TABLE_SCHEMA = "node INT, thresh ARRAY<BIGINT>, hit ARRAY<INT>, miss ARRAY<INT>, walks INT"
WALKER_SCHEMA = "walk_round INT, order_key BIGINT, node INT, walk_id BIGINT, cur INT, path ARRAY<INT>, alive BOOLEAN"


def _alias_tables(cfg: WalksConfig, unit: float | None, mean: float | None):
    """One partition of edges, sorted by (src, dst) -> one row per source node with its packed alias table and the
    walks it starts (:func:`eges.walks.generate.walks_per_start`, with the whole graph's ``unit`` and ``mean``)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from _tables(pa.Table.from_batches(list(batches)), cfg, unit, mean)
    return run


def _tables(table: pa.Table, cfg: WalksConfig, unit: float | None, mean: float | None) -> Iterator[pa.RecordBatch]:
    from eges.walks.generate import walks_per_start
    from eges.walks.kernels import build_alias, pack_edges

    if table.num_rows == 0:
        return
    src = table.column("src").to_numpy()
    dst = table.column("dst").to_numpy().astype(np.int32)
    weight = table.column("weight").to_numpy().astype(np.float64)
    nodes, first = np.unique(src, return_index=True)
    indptr = np.append(first, len(src)).astype(np.int64)
    prob, alias = build_alias(indptr, weight)
    packed = pack_edges(indptr, dst, prob, alias)
    offsets = pa.array(indptr.astype(np.int32))
    yield pa.RecordBatch.from_arrays(
        [pa.array(nodes.astype(np.int32)),
         pa.ListArray.from_arrays(offsets, pa.array(packed[:, 0].astype(np.int64))),
         pa.ListArray.from_arrays(offsets, pa.array(packed[:, 1].astype(np.int32))),
         pa.ListArray.from_arrays(offsets, pa.array(packed[:, 2].astype(np.int32))),
         pa.array(walks_per_start(indptr, weight, cfg, unit, mean).astype(np.int32))],
        names=["node", "thresh", "hit", "miss", "walks"])


def _starts(seed: int, n_nodes: int):
    """Walkers at their start node: (round, order key, node) -> walk id, a one-node path."""
    from eges.rng import start_order_keys
    from eges.walks.generate import walk_ids

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rounds = batch.column("walk_round").to_numpy()
            nodes = batch.column("node").to_numpy().astype(np.int32)
            keys = np.empty(len(nodes), dtype=np.int64)
            ids = np.empty(len(nodes), dtype=np.int64)
            for r in np.unique(rounds):
                at = rounds == r
                keys[at] = start_order_keys(seed, int(r), nodes[at])
                ids[at] = walk_ids(int(r), nodes[at], n_nodes)
            path = pa.ListArray.from_arrays(pa.array(np.arange(len(nodes) + 1, dtype=np.int32)), pa.array(nodes))
            yield pa.RecordBatch.from_arrays(
                [pa.array(rounds.astype(np.int32)), pa.array(keys), pa.array(nodes), pa.array(ids),
                 pa.array(nodes), path, pa.array(np.ones(len(nodes), dtype=bool))],
                names=["walk_round", "order_key", "node", "walk_id", "cur", "path", "alive"])
    return run


def _step(seed: int, step: int):
    """Walkers joined with their current node's table -> walkers one step on (or stopped at a node without
    out-edges)."""
    from eges.rng import walk_draws
    from eges.walks.kernels import pick_next

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            thresh = batch.column("thresh")
            alive = thresh.is_valid().to_numpy(zero_copy_only=False)
            path = batch.column("path")
            cur = batch.column("cur").to_numpy(zero_copy_only=False).astype(np.int32)
            if alive.any():
                live = np.flatnonzero(alive)
                first = thresh.offsets.to_numpy()[live]
                degree = thresh.offsets.to_numpy()[live + 1] - first
                rows = np.column_stack([thresh.values.to_numpy(), batch.column("hit").values.to_numpy(),
                                        batch.column("miss").values.to_numpy()])
                draws = walk_draws(seed, batch.column("walk_id").to_numpy()[live], step)
                cur[live] = pick_next(draws, first, degree, rows)
            # Append the new node to every live walker's path (offsets grow by one per live row before it).
            old = path.offsets.to_numpy().astype(np.int64)
            old -= old[0]
            grow = np.concatenate([[0], np.cumsum(alive)])
            offsets = old + grow
            values = np.empty(offsets[-1], dtype=np.int32)
            keep = np.ones(offsets[-1], dtype=bool)
            keep[offsets[1:][alive] - 1] = False
            values[keep] = path.flatten().to_numpy()
            values[~keep] = cur[alive]
            yield pa.RecordBatch.from_arrays(
                [batch.column("walk_round"), batch.column("order_key"), batch.column("node"), batch.column("walk_id"),
                 pa.array(cur), pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values)),
                 pa.array(alive)],
                names=["walk_round", "order_key", "node", "walk_id", "cur", "path", "alive"])
    return run


def spark_walks(spark: Any, edges: Any, n_nodes: int, cfg: WalksConfig) -> Any:
    """Walks (``walk_round``, ``order_key``, ``node``, ``walk`` = the path) from an edges DataFrame (src, dst,
    weight), sorted in the local engine's order. Intermediate walkers are local checkpoints, so each step's lineage
    is one join."""
    from eges.walks.generate import RULE_MAX_WALKS

    unit = mean = None
    if not cfg.walks_per_node:  # the rule's unit (smallest positive weight) and mean out-weight, of the whole graph
        row = edges.selectExpr("MIN(IF(weight > 0, weight, NULL))", "SUM(weight)", "COUNT(DISTINCT src)").collect()[0]
        unit = float(row[0]) if row[0] is not None else 1.0
        mean = float(row[1]) / row[2] if row[2] else 0.0
    tables = (edges.select("src", "dst", "weight").repartition("src").sortWithinPartitions("src", "dst")
              .mapInArrow(_alias_tables(cfg, unit, mean), TABLE_SCHEMA).localCheckpoint())
    rounds = spark.range(cfg.walks_per_node or RULE_MAX_WALKS).selectExpr("CAST(id AS INT) AS walk_round")
    walkers = rounds.crossJoin(tables.select("node", "walks")).filter("walk_round < walks").drop("walks") \
        .mapInArrow(_starts(cfg.seed, n_nodes), WALKER_SCHEMA)
    done = []
    for step in range(1, cfg.walk_length):
        joined = walkers.join(tables, walkers["cur"] == tables["node"], "left") \
            .select(walkers["walk_round"], walkers["order_key"], walkers["node"], "walk_id", "cur", "path",
                    "thresh", "hit", "miss")
        walkers = joined.mapInArrow(_step(cfg.seed, step), WALKER_SCHEMA).localCheckpoint()
        done.append(walkers.filter("NOT alive"))
        walkers = walkers.filter("alive")
    result = walkers
    for part in done:
        result = result.unionByName(part)
    tables.unpersist()
    return result.select("walk_round", "order_key", "node", result["path"].alias("walk")) \
        .orderBy("walk_round", "order_key", "node")
