"""The race between methods on the validation slice: a method that trails those trained before it stops early,
and the choice stays the one training every method to its own early stop would make."""

from __future__ import annotations

import math

import pytest

from eges.config import default_config
from eges.methods import METHODS, resolve
from eges.validation import choose, fit_and_score, make_holdout
from eges.validation import select as select_module
from eges.validation.select import RACE_FROM, Race, Trial, race_order
from test_validation_select import _log as ring_log


def _rows(values, colds=None):
    colds = colds or [math.nan] * len(values)
    return [{"epoch": i + 1, "hitrate": v, "cold_auc": c} for i, (v, c) in enumerate(zip(values, colds))]


def _trial(method, values, colds=None):
    curve = _rows(values, colds)
    best = max(curve, key=lambda r: r["hitrate"])
    return Trial(method, "hitrate", best["epoch"], curve, best, 1.0, False)


def test_a_method_trailing_by_more_than_the_margin_stops_from_the_race_pass_on():
    race = Race("hitrate", 0.1, 0.1, [_trial("a", [0.30, 0.40, 0.50])])
    assert race.trails(_rows([0.10])) == ""  # one pass: too early to judge
    assert RACE_FROM == 2
    why = race.trails(_rows([0.28, 0.30]))  # 0.30 < 0.9 * 0.40 (the rival within two passes)
    assert "below a's 0.4000" in why
    assert race.trails(_rows([0.28, 0.37])) == ""  # within 10%
    assert Race("hitrate", 0.0, 0.1, race.rivals).trails(_rows([0.0, 0.0])) == ""  # margin 0: no race
    assert Race("hitrate", 0.1, 0.1, []).trails(_rows([0.0, 0.0])) == ""  # the first method races nobody


def test_a_flattened_curve_that_cannot_reach_the_rivals_best_at_its_pace_stops():
    """Within the margin all the way (0.468 > 0.9 x 0.50), but gaining 0.004 a pass over its last two passes it
    ends at most at 0.492 by pass 10, below the rival's 0.50: it cannot win. Further from its last pass, or with
    the rule off, it races on."""
    rival = _trial("a", [0.30, 0.40, 0.50])
    race = Race("hitrate", 0.1, 0.1, [rival], reach=2)
    creeping = _rows([0.40, 0.46, 0.465, 0.468])
    assert race.trails(creeping[:3], 10) == ""  # 0.465 + 7 x (0.465 - 0.40) / 2: it may still get there
    why = race.trails(creeping, 10)
    assert why == "0.4680 after 4 passes, gaining 0.0040 a pass: at most 0.4920 by pass 10, below a's 0.5000"
    assert race.trails(creeping, 13) == ""  # 0.468 + 9 x 0.004 = 0.504
    assert race.trails(creeping) == ""  # its last pass unknown
    assert Race("hitrate", 0.1, 0.1, [rival], reach=0).trails(creeping, 10) == ""  # off
    assert Race("hitrate", 0.0, 0.1, [rival], reach=2).trails(creeping, 10) == ""  # no race, no reach
    assert Race("hitrate", 0.1, 0.1, [rival], reach=3).trails(creeping, 10) == ""  # 0.468 + 6 x 0.068 / 3
    # a verdict read at the last pass must beat the rival's last pass (0.45 here), not its best
    peaked = _trial("a", [0.30, 0.50, 0.45])
    assert Race("hitrate", 0.1, 0.1, [peaked], reach=2).trails(creeping, 10)
    assert Race("hitrate", 0.1, 0.1, [peaked], reach=2, last_pass=True).trails(creeping, 10) == ""
    # a rival choose() would bar on cold start sets no target
    barred = _trial("a", [0.30, 0.40, 0.50], [0.70, 0.70, 0.70])
    assert Race("hitrate", 0.1, 0.1, [barred], reach=2).trails(_rows([0.40, 0.46, 0.465, 0.468], [0.8] * 4), 10) == ""
    assert Race("hitrate", 0.1, 0.1, [barred], reach=2).trails(_rows([0.40, 0.46, 0.465, 0.468], [0.74] * 4), 10)


