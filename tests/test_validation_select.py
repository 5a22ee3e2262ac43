"""Early stopping and the choice of method on the validation slice."""

from __future__ import annotations

import numpy as np
import pytest

from eges.config import default_config
from eges.validation import choose, fit_and_score, make_holdout
from eges.validation import select as select_module
from eges.validation.select import Trial


def _log(seed: int = 0, users: int = 400, items: int = 40, length: int = 6):
    """A small log of random walks on a ring of items (each step +1 or +2): structure a few passes learn."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(1, 3, size=(users, length))
    start = rng.integers(0, items, size=(users, 1))
    item = ((start + np.cumsum(steps, axis=1) - steps[:, :1]) % items).reshape(-1).astype(np.int32)
    position = np.tile(np.arange(length, dtype=np.int32), users)
    ts = (np.repeat(rng.permutation(users), length) * 100 + np.tile(np.arange(length), users)).astype(np.int64) * 1000
    return item, position, ts, items


def _config(**validate):
    return (default_config().replace("train", dimension=8, threads=1, sample=0.0)
            .replace("walks", walks_per_node=10, threads=1).replace("validate", **validate))


def _scripted(monkeypatch, figures):
    """Make every pass score the next figure of ``figures`` (the early-stop rule is what is under test)."""
    it = iter(figures)

    def fake(holdout, vectors, has, k, cold_vectors=None, cold_has=None, centre=False):
        value = next(it)
        return {"hitrate": value, "next_auc": value, "link_auc": value, "cold_auc": float("nan")}

    monkeypatch.setattr(select_module, "score_vectors", fake)


@pytest.fixture(scope="module")
def holdout():
    item, position, ts, n = _log()
    return make_holdout(item, position, ts, n, _config(), has_catalog=False, seed=0)


def test_early_stop_halts_once_the_metric_falls_and_keeps_the_best_pass(monkeypatch, holdout):
    _scripted(monkeypatch, [0.2, 0.3, 0.25, 0.24, 0.23, 0.22])
    trial = fit_and_score(holdout, _config(patience=2), "bge", max_epochs=6)
    assert trial.best_epochs == 2
    assert len(trial.curve) == 4 and trial.stopped_early
    assert trial.best["hitrate"] == 0.3


def test_early_stop_keeps_going_while_the_metric_rises(monkeypatch, holdout):
    _scripted(monkeypatch, [0.1, 0.2, 0.3, 0.4, 0.5])
    trial = fit_and_score(holdout, _config(patience=1), "bge", max_epochs=5)
    assert trial.best_epochs == 5 and len(trial.curve) == 5 and not trial.stopped_early


def test_a_trial_scores_every_pass_on_a_real_log(holdout):
    trial = fit_and_score(holdout, _config(k=5), "bge", max_epochs=2, patience=0)
    assert [row["epoch"] for row in trial.curve] == [1, 2]
    assert all(0 <= row["hitrate"] <= 1 and 0 <= row["next_auc"] <= 1 for row in trial.curve)
    assert trial.best["hitrate"] > 0.5  # the next item is one of two neighbours on the ring: 5 / 40 by chance
    assert trial.to_dict()["curve"][0]["epoch"] == 1


def test_choose_follows_the_metric():
    def trial(method, value, epochs):
        return Trial(method, "hitrate", epochs, [{"epoch": epochs, "hitrate": value}], {"hitrate": value}, 1.0, False)

    winner, why = choose([trial("bge", 0.3, 2), trial("ges", 0.5, 1), trial("eges", 0.4, 3)])
    assert winner.method == "ges" and "ges at 1 pass" in why
    winner, _ = choose([trial("bge", 0.6, 2), trial("ges", 0.5, 1)])
    assert winner.method == "bge"


def test_side_information_methods_need_side_info(holdout):
    with pytest.raises(ValueError, match="side"):
        fit_and_score(holdout, _config(), "eges", side=None)


def test_the_chosen_method_follows_the_validation_metric_on_a_log_whose_catalog_is_its_signal():
    """One pass over a generated log whose catalogue predicts behaviour: side information wins on the slice."""
    from eges.api import sessionize
    from eges.methods import METHODS
    from eges.sample_data import SampleSpec, make_sample
    from eges.side_info.encode import encode

    cfg = default_config().replace("train", dimension=16).replace("walks", walks_per_node=5).replace("validate", k=10)
    events, catalog, _ = make_sample(SampleSpec(n_events=20_000, n_items=800, side_info_signal=1.0, seed=3))
    sessions, vocab, _ = sessionize(events, cfg)
    vocab = vocab.sort_by("item_index")
    fields = [c for c in catalog.columns if c != "item_id"]
    side, _ = encode(catalog, vocab["item_id"].to_pylist(), "item_id", fields, 10, ())
    h = make_holdout(sessions["item_index"].to_numpy(), sessions["position"].to_numpy(), sessions["ts"].to_numpy(),
                     vocab.num_rows, cfg, True, 0)
    trials = [fit_and_score(h, cfg, m, side, max_epochs=1) for m in ("bge", "ges")]
    winner, why = choose(trials)
    assert winner.score == max(t.score for t in trials)
    assert METHODS[winner.method].side_info, why


def test_a_method_whose_cold_start_falls_far_behind_cannot_win():
    """Taobao's case: BGE tops the slice's HitRate by a little while its value-mean cold items score 0.51 against
    GES's 0.73; with a catalog the choice must keep cold-start vectors good."""
    def trial(method, hitrate, cold):
        best = {"epoch": 3, "hitrate": hitrate, "cold_auc": cold}
        return Trial(method, "hitrate", 3, [best], best, 1.0, False)

    trials = [trial("bge", 0.332, 0.509), trial("ges", 0.324, 0.735), trial("eges", 0.317, 0.716)]
    winner, why = choose(trials, cold_tolerance=0.05)
    assert winner.method == "ges" and "not bge (cold AUC 0.5090" in why and "above bge" not in why
    assert choose(trials)[0].method == "bge"  # no tolerance: the metric alone
    assert choose(trials, cold_tolerance=0.3)[0].method == "bge"  # within the tolerance: the metric decides
    no_cold = [trial("bge", 0.4, float("nan")), trial("ges", 0.3, float("nan"))]
    assert choose(no_cold, cold_tolerance=0.05)[0].method == "bge"  # no cold pairs: nothing is barred
