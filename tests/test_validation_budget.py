"""A large log's selection stays within the walk tokens its training alone would take (validate.bound_above):
the slice's passes plus the refit's never exceed the epochs rule's run, so validation cannot make it longer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import invoke_cli
from eges.config import default_config
from eges.layout import SELECTION
from eges.validation import fit_and_score, make_holdout
from eges.validation import select as select_module
from eges.validation.select import TokenBudget


def test_a_rising_curve_stops_where_one_more_pass_and_its_refit_would_not_fit(monkeypatch):
    rng = np.random.default_rng(0)
    users, items, length = 200, 20, 5
    steps = rng.integers(1, 3, size=(users, length))
    item = ((rng.integers(0, items, size=(users, 1)) + np.cumsum(steps, axis=1)) % items).reshape(-1).astype(np.int32)
    position = np.tile(np.arange(length, dtype=np.int32), users)
    ts = (np.repeat(rng.permutation(users), length) * 100 + np.tile(np.arange(length), users)).astype(np.int64)
    cfg = (default_config().replace("train", dimension=8, threads=1, sample=0.0)
           .replace("walks", walks_per_node=2, threads=1))
    holdout = make_holdout(item, position, ts * 1000, items, cfg, has_catalog=False, seed=0)
    figures = iter([0.1 * i for i in range(1, 11)])  # rises every pass: the early stop never fires
    monkeypatch.setattr(select_module, "score_vectors", lambda *a, **k: {
        "hitrate": next(figures), "next_auc": math.nan, "link_auc": math.nan, "cold_auc": math.nan})
    budget = TokenBudget(limit=1000, slice_pass=90, refit_pass=100)
    trial = fit_and_score(holdout, cfg, "bge", max_epochs=10, on_pass=budget.tracker("hitrate"))
    # after 5 passes: 450 spent + a refit of 5 = 950; a 6th pass and a refit of 6 would be 1140
    assert len(trial.curve) == 5 and trial.best_epochs == 5
    assert budget.spent == 450 and budget.spent + trial.best_epochs * budget.refit_pass <= budget.limit
    assert not budget.fits(1)
    assert TokenBudget(math.inf, 90, 100).fits(1000, 1000)  # a small log: no bound


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("budget_sample")
    invoke_cli("sample", "--out", root, "--events", 10_000, "--items", 400)
    return root


def test_a_bounded_selection_never_trains_more_than_the_run_without_it(sample, tmp_path, cli):
    out = tmp_path / "run"
    cli("run", "--events", sample / "events.parquet", "--items", sample / "items.parquet", "--out", out,
        "--set", "walks.walks_per_node=4", "--set", "train.dimension=8", "--set", "validate.bound_above=0",
        "--quiet")
    selection = json.loads((out / SELECTION).read_text())
    budget = selection["token_budget"]
    passes = sum(len(t["curve"]) for t in selection["trials"])
    short = selection["short_schedule"]
    passes += len(short["curve"]) if short else 0
    assert budget["spent"] == passes * budget["slice_pass"] > 0
    assert budget["limit"] == selection["max_epochs"] * budget["refit_pass"]
    assert budget["spent"] + selection["epochs"] * budget["refit_pass"] <= budget["limit"]
    assert "validate.bound_above" in selection["why"]
    tried = [t["method"] for t in selection["trials"]]
    assert sorted(tried + budget["untried"]) == sorted(selection["candidates"])
