"""Replay the validate stage's token budget (validate.budget) on recorded selections: for each multiple of the
training without validation, which choices change (method, passes and their schedule, direction, window), how much of the slice's
metric the bounded choice loses against the unbounded one, and the walk tokens saved.

Every trial's passes on a slice are fixed by the slice and its seed, so a recorded selection
(``validation/selection.json``: every method's and later trial's curve) shows what a budget would have stopped.
The replay runs the stage's own rules on those curves: :meth:`eges.validation.select.TokenBudget.for_run`,
its trackers, reservations and ``allows`` (the later trials by :data:`~eges.validation.select.LATER_TRIALS`), the
methods' :class:`~eges.validation.select.Race` in :func:`~eges.validation.select.race_order`,
:func:`~eges.validation.select.choose`, and the later trials' own :func:`~eges.validation.variants.direction_trial`
and :func:`~eges.validation.variants.window_trial` with ``fit_and_score`` replaced by one that replays a recorded
curve pass by pass (its ``on_pass``, patience and race as in the stage). The methods' loop and the short
schedule's block are the stage's lines (eges/pipeline/validate_stage.py) again, on these functions.

What cannot be replayed is counted as lost: a later trial recorded on a recipe the budget did not choose (another
method or pass, or after a trial that won and was not tried) is not run, so the bounded choice stops there.
Tokens are the recorded walk tokens (``token_budget``) when recorded; else the slice's directed pass is 1 M and
the whole log's ``1 / (1 - validate.fraction)`` M (the stage's own ratio), and the undirected walks' length is
the recorded undirected pass when the direction won, else the direction trial's seconds a pass over the method's
(clipped to 1-2.5). validate.bound_above is not applied (the old selections have no absolute tokens).

    python benchmarks/replay_budget.py [--multiples 1,1.5,2,3,4,0] SELECTION.json ...

e.g. ``python benchmarks/replay_budget.py $(find /tmp -path '*validation/selection.json' -not -path '*pytest-of*')``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import eges.validation as validation
from eges.config import default_config
from eges.validation.score import metric_value
from eges.validation.select import ENDS, Race, TokenBudget, Trial, choose, race_order
from eges.validation.variants import direction_trial, window_trial

FRACTION = 0.1  # validate.fraction of every recorded run


def _rows(doc: dict) -> list[dict[str, float]]:
    return [{k: (math.nan if v is None else v) for k, v in row.items()} for row in doc["curve"]]


def replayer(curves: dict[Any, dict]) -> Any:
    """A ``fit_and_score`` that replays ``curves[(holdout, window)]`` (or ``[(holdout, window, method)]``) pass by
    pass with the stage's loop: patience, then the race, then ``on_pass``; the :class:`Trial` it cut."""

    def fit_and_score(holdout: Any, config: Any, method: str, side: Any = None, max_epochs: int | None = None,
                      on_pass: Any = None, walks: Any = None, patience: int | None = None, start: Any = None,
                      race: Race | None = None) -> Trial:
        vcfg = config.validate
        doc = curves.get((holdout, config.train.window, method)) or curves[(holdout, config.train.window)]
        max_epochs = int(max_epochs or vcfg.max_epochs)
        patience = vcfg.patience if patience is None else patience
        curve: list[dict[str, float]] = []
        best, best_value, best_epoch, stopped, dropped = {}, -math.inf, 0, False, ""
        for row in _rows(doc)[:max_epochs]:
            epoch = int(row["epoch"])
            curve.append(row)
            value = metric_value(row, vcfg.metric)
            if value > best_value + vcfg.min_delta or not best:
                best, best_value, best_epoch = row, (value if value == value else -math.inf), epoch
            if patience and epoch - best_epoch >= patience and epoch < max_epochs:
                stopped = True
            if race is not None and epoch < max_epochs and not stopped:
                dropped = race.trails(curve)
            ends = stopped or bool(dropped)
            stop = bool(on_pass({**row, ENDS: True} if ends else row)) if on_pass is not None else False
            if ends or stop:
                break
        return Trial(method, vcfg.metric, best_epoch, curve, dict(best), 0.0, stopped, dropped)

    return fit_and_score


def _pass_ratio(selection: dict) -> float:
    """How much longer the undirected walks are than the directed ones (see the module's docstring)."""
    passes = (selection.get("token_budget") or {}).get("walk_passes") or {}
    if passes.get("slice_undirected"):  # recorded since validate.budget
        return passes["slice_undirected"] / passes["slice"]
    doc, budget = selection.get("direction_trial"), selection.get("token_budget") or {}
    if doc and doc.get("wins") and budget.get("slice_pass") and budget.get("refit_pass"):
        return budget["slice_pass"] / (budget["refit_pass"] * (1 - FRACTION))
    method = next((t for t in selection["trials"] if t["method"] == selection["method"]), None)
    if not doc or method is None:
        return 1.0
    per_pass = [sum(r.get("train_seconds") or 0 for r in d["curve"]) / max(len(d["curve"]), 1) for d in (doc, method)]
    return min(2.5, max(1.0, per_pass[0] / per_pass[1])) if per_pass[1] > 0 else 1.0


