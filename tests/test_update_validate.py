"""The new slice decides an update's passes (``update.epochs = 0``): the validate stage of a warm start trains the
parent's method from the parent's rows on this run's earlier events, scores its latest ones after every pass, and the
training stage trains the passes it chose; with carry-over the trial's graph is the update's minus the slice."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import eges
import eges.validation
from eges.graph.transitions import count_transitions
from eges.layout import EDGES, MANIFEST, NODES, SELECTION, SESSIONS
from trust import DATA

SMALL = ["walks.walks_per_node=4", "train.dimension=16"]
SLICE_DECIDES = ["update.epochs=0", "update.events=window", "train.epochs=6"]  # at most six passes tried


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """(folder, a log, the same items with their behaviour shuffled, a BGE parent trained on the log)."""
    root = tmp_path_factory.mktemp("update_validate")
    events = pq.read_table(DATA / "events.parquet").slice(0, 20_000)
    pq.write_table(events, root / "same.parquet")
    ids = events["item_id"].to_numpy()
    distinct = np.unique(ids)
    relabelled = np.random.default_rng(0).permutation(distinct)[np.searchsorted(distinct, ids)]
    shuffled = events.set_column(events.column_names.index("item_id"), "item_id",
                                 pa.array(relabelled, events["item_id"].type))
    pq.write_table(shuffled, root / "new.parquet")
    eges.run(root / "parent", events=str(root / "same.parquet"), settings=[*SMALL, "train.epochs=5"],
             until="skipgram")
    return root


def _update(logs, name: str) -> tuple[dict, dict]:
    out = logs / name
    eges.run(out, events=str(logs / f"{name}.parquet"), warm_start=str(logs / "parent"),
             settings=[*SMALL, *SLICE_DECIDES], until="skipgram")
    return json.loads((out / SELECTION).read_text()), json.loads((out / MANIFEST).read_text())["stages"]


def test_a_day_that_changes_nothing_stops_at_one_pass_and_a_new_one_goes_on(logs):
    same, same_stages = _update(logs, "same")
    new, new_stages = _update(logs, "new")
    # the same log again: the parent's rows already fit it, so the first pass is the best and the trial stops
    assert same["epochs"] == 1 and same["trials"][0]["stopped_early"]
    # the same items with other neighbours: the parent's rows are wrong, so more passes keep improving
    assert new["epochs"] > 1
    for selection, stages in ((same, same_stages), (new, new_stages)):
        assert selection["warm_start"] and selection["candidates"] == ["bge"] and selection["max_epochs"] == 6
        assert stages["skipgram"]["details"]["epochs"] == selection["epochs"]  # the update trains the choice
        validate = stages["validate"]
        assert validate["details"]["epochs"] == selection["epochs"]
        curve = [row["hitrate"] for row in selection["trials"][0]["curve"]]
        assert validate["details"]["curve"]["bge"] == pytest.approx(curve)
        assert int(np.argmax(curve)) + 1 == selection["epochs"]
        assert "from the parent's rows at update.alpha 0.025" in validate["details"]["why"]


def test_an_explicit_update_epochs_does_not_validate(logs):
    out = logs / "fixed"
    eges.run(out, events=str(logs / "new.parquet"), warm_start=str(logs / "parent"),
             settings=[*SMALL, "update.epochs=2", "update.events=window"], until="skipgram")
    assert not (out / SELECTION).exists()
    assert json.loads((out / MANIFEST).read_text())["stages"]["skipgram"]["details"]["epochs"] == 2


def test_with_carry_over_the_trial_trains_on_the_updates_graph_minus_the_slice(logs, monkeypatch):
    """The update's graph (new transitions + the parent's carried edges) less the held-out transitions is exactly
    the trial's graph, and its walks step only along that graph's edges."""
    seen = {}
    original = eges.validation.training_walks

    def spy(holdout, config):
        seen["holdout"], seen["walks"] = holdout, original(holdout, config)
        return seen["walks"]

    monkeypatch.setattr(eges.validation, "training_walks", spy)
    events = pq.read_table(logs / "same.parquet")
    middle = pc.min(events["timestamp"]).as_py() + (pc.max(events["timestamp"]).as_py() -
                                                    pc.min(events["timestamp"]).as_py()) // 2
    pq.write_table(events.filter(pc.less(events["timestamp"], middle)), logs / "first.parquet")
    pq.write_table(events.filter(pc.greater_equal(events["timestamp"], middle)), logs / "second.parquet")
    eges.run(logs / "first", events=str(logs / "first.parquet"), settings=[*SMALL, "train.epochs=1"],
             until="skipgram")
    out = logs / "carried"
    eges.run(out, events=str(logs / "second.parquet"), warm_start=str(logs / "first"),
             settings=[*SMALL, "update.epochs=0", "update.events=new", "validate.max_epochs=1"], until="validate")
    holdout = seen["holdout"]
    n = pq.read_metadata(out / NODES).num_rows
    assert holdout.n_items == n
    update = pq.read_table(out / EDGES).to_pandas().set_index(["src", "dst"])["weight"]
    assert (update % 1 > 0).any()  # some edges are carried (decayed weights)
    trial = holdout.graph
    trial_w = pd_series(np.repeat(np.arange(n), np.diff(trial.indptr)), trial.indices, trial.weights)
    # the held-out transitions: each session row at or after the cut with the row before it
    sessions = pq.read_table(out / SESSIONS, columns=["item_index", "position", "ts"])
    item, position, ts = (sessions[c].to_numpy() for c in ("item_index", "position", "ts"))
    late = np.flatnonzero((position > 0) & (ts >= holdout.cut_ms))
    assert len(late)
    pairs = np.stack([item[late - 1], item[late]], axis=1).ravel().astype(np.int32)
    indptr, indices, weights = count_transitions(pairs, np.tile([0, 1], len(late)).astype(np.int32), n, False, 0.0)
    held = pd_series(np.repeat(np.arange(n), np.diff(indptr)), indices, weights)
    difference = update.sub(trial_w, fill_value=0.0)
    difference = difference[difference.abs() > 1e-9]
    assert difference.sort_index().to_dict() == pytest.approx(held.sort_index().to_dict())
    values, offsets = seen["walks"]
    steps = np.ones(len(values), dtype=bool)
    steps[offsets[1:-1] - 1] = False  # no step from a walk's last node to the next walk's first
    steps[-1] = False
    src, dst = values[:-1][steps[:-1]], values[1:][steps[:-1]]
    keys = set(zip(np.repeat(np.arange(n), np.diff(trial.indptr)).tolist(), trial.indices.tolist()))
    assert set(zip(src.tolist(), dst.tolist())) <= keys


def pd_series(src: np.ndarray, dst: np.ndarray, weight: np.ndarray):
    import pandas as pd

    return pd.Series(np.asarray(weight, dtype=np.float64),
                     index=pd.MultiIndex.from_arrays([np.asarray(src, np.int64), np.asarray(dst, np.int64)],
                                                     names=["src", "dst"]))
