"""eges tune: the budget, the search space, successive halving (on a fake objective and a fake clock, so every
check is deterministic), and the command on a small sample."""

from __future__ import annotations

import math

import pytest

from eges.config import load_config
from eges.tuning.budget import BudgetError, parse_budget
from eges.tuning.halving import MOST_PER_BRACKET, Outcome, best_trial, successive_halving
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
        if budget >= 1000:  # a bracket sized to its share reaches its last rung and leaves time for the next
            first = [r for r in records if r.bracket == 0]
            assert sum(r.rung == 0 for r in first) <= MOST_PER_BRACKET and max(r.rung for r in first) == 2
            assert len({r.bracket for r in records}) > 1


def test_a_short_budget_fills_one_first_rung_rather_than_brackets_of_one():
    fake = FakeTrials(100, overhead=0.1, per_pass=1.0)
    records = successive_halving(fake.objective, fake.candidates(), 4.0, clock=fake.clock)
    assert len(records) == 3 and {r.bracket for r in records} == {0} and {r.passes for r in records} == {1}


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


# --------------------------------------------------------------------------------------------- eges tune on a sample
# Eight seconds hold a dozen or more trials of the small sample and promote some to a second rung (15 s took a
# second bracket further; the halving itself is tested on a fake clock above).
BUDGET = 8.0


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    """A generated log of a few thousand session events with its catalog (the bundled sample's generator)."""
    from eges.sample_data import SampleSpec, make_sample

    folder = tmp_path_factory.mktemp("tune_sample")
    events, catalog, _ = make_sample(SampleSpec(n_events=5_000, n_items=400, n_crawlers=0, seed=7))
    events.to_parquet(folder / "events.parquet", index=False)
    catalog.to_parquet(folder / "items.parquet", index=False)
    return folder / "events.parquet", folder / "items.parquet"


@pytest.fixture(scope="module")
def tuned(small_sample, tmp_path_factory):
    """One search on the small sample through eges.tune, single-threaded so a trial is reproducible bit for bit."""
    import eges

    events, items = small_sample
    folder = tmp_path_factory.mktemp("tune_run")
    lines: list[str] = []
    result = eges.tune(str(events), str(items), out=folder / "run", budget=f"{BUDGET:g}s",
                       settings=["train.threads=1"], to=folder / "best.toml", seed=1, echo=lines.append)
    return result, folder, lines


def test_tune_stays_within_its_budget(tuned):
    result, _, _ = tuned
    assert len(result.trials) >= 2 and result.trials["status"].eq("done").any()
    # the search starts no trial it expects to overrun; only the one running at the deadline may (and is stopped)
    assert result.seconds <= BUDGET + result.trials["seconds"].max()


def test_tune_writes_the_table_and_the_best_settings(tuned):
    import pandas as pd

    from eges.config import load_config
    from eges.layout import TUNE_BEST, TUNE_TRIALS

    result, folder, _ = tuned
    table = pd.read_parquet(folder / "run" / TUNE_TRIALS)
    assert len(table) == len(result.trials) and table["best"].sum() == 1
    best = table[table["best"]].iloc[0]
    assert best[result.metric] == table[result.metric].max() == result.best_metric
    config = load_config(folder / "run" / TUNE_BEST)
    assert config.train.epochs == best["train.epochs"] and config.train.threads == 1
    settings = {key: best[key] for key in table.columns if key.count(".") == 1 and not pd.isna(best[key])}
    assert result.best_settings == settings
    for key, value in settings.items():
        section, name = key.split(".")
        assert getattr(config[section], name) == value, key
    assert (folder / "best.toml").read_bytes() == (folder / "run" / TUNE_BEST).read_bytes()


def test_the_tuned_toml_reproduces_the_best_trial(tuned):
    """The validation trial run again from the TOML alone gives the best row's metric, to the last bit."""
    from eges.config import load_config
    from eges.tuning.run import reproduce

    result, folder, _ = tuned
    assert reproduce(folder / "run", load_config(result.path)) == result.best_metric