def doc_training(selection: dict) -> float:
    """The recorded run's training without validation in the replay's units (the epochs rule's passes x a pass)."""
    return int(selection.get("max_epochs") or 0) * _passes(selection)[1]


def _passes(selection: dict) -> tuple[int, int]:
    """(the slice's directed pass, the whole log's) in walk tokens when recorded, else in units of 1 M a slice
    pass (the stage's full pass is the slice's / (1 - validate.fraction))."""
    budget = selection.get("token_budget") or {}
    if (budget.get("walk_passes") or {}).get("refit"):
        return budget["walk_passes"]["slice"], budget["walk_passes"]["refit"]
    if budget.get("refit_pass"):  # recorded before walk_passes: refit_pass was the directed whole log's
        return int(budget["refit_pass"] * (1 - FRACTION)), budget["refit_pass"]
    return 1_000_000, int(1_000_000 / (1 - FRACTION))


def simulate(selection: dict, multiple: float) -> dict[str, Any]:
    """The stage's selection on the recorded curves within ``multiple`` x the training (0: unbounded)."""
    vcfg = dict(metric=selection["metric"])
    config = default_config().replace("validate", **vcfg)
    vcfg = config.validate
    slice_pass, refit_pass = _passes(selection)
    fixed = int(selection["epochs"]) if selection.get("epochs_fixed") else 0
    cap = int(selection.get("max_epochs") or 0) or fixed
    methods = [t["method"] for t in selection["trials"]]
    curves: dict[Any, dict] = {("slice", 5, t["method"]): t for t in selection["trials"]}
    fit_and_score = replayer(curves)
    validation.fit_and_score = fit_and_score  # the later trials call it from eges.validation at call time
    budget = TokenBudget.for_run(cap, slice_pass, refit_pass, multiple, math.inf, refit_passes=fixed)
    trials: list[Trial] = []
    # the stage's methods loop
    race = Race(vcfg.metric, 0.0 if fixed else vcfg.race_margin, 2 * vcfg.cold_tolerance, trials)
    for method in race_order(methods):
        if cap == 1 and len(methods) == 1:
            break
        if budget.untried(method):
            continue
        trials.append(fit_and_score("slice", config, method, max_epochs=cap, patience=0 if fixed else None,
                                    race=race, on_pass=budget.tracker(vcfg.metric, method, cap)))
    trials.sort(key=lambda t: methods.index(t.method))
    out = {"stopped": budget.stopped}
    if not trials:
        return {**out, "choice": (methods[0], (1, 1), "directed", 5), "value": math.nan,
                "tokens": budget.spent + refit_pass}
    winner, _ = choose(trials, cold_tolerance=vcfg.cold_tolerance)
    recorded, _ = choose([fit_and_score("slice", config, m, max_epochs=cap, patience=0 if fixed else None)
                          for m in methods], cold_tolerance=vcfg.cold_tolerance)
    method, epochs = winner.method, fixed or winner.best_epochs
    value = winner.score
    budget.refit_passes = epochs
    same = (method, winner.best_epochs) == (recorded.method, recorded.best_epochs)  # the later trials replay
    direction, window, schedule = "directed", 5, cap
    later = dataclasses.replace(race, margin=0.0 if fixed else vcfg.trial_margin)
    short_doc, dir_doc = selection.get("short_schedule"), selection.get("direction_trial")
    windows = [w for w in selection.get("window_trials") or []]
    ratio = _pass_ratio(selection)
    short_tried = bool(short_doc) and not fixed and epochs < cap

    def trackers(label: str) -> Any:
        return budget.tracker(vcfg.metric, label, schedule)

    if same:
        budget.reserve(cap, epochs if short_tried else 0, int(slice_pass * ratio) if dir_doc else 0, len(windows))
        short = None
        if short_tried and budget.allows("short schedule", epochs):  # the stage's block
            curves[("short", 5)] = short_doc
            short = fit_and_score("short", config, method, max_epochs=epochs, patience=0,
                                  race=dataclasses.replace(later, rivals=[winner]),
                                  on_pass=budget.tracker(vcfg.metric, "short schedule", epochs))
            if not short.dropped and metric_value(short.curve[-1], vcfg.metric) > winner.score:
                schedule, value = epochs, metric_value(short.curve[-1], vcfg.metric)
        recorded_short = bool(short_doc) and selection.get("schedule_epochs") != cap
        if recorded_short != (schedule != cap):
            same = False  # the direction and window trials were recorded on the other schedule
    if same:
        reference, last_pass = short if schedule != cap else winner, bool(fixed) or schedule != cap
        choice = None
        if dir_doc:  # _try_direction on the recorded undirected curve
            curves[("undirected", 5)] = dir_doc
            directed = budget.slice_pass, budget.refit_pass
            budget.slice_pass, budget.refit_pass = int(slice_pass * ratio), int(refit_pass * ratio)
            if budget.allows("undirected", schedule if last_pass else 1):
                choice = direction_trial("slice", "undirected", None, config, method, None, None, schedule,
                                         reference, last_pass, later, trackers)
            if choice is None or not choice.undirected:
                budget.slice_pass, budget.refit_pass = directed
            if (choice is not None and choice.undirected) != bool(dir_doc["wins"]):
                same = False  # the window trials were recorded on the other graph
            if choice is not None and choice.undirected:
                direction, reference = "undirected", choice.reference
                epochs, value = choice.epochs or epochs, metric_value(
                    reference.curve[-1] if last_pass else reference.best, vcfg.metric)
        if same and windows:  # each window started only if it fits, as in the stage
            for doc in windows:
                curves[("slice" if direction == "directed" else "undirected", int(doc["window"]))] = doc
            config_w = config.replace("validate", windows=[5, *[int(d["window"]) for d in windows]])
            picked = window_trial("slice" if direction == "directed" else "undirected", config_w, method, None,
                                  None, schedule, reference, last_pass, later, trackers,
                                  admits=lambda label: budget.allows(label, schedule if last_pass else 1))
            if picked is not None and picked.trial is not None:
                window, epochs = picked.window, picked.epochs or epochs
                value = metric_value(picked.trial.curve[-1] if last_pass else picked.trial.best, vcfg.metric)
    tokens = budget.spent + epochs * budget.refit_pass
    return {**out, "choice": (method, (epochs, schedule), direction, window), "value": value, "tokens": tokens,
            "limit": budget.limit}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("selections", nargs="+", type=Path)
    ap.add_argument("--multiples", default="1,1.5,2,3,4,0", help="0: unbounded (the reference)")
    ap.add_argument("--loss", type=float, default=0.02, help="a choice losing more than this share is counted")
    ap.add_argument("--detail", type=float, default=None, help="print each changed choice at this multiple")
    ap.add_argument("--show", default="", help="also print each selection whose path holds this, per multiple")
    args = ap.parse_args()
    multiples = [float(m) for m in args.multiples.split(",")]
    selections = []
    for path in args.selections:
        doc = json.loads(path.read_text())
        if (doc.get("token_budget") or {}).get("stopped"):
            continue  # recorded under a budget that stopped something: its curves are cut
        if doc.get("trials") and doc.get("max_epochs"):
            selections.append((path, doc))
    base = {path: simulate(doc, 0.0) for path, doc in selections}
    differ = [path for path, doc in selections
              if base[path]["choice"] != (doc["method"], (doc["epochs"], doc.get("schedule_epochs") or doc["max_epochs"]),
                                          doc.get("direction", "directed"),
                                          doc.get("window") or 5)]
    print(f"{len(selections)} selections; unbounded, the replay differs from the recorded choice on {len(differ)} "
          f"(recorded before a rule of today's stage: the race, the trial margin)\n")
    print("| multiple | choices changed | method | passes (or schedule) | direction | window | slice metric lost > "
          f"{args.loss:.0%} | > 1% | worst loss | tokens (of unbounded) |\n|---|---|---|---|---|---|---|---|---|---|")
    for multiple in multiples:
        changed = [0] * 5
        lost = lost1 = 0
        worst, worst_at, tokens, tokens0 = 0.0, "", 0.0, 0.0
        for path, doc in selections:
            ref, got = base[path], simulate(doc, multiple)
            unit = ref["tokens"]
            tokens, tokens0 = tokens + got["tokens"] / unit, tokens0 + 1
            diff = [a != b for a, b in zip(ref["choice"], got["choice"])]
            changed[0] += any(diff)
            for i, d in enumerate(diff):
                changed[i + 1] += d
            loss = (1 - got["value"] / ref["value"]) if ref["value"] == ref["value"] and ref["value"] > 0 else 0.0
            loss = loss if loss == loss else 1.0
            lost += loss > args.loss
            lost1 += loss > 0.01
            if loss > worst:
                worst, worst_at = loss, str(path.parent.parent)
            if args.detail is not None and multiple == args.detail and any(diff):
                print(f"  {path.parent.parent}: {ref['choice']} {ref['value']:.4f} -> {got['choice']} "
                      f"{got['value']:.4f} ({loss:+.1%}); stopped {got['stopped']}")
            if args.show and args.show in str(path):
                print(f"  {path.parent.parent} x{multiple:g}: {got['choice']} slice {got['value']:.4f} "
                      f"({loss:+.1%}), walk tokens {got['tokens'] / 1e6:.0f} M of {unit / 1e6:.0f} M unbounded "
                      f"(training {doc_training(doc) / 1e6:.0f} M)")
        label = "unbounded" if multiple == 0 else f"{multiple:g}"
        print(f"| {label} | {changed[0]} | {changed[1]} | {changed[2]} | {changed[3]} | {changed[4]} | {lost} | "
              f"{lost1} | {worst:.1%} ({worst_at}) | {tokens / tokens0:.0%} |")


if __name__ == "__main__":
    main()