def test_cold_start_far_behind_stops_a_method_and_such_a_rival_does_not_lead():
    ges = _trial("ges", [0.30, 0.31], [0.75, 0.75])
    assert "cold AUC 0.5000" in Race("hitrate", 0.1, 0.1, [ges]).trails(_rows([0.4, 0.4], [0.5, 0.5]))
    assert Race("hitrate", 0.1, 0.1, [ges]).trails(_rows([0.4, 0.4], [0.7, 0.7])) == ""  # within 0.1
    bge = _trial("bge", [0.50, 0.60], [0.50, 0.50])  # leads on HitRate, far behind on cold start
    assert Race("hitrate", 0.1, 0.1, [bge]).trails(_rows([0.30, 0.31], [0.75, 0.75])) == ""


def test_the_default_method_runs_first_and_methods_without_side_information_last():
    order = race_order(list(METHODS))
    assert order[0] == resolve("auto", has_catalog=True).name
    assert not METHODS[order[-1]].side_info
    assert sorted(order) == sorted(METHODS)


@pytest.fixture(scope="module")
def setup():
    cfg = (default_config().replace("train", dimension=8, threads=1, sample=0.0)
           .replace("walks", walks_per_node=4, threads=1))
    item, position, ts, n = ring_log(users=300, items=30)
    return cfg, make_holdout(item, position, ts, n, cfg, has_catalog=False, seed=0)


def _scripted(monkeypatch, figures):
    it = iter(figures)

    def fake(holdout, vectors, has, k, cold_vectors=None, cold_has=None, centre=False):
        return {"hitrate": next(it), "next_auc": math.nan, "link_auc": math.nan, "cold_auc": math.nan}

    monkeypatch.setattr(select_module, "score_vectors", fake)


def _select(cfg, holdout, curves, monkeypatch, margin, reach=0):
    """Train one trial per scripted curve in turn (the real trainer, scripted scores), racing at ``margin``."""
    trials: list[Trial] = []
    race = Race("hitrate", margin, 0.1, trials, reach=reach)
    for curve in curves:
        _scripted(monkeypatch, curve)
        trials.append(fit_and_score(holdout, cfg, "bge", max_epochs=6, patience=3, race=race))
    return trials, choose(trials)[0]


def test_a_trailing_method_is_dropped_early_and_the_winner_is_the_same(setup, monkeypatch):
    cfg, holdout = setup
    leader = [0.30, 0.40, 0.45, 0.50, 0.52, 0.53]
    trailing = [0.25, 0.30, 0.31, 0.32, 0.33, 0.34]  # 0.30 < 0.9 * 0.40 at pass 2
    close = [0.20, 0.38, 0.44, 0.49, 0.55, 0.56]  # within 10% all the way, wins at pass 6
    curves = [leader, trailing, close]
    full, full_winner = _select(cfg, holdout, curves, monkeypatch, margin=0.0)
    raced, raced_winner = _select(cfg, holdout, curves, monkeypatch, margin=0.1)
    assert [len(t.curve) for t in full] == [6, 6, 6]
    assert [len(t.curve) for t in raced] == [6, 2, 6]
    assert raced[1].dropped and not raced[0].dropped and not raced[2].dropped
    assert "dropped" in raced[1].to_dict() and "dropped" not in raced[0].to_dict()
    assert (raced_winner.best_epochs, raced_winner.score) == (full_winner.best_epochs, full_winner.score) == (6, 0.56)
    assert raced_winner is raced[2]
    assert "raced out" in choose(raced)[1]


def test_fit_and_score_stops_a_method_that_cannot_reach_the_leader_within_its_passes(setup, monkeypatch):
    """The real loop gives the race its last pass: a method within the margin whose pace cannot take it to the
    leader's best by pass 6 stops at pass 4, and the choice is the one training it to its end makes."""
    cfg, holdout = setup
    leader = [0.30, 0.40, 0.45, 0.50, 0.52, 0.53]
    creeping = [0.40, 0.46, 0.465, 0.468, 0.47, 0.471]  # 0.468 + 2 x 0.004 < 0.53 at pass 4
    full, full_winner = _select(cfg, holdout, [leader, creeping], monkeypatch, margin=0.1)
    reached, winner = _select(cfg, holdout, [leader, creeping], monkeypatch, margin=0.1, reach=2)
    assert [len(t.curve) for t in full] == [6, 6] and [len(t.curve) for t in reached] == [6, 4]
    assert "at most 0.4760 by pass 6, below bge's 0.5300" in reached[1].dropped
    assert (winner.best_epochs, winner.score) == (full_winner.best_epochs, full_winner.score) == (6, 0.53)
