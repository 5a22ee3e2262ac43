"""Replay the validate stage's token budget (validate.budget) on recorded selections: for each multiple of the
training without validation, which choices change (method, passes and their schedule, direction, window), how much
of the slice's metric the bounded choice loses against the unbounded one, and the walk tokens saved.

Every trial's passes on a slice are fixed by the slice and its seed, so a recorded selection
(``validation/selection.json``: every method's and later trial's curve) shows what a budget would have stopped.
The replay runs the stage's own sequence on those curves (:class:`eges.validation.sequence.TrialSequence`, with
:func:`~eges.validation.sequence.selection_budget`), with ``fit_and_score`` replaced by one that replays a
recorded curve pass by pass (its ``on_pass``, patience and race as in the stage), so the replay and the stage
cannot drift apart.

What cannot be replayed is counted as lost: a trial recorded on a recipe the budget did not choose (another
method or pass, or after a trial that won and was not tried), or one the selection did not record (a short
schedule of a selection made before it existed), ends the sequence, so the bounded choice stops there.
Tokens are the recorded walk tokens (``token_budget``) when recorded; else the slice's directed pass is 1 M and
the whole log's ``1 / (1 - validate.fraction)`` M (the stage's own ratio), and the undirected walks' length is
the recorded undirected pass when the direction won, else the direction trial's seconds a pass over the method's
(clipped to 1-2.5). validate.bound_above is not applied (the old selections have no absolute tokens), and
validate.bound_per_event only where the tokens are recorded (the log's events, or an edge list's edges).
A recorded curve that ends before its most passes ends its trial there (the replay has no later pass).

    python benchmarks/replay_budget.py [--multiples 1,1.5,2,3,4,0] SELECTION.json ...
    python benchmarks/replay_budget.py --vary race_reach=0,2,3 [--show 1] SELECTION.json ...   # settings compared
    python benchmarks/replay_budget.py --recorded [--set bound_per_event=0] SELECTION.json ...  # against the record

The methods race in turns in the replay too (its ``fit_and_score`` steps a recorded curve a pass at a time).

e.g. ``python benchmarks/replay_budget.py $(find /tmp -path '*validation/selection.json' -not -path '*pytest-of*')``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import eges.validation as validation
from eges.config import default_config
from eges.validation.race import Race
from eges.validation.score import metric_value
from eges.validation.select import ENDS, Trial
from eges.validation.sequence import TrialSequence, Walked, selection_budget

FRACTION = 0.1  # validate.fraction of every recorded run
DEFAULT_WINDOW = 5  # train.window of every recorded run
NO_BOUND = 10**18  # validate.bound_above of the replay: none


class Unrecorded(LookupError):
    """The sequence asked for a trial the selection did not record (another recipe than the recorded one)."""


def _rows(doc: dict) -> list[dict[str, float]]:
    return [{k: (math.nan if v is None else v) for k, v in row.items()} for row in doc["curve"]]


def replayer(curves: dict[Any, dict]) -> Any:
    """A ``fit_and_score`` that replays ``curves[(holdout, window, method, max_epochs)]`` pass by pass with the
    stage's loop: patience, then the race, then ``on_pass``; the :class:`Trial` it cut (:class:`Unrecorded`: no such
    curve), or with ``in_turns`` its passes one per step, as the stage's race in turns takes them."""

    def fit_and_score(holdout: Any, config: Any, method: str, side: Any = None, max_epochs: int | None = None,
                      on_pass: Any = None, walks: Any = None, patience: int | None = None, start: Any = None,
                      race: Race | None = None, in_turns: bool = False) -> Any:
        vcfg = config.validate
        max_epochs = int(max_epochs or vcfg.max_epochs)
        doc = curves.get((holdout, config.train.window, method, max_epochs))
        if doc is None:
            raise Unrecorded((holdout, config.train.window, method, max_epochs))
        patience = vcfg.patience if patience is None else patience

        def passes() -> Any:
            trial = Trial(method, vcfg.metric, 0, [], {}, 0.0, False)
            best_value = -math.inf
            rows = _rows(doc)[:max_epochs]
            for i, row in enumerate(rows):
                epoch = int(row["epoch"])
                trial.curve.append(row)
                value = metric_value(row, vcfg.metric)
                if value > best_value + vcfg.min_delta or not trial.best:
                    trial.best, best_value, trial.best_epochs = row, (value if value == value else -math.inf), epoch
                if patience and epoch - trial.best_epochs >= patience and epoch < max_epochs:
                    trial.stopped_early = True
                if race is not None and epoch < max_epochs and not trial.stopped_early:
                    trial.dropped = race.trails(trial.curve, max_epochs)
                # a recorded curve that ends before max_epochs ended there (patience, the race or a budget): the
                # replay has no later pass, so the trial says it ends, as the stage's does at its last
                ran_out = i == len(rows) - 1 and epoch < max_epochs
                ends = trial.stopped_early or bool(trial.dropped) or ran_out
                stop = bool(on_pass({**row, ENDS: True} if ends else row)) if on_pass is not None else False
                yield trial
                if ends or stop:
                    return

        if in_turns:
            return passes()
        *_, trial = passes()
        return trial

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


