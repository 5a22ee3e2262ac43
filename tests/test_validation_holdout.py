"""The validation slice: the training part holds nothing of the held-out events or hidden items, and its pairs
follow the evaluate protocols."""

from __future__ import annotations

import numpy as np

from eges.config import default_config
from eges.validation import make_holdout, training_walks


def _log(seed: int = 0, users: int = 300, items: int = 60, length: int = 8):
    """Sessions of a random log: (item, position, ts) in (user, session, position) order; the late part has
    transitions of its own (items shifted by one), so a leak shows as an edge the early part never has."""
    rng = np.random.default_rng(seed)
    item, position, ts = [], [], []
    for u in range(users):
        start = rng.integers(0, 1000)
        late = u >= int(users * 0.8)
        seq = rng.integers(0, items // 2, size=length) * 2  # even items; a late session ends on an odd one
        if late:
            seq[-1] += 1
        item.extend(seq)
        position.extend(range(length))
        ts.extend(((2000 if late else 0) + start + np.arange(length)) * 1000)
    return np.asarray(item, np.int32), np.asarray(position, np.int32), np.asarray(ts, np.int64), items


def test_the_slice_never_reaches_the_training_walks():
    item, position, ts, n = _log()
    cfg = default_config().replace("validate", fraction=0.2, cold_fraction=0.2)
    h = make_holdout(item, position, ts, n, cfg, has_catalog=True, seed=0)
    late_only = np.arange(1, n, 2)  # odd items occur only after the cut
    assert h.cut_ms >= 2000 * 1000
    assert not np.isin(h.train_item, late_only).any()
    assert not h.hidden[h.train_item].any()
    values, offsets = training_walks(h, cfg)
    assert len(values) > 0
    assert not np.isin(values, late_only).any(), "a held-out event reached the walks"
    assert not h.hidden[values].any(), "a hidden item reached the walks"
    # the pairs are scored on items the training graph knows
    assert h.warm[h.temporal.query].all() and h.warm[h.temporal.target].all()
    assert h.hidden[h.cold.query].all() and h.warm[h.cold.target].all()


def test_hidden_rows_cut_sessions_instead_of_joining_their_neighbours():
    # one session a -> h -> b with h hidden: no edge a -> b may appear
    item = np.array([0, 5, 1] * 50 + [2, 3] * 50, np.int32)
    position = np.array([0, 1, 2] * 50 + [0, 1] * 50, np.int32)
    ts = np.arange(len(item), dtype=np.int64) * 1000
    from eges.validation.holdout import training_rows

    keep = item != 5
    kept, pos = training_rows(item, position, keep)
    assert not ((kept[:-1] == 0) & (kept[1:] == 1) & (pos[1:] > 0)).any()
    del ts


def test_pairs_are_bounded():
    item, position, ts, n = _log(users=600)
    cfg = default_config().replace("validate", fraction=0.3, max_pairs=100, max_queries=10)
    h = make_holdout(item, position, ts, n, cfg, has_catalog=False, seed=1)
    assert 0 < len(h.temporal) <= 100
    assert len(np.unique(h.temporal.query)) <= 10
    assert len(h.link) <= 100
    assert h.cold is None and not h.hidden.any()


def test_an_edge_list_holds_out_edges_that_never_reach_the_walks():
    """An edge list has no times: a random share of its edges is held out instead, both directions of a pair
    together on a symmetric graph; no held-out edge and no hidden item is in the training graph or its walks."""
    from eges.validation import make_edge_holdout

    rng = np.random.default_rng(1)
    n = 80
    pairs = np.unique(rng.integers(0, n, size=(900, 2)), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    src, dst = np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])
    weight = rng.integers(1, 5, size=len(src)).astype(float)
    cfg = default_config().replace("validate", fraction=0.2, cold_fraction=0.1).replace("graph", undirected=True)
    h = make_edge_holdout(src, dst, weight, n, cfg, has_catalog=True, seed=0)
    trained = set(zip(np.repeat(np.arange(n), np.diff(h.graph.indptr)).tolist(), h.graph.indices.tolist()))
    held = set(zip(h.link.query.tolist(), h.link.target.tolist()))
    assert held and len(h.temporal) == 0
    assert not held & trained and not {(b, a) for a, b in held} & trained, "a held-out edge is in training"
    assert held <= set(zip(src.tolist(), dst.tolist()))
    values, offsets = training_walks(h, cfg)
    within = np.ones(len(values) - 1, dtype=bool)
    within[offsets[1:-1] - 1] = False  # no step from a walk's last node to the next walk's first
    steps = set(zip(values[:-1][within].tolist(), values[1:][within].tolist()))
    assert steps and not held & steps and not h.hidden[values].any()
    assert h.hidden[h.cold.query].all() and h.warm[h.cold.target].all()
    negatives = set(zip(h.link.neg_query.tolist(), h.link.neg_target.tolist()))
    assert not negatives & set(zip(src.tolist(), dst.tolist()))
