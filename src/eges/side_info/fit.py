"""From walks and a catalog to everything the eges stage writes: the one place GES/EGES are assembled (training by
:mod:`eges.train`, then cold-start placement from side information), used by the stage and by the in-memory API."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from eges.config import TrainConfig
from eges.errors import InputError, plain
from eges.methods import cold_share, method_of
from eges.side_info.encode import SideInfo, encode
from eges.train.stream import EgesModel, EpochCallback, StartState, behaviour_vectors, train_stream


def cold_start_vectors(model: EgesModel, codes: np.ndarray, seen: np.ndarray,
                       field_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for items without behaviour from their side-information value vectors.

    ``field_weights=None`` is the paper's rule (the mean of the known values); otherwise a weighted mean
    with one weight per field (the mean EGES attention), renormalised over the fields an item has.
    Values never seen in training (``seen`` False at their row) are skipped. Returns (vectors, has_vector).
    """
    return place_from_values(model.value_vectors(), model.side.field_offset, codes, seen, field_weights)


def place_from_values(values: np.ndarray, offsets: np.ndarray, codes: np.ndarray, seen: np.ndarray,
                      field_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rule of :func:`cold_start_vectors` on any value vectors (trained side rows, or :func:`value_means`)."""
    n, f = codes.shape
    vecs = np.zeros((n, values.shape[1]), dtype=np.float32)
    total = np.zeros(n, dtype=np.float64)
    weights = np.ones(f) if field_weights is None else np.asarray(field_weights, dtype=np.float64)
    for s in range(f):
        rows = offsets[s] + codes[:, s]
        usable = (codes[:, s] >= 0) & seen[np.where(codes[:, s] >= 0, rows, 0)]
        vecs[usable] += weights[s] * values[rows[usable]]
        total[usable] += weights[s]
    ok = total > 0
    vecs[ok] /= total[ok, None].astype(np.float32)
    return vecs, ok


def value_means(vectors: np.ndarray, has: np.ndarray, side: SideInfo) -> tuple[np.ndarray, np.ndarray]:
    """Each side-information value's vector as the mean of the vectors of the items with that value: how a
    method without side rows (BGE) still places cold items. ``vectors``/``has`` are rows of ``side.codes``.
    Returns (value vectors, seen: values that at least one item with a vector has)."""
    import scipy.sparse as sp

    n = min(len(vectors), len(side.codes))
    codes = side.codes[:n]
    rows, cols = [], []
    for s, off in enumerate(side.field_offset):
        ok = (codes[:, s] >= 0) & has[:n]
        rows.append(off + codes[ok, s].astype(np.int64))
        cols.append(np.flatnonzero(ok))
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    member = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(side.n_values, n))
    counts = np.asarray(member.sum(axis=1)).ravel()
    means = np.asarray(member @ np.asarray(vectors[:n], dtype=np.float32), dtype=np.float32)
    seen = counts > 0
    means[seen] /= counts[seen, None].astype(np.float32)
    return means, seen


def seen_values(side: SideInfo, n_nodes: int, visited: np.ndarray | None = None) -> np.ndarray:
    """Which side-information values belong to at least one behaviour item some walk visits (so were trained)."""
    seen = np.zeros(side.n_values, dtype=bool)
    codes = side.codes[:n_nodes] if visited is None else side.codes[:n_nodes][visited]
    for s, off in enumerate(side.field_offset):
        known = codes[:, s] >= 0
        seen[off + codes[known, s]] = True
    return seen


def check_overlap(catalog_ids: pd.Series, node_ids: list[Any], id_col: str) -> np.ndarray:
    """Which catalog ids occur in the graph; none at all is an error (wrong id column or id types)."""
    in_graph = catalog_ids.isin(pd.Index(node_ids)).to_numpy()
    if len(node_ids) and len(catalog_ids) and not in_graph.any():
        raise InputError(f"no item id of the catalog's column {id_col!r} occurs in the log (catalog ids look like "
                         f"{plain(catalog_ids.iloc[0])!r}, log ids like {plain(node_ids[0])!r}); check side_info.id_col "
                         "and the id types")
    return in_graph


@dataclass
class SideInfoEmbeddings:
    """Item vectors (behaviour items first, then cold items that have one), side-info value vectors and
    per-item attention weights (rows aligned with the behaviour items)."""

    item_ids: list[Any]
    vectors: np.ndarray
    source: list[str]
    fields: list[str]
    value_field: list[str]
    value_label: list[str]
    value_vectors: np.ndarray
    attention: np.ndarray  # (n behaviour items, 1 + n fields): item, then each field
    details: dict[str, Any] = field(default_factory=dict)
    #: the trained model (rows, context rows, attention logits): what a child run continues from
    model: EgesModel | None = None

    @property
    def mean_attention(self) -> dict[str, float]:
        mean = self.attention.mean(axis=0)
        return {"item": round(float(mean[0]), 4), **{f: round(float(mean[s + 1]), 4) for s, f in enumerate(self.fields)}}


def fit_side_info(batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], counts: np.ndarray,
                  node_ids: list[Any], catalog: pd.DataFrame, id_col: str, fields: list[str], numeric_buckets: int,
                  cfg: TrainConfig, method: str, on_tokens: Callable[[int], None] | None = None,
                  on_epoch: EpochCallback | None = None,
                  start_from: Callable[[SideInfo], StartState | None] | None = None,
                  numeric: Collection[str] = (), cuts: Mapping[str, np.ndarray] | None = None) -> SideInfoEmbeddings:
    """Train GES/EGES on walks over ``node_ids`` (streamed: ``batches()`` once per epoch, ``counts`` the node
    frequencies in them) and place the catalog's other items from side information. ``start_from`` gives the
    rows training starts from, given the encoded side information (a warm start from a parent run); ``cuts`` the
    bounds its numeric fields are cut with (the parent's: :func:`eges.side_info.encode.encode`). The details record
    the bounds used (``numeric_bounds``), which a child of this run cuts with."""
    catalog_ids = catalog[id_col]
    in_graph = check_overlap(catalog_ids, node_ids, id_col)
    cold_ids = catalog_ids[~in_graph].tolist()
    n_nodes = len(node_ids)
    side, how = encode(catalog, list(node_ids) + cold_ids, id_col, fields, numeric_buckets, numeric, cuts)
    uses_side = method_of(method).side_info
    started = time.perf_counter()
    # A method without side information (chosen by validation) trains on the items' own rows only; its cold items
    # are then placed from value vectors that are the means of the behaviour vectors (value_means).
    train_side = side if uses_side else SideInfo([], np.zeros((len(side.codes), 0), dtype=np.int32), [])
    start = start_from(train_side) if start_from is not None else None  # a warm start: the parent's rows
    model = train_stream(batches, counts, n_nodes, train_side, cfg, method, on_tokens=on_tokens, on_epoch=on_epoch,
                         start=start)
    seconds = time.perf_counter() - started
    # Nodes no walk visits (dangling items with no in-edges) kept a random, untrained own row: they are cold-start
    # items, placed from side information like the catalog's items the log never shows.
    visited = np.asarray(counts[:n_nodes]) > 0
    warm = behaviour_vectors(model)
    if uses_side:
        seen = seen_values(side, n_nodes, visited)
        values = model.value_vectors()
        weights = model.attention_weights()
    else:
        values, seen = value_means(warm, visited, side)
        weights = np.zeros((n_nodes, 1 + len(fields)), dtype=np.float64)
        weights[:, 0] = 1.0  # the item's own row is all of its vector
    field_weights = weights.mean(axis=0)[1:] if cfg.cold_start == "attention" and uses_side else None
    placed, placed_ok = place_from_values(values, side.field_offset, side.codes[:n_nodes][~visited], seen,
                                          field_weights)
    warm[~visited] = placed
    node_ok = visited.copy()
    node_ok[~visited] = placed_ok
    cold, ok = place_from_values(values, side.field_offset, side.codes[n_nodes:], seen, field_weights)
    tokens = int(np.sum(counts)) * len(model.losses)  # one loss per epoch: the epochs actually run
    node_source = np.where(visited, "behaviour", "cold_start")
    out = SideInfoEmbeddings(
        item_ids=[i for i, good in zip(node_ids, node_ok) if good] + [c for c, good in zip(cold_ids, ok) if good],
        vectors=np.concatenate([warm[node_ok], cold[ok]]).astype(np.float32),
        source=node_source[node_ok].tolist() + ["cold_start"] * int(ok.sum()),
        fields=list(fields),
        value_field=[f for f, vals in zip(fields, side.values) for _ in vals],
        value_label=[v for vals in side.values for v in vals],
        value_vectors=values,
        attention=weights,
        model=model,
    )
    out.details = {"method": method, "epochs": len(model.losses), "cold_share": cold_share(method, cfg.cold_share),
                   "fields": how, "numeric_bounds": side.bounds, "mean_attention": out.mean_attention,
                   "losses": model.losses, "cold_items": len(cold_ids), "cold_with_vector": int(ok.sum()),
                   "cold_without_vector": int((~ok).sum()),
                   "unvisited_nodes": int((~visited).sum()), "unvisited_without_vector": int((~node_ok).sum()),
                   "train_seconds": round(seconds, 3),
                   "words_per_second": round(tokens / max(seconds, 1e-9))}
    return out