def test_tune_command_prints_the_table_and_refuses_to_replace_a_foreign_file(tuned, cli):
    _, folder, _ = tuned
    run = folder / "run"
    foreign = folder / "notes.toml"
    foreign.write_text("[train]\ndimension = 8\n")
    refused = cli("tune", "--events", _remembered(run, "events"), "--out", run, "--budget", "5s", "--to", foreign,
                  ok=False)
    assert refused.exit_code == 2 and refused.output.count("\n") == 1 and "not written by eges tune" in refused.output
    assert foreign.read_text() == "[train]\ndimension = 8\n"
    done = cli("tune", "--events", _remembered(run, "events"), "--items", _remembered(run, "items"), "--out", run,
               "--budget", "5s", "--set", "train.threads=1", "--metric", "auc", "--quiet")
    assert "link_auc" in done.output and "best: validation link_auc" in done.output and "--config" in done.output


def _remembered(run, key):
    import json

    return json.loads((run / "manifest.json").read_text())["inputs"][key]


@pytest.mark.parametrize("args, message", [
    (["--budget", "20x"], "--budget"),
    (["--budget", "20m", "--metric", "ndcg"], "validate.metric"),
    (["--budget", "20m", "--seed", "-1"], "--seed"),
    (["--budget", "20m", "--set", "train.dimension=0"], "train.dimension"),
])
def test_bad_tune_input_is_one_named_line_and_writes_nothing(small_sample, tmp_path, cli, args, message):
    events, _ = small_sample
    out = tmp_path / "run"
    result = cli("tune", "--events", events, "--out", out, *args, ok=False)
    assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1 and not out.exists()


def test_a_catalog_without_side_information_is_refused_before_anything_is_written(small_sample, tmp_path, cli):
    import pandas as pd

    events, items = small_sample
    pd.read_parquet(items)[["item_id"]].to_parquet(tmp_path / "items.parquet")
    result = cli("tune", "--events", events, "--items", tmp_path / "items.parquet", "--out", tmp_path / "run",
                 "--budget", "5s", ok=False)
    assert result.exit_code == 2 and "item catalog" in result.output and not (tmp_path / "run").exists()


def test_tune_without_an_event_file_is_a_named_error(tmp_path, cli):
    result = cli("tune", "--events", tmp_path / "missing.parquet", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 2 and "does not exist" in result.output and not (tmp_path / "run").exists()


def test_the_walks_rule_is_a_choice_whose_trials_walk_by_it():
    """walks_per_node = 0 (the rule, docs/studies/walk-tokens.md) is in the space; a candidate holding it trains on
    the rule's walks, and its TOML says 0, so `eges run --config` walks by the rule too."""
    import numpy as np

    from eges.config import to_toml
    from eges.graph.csr import CSRGraph
    from eges.walks.generate import total_walks

    assert 0 in dict((d.key, d.choices) for d in dimensions(False))["walks.walks_per_node"]
    config = load_config()
    ruled = apply(config, next(candidates(config, False, seed=0)) | {"walks.walks_per_node": 0}, passes=1)
    # a chain of 40 nodes, one transition out of each: the rule starts 2 walks a node, the default 20
    src, dst = np.arange(39), np.arange(1, 40)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=40))]).astype(np.int64)
    graph = CSRGraph(indptr, dst.astype(np.int32), np.ones(39))
    assert total_walks(graph, ruled.walks) == 2 * 39 < total_walks(graph, config.walks) == 20 * 39
    assert "walks_per_node = 0" in to_toml(ruled, with_help=False)


def test_trials_score_the_vectors_a_tuned_run_writes(monkeypatch):
    """A tuned TOML fixes method and passes, so its run does not validate and never centres its vectors: a trial
    selecting on AUC is scored uncentred too (validate.try_centred off), else the table would promise a figure the
    run does not give."""
    import types

    import eges.validation as validation
    from eges.tuning.run import Trials

    seen = []

    def fake(holdout, config, method, side=None, max_epochs=None, on_pass=None, patience=None, **_):
        seen.append(config.validate.try_centred)
        return types.SimpleNamespace(curve=[{"epoch": 1, "link_auc": 0.5}])

    monkeypatch.setattr(validation, "fit_and_score", fake)
    config = load_config(None, ["validate.metric='auc'", "train.epochs=1"])
    assert config.validate.try_centred
    trials = Trials(types.SimpleNamespace(config=config), types.SimpleNamespace(graph=None), None, 10)
    monkeypatch.setattr(trials, "holdout_for", lambda _config: None)
    assert trials.run(config) == {"epoch": 1, "link_auc": 0.5}
    assert seen == [False]
