"""The race between methods on the validation slice: a method that trails those trained before it stops early,
and the choice stays the one training every method to its own early stop would make."""

from __future__ import annotations

import math

import pytest

from eges.config import default_config
from eges.methods import METHODS, resolve
from eges.validation import choose, fit_and_score, make_holdout
from eges.validation import select as select_module
from eges.validation.race import RACE_FROM, Race, in_turns, race_order
from eges.validation.select import Trial
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


# --------------------------------------------------------------------------------------------- in turns
def _passes(method, values, race, log, cap=None):
    """A trial's passes one per step, scored from ``values`` and raced as fit_and_score races them."""
    cap = cap or len(values)
    trial = Trial(method, "hitrate", 0, [], {}, 0.0, False)
    for epoch, value in enumerate(values[:cap], start=1):
        log.append((method, epoch))
        trial.curve.append({"epoch": epoch, "loss": 1.0, "hitrate": value, "next_auc": 0.5, "link_auc": 0.5,
                            "cold_auc": math.nan})
        best = max(trial.curve, key=lambda r: r["hitrate"])
        trial.best_epochs, trial.best = best["epoch"], best
        trial.dropped = race.trails(trial.curve, cap) if race is not None and epoch < cap else ""
        yield trial
        if trial.dropped:
            return


#: EGES leads after one pass and then creeps; GES overtakes it from pass 2 and peaks at 6 (taobao's shape).
CREEPING = [0.30, 0.33, 0.34, 0.343, 0.344, 0.344, 0.345, 0.346, 0.347, 0.348]
OVERTAKING = [0.28, 0.34, 0.37, 0.38, 0.385, 0.386, 0.384, 0.383, 0.382, 0.381]


def test_in_turns_each_method_trains_a_pass_per_round_and_the_first_races_too():
    log: list[tuple[str, int]] = []
    template = Race("hitrate", 0.1, 0.1, reach=3)
    trials = in_turns(["eges", "ges"], lambda m, race: _passes(m, {"eges": CREEPING, "ges": OVERTAKING}[m], race, log),
                      template)
    assert [t.method for t in trials] == ["eges", "ges"]
    assert log[:6] == [("eges", 1), ("ges", 1), ("eges", 2), ("ges", 2), ("eges", 3), ("ges", 3)]
    eges, ges = trials
    # GES has four passes when EGES's fifth is judged: 0.344 + 5 x (0.344 - 0.33) / 3 < 0.38, its best so far
    assert len(eges.curve) == 5
    assert eges.dropped == "0.3440 after 5 passes, gaining 0.0047 a pass: at most 0.3673 by pass 10, below ges's 0.3800"
    assert len(ges.curve) == 10 and not ges.dropped
    assert choose(trials)[0] is ges
    assert template.rivals == []  # each method races through its own copy


def test_in_turns_the_first_method_is_stopped_by_the_reach_only():
    """Movielens' cold-protocol slice: EGES, the favourite, starts slowly (10.4% behind GES at pass 2) and wins by
    pass 6; the margin does not stop the first method, the reach would once its curve had flattened."""
    log: list[tuple[str, int]] = []
    curves = {"eges": [0.185, 0.191, 0.233, 0.242, 0.25, 0.254, 0.25, 0.253], "ges": [0.213, 0.206, 0.185]}
    trials = in_turns(["eges", "ges"], lambda m, race: _passes(m, curves[m], race, log, 10),
                      Race("hitrate", 0.1, 0.1, reach=3))
    eges, ges = trials
    assert not eges.dropped and len(eges.curve) == 8 and choose(trials)[0] is eges
    later = in_turns(["ges", "eges"], lambda m, race: _passes(m, curves[m], race, log, 10),
                     Race("hitrate", 0.1, 0.1, reach=3))[1]
    assert "more than 10% below ges's 0.2130" in later.dropped  # second in order, the margin stops it


