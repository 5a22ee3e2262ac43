"""The order of the validate stage's trials on the slice, what decides between them, and the token budget that
funds them: the methods race (:func:`~eges.validation.race.race_order`), :func:`~eges.validation.select.choose`
picks the winner, then the chosen recipe is trained once more per later trial, in order: the short schedule, the
graph's direction, the window (:mod:`eges.validation.variants`). Each step reads the curves of the trials before
it; the budget (:class:`~eges.validation.select.TokenBudget`) says which trials start and where they stop.

Pure: nothing is read or written. The trials come from ``eges.validation.fit_and_score``, looked up when a trial
starts, so a caller may replace it: benchmarks/replay_budget.py replays recorded curves through this same
sequence, so the stage and the replay cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from eges.config import Config
from eges.validation.race import RACE_FROM, Race, in_turns, race_order
from eges.validation.score import metric_value
from eges.validation.select import TokenBudget, Trial, absolute_bound, choose
from eges.validation.variants import DirectionChoice, direction_trial, other_windows, window_trial


class Walked(NamedTuple):
    """A slice and the walks its trials train on."""

    holdout: Any
    walks: Any  # (flat nodes, offsets), as training_walks gives them
    tokens: int  # walk tokens of one pass over them


def walked(holdout: Any, config: Config) -> Walked:
    """``holdout`` with its training walks (:func:`eges.validation.select.training_walks`)."""
    from eges.validation import training_walks  # at call time: tests spy on it

    walks = training_walks(holdout, config)
    return Walked(holdout, walks, len(walks[0]))


def passes_cap(config: Config, fixed: int, full_pass: int) -> int:
    """The most passes a trial trains: ``train.epochs`` when set (``fixed``), else the epochs rule's passes over the
    whole log's walks (``full_pass`` tokens), at most ``validate.max_epochs``."""
    from eges.train.stream import auto_epochs

    return fixed or min(config.validate.max_epochs, auto_epochs(full_pass))


def budget_multiple(config: Config, methods: int, fixed: int) -> float:
    """The selection's token limit as a multiple of the training without validation: validate.budget, at least
    the ``methods`` + 1 when train.epochs is set (``fixed``: it is tried as it is, and by every method, so their
    passes and the refit's must fit)."""
    vcfg = config.validate
    return max(vcfg.budget, methods + 1) if fixed and vcfg.budget else vcfg.budget


def selection_budget(config: Config, methods: int, fixed: int, cap: int, slice_pass: int,
                     full_pass: int, events: int = 0) -> TokenBudget:
    """The budget of a selection among ``methods`` methods whose trials pass over ``slice_pass`` tokens and whose
    refit over ``full_pass`` (the whole log's walks: not the slice's scaled up, which with a catalog also drops the
    hidden cold items and their events). The slice's passes plus the refit stay within :func:`budget_multiple` x
    the training without validation (``cap`` passes), and within validate.bound_above and validate.bound_per_event
    x the log's ``events`` (0: not known) unless that training alone is above them (select.token_limit)."""
    vcfg = config.validate
    bound, rule = absolute_bound(vcfg.bound_above, vcfg.bound_per_event, events)
    return TokenBudget.for_run(cap, slice_pass, full_pass, budget_multiple(config, methods, fixed), bound,
                               refit_passes=fixed, bound_rule=rule)


@dataclasses.dataclass
class Selection:
    """What the slice chose. Each step sets its fields only once its trials are in, so a trial that raises leaves
    the choice as the steps before it made it (the replay stops at a trial it has no curve for). The methods'
    race is one step: a method that raises in it leaves no method chosen."""

    method: str
    epochs: int  # the passes the whole log trains
    schedule: int  # the passes its learning rate decays over
    window: int
    why: str = ""
    trials: list[Trial] = dataclasses.field(default_factory=list)  # the methods', in candidate order
    untried: list[str] = dataclasses.field(default_factory=list)  # methods the budget did not start
    short: Trial | None = None  # the short schedule's trial, when tried
    direction: DirectionChoice | None = None  # the direction's trial, when tried
    window_trials: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    raced_out: dict[str, str] = dataclasses.field(default_factory=dict)  # later trials the race stopped, and why
    centred: bool = False
    final: Trial | None = None  # the trial whose pass the whole log trains
    last_pass: bool = False  # whether that pass is the trial's last (else its best)

    @property
    def undirected(self) -> bool:
        """Whether the whole log walks the graph made undirected."""
        return self.direction is not None and self.direction.undirected

    @property
    def value(self) -> float:
        """The slice's figure on ``metric`` at the pass the whole log trains (NaN when nothing was trained)."""
        if self.final is None:
            return float("nan")
        return metric_value(self.final.curve[-1] if self.last_pass else self.final.best, self.final.metric)


