"""Starting a run from its parent's trained rows (``eges run --warm-start PARENT``): pure arrays, no files.

The parent's rows are matched to this run's by item id (and side-information values by field and label), so every
table the two share starts where the parent ended: item rows, context rows, value rows and attention logits. What
the parent never saw starts as a fresh run would, except a new item with known side information, which starts from
its cold-start vector (the mean of its values' rows), and a new value, which starts from its field's mean row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from eges.side_info.encode import SideInfo
from eges.train.stream import StartState, initial_attention


@dataclass
class ParentState:
    """What a child needs of its parent's training: per parent item its own row, context row and attention logits
    (1 + fields), and the side-information value rows by (field, label)."""

    item_ids: list[Any]
    rows: np.ndarray
    context: np.ndarray
    attention: np.ndarray
    value_field: list[str]
    value_label: list[str]
    value_rows: np.ndarray
    #: each item's row in exports (``slot + 1``: row 0 is padding), kept by every later update of the chain
    slots: np.ndarray | None = None
    #: the first slot no item of the chain has had (new items are numbered from here; dropped ones stay vacant)
    next_slot: int = 0

    @property
    def dimension(self) -> int:
        return int(self.rows.shape[1])


def fresh_table(n_rows: int, dimension: int, seed: int) -> np.ndarray:
    """The small random rows a fresh run starts from (the trainer's initialisation, same seed, same rows)."""
    rng = np.random.default_rng(seed)
    return ((rng.random((n_rows, dimension), dtype=np.float32) - 0.5) / dimension).astype(np.float32)


def match(parent_keys: pd.Index, child_keys: pd.Index) -> np.ndarray:
    """For each child key, the parent's row holding it (the first, should a parent from before lossless value labels
    hold one twice), or -1."""
    first = np.flatnonzero(~parent_keys.duplicated())
    if not len(first):  # a parent with nothing of the kind
        return np.full(len(child_keys), -1, dtype=np.int64)
    found = np.asarray(parent_keys[first].get_indexer(child_keys), dtype=np.int64)
    return np.where(found >= 0, first[np.maximum(found, 0)], -1)


def value_keys(fields: Any, labels: list[str]) -> pd.MultiIndex:
    """Side-information values as (field, label, how many times that pair came before): buckets whose bounds agree to
    '{:g}''s six digits share a label (an epoch-seconds column's are all "[1.7e+09, 1.7e+09)"), and a child cut with
    its parent's bounds holds them in its parent's order, so the n-th of a label continues the parent's n-th."""
    pairs = pd.DataFrame({"field": np.asarray(fields, dtype=object), "label": np.asarray(labels, dtype=object)})
    seen = pairs.groupby(["field", "label"], sort=False).cumcount().to_numpy()
    return pd.MultiIndex.from_arrays([pairs["field"], pairs["label"], seen])


def child_slots(parent_slots: np.ndarray, next_slot: int, item_from: np.ndarray) -> tuple[np.ndarray, int]:
    """Export slots of a child's items (``item_from``: each one's parent row or -1): a shared item keeps its slot,
    new items take the next free ones in node order, a dropped item's slot stays vacant. Returns (slots, next)."""
    new = item_from < 0
    slots = np.where(new, next_slot + np.cumsum(new) - 1, parent_slots[np.maximum(item_from, 0)])
    return slots.astype(np.int64), int(next_slot + new.sum())


def warm_start(parent: ParentState, child_ids: list[Any], side: SideInfo, seed: int,
               own_weight: float) -> tuple[StartState, dict[str, int]]:
    """The start state of a run over ``child_ids`` (its behaviour items, in node order) with side information
    ``side`` (rows 0..n-1 the nodes; no fields for BGE), from ``parent``; and counts of what was carried over
    (with ``slots`` and ``next_slot``, the items' export rows: :func:`child_slots`, and ``kept``, the parent rows
    of items this run has no behaviour for, which its state keeps so they keep their slot and rows if they return)."""
    n, dim = len(child_ids), parent.dimension
    n_fields = len(side.fields)
    table = fresh_table(n + side.n_values, dim, seed)
    context = np.zeros((n, dim), dtype=np.float32)
    attention = initial_attention(n, n_fields, own_weight)

    # Side-information value rows by (field, label); a value the parent never had starts from its field's mean.
    value_from = np.full(side.n_values, -1, dtype=np.int64)
    if side.n_values:
        child_field = np.repeat(np.asarray(side.fields, dtype=object), [len(v) for v in side.values])
        child_label = [label for values in side.values for label in values]
        value_from = match(value_keys(parent.value_field, parent.value_label), value_keys(child_field, child_label))
        shared = value_from >= 0
        table[n:][shared] = parent.value_rows[value_from[shared]]
        parent_field = np.asarray(parent.value_field, dtype=object)
        for field in side.fields:
            mine = ~shared & (child_field == field)
            theirs = parent_field == field
            if mine.any() and theirs.any():
                table[n:][mine] = parent.value_rows[theirs].mean(axis=0)

    # Item rows: a shared item continues; a new one with values the parent trained starts at their mean.
    item_from = match(pd.Index(parent.item_ids), pd.Index(child_ids))
    old = item_from >= 0
    table[:n][old] = parent.rows[item_from[old]]
    context[old] = parent.context[item_from[old]]
    attention[old] = parent.attention[item_from[old]]
    placed = _side_info_means(side.codes[:n][~old], side.field_offset, table[n:], value_from >= 0)
    new_rows = table[:n][~old]
    new_rows[placed[1]] = placed[0][placed[1]]
    table[:n][~old] = new_rows
    counts = {"shared_items": int(old.sum()), "new_items": int((~old).sum()),
              "new_items_from_side_info": int(placed[1].sum()),
              "dropped_items": len(parent.item_ids) - int(old.sum()),
              "shared_values": int((value_from >= 0).sum()), "new_values": int((value_from < 0).sum())}
    parent_slots = parent.slots if parent.slots is not None else np.arange(len(parent.item_ids), dtype=np.int64)
    slots, next_slot = child_slots(parent_slots, max(parent.next_slot, len(parent_slots)), item_from)
    kept = np.setdiff1d(np.arange(len(parent.item_ids)), item_from[old])  # the parent's items this run lacks
    counts = {**counts, "slots": slots, "next_slot": next_slot, "kept": kept}
    return StartState(table=table, context=context, attention=attention), counts


def _side_info_means(codes: np.ndarray, field_offset: np.ndarray, value_rows: np.ndarray,
                     trained: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each item's mean over its known values that the parent trained (the paper's cold-start rule); (rows, ok)."""
    out = np.zeros((len(codes), value_rows.shape[1]), dtype=np.float32)
    total = np.zeros(len(codes), dtype=np.float64)
    for s in range(codes.shape[1]):
        rows = field_offset[s] + np.maximum(codes[:, s], 0)
        usable = (codes[:, s] >= 0) & trained[rows] if len(trained) else np.zeros(len(codes), bool)
        out[usable] += value_rows[rows[usable]]
        total[usable] += 1
    ok = total > 0
    out[ok] /= total[ok, None].astype(np.float32)
    return out, ok
