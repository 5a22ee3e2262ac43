"""Centred vectors chosen on the validation slice (validate.try_centred): a pass is scored as trained and with the
items' mean vector subtracted, counts with the higher AUC, and the training stages write centred vectors only when
the chosen pass scored higher centred (docs/studies/amazon-beauty-link.md)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from eges.evaluation.score import Pairs
from eges.graph.csr import from_edges
from eges.layout import BGE_VECTORS, EGES_VECTORS, MANIFEST, SELECTION
from eges.pipeline import io
from eges.validation import Holdout, score_vectors

FAST = ["--set", "walks.walks_per_node=2", "--set", "train.dimension=8", "--set", "validate.max_epochs=2",
        "--set", "validate.windows=[]", "--set", "validate.try_undirected=false", "--set", "train.sample=0.0",
        "--set", "train.threads=1", "--set", "walks.threads=1", "--set", "validate.metric=auc", "--quiet"]


def _clusters(offset: float, n_groups: int = 30, size: int = 4, dim: int = 8, seed: int = 0):
    """Items in groups of ``size`` around a group direction, plus one ``offset`` shared by every item; new links
    join items of a group, non-links items of different groups."""
    rng = np.random.default_rng(seed)
    n = n_groups * size
    group = np.repeat(np.arange(n_groups), size)
    centres = rng.normal(size=(n_groups, dim))
    # Each item's own part has its own length (how much it was trained), the shared part one length: items with a
    # short own part point along the shared direction, so any two of them look alike to the raw cosine.
    own = (centres[group] + 0.3 * rng.normal(size=(n, dim))) * np.exp(rng.uniform(-2.5, 0.5, size=(n, 1)))
    vectors = own + offset * rng.normal(size=dim)
    a, b = np.triu_indices(n, 1)
    same = group[a] == group[b]
    pos = np.flatnonzero(same)
    neg = rng.choice(np.flatnonzero(~same), size=len(pos), replace=False)
    empty = np.zeros(0, dtype=np.int64)
    holdout = Holdout(n, 0, empty, empty, empty, from_edges(empty, empty, None, n), np.zeros(n, dtype=bool),
                      np.ones(n, dtype=bool), Pairs(empty, empty, empty, empty),
                      Pairs(a[pos], b[pos], a[neg], b[neg]), None)
    return holdout, vectors.astype(np.float32)


def test_a_pass_counts_centred_only_when_that_scores_higher():
    """A shared direction drowns the links in the raw cosine where items' own parts are short; centred, the pass
    scores the groups and says so. Without the offset the raw vectors stand; without ``centre`` nothing is tried."""
    holdout, vectors = _clusters(offset=1.0)
    has = np.ones(len(vectors), dtype=bool)
    raw = score_vectors(holdout, vectors, has, 5)
    both = score_vectors(holdout, vectors, has, 5, centre=True)
    assert raw["centred"] is False and raw["link_auc"] < 0.85
    assert both["centred"] is True and both["link_auc"] > 0.95
    shift = vectors.astype(np.float64).mean(axis=0).astype(np.float32)
    assert both["link_auc"] == score_vectors(holdout, vectors - shift, has, 5)["link_auc"]
    holdout, plain = _clusters(offset=0.0)
    row = score_vectors(holdout, plain, has, 5, centre=True)
    assert row["centred"] is False and row["link_auc"] == score_vectors(holdout, plain, has, 5)["link_auc"]


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """Small sessions of items from twelve groups, with a catalog (its shelf says nothing of the groups)."""
    rng = np.random.default_rng(0)
    users, length = 300, 4
    group = rng.integers(0, 12, users)
    items = group[:, None] * 5 + rng.integers(0, 5, (users, length))
    order = rng.permutation(users)
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(users), length), "item_id": items.reshape(-1),
                          "timestamp": (np.repeat(order, length) * 100 + np.tile(np.arange(length), users)) * 1000})
    root = tmp_path_factory.mktemp("centred_log")
    frame.to_parquet(root / "events.parquet")
    ids = np.unique(frame["item_id"])
    pd.DataFrame({"item_id": ids, "shelf": ids % 7}).to_parquet(root / "items.parquet")
    return root


@pytest.mark.parametrize("stage, path, args, chosen", [
    ("skipgram", BGE_VECTORS, [], True),
    ("skipgram", BGE_VECTORS, [], False),
    ("eges", EGES_VECTORS, ["--method", "eges"], True),
])
def test_the_training_stage_writes_centred_vectors_when_the_slice_chose_them(log, tmp_path, cli, monkeypatch, stage,
                                                                           path, args, chosen):
    """The slice's verdict is scripted (every pass scores higher centred, or never): selection.json records it, and
    the training stage writes vectors whose behaviour rows average zero exactly when it was chosen."""
    import eges.validation.select as select

    real = select.score_vectors

    def scripted(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        row = real(*a, **kw)
        assert a[6]  # metric auc on a fresh run: centring is tried
        return {**row, "centred": chosen}

    monkeypatch.setattr(select, "score_vectors", scripted)
    out = tmp_path / "run"
    items = ["--items", log / "items.parquet"] if args else []
    cli("run", "--events", log / "events.parquet", "--out", out, *items, *args, *FAST, "--until", stage)
    assert json.loads((out / SELECTION).read_text())["centred"] is chosen
    assert json.loads((out / MANIFEST).read_text())["stages"][stage]["details"]["centred"] is chosen
    _, vectors = io.read_vectors(out / path)
    if stage == "eges":
        behaviour = np.asarray(pq.read_table(out / path, columns=["source"])["source"].to_pylist()) == "behaviour"
        vectors = vectors[behaviour]
    mean = np.abs(vectors.mean(axis=0)).max()
    scale = np.abs(vectors).mean()
    assert bool(mean < 1e-4 * scale) is chosen


def test_hitrate_selection_tries_no_centring(log, tmp_path, cli, monkeypatch):
    """validate.metric = hitrate (the default) never scores centred vectors, so its choices are unchanged."""
    import eges.validation.select as select

    seen = []
    real = select.score_vectors
    monkeypatch.setattr(select, "score_vectors", lambda *a, **kw: seen.append(a[6]) or real(*a, **kw))
    fast = [a if a != "validate.metric=auc" else "validate.metric=hitrate" for a in FAST]
    out = tmp_path / "run"
    cli("run", "--events", log / "events.parquet", "--out", out, *fast, "--until", "validate")
    assert seen and not any(seen)
    assert json.loads((out / SELECTION).read_text())["centred"] is False


def test_a_warm_start_continues_a_centred_parent_from_its_trained_rows(log, tmp_path, cli, monkeypatch):
    """A centred EGES parent writes centred vectors and value rows and records the shift. A warm start that learns
    nothing (update.alpha = 0) continues from the rows the parent trained (the shift added back to the value rows
    it reads) and centres as its parent did, so it writes the parent's vectors and value rows again: without the
    shift added back its value rows start off by it; without following the parent it writes raw vectors."""
    import eges.validation.select as select
    from eges.layout import SIDE_VECTORS

    real = select.score_vectors
    monkeypatch.setattr(select, "score_vectors", lambda *a, **kw: {**real(*a, **kw), "centred": True})
    parent, child = tmp_path / "parent", tmp_path / "child"
    data = ["--events", log / "events.parquet", "--items", log / "items.parquet", "--method", "eges"]
    cli("run", *data, "--out", parent, *FAST, "--until", "eges")
    monkeypatch.undo()
    details = json.loads((parent / MANIFEST).read_text())["stages"]["eges"]["details"]
    assert details["centred"] is True and len(details["centred_shift"]) == 8
    cli("run", *data, "--out", child, "--warm-start", parent, *FAST, "--set", "update.alpha=0", "--until", "eges")
    assert json.loads((child / MANIFEST).read_text())["stages"]["eges"]["details"]["centred"] is True
    (_, mine), (_, theirs) = io.read_vectors(child / EGES_VECTORS), io.read_vectors(parent / EGES_VECTORS)
    np.testing.assert_allclose(mine, theirs, atol=1e-5)
    mine, theirs = (np.stack(pq.read_table(run / SIDE_VECTORS)["vector"].to_numpy(zero_copy_only=False))
                    for run in (child, parent))
    np.testing.assert_allclose(mine, theirs, atol=1e-5)
