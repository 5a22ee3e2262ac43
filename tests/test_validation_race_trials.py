"""The validate stage's later trials (short schedule, direction, window) raced pass by pass against the curve they
are compared with: one that trails it stops early and says why; one that leads, or that trails only as a narrower
window's slower passes do, trains its schedule and can win."""

from __future__ import annotations

import math

import pytest

from eges.config import default_config
from eges.validation import make_holdout, training_walks
from eges.validation import select as select_module
from eges.validation.race import Race, window_pace
from eges.validation.select import Trial
from eges.validation.variants import Variant, try_variants, window_trial
from test_validation_select import _log as ring_log


def _reference(values, cold=math.nan):
    curve = [{"epoch": i + 1, "hitrate": v, "link_auc": math.nan, "cold_auc": cold} for i, v in enumerate(values)]
    best = max(curve, key=lambda r: r["hitrate"])
    return Trial("bge", "hitrate", best["epoch"], curve, best, 1.0, False)


@pytest.fixture(scope="module")
def setup():
    cfg = (default_config().replace("train", dimension=8, threads=1, sample=0.0)
           .replace("walks", walks_per_node=2, threads=1))
    item, position, ts, n = ring_log(users=200, items=30)
    holdout = make_holdout(item, position, ts, n, cfg, has_catalog=False, seed=0)
    return cfg, holdout, training_walks(holdout, cfg)


def _scripted(monkeypatch, *curves):
    """The real trainer, scripted scores: each trial in turn reads its curve's figures pass by pass."""
    figures = iter([v for curve in curves for v in curve])

    def fake(holdout, vectors, has, k, cold_vectors=None, cold_has=None, centre=False):
        return {"hitrate": next(figures), "next_auc": math.nan, "link_auc": math.nan, "cold_auc": math.nan}

    monkeypatch.setattr(select_module, "score_vectors", fake)


REFERENCE = [0.30, 0.40, 0.45, 0.50, 0.52, 0.53]
TRAILING = [0.20, 0.30, 0.31, 0.32, 0.33, 0.60]  # 0.30 < 0.9 x 0.40 at pass 2: stopped before its late jump
LEADING = [0.28, 0.38, 0.44, 0.50, 0.55, 0.56]  # within 10% of the reference all the way, above it at the end


def _race(margin=0.1):
    return Race("hitrate", margin, 0.1)


def test_a_trailing_trial_is_raced_out_and_says_why(setup, monkeypatch):
    cfg, holdout, walks = setup
    _scripted(monkeypatch, TRAILING)
    verdict = try_variants([Variant("undirected", {"direction": "undirected"}, holdout, cfg, walks)], "bge", None,
                           6, _reference(REFERENCE), last_pass=False, race=_race())
    row = verdict.rows[0]
    assert len(row["curve"]) == 2 and not row["wins"] and verdict.chosen is None
    assert "below bge's 0.4000" in row["dropped"] and "raced out" in verdict.notes[0]


def test_without_the_race_the_same_trial_trains_its_schedule(setup, monkeypatch):
    cfg, holdout, walks = setup
    for race in (None, _race(margin=0.0)):  # no race, or an explicit train.epochs (margin 0): nothing stops it
        _scripted(monkeypatch, TRAILING)
        verdict = try_variants([Variant("undirected", {}, holdout, cfg, walks)], "bge", None, 6,
                               _reference(REFERENCE), last_pass=False, race=race)
        assert len(verdict.rows[0]["curve"]) == 6 and "dropped" not in verdict.rows[0]
        assert verdict.rows[0]["wins"]  # its last pass (0.60) would have won: the race trades that for time


def test_a_leading_trial_is_not_stopped_and_wins_then_races_the_next(setup, monkeypatch):
    cfg, holdout, walks = setup
    _scripted(monkeypatch, LEADING, [0.50, 0.51, 0.52, 0.53, 0.54, 0.55])
    variants = [Variant(label, {"label": label}, holdout, cfg, walks) for label in ("a", "b")]
    verdict = try_variants(variants, "bge", None, 6, _reference(REFERENCE), last_pass=True, race=_race())
    first, second = verdict.rows
    assert len(first["curve"]) == 6 and first["wins"] and "dropped" not in first
    assert verdict.chosen is variants[0]
    # the second races the reference and the winner a; it never trails them, so it trains its schedule and
    # loses at its last pass (0.55 against a's 0.56)
    assert len(second["curve"]) == 6 and not second["wins"]


