"""The carried part of an update's graph, for the update's validation slice: pure arrays, no files.

An update with ``update.events = "new"`` trains on its new transitions plus the parent's edges carried over
(:mod:`eges.graph.carry`). Its validation slice holds out the latest of the new events, so the trial's graph is the
earlier new transitions plus the same carried edges; this module rebuilds those edges from the parent's graph and
this run's nodes with the graph stage's rule (decay, floor; forgotten items are the ones missing from the nodes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def parent_to_child(parent_index: np.ndarray, parent_ids: list, child_ids: list) -> np.ndarray:
    """For each parent item index (0..max), the child's index of the same item id, or -1 (forgotten, or no row)."""
    parent_index = np.asarray(parent_index, dtype=np.int64)
    found = pd.Index(child_ids).get_indexer(pd.Index(parent_ids))
    out = np.full(int(parent_index.max(initial=-1)) + 1, -1, dtype=np.int64)
    out[parent_index] = found
    return out


def carried_edges(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, to_child: np.ndarray, factor: float,
                  floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parent's edges (parent indices) as the update carries them: both ends kept, weight times ``factor``,
    at least ``floor`` (:func:`eges.graph.carry.carried_edges_queries`' carried part). (src, dst, weight) in
    the child's indices."""
    src, dst = to_child[np.asarray(src, dtype=np.int64)], to_child[np.asarray(dst, dtype=np.int64)]
    decayed = np.asarray(weight, dtype=np.float64) * float(factor)
    keep = (src >= 0) & (dst >= 0) & (decayed >= float(floor))
    return src[keep], dst[keep], decayed[keep]