def test_in_turns_a_trial_run_whole_races_those_started_before_it_and_none_skips():
    seen = {}

    def start(method, race):
        seen[method] = [t.method for t in race.rivals]
        if method == "bge":
            return None  # the budget cannot start it
        return Trial(method, "hitrate", 1, _rows([0.3]), _rows([0.3])[0], 0.0, False)

    trials = in_turns(["eges", "ges", "bge"], start, Race("hitrate", 0.1, 0.1))
    assert [t.method for t in trials] == ["eges", "ges"]
    assert seen == {"eges": [], "ges": ["eges"], "bge": ["eges", "ges"]}


def test_fit_and_score_in_turns_gives_each_trial_its_own_passes(setup):
    """Two trials stepped in turns on the real trainer (one thread) train exactly what each trains alone: no state
    is shared between them, or held between passes."""
    cfg, holdout = setup
    configs = (cfg, cfg.replace("train", seed=7))
    alone = [fit_and_score(holdout, c, "bge", max_epochs=3, patience=0) for c in configs]
    steps = [fit_and_score(holdout, c, "bge", max_epochs=3, patience=0, in_turns=True) for c in configs]
    assert not any(isinstance(s, Trial) for s in steps)  # nothing trained yet
    last = [None, None]
    for epoch in range(1, 4):
        for i, s in enumerate(steps):
            last[i] = next(s)
            assert len(last[i].curve) == epoch
    assert [next(s, None) for s in steps] == [None, None]  # both ended at their last pass
    assert [[r["loss"] for r in t.curve] for t in last] == [[r["loss"] for r in t.curve] for t in alone]
    assert [[r["hitrate"] for r in t.curve] for t in last] == [[r["hitrate"] for r in t.curve] for t in alone]
    assert alone[0].curve[0]["loss"] != alone[1].curve[0]["loss"]  # two different trials


def test_the_stage_races_the_methods_in_turns(monkeypatch):
    """TrialSequence (the validate stage's order) trains its methods in turns: taobao's shape, where the method
    auto resolves to leads after a pass and creeps, stops it once GES has overtaken it, and GES wins."""
    import eges.validation as validation
    from eges.validation.select import TokenBudget
    from eges.validation.sequence import TrialSequence, Walked

    log: list[tuple[str, int]] = []
    curves = {"eges": CREEPING, "ges": OVERTAKING, "bge": [0.2] * 10, "short": [0.3, 0.35, 0.36, 0.37, 0.38, 0.385]}

    def fake(holdout, config, method, side=None, max_epochs=None, race=None, in_turns=False, **_):
        steps = _passes(method, curves[method if max_epochs == 10 else "short"], race, log, max_epochs)
        if in_turns:
            return steps
        *_, trial = steps
        return trial

    monkeypatch.setattr(validation, "fit_and_score", fake)
    config = default_config().replace("validate", windows=[])
    first = resolve("auto", has_catalog=True).name
    assert first == "eges"
    choice = TrialSequence(Walked("slice", None, 1000), config, ["bge", "ges", "eges"], None,
                           TokenBudget(math.inf, 1000, 1000), fixed=0, cap=10).run()
    assert log[:3] == [("eges", 1), ("ges", 1), ("bge", 1)]
    trials = {t.method: t for t in choice.trials}
    assert len(trials["eges"].curve) == 5 and trials["eges"].dropped
    assert "below ges's" in trials["bge"].dropped and len(trials["bge"].curve) == 2
    assert (choice.method, choice.epochs) == ("ges", 6)