class TrialSequence:
    """The validate stage's trials on one slice, in order, within one token budget (:meth:`run`).

    ``directed``: the slice and its walks; ``undirected``: makes the slice's graph undirected and walks it when the
    run may choose the direction (None: it may not); ``fixed``: train.epochs (0: chosen); ``cap``: the most passes
    (:func:`passes_cap`); ``budget``: :func:`selection_budget`; ``held_out``: how the sentence names the slice;
    ``echo``: one line per method trained.
    """

    def __init__(self, directed: Walked, config: Config, methods: list[str], side: Any, budget: TokenBudget, *,
                 fixed: int, cap: int, held_out: str = "the latest events held out",
                 undirected: Callable[[], Walked] | None = None, echo: Callable[[str], None] | None = None) -> None:
        self.directed, self.config, self.methods, self.side, self.budget = directed, config, methods, side, budget
        self.fixed, self.cap, self.held_out, self.undirected = fixed, cap, held_out, undirected
        self.echo = echo or (lambda _line: None)
        self.choice = Selection("", 0, cap, config.train.window)

    def run(self) -> Selection:
        """The methods' race, then the choice: the winner and its later trials; when no method fits the budget,
        what the run trains without validation; with one pass and one method, nothing to choose."""
        race = self._race_methods()
        c, methods = self.choice, self.methods
        if c.trials:
            self._later_trials(race)
        elif c.untried:  # no method fits beside the refit: what the run trains without validation
            c.method, c.epochs, c.schedule = race_order(methods)[0], self.cap, self.cap
            c.why = (f"{c.method} at {c.epochs} pass(es), as without validation: no method fits the token budget"
                     + self._budget_sentence())
        else:  # the epochs rule gives one pass and there is one method
            c.method, c.epochs, c.schedule = methods[0], 1, 1
            c.why = "the epochs rule gives one pass over the walks and there is one method: nothing to choose"
        return c

    def _fit(self, on: Walked, method: str, **kwargs: Any) -> Trial:
        from eges.validation import fit_and_score  # at call time: tests and the replay script it

        return fit_and_score(on.holdout, self.config, method, self.side, walks=on.walks, **kwargs)

    def _race_methods(self) -> Race:
        """The candidates race in turns, a pass each (:func:`~eges.validation.race.in_turns`): a method that
        cannot win stops early; an explicit train.epochs races none. A method the budget cannot start is left
        untried. Returns the race the later trials race by (its rivals: the methods' trials)."""
        c, vcfg, budget, fixed, cap = self.choice, self.config.validate, self.budget, self.fixed, self.cap
        race = Race(vcfg.metric, 0.0 if fixed else vcfg.race_margin, 2 * vcfg.cold_tolerance,
                    reach=vcfg.race_reach)
        methods = [] if cap == 1 and len(self.methods) == 1 else race_order(self.methods)  # nothing to choose

        def start(method: str, rivals: Race) -> Any:
            # A method joining others in the race starts only where it and they can take the race's first passes
            # (or the fixed passes) and the refit the training without validation would train still fits: where
            # the budget is little more than that training (a large log), the first method keeps its passes, as it
            # did racing alone.
            joins = bool(budget.racing)
            if budget.untried(method, (fixed or RACE_FROM) if joins else 1, cap if joins else 1):
                c.untried.append(method)
                return None
            return self._fit(self.directed, method, max_epochs=cap, patience=0 if fixed else None, race=rivals,
                             on_pass=budget.tracker(vcfg.metric, method, cap), in_turns=True)

        try:
            c.trials = in_turns(methods, start, race)
        finally:  # a trial whose passes ran out (a replay's recorded curve) or raised leaves no turn to take
            budget.racing.clear()
        for trial in c.trials:
            self.echo(f"  [validate] {trial.method}: best {trial.metric} {trial.score:.4f} at pass "
                      f"{trial.best_epochs} of {len(trial.curve)}")
        c.trials.sort(key=lambda t: self.methods.index(t.method))  # ties go to the earlier candidate
        return dataclasses.replace(race, rivals=c.trials)

    def _later_trials(self, race: Race) -> None:
        """The winner, then its short schedule, direction and window, each racing the curve it is compared with
        at its own margin (validate.trial_margin; an explicit train.epochs: no race)."""
        c, vcfg, budget, fixed, cap = self.choice, self.config.validate, self.budget, self.fixed, self.cap
        winner, why = choose(c.trials, self.held_out, vcfg.cold_tolerance)
        c.method, c.epochs = winner.method, fixed or winner.best_epochs
        budget.refit_passes = c.epochs  # the refit trains the chosen passes: the other methods' best no longer count
        if fixed:
            why += f"; train.epochs = {fixed} is set, so the whole log trains {fixed} pass(es)"
        c.why, c.final, c.last_pass = why, winner, bool(fixed)
        later = dataclasses.replace(race, margin=0.0 if fixed else vcfg.trial_margin)
        sym = self._reserve_later(short_tried=not fixed and c.epochs < cap)

        def trackers(label: str) -> Any:  # a later trial of the chosen schedule
            return budget.tracker(vcfg.metric, label, c.schedule)

        self._short_schedule(winner, later)
        c.final, c.last_pass = c.short if c.schedule != cap else winner, bool(fixed) or c.schedule != cap
        on = self._direction(sym, later, trackers)
        if other_windows(self.config):  # the chosen schedule trained once more per window, each only if it fits
            self._windows(on, later, trackers)
        final = c.final
        c.centred = bool((final.curve[-1] if c.last_pass else final.best).get("centred"))
        if c.centred:
            c.why += ("; vectors centred (the slice's AUC at that pass was higher with the mean of the items' "
                      "vectors subtracted: validate.try_centred)")
        c.why += self._budget_sentence()

    def _budget_sentence(self) -> str:
        return self.budget.sentence(budget_multiple(self.config, len(self.methods), self.fixed))

    def _reserve_later(self, short_tried: bool) -> Walked | None:
        """Set aside in the budget the tokens of the later trials the run will try (at most ``cap`` passes each;
        the short schedule the chosen passes), so that one ranked lower (select.LATER_TRIALS) runs only when those
        ranked above it still fit; the slice made undirected and its walks when the direction is tried."""
        sym = self.undirected() if self.undirected is not None else None
        self.budget.reserve(self.cap, self.choice.epochs if short_tried else 0, sym.tokens if sym is not None else 0,
                            len(other_windows(self.config)))
        return sym

    def _short_schedule(self, winner: Trial, later: Race) -> None:
        """The curve's learning rate decayed over ``cap`` passes; a refit may instead decay it over the chosen
        passes. Which one the whole log trains with is decided on the slice too (one short trial), racing the
        winner's curve (best so far against the winner's best within as many passes)."""
        c, metric, epochs = self.choice, self.config.validate.metric, self.choice.epochs
        if self.fixed or epochs >= self.cap or not self.budget.allows("short schedule", epochs):
            return
        short = self._fit(self.directed, c.method, max_epochs=epochs, patience=0,
                          race=dataclasses.replace(later, rivals=[winner]),
                          on_pass=self.budget.tracker(metric, "short schedule", epochs))
        c.short = short
        if short.dropped:
            c.raced_out["short schedule"] = short.dropped
            c.why += f"; a schedule decaying over {epochs} pass(es) raced out ({short.dropped})"
        elif metric_value(short.curve[-1], metric) > winner.score:
            c.schedule = epochs
            c.why += (f"; the learning rate decays over those {epochs} pass(es), which scored "
                      f"{metric_value(short.curve[-1], metric):.4f} on the slice")

    def _direction(self, sym: Walked | None, later: Race, trackers: Any) -> Walked:
        """The direction's trial when the run may choose it (``sym``) and it fits the budget (its slice passes on
        the undirected walks, and a refit on walks as much longer as the slice's are, are counted); the slice and
        walks the window's trial trains on (made undirected when that won)."""
        c, budget = self.choice, self.budget
        if sym is None:
            return self.directed
        longer = sym.tokens / max(self.directed.tokens, 1)  # the undirected graph's walks end less often
        directed = budget.slice_pass, budget.refit_pass
        budget.slice_pass, budget.refit_pass = sym.tokens, int(budget.refit_pass * longer)
        budget.walk_passes["refit_undirected"] = budget.refit_pass
        choice = None
        try:
            if budget.allows("undirected", c.schedule if c.last_pass else 1):  # judged at its last pass: all of it
                choice = direction_trial(self.directed.holdout, sym.holdout, sym.walks, self.config, c.method,
                                         self.side, self.directed.walks, c.schedule, c.final, c.last_pass, later,
                                         trackers)
        finally:
            if choice is None or not choice.undirected:  # the window's trial and the refit read the directed walks
                budget.slice_pass, budget.refit_pass = directed
        if choice is None:
            return self.directed
        c.direction = choice
        if choice.trial.get("dropped"):
            c.raced_out["undirected"] = choice.trial["dropped"]
        c.why += choice.why
        c.epochs = choice.epochs or c.epochs
        c.final = choice.reference
        return Walked(choice.holdout, choice.walks, sym.tokens if choice.undirected else self.directed.tokens)

    def _windows(self, on: Walked, later: Race, trackers: Any) -> None:
        """The chosen recipe once more per other window (validate.windows), each started only if its passes fit
        (a window judged at its last pass: all of them)."""
        c, budget = self.choice, self.budget
        windows = window_trial(on.holdout, self.config, c.method, self.side, on.walks, c.schedule, c.final,
                               c.last_pass, later, trackers,
                               admits=lambda label: budget.allows(label, c.schedule if c.last_pass else 1))
        if windows is None:
            return
        c.window, c.window_trials = windows.window, windows.trials
        c.raced_out.update({f"window {t['window']}": t["dropped"] for t in windows.trials if t.get("dropped")})
        c.why += windows.why
        if windows.epochs:
            c.epochs = windows.epochs
        c.final = windows.trial or c.final