def _replayable(selection: dict) -> bool:
    """Whether a selection recorded its methods' curves and its most passes (older records did not)."""
    return bool(selection.get("trials") and selection.get("max_epochs"))


def _recorded_choice(selection: dict) -> tuple[Any, ...]:
    """The choice a selection recorded, as :func:`simulate` gives its own: (method, (passes, schedule),
    direction, window)."""
    return (selection["method"], (selection["epochs"], selection.get("schedule_epochs") or selection["max_epochs"]),
            selection.get("direction", "directed"), selection.get("window") or DEFAULT_WINDOW)


def _rows_in(selection: dict) -> int:
    """The log's rows as validate.bound_per_event counts them (its events, or an edge list's edges), when the
    passes are recorded in walk tokens; 0 (no per-event bound) when they are in the 1 M units of older records."""
    if not ((selection.get("token_budget") or {}).get("walk_passes") or {}).get("refit"):
        return 0
    holdout = selection.get("holdout") or {}
    return int(holdout.get("events") or holdout.get("edges") or 0)


def _recorded_curves(selection: dict, cap: int) -> dict[Any, dict]:
    """The recorded trials by the recipe they were trained on, as the replayed ``fit_and_score`` is asked for
    them: (slice, window, method, passes), the slice "slice" (directed) or "undirected"."""
    method, window = selection["method"], DEFAULT_WINDOW
    curves: dict[Any, dict] = {("slice", window, t["method"], cap): t for t in selection["trials"]}
    schedule = int(selection.get("schedule_epochs") or cap)
    if selection.get("short_schedule"):  # trained at the recorded winner's best pass
        winner = next(t for t in selection["trials"] if t["method"] == method)
        curves[("slice", window, method, int(winner["best_epochs"]))] = selection["short_schedule"]
    if selection.get("direction_trial"):
        curves[("undirected", window, method, schedule)] = selection["direction_trial"]
    graph = "undirected" if selection.get("direction") == "undirected" else "slice"
    for doc in selection.get("window_trials") or []:
        curves[(graph, int(doc["window"]), method, schedule)] = doc
    return curves


def simulate(selection: dict, multiple: float, settings: dict[str, Any] | None = None) -> dict[Any, Any]:
    """The stage's selection (its own sequence, :class:`~eges.validation.sequence.TrialSequence`) on the recorded
    curves within ``multiple`` x the training (0: unbounded), with ``settings`` (other validate keys); a trial the
    selection did not record ends it."""
    slice_pass, refit_pass = _passes(selection)
    fixed = int(selection["epochs"]) if selection.get("epochs_fixed") else 0
    cap = int(selection.get("max_epochs") or 0) or fixed
    windows = [int(doc["window"]) for doc in selection.get("window_trials") or []]
    config = default_config().replace("validate", metric=selection["metric"], budget=multiple,
                                      bound_above=NO_BOUND, windows=[DEFAULT_WINDOW, *windows])
    if settings:
        config = config.replace("validate", **settings)
    methods = [t["method"] for t in selection["trials"]]
    validation.fit_and_score = replayer(_recorded_curves(selection, cap))  # the sequence calls it at call time
    budget = selection_budget(config, len(methods), fixed, cap, slice_pass, refit_pass, _rows_in(selection))
    sym = Walked("undirected", None, int(slice_pass * _pass_ratio(selection)))
    sequence = TrialSequence(Walked("slice", None, slice_pass), config, methods, None, budget, fixed=fixed, cap=cap,
                             undirected=(lambda: sym) if selection.get("direction_trial") else None)
    try:
        choice = sequence.run()
    except Unrecorded:
        choice = sequence.choice  # as the steps before the unrecorded trial left it
        choice.unrecorded = True
    direction = "undirected" if choice.undirected else "directed"
    return {"stopped": budget.stopped, "choice": (choice.method, (choice.epochs, choice.schedule), direction,
                                                  choice.window),
            "value": choice.value, "tokens": budget.spent + choice.epochs * budget.refit_pass, "limit": budget.limit,
            "raced_out": dict(choice.raced_out), "unrecorded": getattr(choice, "unrecorded", False),
            "dropped": {t.method: t.dropped for t in choice.trials if t.dropped}}