def test_a_trial_trailing_the_winning_variant_is_raced_against_it(setup, monkeypatch):
    cfg, holdout, walks = setup
    _scripted(monkeypatch, [0.60, 0.70, 0.75, 0.80, 0.81, 0.82], [0.35, 0.42, 0.46, 0.50, 0.52, 0.53])
    variants = [Variant(label, {}, holdout, cfg, walks) for label in ("a", "b")]
    verdict = try_variants(variants, "bge", None, 6, _reference(REFERENCE), last_pass=False, race=_race())
    assert verdict.rows[0]["wins"] and len(verdict.rows[1]["curve"]) == 2  # 0.42 < 0.9 x a's 0.70
    assert "below bge's 0.7000" in verdict.rows[1]["dropped"]


def test_a_narrower_window_is_read_against_the_reference_at_as_many_pairs(setup, monkeypatch):
    """Window 2 trains about half the pairs per pass of window 5 (window_pace 0.5): at its pass 2 it is compared
    with the reference's first pass, so a slow start that catches up is not stopped; at pass 5 with pass 3."""
    cfg, holdout, walks = setup
    assert window_pace(2, 5) == 0.5 and window_pace(10, 5) == 1.0
    slow_start = [0.15, 0.28, 0.40, 0.50, 0.54, 0.56]  # 0.28 >= 0.9 x 0.30 (pass 1 of the reference)
    _scripted(monkeypatch, slow_start)
    choice = window_trial(holdout, cfg, "bge", None, walks, 6, _reference(REFERENCE), False, _race())
    assert choice.window == 2 and len(choice.trials[0]["curve"]) == 6
    _scripted(monkeypatch, [0.15, 0.28, 0.37, 0.37, 0.38, 0.60])  # 0.38 < 0.9 x 0.45 (pass 3) at pass 5
    choice = window_trial(holdout, cfg, "bge", None, walks, 6, _reference(REFERENCE), False, _race())
    assert choice.window == 5 and len(choice.trials[0]["curve"]) == 5
    assert "after 5 passes" in choice.trials[0]["dropped"] and "raced out" in choice.why


def test_the_pace_reads_the_rivals_within_as_many_pairs():
    rival = _reference([0.30, 0.40, 0.45])
    rows = [{"epoch": 1, "hitrate": 0.2}, {"epoch": 2, "hitrate": 0.28}]
    assert "below bge's 0.4000" in Race("hitrate", 0.1, 0.1, [rival]).trails(rows)
    assert Race("hitrate", 0.1, 0.1, [rival], pace=0.5).trails(rows) == ""  # against pass 1's 0.30


# --------------------------------------------------------------------------------------------- the stage
def _racing_fake(curves):
    """fit_and_score scripted per call (the method, the short schedule, the direction, the window), racing as
    fit_and_score does: the stage's wiring (which curve each trial races, what it records) is under test."""
    calls = iter(curves)

    def fake(holdout, config, method, side=None, max_epochs=None, walks=None, patience=None, race=None, **_):
        values, curve, dropped = next(calls), [], ""
        for epoch, value in enumerate(values[:max_epochs], start=1):
            curve.append({"epoch": epoch, "loss": 1.0, "hitrate": value, "next_auc": 0.5, "link_auc": value,
                          "cold_auc": math.nan})
            dropped = race.trails(curve, max_epochs) if race is not None and epoch < max_epochs else ""
            if dropped:
                break
        best = max(curve, key=lambda r: r["hitrate"])
        return Trial(method, config.validate.metric, best["epoch"], curve, best, 0.0, False, dropped)

    return fake


def test_the_stage_records_the_trials_it_raced_out(monkeypatch, tmp_path, cli):
    import json

    import eges.validation as validation
    from eges.layout import MANIFEST, SELECTION
    from test_validation_window import FAST, _ring

    peak = [0.30, 0.40, 0.45, 0.50, 0.49, 0.48, 0.47, 0.46, 0.45, 0.44]  # the method's best pass: 4 of 10
    monkeypatch.setattr(validation, "fit_and_score", _racing_fake([
        peak,
        [0.20, 0.25, 0.30, 0.35],  # the short schedule: 0.25 < 0.9 x 0.40 at pass 2
        [0.35, 0.45, 0.50, 0.55, 0.54, 0.53, 0.52, 0.51, 0.50, 0.49],  # undirected: leads, wins at pass 4
        [0.10] * 10,  # window 2: 0.10 < 0.9 x 0.35 (undirected's pass 1, at half the pairs) at pass 2
    ]))
    out = tmp_path / "run"
    cli("run", "--events", _ring(tmp_path / "events.parquet", 1), "--out", out, *FAST)
    selection = json.loads((out / SELECTION).read_text())
    details = json.loads((out / MANIFEST).read_text())["stages"]["validate"]["details"]
    assert set(selection["raced_out"]) == {"short schedule", "window 2"} == set(details["raced_out"])
    assert len(selection["short_schedule"]["curve"]) == 2 and selection["schedule_epochs"] == 10
    assert selection["direction"] == "undirected" and "dropped" not in selection["direction_trial"]
    assert len(selection["window_trials"][0]["curve"]) == 2 and selection["window"] == 5
    assert "raced out" in selection["why"] and "window 2 0.1000 (raced out" in selection["why"]


