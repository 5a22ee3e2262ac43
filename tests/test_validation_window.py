"""The skip-gram window chosen on the validation slice (validate.windows): a narrower window that scores higher is
kept and the training stage trains with it; one that does not, or that loses cold-start AUC, is not; an explicit
train.window is the user's and skips the trial."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import eges.validation as validation
from eges.config import default_config
from eges.layout import MANIFEST, SELECTION
from eges.validation.select import Trial
from eges.validation.variants import window_trial as _window_trial

FAST = ["--set", "walks.walks_per_node=4", "--set", "train.dimension=16", "--set", "neighbours.k=5", "--quiet"]


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """Baskets of four items from one of 30 groups, a shared item between each two: a small basket log."""
    rng = np.random.default_rng(0)
    users, size = 600, 4
    group = rng.integers(0, 30, size=users)
    items = 2 + group[:, None] * size + np.argsort(rng.random((users, size)), axis=1)
    hubs = rng.integers(0, 2, size=(users, size))
    seq = np.stack([items, hubs], axis=2).reshape(users, -1)
    length = seq.shape[1]
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(users), length), "item_id": seq.reshape(-1),
                          "timestamp": (np.repeat(rng.permutation(users), length) * 100
                                        + np.tile(np.arange(length), users)) * 1000})
    path = tmp_path_factory.mktemp("window_log") / "events.parquet"
    frame.to_parquet(path)
    return path


def _scripted(monkeypatch, bonus: float, cold_drop: float = 0.0):
    """Every trial on the slice scores 0.5 per pass (cold AUC 0.8), plus ``bonus`` (cold AUC minus ``cold_drop``)
    at a window other than 5: the slice's verdict is what is under test, the training stages train for real."""
    seen = []

    def fake(holdout, config, method, side=None, max_epochs=None, walks=None, patience=None, **_):
        window = config.train.window
        seen.append(window)
        up = 0.0 if window == 5 else bonus
        cold = 0.8 - (0.0 if window == 5 else cold_drop)
        curve = [{"epoch": e, "loss": 1.0, "hitrate": 0.5 + up, "next_auc": 0.5, "link_auc": 0.5 + up,
                  "cold_auc": cold} for e in range(1, int(max_epochs or 3) + 1)]
        return Trial(method, config.validate.metric, len(curve), curve, curve[-1], 0.0, False)

    monkeypatch.setattr(validation, "fit_and_score", fake)
    return seen


def _run(cli, events, out, *args):
    cli("run", "--events", events, "--out", out, *FAST, *args)
    return json.loads((out / SELECTION).read_text()), json.loads((out / MANIFEST).read_text())["stages"]


def test_a_window_that_scores_higher_on_the_slice_is_chosen_and_trained_with(monkeypatch, events, tmp_path, cli):
    seen = _scripted(monkeypatch, bonus=0.1)
    selection, stages = _run(cli, events, tmp_path / "run")
    assert seen[-1] == 2  # the trial ran last, after the passes were chosen at the default window
    assert selection["window"] == 2 and [t["window"] for t in selection["window_trials"]] == [2]
    assert selection["window_trials"][0]["wins"] and "train.window 2" in selection["why"]
    assert stages["validate"]["details"]["window"] == 2
    assert stages["skipgram"]["details"]["window"] == 2


def test_a_window_that_does_not_score_higher_keeps_the_default(monkeypatch, events, tmp_path, cli):
    _scripted(monkeypatch, bonus=0.0)  # a tie is not a win
    selection, stages = _run(cli, events, tmp_path / "run")
    assert selection["window"] == 5 and not selection["window_trials"][0]["wins"]
    assert "train.window 5 kept" in selection["why"]
    assert stages["skipgram"]["details"]["window"] == 5


@pytest.mark.parametrize("setting, window", [("train.window=3", 3), ("validate.windows=[]", 5)])
def test_an_explicit_window_wins_over_the_trial(monkeypatch, events, tmp_path, cli, setting, window):
    seen = _scripted(monkeypatch, bonus=0.1)
    selection, stages = _run(cli, events, tmp_path / "run", "--set", setting)
    assert 2 not in seen and selection["window_trials"] == []
    assert selection["window"] == window and stages["skipgram"]["details"]["window"] == window


def _trial(window: int, value: float, cold: float, passes: int = 3, best: int | None = None) -> Trial:
    curve = [{"epoch": e, "hitrate": value - 0.01 * (passes - e if best is None else abs(best - e)),
              "link_auc": value, "cold_auc": cold} for e in range(1, passes + 1)]
    top = max(curve, key=lambda row: row["hitrate"])
    return Trial("ges", "hitrate", top["epoch"], curve, top, 0.0, False)


@pytest.mark.parametrize("cold, wins", [(0.77, True), (0.70, False), (math.nan, False)])
def test_the_cold_guard_bars_a_window_that_loses_cold_start_auc(monkeypatch, cold, wins):
    monkeypatch.setattr(validation, "fit_and_score", lambda *a, **k: _trial(2, 0.7, cold))
    config = default_config()  # cold_tolerance 0.05 against the default window's 0.80
    choice = _window_trial(None, config, "ges", None, None, 3, _trial(5, 0.5, 0.80), last_pass=False)
    assert (choice.window == 2) is wins and choice.trials[0]["wins"] is wins
    if not wins:
        assert "cold AUC" in choice.why


def test_the_passes_follow_the_chosen_window_unless_they_are_fixed(monkeypatch):
    monkeypatch.setattr(validation, "fit_and_score", lambda *a, **k: _trial(2, 0.7, 0.8, passes=5, best=2))
    config = default_config()
    free = _window_trial(None, config, "bge", None, None, 5, _trial(5, 0.5, 0.8, passes=5), last_pass=False)
    assert free.window == 2 and free.epochs == 2
    fixed = _window_trial(None, config, "bge", None, None, 5, _trial(5, 0.5, 0.8, passes=5), last_pass=True)
    assert fixed.window == 2 and fixed.epochs == 0  # the passes already chosen stand


def _ring(path, late_step: int, users: int = 800, items: int = 60, length: int = 6):
    """Sessions walking a ring of items one step at a time; the latest 10% of users (the slice) step ``late_step``
    at a time. Step 1 throughout: the next item is the nearest neighbour, which a narrow window ranks first. Step 4
    late: the held-out next item is four steps away, inside window 5's context and outside window 2's."""
    rng = np.random.default_rng(0)
    order = rng.permutation(users)  # each user's rank in time
    step = np.where(order >= int(users * 0.9), late_step, 1)[:, None]
    item = (rng.integers(0, items, size=(users, 1)) + step * np.arange(length)) % items
    pd.DataFrame({"user_id": np.repeat(np.arange(users), length), "item_id": item.reshape(-1),
                  "timestamp": (np.repeat(order, length) * 100 + np.tile(np.arange(length), users)) * 1000},
                 ).to_parquet(path)
    return path


RING = ["--set", "train.sample=0.0", "--set", "train.threads=1", "--set", "walks.threads=1"]


@pytest.mark.parametrize("late_step, k, window", [(1, 2, 2), (4, 6, 5)])
def test_on_a_real_slice_the_window_that_ranks_the_next_item_higher_is_chosen(tmp_path, cli, late_step, k, window):
    events = _ring(tmp_path / "events.parquet", late_step)
    selection, stages = _run(cli, events, tmp_path / "run", *RING, "--set", f"validate.k={k}")
    trial = selection["window_trials"][0]
    assert trial["window"] == 2 and trial["wins"] is (window == 2)
    assert selection["window"] == window and stages["skipgram"]["details"]["window"] == window
