"""The race on the validation slice: methods, and later the trials of the chosen recipe, compared pass by pass with
their rivals, so that one that cannot win stops early (:class:`Race`); the methods train in turns, a pass each
(:func:`in_turns`). Pure: no training here, only the curves the trials report."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator

from eges.methods import method_of, resolve
from eges.validation.score import metric_value
from eges.validation.select import Trial

#: The first pass at which a race may stop a method: after one pass EGES's attention has barely moved, and on the
#: study's slices it trailed GES by up to 14% (HitRate) and 0.08 (cold AUC) at pass 1 before winning.
RACE_FROM = 2


def _best_so_far(curve: list[dict[str, float]], metric: str) -> tuple[float, float]:
    """(best metric, best cold AUC) over a curve's passes; NaN where the slice measures nothing."""
    values = [v for v in (metric_value(r, metric) for r in curve) if v == v]
    colds = [v for v in (r.get("cold_auc", math.nan) for r in curve) if v == v]
    return max(values, default=math.nan), max(colds, default=math.nan)


def _top_cold(rivals: list[tuple[str, float, float]], my_cold: float) -> float:
    """The best cold-start AUC among the rivals' (method, best metric, best cold AUC) and the raced trial's own
    (NaN where none is measured): what a cold margin is read from."""
    colds = [c for _, _, c in rivals if c == c] + ([my_cold] if my_cold == my_cold else [])
    return max(colds, default=math.nan)


@dataclasses.dataclass
class Race:
    """One trial's rivals on the same slice (the other methods, in turns; for a later trial the curve it is compared
    with), and the rules by which it is compared with them pass by pass.

    From pass :data:`RACE_FROM` on, a method stops (it cannot win) when its best metric so far is more than
    ``margin`` (a share) below the best that a rival reached within as many passes, or when its best cold-start AUC
    so far is more than ``cold_margin`` below a rival's (with a catalog; choose() bars a method at ``cold_tolerance``,
    the race waits for twice that). A rival that is itself that far behind on cold start does not lead. The rivals'
    curves are read as far as they go (:func:`in_turns` trains the methods a pass each, so a rival may be a pass
    behind). (Unlike :func:`eges.tuning.halving.successive_halving`, which retrains its survivors from scratch for
    each rung, a method here is only ever continued.)

    ``pace``: the share of a rival's pass that one pass of the raced trial trains; the rivals are read within
    ``ceil(passes x pace)`` passes. 1 for methods; a narrower skip-gram window trains fewer pairs per pass
    (:func:`window_pace`), so the window's trial is judged against the reference at as many pairs, not passes.

    ``reach`` (validate.race_reach, 0: off): with the passes the trial may still train (``cap``), it also stops when
    its best so far, gaining for every pass left what it gained a pass over its last ``reach`` passes, would stay
    below the score it must beat (a rival's best; its last pass when the verdict reads last passes, ``last_pass``).
    A learning curve gains less pass after pass, so this is an upper bound of where it ends: it stops a method
    trailing by less than ``margin`` whose curve has flattened (docs/evaluation.md, "The race's reach").
    """

    metric: str
    margin: float
    cold_margin: float
    rivals: list[Trial] = dataclasses.field(default_factory=list)
    pace: float = 1.0
    reach: int = 0
    last_pass: bool = False
    reach_only: bool = False  # the favourite (in_turns' first method): only the reach may stop it

    def trails(self, curve: list[dict[str, float]], cap: int = 0) -> str:
        """Why a method whose passes so far are ``curve`` cannot win within ``cap`` passes (0: unknown) (empty: it
        races on)."""
        passes = len(curve)
        if not self.margin or passes < RACE_FROM or not self.rivals:
            return ""
        if self.reach_only:
            return self._out_of_reach(curve, cap)
        return self._behind(curve) or self._out_of_reach(curve, cap)

    def _behind(self, curve: list[dict[str, float]]) -> str:
        """The margin's rule: too far below a rival's best within as many passes (or on cold start)."""
        passes = len(curve)
        mine, my_cold = _best_so_far(curve, self.metric)
        within = max(1, math.ceil(passes * self.pace - 1e-9))
        rivals = [(t.method, *_best_so_far(t.curve[:within], self.metric)) for t in self.rivals]
        top_cold = _top_cold(rivals, my_cold)
        if my_cold == my_cold and my_cold < top_cold - self.cold_margin:
            return f"cold AUC {my_cold:.4f} after {passes} passes against {top_cold:.4f}"
        leading = [(v, m) for m, v, c in rivals if v == v and not (c == c and c < top_cold - self.cold_margin)]
        if mine == mine and leading:
            value, leader = max(leading)
            if mine < value * (1 - self.margin):
                return f"{mine:.4f} after {passes} passes, more than {self.margin:.0%} below {leader}'s {value:.4f}"
        return ""

    def _out_of_reach(self, curve: list[dict[str, float]], cap: int) -> str:
        """The reach rule: at its recent pace, the curve ends below the score it must beat."""
        passes, back = len(curve), self.reach
        if not back or passes <= back or passes >= cap:
            return ""
        mine, my_cold = _best_so_far(curve, self.metric)
        before = _best_so_far(curve[:passes - back], self.metric)[0]
        wholes = [(t.method, *_best_so_far(t.curve, self.metric)) for t in self.rivals]
        top_cold = _top_cold(wholes, my_cold)
        # a rival choose() would bar on cold start (cold_tolerance, half the race's cold margin) sets no target
        targets = [(metric_value(t.curve[-1], self.metric) if self.last_pass else v, m)
                   for t, (m, v, c) in zip(self.rivals, wholes) if not (c == c and c < top_cold - self.cold_margin / 2)]
        targets = [(v, m) for v, m in targets if v == v]
        if mine != mine or before != before or not targets:
            return ""
        pace = max(0.0, mine - before) / back
        reach = mine + pace * (cap - passes)
        value, leader = max(targets)
        if reach < value:
            return (f"{mine:.4f} after {passes} passes, gaining {pace:.4f} a pass: at most {reach:.4f} by pass {cap}, "
                    f"below {leader}'s {value:.4f}")
        return ""