@pytest.mark.parametrize("margin,stopped", [(None, True), (0.1, False)])
def test_the_later_trials_race_at_their_own_margin(monkeypatch, tmp_path, cli, margin, stopped):
    """A short schedule 7.5% below the method's curve at pass 2: stopped at validate.trial_margin's default
    (0.05), trained to its end at 0.1 (the methods' margin): the later trials read their own setting."""
    import json

    import eges.validation as validation
    from eges.layout import SELECTION
    from test_validation_window import FAST, _ring

    peak = [0.30, 0.40, 0.45, 0.50, 0.49, 0.48, 0.47, 0.46, 0.45, 0.44]
    monkeypatch.setattr(validation, "fit_and_score", _racing_fake([
        peak, [0.30, 0.37, 0.42, 0.43], [0.10] * 10, [0.10] * 10]))
    out = tmp_path / "run"
    extra = ["--set", "validate.race_reach=0"]  # the margin alone (the reach would stop 0.42 after 3 of 4 passes)
    extra += ["--set", f"validate.trial_margin={margin}"] if margin is not None else []
    cli("run", "--events", _ring(tmp_path / "events.parquet", 1), "--out", out, *FAST, *extra)
    selection = json.loads((out / SELECTION).read_text())
    assert ("short schedule" in selection["raced_out"]) == stopped
    assert len(selection["short_schedule"]["curve"]) == (2 if stopped else 4)


def test_each_window_starts_only_where_its_passes_fit(setup, monkeypatch):
    """validate.windows [5, 2, 3] judged at the last pass: the budget is asked per window, so window 3 is not
    started where it would be cut before its last pass (and then judged at the cut pass)."""
    from eges.validation.select import TokenBudget

    cfg, holdout, walks = setup
    cfg = cfg.replace("validate", windows=[5, 2, 3])
    _scripted(monkeypatch, [0.31, 0.41, 0.46], [0.32, 0.42, 0.47])
    budget = TokenBudget(limit=800, slice_pass=100, refit_pass=100, refit_passes=3)  # 3 passes + the refit: 600
    choice = window_trial(holdout, cfg, "bge", None, walks, 3, _reference(REFERENCE[:3]), True,
                          trackers=lambda label: budget.tracker("hitrate", label, 3),
                          admits=lambda label: budget.allows(label, 3))
    assert [t["window"] for t in choice.trials] == [2] and len(choice.trials[0]["curve"]) == 3
    assert budget.stopped["window 3"].startswith("not tried") and budget.spent == 300


@pytest.mark.parametrize("reach,passes", [(None, 7), (0, 10)])
def test_a_later_trial_that_cannot_reach_the_best_at_its_pace_stops(monkeypatch, tmp_path, cli, reach, passes):
    """The direction's trial within trial_margin of the method's curve all the way, whose seventh pass, gaining what
    it gained a pass over its last three for the three passes left, stays below the method's best (0.478 + 3 x
    0.006 < 0.50): stopped there at validate.race_reach's default, trained to its end with it off."""
    import json

    import eges.validation as validation
    from eges.layout import SELECTION
    from test_validation_window import FAST, _ring

    peak = [0.30, 0.40, 0.45, 0.48, 0.49, 0.50, 0.49, 0.48, 0.47, 0.46]  # the method's best pass: 6 of 10
    creeping = [0.30, 0.40, 0.44, 0.46, 0.47, 0.475, 0.478, 0.479, 0.48, 0.481]
    monkeypatch.setattr(validation, "fit_and_score", _racing_fake([peak, creeping, [0.10] * 10]))
    out = tmp_path / "run"  # on this small log the budget leaves the short schedule untried
    extra = ["--set", f"validate.race_reach={reach}"] if reach is not None else []
    cli("run", "--events", _ring(tmp_path / "events.parquet", 1), "--out", out, *FAST, *extra)
    selection = json.loads((out / SELECTION).read_text())
    assert selection["short_schedule"] is None and selection["direction"] == "directed"
    assert len(selection["direction_trial"]["curve"]) == passes
    if passes == 7:
        assert selection["raced_out"]["undirected"] == ("0.4780 after 7 passes, gaining 0.0060 a pass: at most "
                                                        "0.4960 by pass 10, below bge's 0.5000")
    else:
        assert "undirected" not in selection["raced_out"]
