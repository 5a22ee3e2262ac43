"""The validation slice of the user's own log: the latest events held out by time, and (with a catalog) a random
share of items hidden from training entirely, so a setting is chosen on the log it will serve.

Pure array code over the sessions table (rows in (user, session, position) order, item indices of the whole log's
vocabulary, times in ms): nothing here reads or writes files. The pairs follow the ``evaluate`` protocols
(:mod:`eges.evaluation.protocols`) on a bounded sample, so scoring them after every pass stays cheap:

- next item (``temporal``): held-out transitions i -> j (j at or after the cut, i the row before it in the same
  session) between two warm items, against i -> a random warm item; HitRate@K of j among i's K nearest.
- link (``link``): distinct held-out transitions i -> j (i != j) between warm items that are not an edge of the
  training graph (new links, the paper's protocol on time instead of a random third), against warm node pairs
  joined by no edge in the training graph or the slice.
- cold start (``cold``, with a catalog): transitions anywhere in the log between a hidden item and a warm one,
  scored from the hidden item's side-information vector, against the hidden item -> a random warm item.

Warm items are those with an edge in the training graph (walks visit them, so they get a vector).

An edge list (``eges run --edges``) has no times: :func:`make_edge_holdout` holds out a random share of its edges
instead (the link protocol's rule) and the slice has link and cold pairs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from eges.evaluation.score import Pairs
from eges.evaluation.splits import held_out_edges, holdout_mask, sample_non_edges
from eges.graph.csr import CSRGraph, from_edges, symmetrized
from eges.graph.transitions import count_transitions


@dataclass
class Holdout:
    """A training part and the pairs it is scored on (item indices of the whole log's vocabulary).

    ``train_item``/``train_position`` are the training rows as the graph builder reads them (a position above 0
    continues the row before); ``graph`` is the training graph built from them with the run's graph settings.
    Nothing at or after ``cut_ms``, and no row of a ``hidden`` item, is in either.
    """

    n_items: int
    cut_ms: int
    train_item: np.ndarray
    train_position: np.ndarray
    train_ts: np.ndarray  # the training rows' times (a nested slice of the training part: eges tune, studies)
    graph: CSRGraph
    hidden: np.ndarray  # bool per item: held out of training entirely (the cold-start slice)
    warm: np.ndarray  # bool per item: has an edge in the training graph
    temporal: Pairs
    link: Pairs
    cold: Pairs | None
    stats: dict[str, Any] = field(default_factory=dict)


def _sample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=limit, replace=False)) if n > limit else np.arange(n)


def _bound_queries(query: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Rows whose query is among at most ``limit`` random distinct queries: top-K costs one row per query."""
    distinct = np.unique(query)
    if len(distinct) <= limit:
        return np.ones(len(query), dtype=bool)
    return np.isin(query, rng.choice(distinct, size=limit, replace=False))


def cut_time(ts: np.ndarray, fraction: float) -> int:
    """The time at or after which the latest ``fraction`` of events lie (at least one event on each side when the
    log allows; events at the cut time are held out)."""
    order = np.sort(ts)
    index = min(max(int(round(len(order) * (1 - fraction))), 1), len(order) - 1)
    return int(order[index])


def training_rows(item: np.ndarray, position: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kept rows with positions that continue a session only where the row before was kept too: dropping a
    row cuts its session there, so no transition is invented across a dropped (held-out or hidden) row."""
    continues = np.zeros(len(item), dtype=bool)
    continues[1:] = (position[1:] > 0) & keep[:-1]
    return (np.ascontiguousarray(item[keep], dtype=np.int32),
            np.ascontiguousarray(continues[keep], dtype=np.int32))


def make_holdout(item: np.ndarray, position: np.ndarray, ts: np.ndarray, n_items: int, cfg: Any,
                 has_catalog: bool, seed: int, carried: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Holdout:
    """Split the sessions table into a training part and bounded validation pairs.

    Args:
        item, position, ts: the sessions table's columns (rows in (user, session, position) order).
        n_items: the vocabulary size.
        cfg: the run's :class:`eges.config.Config` (``validate`` and ``graph`` sections are read).
        has_catalog: hide ``validate.cold_fraction`` of the items for the cold-start slice.
        seed: seed of the hidden items and of every sample.
        carried: (src, dst, weight) edges the training graph holds besides the log's own transitions (an update's
            parent edges carried over, ``update.events = new``): they predate the log, so none is held out; an
            edge of a hidden item is dropped with it.

    Raises:
        ValueError: the log leaves no next-item pair to validate on (the caller names the problem).
    """
    vcfg, gcfg = cfg.validate, cfg.graph
    rng = np.random.default_rng(seed)
    item = np.asarray(item, dtype=np.int64)
    position = np.asarray(position)
    ts = np.asarray(ts)
    if len(item) < 2:
        raise ValueError("the log has fewer than two session events")
    cut = cut_time(ts, vcfg.fraction)
    hidden = holdout_mask(n_items, vcfg.cold_fraction, rng) if has_catalog else np.zeros(n_items, dtype=bool)
    before = ts < cut
    kept = before & ~hidden[item]
    train_item, train_position = training_rows(item, position, kept)
    graph = CSRGraph(*count_transitions(train_item, train_position, n_items, bool(gcfg.undirected),
                                        float(gcfg.min_edge_weight)))
    if carried is not None:
        graph = _with_carried(graph, carried, hidden)
    degree = np.diff(graph.indptr) + np.bincount(graph.indices, minlength=n_items)
    warm = (degree > 0) & ~hidden
    warm_items = np.flatnonzero(warm)
    if len(warm_items) < 2:
        raise ValueError("fewer than two items keep an edge in the training part")

    has_prev = np.zeros(len(item), dtype=bool)
    has_prev[1:] = position[1:] > 0
    rows = np.flatnonzero(has_prev)
    a, b = item[rows - 1], item[rows]
    late = ~before[rows]

    # next item: held-out transitions between warm items
    nxt = late & warm[a] & warm[b]
    qa, qb = a[nxt], b[nxt]
    keep = _sample(len(qa), vcfg.max_pairs, rng)
    qa, qb = qa[keep], qb[keep]
    keep = _bound_queries(qa, vcfg.max_queries, rng)
    qa, qb = qa[keep], qb[keep]
    if len(qa) == 0:
        raise ValueError("no transition after the cut joins two items of the training graph")
    temporal = Pairs(qa, qb, qa, rng.choice(warm_items, size=len(qa)))

    # link: new edges of the slice against node pairs with no edge
    src = np.repeat(np.arange(n_items, dtype=np.int64), np.diff(graph.indptr))
    dst = graph.indices.astype(np.int64)
    edge_keys = np.unique(src * n_items + dst)
    lk = late & warm[a] & warm[b] & (a != b)
    keys = np.unique(a[lk] * n_items + b[lk])
    new = keys[~np.isin(keys, edge_keys)]
    new = new[_sample(len(new), vcfg.max_pairs, rng)]
    la, lb = new // n_items, new % n_items
    try:
        na, nb = sample_non_edges(np.concatenate([src, a[late]]), np.concatenate([dst, b[late]]), warm_items,
                                  len(la), rng)
    except ValueError:  # a graph too dense for non-edges: no link figure
        la = lb = na = nb = np.zeros(0, dtype=np.int64)
    link = Pairs(la, lb, na, nb)

    # cold start: transitions between a hidden and a warm item, anywhere in the log
    cold = None
    if has_catalog:
        ck = (hidden[a] & warm[b]) | (hidden[b] & warm[a])
        ca, cb = a[ck], b[ck]
        query, target = np.where(hidden[ca], ca, cb), np.where(hidden[ca], cb, ca)
        keep = _sample(len(query), vcfg.max_pairs, rng)
        query, target = query[keep], target[keep]
        cold = Pairs(query, target, query, rng.choice(warm_items, size=len(query)))

    stats = {"cut_ms": cut, "events": int(len(item)), "train_events": int(len(train_item)),
             "held_out_events": int((~before).sum()), "hidden_items": int(hidden.sum()),
             "warm_items": int(len(warm_items)), "train_edges": int(graph.n_edges),
             "next_item_pairs": int(len(temporal)), "next_item_queries": int(len(np.unique(temporal.query))),
             "link_pairs": int(len(link)), "cold_pairs": int(len(cold)) if cold is not None else 0}
    return Holdout(n_items, cut, train_item, train_position, ts[kept], graph, hidden, warm, temporal, link, cold, stats)


def _with_carried(graph: CSRGraph, carried: tuple[np.ndarray, np.ndarray, np.ndarray],
                  hidden: np.ndarray) -> CSRGraph:
    """The training graph plus carried edges (an edge both counted and carried weighs the sum, as in the update's
    graph), without the hidden items' carried edges."""
    src, dst, weight = (np.asarray(a) for a in carried)
    keep = ~hidden[src] & ~hidden[dst]
    own_src = np.repeat(np.arange(graph.n_nodes, dtype=np.int64), np.diff(graph.indptr))
    return from_edges(np.concatenate([own_src, src[keep].astype(np.int64)]),
                      np.concatenate([graph.indices.astype(np.int64), dst[keep].astype(np.int64)]),
                      np.concatenate([graph.weights, weight[keep].astype(np.float64)]), graph.n_nodes)


def _no_pairs() -> Pairs:
    empty = np.zeros(0, dtype=np.int64)
    return Pairs(empty, empty, empty, empty)


def make_edge_holdout(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n_items: int, cfg: Any,
                      has_catalog: bool, seed: int) -> Holdout:
    """The slice of an edge list (item indices, the graph stage's edges): ``validate.fraction`` of the edges held
    out at random (both directions of a pair together when ``graph.undirected``), and with a catalog
    ``validate.cold_fraction`` of the items hidden. Link pairs: held-out edges between warm items against pairs
    with no edge at all; cold pairs: edges between a hidden and a warm item. No next-item pairs (no times).

    Raises:
        ValueError: too few edges stay to train or to score on.
    """
    vcfg = cfg.validate
    rng = np.random.default_rng(seed)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    if len(src) < 2:
        raise ValueError("the edge list has fewer than two edges")
    hidden = holdout_mask(n_items, vcfg.cold_fraction, rng) if has_catalog else np.zeros(n_items, dtype=bool)
    held = held_out_edges(src, dst, vcfg.fraction, bool(cfg.graph.undirected), rng)
    keep = ~held & ~hidden[src] & ~hidden[dst]
    graph = from_edges(src[keep], dst[keep], weight[keep], n_items)
    degree = np.diff(graph.indptr) + np.bincount(graph.indices, minlength=n_items)
    warm = (degree > 0) & ~hidden
    warm_items = np.flatnonzero(warm)
    if len(warm_items) < 2:
        raise ValueError("fewer than two items keep an edge in the training part")
    test = np.flatnonzero(held & warm[src] & warm[dst] & (src != dst) & ((src < dst) if cfg.graph.undirected else True))
    test = test[_sample(len(test), vcfg.max_pairs, rng)]
    if len(test) == 0:
        raise ValueError("no held-out edge joins two items of the training graph")
    na, nb = sample_non_edges(src, dst, warm_items, len(test), rng)
    link = Pairs(src[test], dst[test], na, nb)
    cold = None
    if has_catalog:
        ck = (hidden[src] & warm[dst]) | (hidden[dst] & warm[src])
        query, target = np.where(hidden[src[ck]], src[ck], dst[ck]), np.where(hidden[src[ck]], dst[ck], src[ck])
        pick = _sample(len(query), vcfg.max_pairs, rng)
        query, target = query[pick], target[pick]
        cold = Pairs(query, target, query, rng.choice(warm_items, size=len(query)))
    stats = {"edges": int(len(src)), "held_out_edges": int(held.sum()), "hidden_items": int(hidden.sum()),
             "warm_items": int(len(warm_items)), "train_edges": int(graph.n_edges), "next_item_pairs": 0,
             "link_pairs": int(len(link)), "cold_pairs": int(len(cold)) if cold is not None else 0}
    empty = np.zeros(0, dtype=np.int64)
    return Holdout(n_items, 0, empty, empty, empty, graph, hidden, warm, _no_pairs(), link, cold, stats)


def made_undirected(holdout: Holdout) -> Holdout:
    """The slice with its training graph made undirected (:func:`eges.graph.csr.symmetrized`): the same training
    rows, pairs and warm items, so a trial on it answers the same question (``validate.try_undirected``)."""
    return replace(holdout, graph=symmetrized(holdout.graph))
