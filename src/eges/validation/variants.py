"""The chosen recipe tried once more on the slice in other ways: another skip-gram window, the graph made
undirected. The validate stage (``eges.pipeline.validate_stage``) runs these trials after the method, passes and
schedule are chosen; both follow one rule (:func:`try_variants`), and each is raced pass by pass against the
curve it is compared with (:class:`eges.validation.race.Race`), so a trial that cannot win stops early. Pure
arrays: nothing is read or written."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from eges.config import Config
from eges.validation.race import Race, window_pace
from eges.validation.select import PassCallback

#: Gives each variant (by its label) the ``on_pass`` its trial reports to (a token budget's tracker).
Trackers = Callable[[str], PassCallback]

#: Whether the variant (by its label) may start (a token budget's ``allows``): asked before each one, so a
#: later window is not started where it would be cut before the pass it is judged at.
Admits = Callable[[str], bool]


class Variant(NamedTuple):
    """One other way of training the chosen recipe on the slice (another window, the graph made undirected)."""

    label: str  # how the sentence names it ("window 2", "undirected")
    record: dict[str, Any]  # what its row in selection.json says it is ({"window": 2})
    holdout: Any
    config: Config
    walks: Any
    pace: float = 1.0  # the share of a reference pass one of its passes trains (the race reads it, Race.pace)


class Verdict(NamedTuple):
    chosen: Variant | None  # the variant that won (None: the reference stands)
    epochs: int  # the winner's best pass when the passes are not fixed (0: the passes already chosen stand)
    trial: Any  # the winner's trial (the reference when none won)
    value: float  # the winner's figure on validate.metric (the reference's when none won)
    base: float  # the reference's figure
    rows: list[dict[str, Any]]  # one per variant: its figures and whether it won
    notes: list[str]  # one per variant: "label value" and why the cold guard barred it


def try_variants(variants: list[Variant], method: str, side: Any, schedule: int, reference: Any,
                 last_pass: bool, race: Race | None = None, trackers: Trackers | None = None,
                 admits: Admits | None = None) -> Verdict:
    """The chosen recipe (method, passes, schedule) trained once more per variant; the window's and the graph
    direction's trials share this rule. A variant wins when it scores higher on ``validate.metric`` than the
    reference and every variant before it that won (at the last pass when the passes are fixed or the short
    schedule was chosen, else at its best pass, whose passes are then kept) and its cold AUC is within
    ``validate.cold_tolerance`` of the reference's. ``reference`` is the trial the recipe was chosen on.

    ``race`` (its metric and margins; its rivals are replaced): each variant races the reference and the variants
    that won before it, as the methods race each other. Its best so far is compared with theirs within as many
    passes, whichever pass the verdict reads: a variant's last pass is never above its best, and a schedule that
    decays faster is judged against the reference's best of as many passes, not its pass at the same rate.
    ``trackers``: each variant's trial reports its passes to ``trackers(label)`` (a token budget), which may stop it;
    ``admits(label)``: whether it starts at all (a variant it refuses is left out of the verdict)."""
    from eges.validation import fit_and_score, metric_value  # at call time: tests script fit_and_score

    def at(trial: Any) -> dict[str, float]:
        return trial.curve[-1] if last_pass else trial.best

    base, metric = at(reference), variants[0].config.validate.metric
    base_cold = float(base.get("cold_auc", float("nan")))
    base_value = metric_value(base, metric)
    chosen, best_value, epochs, best_trial, rows, notes = None, base_value, 0, reference, [], []
    race = dataclasses.replace(race, rivals=[reference], last_pass=last_pass) if race is not None else None
    for variant in variants:
        if admits is not None and not admits(variant.label):
            continue
        tolerance = variant.config.validate.cold_tolerance
        if race is not None:
            race.pace = variant.pace
        trial = fit_and_score(variant.holdout, variant.config, method, side, max_epochs=schedule,
                              walks=variant.walks, patience=0 if last_pass else None, race=race,
                              on_pass=trackers(variant.label) if trackers is not None else None)
        row = at(trial)
        value, cold = metric_value(row, metric), float(row.get("cold_auc", float("nan")))
        cold_ok = base_cold != base_cold or (cold == cold and cold >= base_cold - tolerance)
        wins = value == value and value > best_value and cold_ok
        rows.append({**variant.record, "score": None if value != value else round(value, 6),
                     "cold_auc": None if cold != cold else round(cold, 6), "wins": wins, **trial.to_dict()})
        notes.append(f"{variant.label} {value:.4f}" + ("" if cold_ok else f" (cold AUC {cold:.4f} against "
                                                                          f"{base_cold:.4f})")
                     + (f" (raced out: {trial.dropped})" if trial.dropped else ""))
        if wins:
            chosen, best_value, best_trial = variant, value, trial
            if race is not None:
                race.rivals.append(trial)
            epochs = 0 if last_pass else trial.best_epochs
    return Verdict(chosen, epochs, best_trial, best_value, base_value, rows, notes)


class WindowChoice(NamedTuple):
    window: int  # the window the whole log trains with
    epochs: int  # the passes of the chosen window's best pass (0: the passes already chosen stand)
    why: str  # the sentence's tail
    trials: list[dict[str, Any]]  # one per other window tried, with its figures and whether it won
    trial: Any = None  # the chosen window's trial when another window won (its row says whether it was centred)


def other_windows(config: Config) -> list[int]:
    """The windows :func:`window_trial` tries besides ``train.window`` (none when the window is the user's)."""
    vcfg, default = config.validate, config.train.window
    others = [w for w in dict.fromkeys(vcfg.windows[1:]) if w != default]
    return others if vcfg.windows and vcfg.windows[0] == default else []


def window_trial(holdout: Any, config: Config, method: str, side: Any, walks: Any, schedule: int,
                 reference: Any, last_pass: bool, race: Race | None = None,
                 trackers: Trackers | None = None, admits: Admits | None = None) -> WindowChoice | None:
    """The chosen recipe (method, passes, schedule) trained once more per other window of ``validate.windows``
    (:func:`try_variants`).

    Why: on a small basket catalog a walk with the default window reaches most items, so every item's context is
    alike, and a narrow window keeps the basket's neighbours; on a rating log it costs ranking. No constant fits,
    so the slice decides. Only when ``train.window`` is the first of ``validate.windows`` (an other window is the
    user's). ``reference`` is the default window's trial; ``race``, ``trackers`` and ``admits`` (asked per window)
    as in :func:`try_variants`; None when no window is tried."""
    default, others = config.train.window, other_windows(config)
    if not others:
        return None
    verdict = try_variants([Variant(f"window {w}", {"window": w}, holdout, config.replace("train", window=w),
                                    walks, window_pace(w, default)) for w in others],
                           method, side, schedule, reference, last_pass, race, trackers, admits)
    if not verdict.rows:  # the budget admitted no window
        return None
    if verdict.chosen is not None:
        chosen = verdict.chosen.record["window"]
        at_passes = f" at {verdict.epochs} pass(es)" if verdict.epochs else ""
        why = (f"; train.window {chosen}{at_passes}: the slice scored {verdict.value:.4f} with it against "
               f"{verdict.base:.4f} at window {default} (tried: {', '.join(verdict.notes)})")
    else:
        chosen = default
        why = f"; train.window {default} kept ({verdict.base:.4f} on the slice; tried: {', '.join(verdict.notes)})"
    return WindowChoice(chosen, verdict.epochs, why, verdict.rows,
                        verdict.trial if verdict.chosen is not None else None)


class DirectionChoice(NamedTuple):
    undirected: bool  # the whole log's walks walk the graph made undirected
    epochs: int  # the undirected trial's best pass (0: the passes already chosen stand)
    why: str  # the sentence's tail
    trial: dict[str, Any]  # the undirected trial's figures and whether it won
    reference: Any  # the trial the window's trial compares with: the undirected one when it won
    holdout: Any  # the slice the window's trial trains on (made undirected when that won)
    walks: Any  # and its walks


def direction_trial(holdout: Any, sym: Any, sym_walks: Any, config: Config, method: str, side: Any, walks: Any,
                    schedule: int, reference: Any, last_pass: bool, race: Race | None = None,
                    trackers: Trackers | None = None) -> DirectionChoice:
    """The chosen recipe trained once more on the slice's graph made undirected (:func:`try_variants`).

    Why: a basket or a review sequence has no order, and the directed session graph links an item only to the
    next one; walking it both ways raised link AUC on every real log measured (docs/evaluation.md, 'The walks'
    graph direction'), while an ordered log (sessions of steps) loses its next-item ranking. So the slice decides.
    ``sym`` is the slice made undirected, ``sym_walks`` its walks; ``race``, ``trackers`` as in :func:`try_variants`."""
    verdict = try_variants([Variant("undirected", {"direction": "undirected"}, sym, config, sym_walks)],
                           method, side, schedule, reference, last_pass, race, trackers)
    won = verdict.chosen is not None
    at_passes = f" at {verdict.epochs} pass(es)" if verdict.epochs else ""
    verdict_text = f"walks on the graph made undirected{at_passes}" if won else "the directed graph kept"
    why = f"; {verdict_text} (tried: directed {verdict.base:.4f}, {verdict.notes[0]} on the slice)"
    return DirectionChoice(won, verdict.epochs, why, verdict.rows[0], verdict.trial,
                           sym if won else holdout, sym_walks if won else walks)