def compare(selections: list[tuple[Path, dict]], key: str, values: list[Any], multiple: float, show: bool) -> None:
    """validate.``key`` at each of ``values`` against the first, at validate.budget ``multiple``: the choices it
    changes, the slice metric they lose and the walk tokens (slice and refit) it saves."""
    ref = {path: simulate(doc, multiple, {key: values[0]}) for path, doc in selections}
    print(f"| validate.{key} | choices changed (of {len(selections)}) | slice metric lost (worst) | ran into an "
          f"unrecorded trial | walk tokens (of {values[0]}) |\n|---|---|---|---|---|")
    for value in values[1:]:
        changed, worst, unrecorded, tokens = 0, 0.0, 0, []
        for path, doc in selections:
            a, b = ref[path], simulate(doc, multiple, {key: value})
            loss = (1 - b["value"] / a["value"]) if a["value"] == a["value"] and a["value"] > 0 else 0.0
            changed += a["choice"] != b["choice"]
            worst = max(worst, loss)
            unrecorded += b["unrecorded"] and not a["unrecorded"]
            tokens.append(b["tokens"] / a["tokens"])
            if show and (a["choice"] != b["choice"] or b["tokens"] != a["tokens"]):
                print(f"  {path.parent.parent.name}: {a['choice']} {a['value']:.4f} -> {b['choice']} {b['value']:.4f}"
                      f" ({-loss:+.1%}); tokens {b['tokens'] / a['tokens']:.0%}; stopped: "
                      f"{ {**b['dropped'], **b['raced_out']} }")
        print(f"| {value} | {changed} | {worst:.1%} | {unrecorded} | {sum(tokens) / len(tokens):.0%} (min "
              f"{min(tokens):.0%}) |")


def against_recorded(selections: list[tuple[Path, dict]], settings: dict[str, Any]) -> None:
    """Today's stage at its defaults and ``settings`` (validate keys) against the choice each selection recorded
    (validate.bound_above as the stage has it, not the replay's none)."""
    same = total = 0
    for path, doc in selections:
        if not _replayable(doc):
            continue
        recorded = _recorded_choice(doc)
        got = simulate(doc, default_config().validate.budget,
                       {"bound_above": default_config().validate.bound_above, **settings})
        total += 1
        same += got["choice"] == recorded
        if got["choice"] != recorded:
            print(f"  {path.parent.parent.name}: recorded {recorded} -> {got['choice']} slice {got['value']:.4f}"
                  + (" (ran into an unrecorded trial)" if got["unrecorded"] else ""))
    print(f"{same} of {total} choices as recorded")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("selections", nargs="+", type=Path)
    ap.add_argument("--multiples", default="1,1.5,2,3,4,0", help="0: unbounded (the reference)")
    ap.add_argument("--loss", type=float, default=0.02, help="a choice losing more than this share is counted")
    ap.add_argument("--detail", type=float, default=None, help="print each changed choice at this multiple")
    ap.add_argument("--show", default="", help="also print each selection whose path holds this, per multiple")
    ap.add_argument("--recorded", action="store_true", help="replay today's stage (its defaults and --set) on each "
                    "selection and compare with the choice it recorded")
    ap.add_argument("--set", action="append", default=[], help="with --recorded: KEY=V, a validate key (repeatable)")
    ap.add_argument("--vary", default="", help="KEY=V1,V2,...: compare validate.KEY's values against the first (e.g. "
                    "race_reach=0,2,3 or min_delta=0,0.002) at validate.budget's default multiple instead, on every "
                    "selection (budget-stopped ones too: the same multiple)")
    args = ap.parse_args()
    multiples = [float(m) for m in args.multiples.split(",")]
    every = [(path, json.loads(path.read_text())) for path in args.selections]
    if args.recorded:
        defaults = default_config().validate
        settings = {k: type(getattr(defaults, k))(v) for k, v in (a.split("=", 1) for a in args.set)}
        against_recorded(every, settings)
        return
    every = [(path, doc) for path, doc in every if _replayable(doc)]
    if args.vary:
        key, values = args.vary.split("=", 1)
        kind = type(getattr(default_config().validate, key))
        compare(every, key, [kind(v) for v in values.split(",")], default_config().validate.budget, bool(args.show))
        return
    # recorded under a budget that stopped something: its curves are cut
    selections = [(path, doc) for path, doc in every if not (doc.get("token_budget") or {}).get("stopped")]
    base = {path: simulate(doc, 0.0) for path, doc in selections}
    differ = [path for path, doc in selections if base[path]["choice"] != _recorded_choice(doc)]
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
