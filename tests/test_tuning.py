"""eges tune: the budget, the search space, successive halving (on a fake objective and a fake clock, so every
check is deterministic), and the command on a small sample."""

from __future__ import annotations

import math

import pytest

from eges.config import load_config
from eges.tuning.budget import BudgetError, parse_budget
from eges.tuning.halving import Outcome, best_trial, successive_halving
from eges.tuning.space import METHOD_KEY, apply, candidates, dimensions


# --------------------------------------------------------------------------------------------- budget
@pytest.mark.parametrize("text, seconds", [("90s", 90), ("20m", 1200), ("1h", 3600), ("1h30m", 5400),
                                           ("1.5h", 5400), ("45", 45), (" 2 min ", 120), ("10M", 600)])
def test_budget_parses_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "20x", "m20", "-5m", "0s", "20m junk", "1e3", "nan", "8d"])
def test_bad_budget_is_a_named_error(text):
    with pytest.raises(BudgetError, match="--budget"):
        parse_budget(text)


# --------------------------------------------------------------------------------------------- the space
def test_space_follows_the_inputs():
    keys = {d.key for d in dimensions(has_catalog=False)}
    assert "train.own_weight" not in keys and "train.side_rate_power" not in keys
    assert dict((d.key, d.choices) for d in dimensions(False))[METHOD_KEY] == ("bge",)
    with_catalog = dict((d.key, d.choices) for d in dimensions(True))
    assert {"train.own_weight", "train.side_rate_power"} <= set(with_catalog)
    assert set(with_catalog[METHOD_KEY]) == {"bge", "ges", "eges"}


def test_candidates_are_seeded_distinct_and_start_from_the_base():
    config = load_config(None, ["train.dimension=48"])
    draw = [c for _, c in zip(range(40), candidates(config, has_catalog=True, seed=3))]
    assert draw == [c for _, c in zip(range(40), candidates(config, has_catalog=True, seed=3))]
    assert draw != [c for _, c in zip(range(40), candidates(config, has_catalog=True, seed=4))]
    assert draw[0]["train.dimension"] == 48 and draw[0][METHOD_KEY] == "eges"  # auto with a catalog
    assert len({tuple(sorted(c.items(), key=str)) for c in draw}) == len(draw)
    for c in draw:  # a key the method does not read is folded away, so one model is one candidate
        assert (c["train.side_rate_power"] is None) == (c[METHOD_KEY] == "bge")
        assert (c["train.own_weight"] is None) == (c[METHOD_KEY] != "eges")


def test_the_base_candidate_folds_what_its_method_ignores():
    base = next(candidates(load_config(None, ["train.method=ges"]), has_catalog=True, seed=0))
    assert base[METHOD_KEY] == "ges" and base["train.own_weight"] is None and base["train.side_rate_power"] == 0.5


def test_a_small_space_runs_out():
    config = load_config()
    every = list(candidates(config, has_catalog=False, seed=0))
    assert len(every) == math.prod(len(d.choices) for d in dimensions(False))


def test_apply_sets_the_settings_and_the_passes():
    config = load_config()
    candidate = next(candidates(config, has_catalog=False, seed=0)) | {"train.window": 2, "graph.undirected": True}
    tuned = apply(config, candidate, passes=3)
    assert (tuned.train.window, tuned.graph.undirected, tuned.train.epochs, tuned.train.method) == (2, True, 3, "bge")


# --------------------------------------------------------------------------------------------- halving
class FakeTrials:
    """Candidate i has quality q[i]; more passes add a little; a trial costs overhead + per_pass * passes seconds of
    a fake clock."""

    def __init__(self, n: int, overhead: float = 2.0, per_pass: float = 1.0, gain: float = 0.01):
        self.now = 0.0
        self.quality = [((i * 37) % 101) / 101 for i in range(n)]
        self.overhead, self.per_pass, self.gain = overhead, per_pass, gain
        self.calls: list[tuple[int, int]] = []

    def clock(self) -> float:
        return self.now

    def candidates(self):
        return iter([{"id": i} for i in range(len(self.quality))])

    def objective(self, candidate, passes):
        self.calls.append((candidate["id"], passes))
        self.now += self.overhead + self.per_pass * passes
        return Outcome(self.quality[candidate["id"]] + self.gain * passes, {"passes_metric": passes})


def test_halving_promotes_the_best_third_and_keeps_the_best():
    fake = FakeTrials(200)
    records = successive_halving(fake.objective, fake.candidates(), 300, clock=fake.clock)
    assert {r.rung for r in records} == {0, 1, 2}
    for bracket in {r.bracket for r in records}:
        for rung in (1, 2):
            below = [r for r in records if (r.bracket, r.rung) == (bracket, rung - 1)]
            here = [r for r in records if (r.bracket, r.rung) == (bracket, rung)]
            if not here:
                continue
            ranked = sorted(below, key=lambda r: -r.metric)[: math.ceil(len(below) / 3)]
            assert [r.candidate for r in here] == [r.candidate for r in ranked][: len(here)]
    tried = {r.settings["id"] for r in records}
    best = best_trial(records)
    assert best.settings["id"] == max(tried, key=lambda i: fake.quality[i])
    assert best.passes == 10 and best.metric == max(r.metric for r in records)


def test_halving_stays_within_the_budget_and_fills_it():
    for budget in (40.0, 300.0, 1000.0):
        fake = FakeTrials(10_000)
        records = successive_halving(fake.objective, fake.candidates(), budget, clock=fake.clock)
        assert fake.now <= budget
        assert budget - fake.now < fake.overhead + fake.per_pass * 10  # no room was left for another top trial
        assert len(records) == len(fake.calls)


def test_no_trial_starts_once_the_cost_model_says_it_cannot_finish():
    fake = FakeTrials(10_000)
    cheap_probe = fake.objective

    def objective(candidate, passes):  # the probe is cheap, every other trial three times dearer
        if candidate["id"] > 0:
            fake.now += 2 * (fake.overhead + fake.per_pass * passes)
        return cheap_probe(candidate, passes)

    successive_halving(objective, fake.candidates(), 200.0, clock=fake.clock)
    dearest = 3 * (fake.overhead + fake.per_pass * 10)
    assert fake.now <= 200.0 + dearest  # at most the trial running when the guess was corrected overran


def test_a_trial_stopped_at_the_deadline_is_kept_out_of_the_ranking():
    fake = FakeTrials(50)

    def stubborn(candidate, passes):  # the tenth trial overruns the deadline and is stopped there
        if len(fake.calls) == 9:
            fake.calls.append((candidate["id"], passes))
            fake.now = 100.0
            return None
        return fake.objective(candidate, passes)

    records = successive_halving(stubborn, fake.candidates(), 100.0, clock=fake.clock)
    assert records[-1].metric is None and not records[-1].finished
    assert best_trial(records) is not None and best_trial(records).trial < records[-1].trial


def test_halving_is_deterministic():
    runs = []
    for _ in range(2):
        fake = FakeTrials(500)
        runs.append([(r.candidate, r.passes, r.metric) for r in
                     successive_halving(fake.objective, fake.candidates(), 500, clock=fake.clock)])
    assert runs[0] == runs[1]
