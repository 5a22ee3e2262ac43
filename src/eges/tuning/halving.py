"""Successive halving inside a wall-clock budget, over any objective: no files, no eges stages, so it is tested
with a fake objective and a fake clock.

Why hand-written and not Optuna: a trial here is one training run whose cost is known up front in passes, and the
search must stop on a wall-clock deadline without starting a trial it cannot finish. That is a loop of some sixty
lines; Optuna's pruners are made for trials that report and continue, would add a dependency with its own storage
and logging, and on a space of eight categorical settings its sampler has too few trials (tens) to beat seeded
random candidates by much.

The search runs brackets. A bracket draws ``n`` candidates and trains each for the first rung's passes; the best
third (``keep``) trains again, from scratch, for the next rung's passes, and so on to the last rung. Each trial is
a complete run with exactly that many passes (the learning rate decays over them), so every row of the table is
reproduced by its settings and passes alone. ``n`` is the largest that the remaining budget holds at the deepest
bracket it holds, judged by a cost model fitted to the trials so far and judged again before every first-rung
trial (the first trial, with nothing measured yet, sizes the model; later ones correct it, so a bracket whose
candidates turn out dearer ends its first rung sooner); when a bracket ends with time left, the next one draws
fresh candidates. A trial the budget cannot hold is not started, and one running at the deadline is
stopped (the objective returns None) and kept out of the ranking.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

#: Passes of the rungs: one pass, a few, the most the epochs rule ever gives (the grid of issue 19's study).
RUNGS: tuple[int, ...] = (1, 3, 10)
#: Share of a rung's trials that go on to the next (a third: the usual eta = 3).
KEEP = 1 / 3
#: The most candidates one bracket starts (beyond that a longer budget runs more brackets).
MOST_PER_BRACKET = 81


class Outcome(NamedTuple):
    """What a trial measured: the metric the search ranks by, and any others worth a column in the table."""

    metric: float
    metrics: Mapping[str, float] = {}


#: ``objective(candidate, passes)``: train the candidate for exactly ``passes`` passes and score it; None when it
#: stopped early because the deadline passed.
Objective = Callable[[Mapping[str, Any], int], "Outcome | None"]


@dataclass
class TrialRecord:
    trial: int  # 0, 1, ... in the order trials ran
    bracket: int
    rung: int
    candidate: int  # the candidate's number in the order drawn
    settings: Mapping[str, Any]
    passes: int
    seconds: float
    metric: float | None  # None: stopped at the deadline
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.metric is not None and not math.isnan(self.metric)


class CostModel:
    """Seconds of a trial as ``a + b * passes`` (walks and scoring, then training), fitted to finished trials.
    With one pass count seen it is proportional to the passes, which overstates longer trials: a safe guess."""

    def __init__(self) -> None:
        self.passes: list[int] = []
        self.seconds: list[float] = []

    def add(self, passes: int, seconds: float) -> None:
        self.passes.append(passes)
        self.seconds.append(max(seconds, 0.0))

    def predict(self, passes: int) -> float | None:
        if not self.passes:
            return None
        p, s = np.asarray(self.passes, float), np.asarray(self.seconds, float)
        if len(set(self.passes)) < 2:
            return float(np.mean(s / p) * passes)
        slope, intercept = np.polyfit(p, s, 1)
        if slope <= 0:
            return float(np.mean(s))
        if intercept < 0:
            slope, intercept = float(np.sum(p * s) / np.sum(p * p)), 0.0
        return float(intercept + slope * passes)


def bracket_plan(model: CostModel, remaining: float, rungs: tuple[int, ...], keep: float, done: int = 0,
                 most: int = MOST_PER_BRACKET) -> tuple[int, int] | None:
    """(candidates, rungs) of the next bracket: the deepest bracket whose smallest form (one survivor at its top
    rung) fits in ``remaining`` seconds, widened to as many candidates as still fit. ``done`` first-rung trials
    have already run (their cost is spent). None when not even one more first-rung trial fits."""
    costs = [model.predict(p) for p in rungs]
    if costs[0] is None:
        return None

    def cost(n: int, depth: int) -> float:
        sizes = [math.ceil(n * keep**i - 1e-9) for i in range(depth)]
        return sum(size * c for size, c in zip(sizes, costs)) - done * costs[0]  # type: ignore[operator]

    for depth in range(len(rungs), 0, -1):
        # one rung only is worth planning if it adds a trial; deeper ones may start from the trials done
        smallest = max(done + (depth == 1), 1, math.ceil((1 / keep) ** (depth - 1) - 1e-9))
        if cost(smallest, depth) > remaining:
            continue
        n = smallest
        while n < most and cost(n + 1, depth) <= remaining:
            n += 1
        return n, depth
    return None


def successive_halving(objective: Objective, candidates: Iterator[Mapping[str, Any]], budget: float, *,
                       rungs: tuple[int, ...] = RUNGS, keep: float = KEEP,
                       clock: Callable[[], float] = time.monotonic, start: float | None = None,
                       on_trial: Callable[[TrialRecord, TrialRecord | None], None] | None = None,
                       most: int = MOST_PER_BRACKET) -> list[TrialRecord]:
    """Every trial run, in order, within ``budget`` seconds counted from ``start`` (default: now)."""
    deadline = (clock() if start is None else start) + budget
    model = CostModel()
    records: list[TrialRecord] = []
    drawn = itertools.count()
    state: dict[str, TrialRecord | None] = {"best": None}

    def run(number: int, candidate: Mapping[str, Any], bracket: int, rung: int) -> TrialRecord | None:
        """The trial's record (its metric None if the deadline stopped it), or None if the budget cannot hold it."""
        passes = rungs[rung]
        predicted = model.predict(passes)
        if predicted is not None and clock() + predicted > deadline:
            return None  # the budget cannot hold it
        began = clock()
        outcome = objective(candidate, passes)
        seconds = clock() - began
        record = TrialRecord(len(records), bracket, rung, number, dict(candidate), passes, seconds,
                             None if outcome is None else float(outcome.metric),
                             {} if outcome is None else dict(outcome.metrics))
        records.append(record)
        if record.finished:
            model.add(passes, seconds)
            best = state["best"]
            if best is None or record.metric > best.metric:  # type: ignore[operator]
                state["best"] = record
        if on_trial is not None:
            on_trial(record, state["best"])
        return record

    for bracket in itertools.count():
        if clock() >= deadline:
            break
        first: list[TrialRecord] = []
        depth, exhausted = len(rungs), False
        while True:  # the first rung, drawn one candidate at a time and sized again before each
            if model.passes:
                plan = bracket_plan(model, deadline - clock(), rungs, keep, done=len(first), most=most)
                if plan is None:  # not even the smallest rest of a bracket fits: promote the best while trials fit
                    if not first:
                        return records
                    depth = len(rungs)
                    break
                size, depth = plan
                if len(first) >= size:
                    break
            candidate = next(candidates, None)
            if candidate is None:
                exhausted = True
                break
            record = run(next(drawn), candidate, bracket, 0)
            if record is None or record.metric is None:
                return records  # out of time
            if record.finished:  # a trial that measured nothing (NaN) does not go on
                first.append(record)
        finished = first
        for rung in range(1, depth):
            finished.sort(key=lambda r: -r.metric)  # type: ignore[operator]  # stable: earlier trial wins a tie
            survivors = finished[:max(1, math.ceil(len(finished) * keep - 1e-9))]
            finished, short = [], False
            for previous in survivors:  # best first, so when time runs short the best go on
                record = run(previous.candidate, previous.settings, bracket, rung)
                if record is None:
                    short = True  # the budget cannot hold this rung's trials; a new bracket may still fit
                    break
                if record.metric is None:
                    return records  # stopped at the deadline
                if record.finished:
                    finished.append(record)
            if short:
                break
        if exhausted:
            break
    return records


def best_trial(records: list[TrialRecord]) -> TrialRecord | None:
    """The finished trial with the highest metric (the earliest of equals)."""
    finished = [r for r in records if r.finished]
    return max(finished, key=lambda r: r.metric, default=None) if finished else None  # type: ignore[arg-type]