def window_pace(window: int, reference: int) -> float:
    """A :class:`Race` pace for a trial at skip-gram ``window`` against one at ``reference``: the trainer shrinks
    each centre's window to 1..window at random (word2vec's rule), so a pass trains about ``window + 1`` pairs per
    token. A narrower window is read against the reference's passes of as many pairs; a wider one at as many
    passes (never stricter than the methods' race)."""
    return min(1.0, (window + 1) / (reference + 1))


def race_order(methods: list[str]) -> list[str]:
    """The order a race trains ``methods`` in, a pass each in turn: the method ``auto`` resolves to with a catalog
    first (a pass ahead of the others it races), the side-information methods before those without (BGE's cold
    items come from value means; it was barred on every catalog log of the study, docs/evaluation.md)."""
    first = resolve("auto", has_catalog=True).name
    return sorted(methods, key=lambda m: (m != first, not method_of(m).side_info))


def in_turns(methods: list[str], start: Callable[[str, Race], Trial | Iterator[Trial] | None],
             template: Race) -> list[Trial]:
    """Race ``methods`` in turns: each trains one pass, in this order, then the next round, until every trial has
    ended (early stopping, the race, its last pass or a budget). Each races the others as they stand, through its
    own copy of ``template`` (the metric, margins and reach).

    ``start(method, race)`` is called at the method's first turn. It gives the trial as an iterator of one pass per
    step (``fit_and_score(..., in_turns=True)``); or a finished :class:`Trial` (a replay or a test's script that
    runs a trial whole: it then races the trials started before it, as in a race in turn); or None (the method does
    not start). In turns, no method finishes its curve before the others start, so the first one races too, by
    the reach only (``Race.reach_only``): it is the favourite, and the margin judges early passes, where EGES can
    trail GES by more than 10% and still win (movielens' cold protocol: 0.191 against 0.213 at pass 2), while a
    flattened curve is what the reach judges (taobao's EGES, stopped at pass 6-7; docs/evaluation.md). Returns the
    trials in ``methods``' order."""
    races = {m: dataclasses.replace(template, rivals=[], reach_only=m == methods[0]) for m in methods}
    running: dict[str, Iterator[Trial] | None] = dict.fromkeys(methods)
    current: dict[str, Trial] = {}
    while running:
        for method in [m for m in methods if m in running]:
            races[method].rivals[:] = [current[m] for m in methods if m != method and m in current]
            steps = running[method]
            if steps is None:
                started = start(method, races[method])
                if started is None or isinstance(started, Trial):
                    if started is not None:
                        current[method] = started
                    del running[method]
                    continue
                running[method] = steps = started
            trial = next(steps, None)
            if trial is None:
                del running[method]
            else:
                current[method] = trial
    return [current[m] for m in methods if m in current]
