"""A large log's selection stays within the walk tokens its training alone would take (validate.bound_above):
the slice's passes plus the refit's never exceed the epochs rule's run, so validation cannot make it longer."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import invoke_cli
from eges.config import default_config
from eges.layout import SELECTION, WALKS
from eges.validation import fit_and_score, make_holdout
from eges.validation import select as select_module
from eges.validation.race import Race
from eges.validation.select import TokenBudget, Trial


def _holdout():
    rng = np.random.default_rng(0)
    users, items, length = 200, 20, 5
    steps = rng.integers(1, 3, size=(users, length))
    item = ((rng.integers(0, items, size=(users, 1)) + np.cumsum(steps, axis=1)) % items).reshape(-1).astype(np.int32)
    position = np.tile(np.arange(length, dtype=np.int32), users)
    ts = (np.repeat(rng.permutation(users), length) * 100 + np.tile(np.arange(length), users)).astype(np.int64)
    cfg = (default_config().replace("train", dimension=8, threads=1, sample=0.0)
           .replace("walks", walks_per_node=2, threads=1))
    return make_holdout(item, position, ts * 1000, items, cfg, has_catalog=False, seed=0), cfg


def test_a_rising_curve_stops_where_one_more_pass_and_its_refit_would_not_fit(monkeypatch):
    holdout, cfg = _holdout()
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
    direction = selection["direction_trial"]  # on the undirected walks
    undirected = len(direction["curve"]) * budget["walk_passes"]["slice_undirected"] if direction else 0
    assert budget["spent"] == passes * budget["slice_pass"] + undirected > 0
    assert not selection["window_trials"]
    # at one training's tokens only the first method races: the others would take its passes
    assert budget["untried"] == ["ges", "bge"] and len(selection["trials"][0]["curve"]) > 2
    assert budget["limit"] == selection["max_epochs"] * budget["refit_pass"]
    # the refit's pass is the whole log's walks, the walks stage's (the slice also drops the hidden cold items:
    # scaling its walks up by the held-out share fell ~1/3 short of them)
    assert budget["refit_pass"] == len(pq.read_table(out / WALKS)["walk"].combine_chunks().flatten())
    assert budget["spent"] + selection["epochs"] * budget["refit_pass"] <= budget["limit"]
    assert "validate.bound_above" in selection["why"]
    tried = [t["method"] for t in selection["trials"]]
    assert sorted(tried + budget["untried"]) == sorted(selection["candidates"])


# ---- validate.budget: the selection within a multiple of the training without validation (issue 19, cost)

def test_the_limit_is_a_multiple_of_the_training_within_the_absolute_bound():
    from eges.validation.select import token_limit

    assert token_limit(57e6, 3, 200e6) == 171e6  # taobao: three times its training
    assert token_limit(100e6, 3, 200e6) == 200e6  # the absolute bound caps the multiple
    assert token_limit(379e6, 3, 200e6) == 379e6  # a large log selects within its own training
    assert token_limit(57e6, 0, 200e6) == 200e6  # 0: no multiple, the bound alone
    assert token_limit(57e6, 0, math.inf) == math.inf  # nothing bounds


def test_the_bound_per_event_applies_where_it_is_below_the_absolute_bound():
    from eges.validation.select import absolute_bound

    assert absolute_bound(200e6, 1500, 80_717) == (1500 * 80_717, "validate.bound_per_event")  # taobao
    assert absolute_bound(200e6, 1500, 714_285) == (200e6, "validate.bound_above")  # a 1 M-event log
    assert absolute_bound(200e6, 0, 80_717) == (200e6, "validate.bound_above")  # 0: none
    assert absolute_bound(200e6, 1500, 0) == (200e6, "validate.bound_above")  # events not known


def test_a_binding_budget_funds_the_later_trials_by_rank_and_says_what_it_stopped():
    # training 10 x 100 = 1000 tokens, limit 2000; the methods spent 1000, the refit is 5 passes (500)
    budget = TokenBudget.for_run(10, 90, 100, 2.0, math.inf)
    budget.spent, budget.refit_passes = 1000, 5
    budget.reserve(cap=10, short_passes=5, undirected_pass=40, windows=1)  # 400 (+ a refit no longer) ; 900
    assert budget.reserved == {"short schedule": 450, "undirected": 400, "window": 900}
    # the short schedule ranks last: one pass fits, but not beside the direction's 400 kept ahead of it
    # (1000 + 90 + 400 + 500 = 1990 fits; the window's 900 cannot fit beside them, so it keeps nothing)
    assert budget.allows("short schedule")
    budget.spent = 1050  # a shorter pass taken: now 1050 + 90 + 400 + 500 = 2040 does not fit
    budget.reserved["short schedule"] = 450
    assert not budget.allows("short schedule")
    assert "kept for undirected" in budget.stopped["short schedule"]
    assert budget.allows("undirected")  # the direction keeps nothing ahead of it
    # the tracker stops a trial where one more pass and a refit one pass longer would not fit
    track = budget.tracker("hitrate", "undirected")
    passes = next(i for i in range(1, 10) if track({"hitrate": 0.1 * i}))  # rising: the best is the last pass
    # after 4 passes 1410 + 90 + a refit of 5 (500) = 2000 fits; after 5, 1500 + 90 + a refit of 6 does not
    assert passes == 5 and budget.spent == 1050 + 5 * 90
    assert budget.stopped["undirected"].startswith("stopped after 5 pass(es)")
    # a trial judged at its last pass (the short schedule) starts only when all its passes fit
    last = TokenBudget.for_run(10, 90, 100, 2.0, math.inf, refit_passes=5)
    last.spent = 1200  # 1200 + 500 of refit: 3 passes fit (1970), 4 do not (2060)
    assert last.allows("short schedule", 3) and not last.allows("short schedule", 4)
    assert last.stopped["short schedule"].startswith("not tried: 1,200 walk tokens spent, 4 pass(es)")
    unbounded = TokenBudget.for_run(10, 90, 100, 0, math.inf)
    unbounded.spent = 10**12
    unbounded.reserve(cap=10, short_passes=5, undirected_pass=40, windows=1)
    assert unbounded.allows("short schedule") and not unbounded.tracker("hitrate", "x")({"hitrate": 0.1})
    assert not unbounded.stopped and unbounded.sentence(0) == ""


def _run(cli, sample, out, *settings):
    cli("run", "--events", sample / "events.parquet", "--items", sample / "items.parquet", "--out", out,
        "--set", "walks.walks_per_node=4", "--set", "train.dimension=8", "--set", "train.threads=1",
        *[a for s in settings for a in ("--set", s)], "--quiet")
    manifest = json.loads((out / "manifest.json").read_text())
    return json.loads((out / SELECTION).read_text()), manifest["stages"]["validate"]["details"]


def test_a_binding_budget_stops_methods_and_trials_and_records_why(sample, tmp_path, cli):
    selection, details = _run(cli, sample, tmp_path / "run", "validate.budget=1.5")
    budget = selection["token_budget"]
    assert budget["limit"] == 1.5 * budget["training"] > 0
    assert budget["stopped"] and details["budget_stopped"] == budget["stopped"]
    refit = selection["epochs"] * budget["refit_pass"]
    assert budget["spent"] + refit <= budget["limit"]
    tried = [t["method"] for t in selection["trials"]]
    assert sorted(tried + budget["untried"]) == sorted(selection["candidates"])
    # every method that did not reach its own end, and every later trial not run, is named with its reason
    for trial in selection["trials"]:
        if len(trial["curve"]) < selection["max_epochs"] and not trial["stopped_early"] and not trial.get("dropped"):
            assert trial["method"] in budget["stopped"]
    later = {"short schedule": selection["short_schedule"], "undirected": selection["direction_trial"],
             "window": selection["window_trials"] or None}
    assert any(later[k] is None and k in budget["stopped"] for k in later)
    assert "validate.budget" in selection["why"] and "the budget stopped" in selection["why"]


def test_an_unbounded_budget_changes_nothing(sample, tmp_path, cli):
    runs = [_run(cli, sample, tmp_path / name, f"validate.budget={b}", "validate.bound_above=10000000000")
            for name, b in (("none", 0), ("huge", 1000))]
    (first, _), (second, _) = runs
    for selection in (first, second):
        assert not selection["token_budget"]["stopped"] and "the budget stopped" not in selection["why"]

    def shape(s):
        return (s["method"], s["epochs"], s["window"], s["direction"], s["schedule_epochs"],
                [len(t["curve"]) for t in s["trials"]], s["token_budget"]["spent"])

    assert shape(first) == shape(second)


def test_a_race_is_still_recorded_when_the_budget_stops_the_same_pass(monkeypatch):
    holdout, cfg = _holdout()
    monkeypatch.setattr(select_module, "score_vectors", lambda *a, **k: {
        "hitrate": 0.1, "next_auc": math.nan, "link_auc": math.nan, "cold_auc": math.nan})
    leader = Trial("eges", "hitrate", 1, [{"epoch": 1, "hitrate": 0.5}, {"epoch": 2, "hitrate": 0.5}],
                   {"epoch": 1, "hitrate": 0.5}, 0.0, False)
    budget = TokenBudget(limit=500, slice_pass=90, refit_pass=100)  # 2 passes + a refit of 3 = 480; 3 passes not
    trial = fit_and_score(holdout, cfg, "bge", max_epochs=10, patience=0, race=Race("hitrate", 0.1, 0.1, [leader]),
                          on_pass=budget.tracker("hitrate", "bge", 10))
    assert len(trial.curve) == 2 and budget.spent == 180
    assert "below eges's 0.5000" in trial.dropped  # the race's reason is kept: it stopped it anyway,
    assert "bge" not in budget.stopped  # so the budget claims no stop (replays skip selections it names)


def test_a_trial_early_stopping_ends_is_not_claimed_as_the_budgets_stop(monkeypatch):
    holdout, cfg = _holdout()
    figures = iter([0.5, 0.1, 0.1, 0.1])  # best at pass 1: patience 2 ends the trial at pass 3
    monkeypatch.setattr(select_module, "score_vectors", lambda *a, **k: {
        "hitrate": next(figures), "next_auc": math.nan, "link_auc": math.nan, "cold_auc": math.nan})
    budget = TokenBudget(limit=700, slice_pass=90, refit_pass=100)  # after 3 passes: 270 + 90 + a refit of 4 > 700
    trial = fit_and_score(holdout, cfg, "bge", max_epochs=10, patience=2, on_pass=budget.tracker("hitrate", "bge", 10))
    assert trial.stopped_early and len(trial.curve) == 3 and budget.spent == 270
    assert "bge" not in budget.stopped and "ends" not in trial.curve[-1]
    # a pass the budget alone cuts is still recorded
    figures = iter([0.1 * i for i in range(1, 11)])
    cut = TokenBudget(limit=700, slice_pass=90, refit_pass=100)
    fit_and_score(holdout, cfg, "bge", max_epochs=10, patience=2, on_pass=cut.tracker("hitrate", "bge", 10))
    assert cut.stopped["bge"].startswith("stopped after 3 pass(es)")


def test_an_explicit_epochs_still_tries_every_method(sample, tmp_path, cli):
    # 1.5 x the 2 passes' training has no room for the three methods' 2 passes each beside the refit: with
    # train.epochs set the multiple is at least the methods + 1, so every method is compared as before
    selection, _ = _run(cli, sample, tmp_path / "run", "train.epochs=2", "validate.budget=1.5")
    budget, candidates = selection["token_budget"], selection["candidates"]
    assert sorted(t["method"] for t in selection["trials"]) == sorted(candidates) and not budget["untried"]
    assert all(len(t["curve"]) == 2 for t in selection["trials"])
    assert budget["limit"] == (len(candidates) + 1) * budget["training"]


def test_when_no_method_fits_the_run_trains_what_auto_resolves_to(sample, tmp_path, cli):
    from eges.methods import resolve

    # the bound at the training itself: no slice pass fits beside the refit of 2 passes
    selection, _ = _run(cli, sample, tmp_path / "run", "train.epochs=2", "validate.bound_above=0")
    assert not selection["trials"]
    assert sorted(selection["token_budget"]["untried"]) == sorted(selection["candidates"])
    assert selection["method"] == resolve("auto", has_catalog=True).name and selection["epochs"] == 2
    assert "no method fits the token budget" in selection["why"]


def test_the_bound_per_event_limits_a_run_by_its_events(sample, tmp_path, cli):
    """The limit is validate.bound_per_event x the log's events where that is below validate.budget's multiple
    (and above the training without validation), and the sentence names the setting."""
    selection, _ = _run(cli, sample, tmp_path / "run", "validate.bound_per_event=40")
    budget, events = selection["token_budget"], selection["holdout"]["events"]
    assert budget["training"] < 40 * events < 3 * budget["training"]  # this log: its training is ~21 per event
    assert budget["limit"] == 40 * events
    assert budget["spent"] + selection["epochs"] * budget["refit_pass"] <= budget["limit"]
    assert budget["stopped"] and "(validate.bound_per_event: " in selection["why"]
    loose, _ = _run(cli, sample, tmp_path / "loose", "validate.bound_per_event=0")
    assert loose["token_budget"]["limit"] == 3 * loose["token_budget"]["training"]