def test_a_trial_in_turns_counts_only_its_own_time(setup, monkeypatch):
    """With a clock that moves only between steps (another trial's pass), a trial's rows and seconds stay at
    zero: what the other trial trained in between is not counted as its training."""
    import types

    cfg, holdout = setup
    clock = [0.0]
    monkeypatch.setattr(select_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    steps = [fit_and_score(holdout, c, "bge", max_epochs=2, patience=0, in_turns=True)
             for c in (cfg, cfg.replace("train", seed=7))]
    trials = []
    for _ in range(2):
        for s in steps:
            clock[0] += 100.0  # the other trial's pass
            trials.append(next(s))
    assert all(r["train_seconds"] == 0.0 and r["score_seconds"] == 0.0 for t in trials for r in t.curve)
    assert [t.seconds for t in trials] == [0.0] * 4


def _budgeted(monkeypatch, curves, budget, cap, ends_early=False):
    """Run TrialSequence over scripted ``curves`` (method -> values) whose passes count in ``budget`` (its
    tracker, as the stage's fit_and_score calls it); ``ends_early``: a curve runs out before ``cap`` without saying
    it ends (a replay's recorded curve, or a trial that raised)."""
    import eges.validation as validation
    from eges.validation.sequence import TrialSequence, Walked

    def fake(holdout, config, method, side=None, max_epochs=None, race=None, in_turns=False, on_pass=None, **_):
        def steps():
            for trial in _passes(method, curves[method], race, [], max_epochs):
                row = trial.curve[-1]
                last = len(trial.curve) >= max_epochs
                if on_pass is not None and on_pass(row) and not last:
                    return
                yield trial

        return steps() if in_turns else list(steps())[-1]

    monkeypatch.setattr(validation, "fit_and_score", fake)
    config = default_config().replace("validate", windows=[])
    return TrialSequence(Walked("slice", None, budget.slice_pass), config, ["bge", "ges", "eges"], None, budget,
                         fixed=0, cap=cap).run()


def test_with_one_pass_the_first_method_starts_only_where_its_pass_and_the_refit_fit(monkeypatch):
    """cap 1 (the epochs rule's one pass) among several methods: the first method's slice pass and a refit of one
    pass must fit, or validation would train more than the budget (it trains without validation instead)."""
    from eges.validation.select import TokenBudget

    curves = {m: [0.3] for m in ("bge", "ges", "eges")}
    tight = TokenBudget(limit=150, slice_pass=100, refit_pass=100)
    choice = _budgeted(monkeypatch, curves, tight, cap=1)
    assert not choice.trials and "eges" in choice.untried and tight.spent == 0
    room = TokenBudget(limit=200, slice_pass=100, refit_pass=100)
    choice = _budgeted(monkeypatch, curves, room, cap=1)
    assert [t.method for t in choice.trials] == ["eges"]
    assert room.spent + choice.epochs * room.refit_pass <= room.limit


def test_a_race_whose_curves_run_out_leaves_no_trial_racing_in_the_budget(monkeypatch):
    """Curves that end before their most passes without saying so (a replay's recorded curve) leave no entry in
    TokenBudget.racing, which would keep funding turns nobody takes in the later trials."""
    from eges.validation.select import TokenBudget

    curves = {"eges": [0.3, 0.31], "ges": [0.3, 0.32], "bge": [0.2, 0.21]}
    budget = TokenBudget(limit=math.inf, slice_pass=100, refit_pass=100)
    choice = _budgeted(monkeypatch, curves, budget, cap=10)
    assert {t.method for t in choice.trials} == {"eges", "ges", "bge"}
    assert budget.racing == {}


def test_the_scoring_between_turns_runs_on_train_threads(setup, monkeypatch):
    """train.threads bounds the scoring's numba kernels too, not only the passes: in turns, a pass is scored
    outside the trainer's own thread limit."""
    import numba

    cfg, holdout = setup
    seen: list[int] = []

    def fake(holdout, vectors, has, k, cold_vectors=None, cold_has=None, centre=False):
        seen.append(numba.get_num_threads())
        return {"hitrate": 0.1 * len(seen), "next_auc": math.nan, "link_auc": math.nan, "cold_auc": math.nan}

    monkeypatch.setattr(select_module, "score_vectors", fake)
    before = numba.get_num_threads()
    if before < 2:
        pytest.skip("one numba thread: nothing to bound")
    list(fit_and_score(holdout, cfg, "bge", max_epochs=2, patience=0, in_turns=True))
    assert seen == [1, 1] and numba.get_num_threads() == before
