"""Choosing the number of passes (early stopping) and the method on the validation slice.

:func:`fit_and_score` trains one method on the slice's training part (the training graph of :class:`Holdout`,
walked with the run's walk settings and seed), scores the vectors after every pass (:mod:`eges.validation.score`)
and stops once ``validate.metric`` has not improved for ``validate.patience`` passes. :func:`choose` picks the
method whose best pass scores highest and says why in one sentence. With several methods a
:class:`~eges.validation.race.Race` stops a method early once it cannot win; ``fit_and_score(..., in_turns=True)``
gives a trial's passes one at a time, so methods race in turns (:func:`eges.validation.race.in_turns`). Pure
arrays: nothing is read or written.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from eges.blas import one_blas_thread
from eges.config import Config
from eges.methods import method_of
from eges.side_info.encode import SideInfo
from eges.side_info.fit import cold_start_vectors, place_from_values, seen_values, value_means
from eges.train.stream import EgesModel, StartState, behaviour_vectors, train_passes
from eges.validation.holdout import Holdout
from eges.validation.score import metric_value, score_vectors
from eges.walks.generate import flatten_walks, numba_threads, random_walks_array

if TYPE_CHECKING:
    from eges.validation.race import Race

#: What ``on_pass`` gets after each scored pass: the curve row ({epoch, loss, hitrate, next_auc, link_auc,
#: cold_auc, train_seconds, score_seconds}); returning True stops the trial there (a time budget).
PassCallback = Callable[[dict[str, float]], "bool | None"]

#: A key of the row ``on_pass`` gets (not of the curve) when the trial ends at that pass anyway: early stopping or
#: the race stopped it (a token budget then records no stop of its own).
ENDS = "ends"


@dataclasses.dataclass
class Trial:
    """One method trained on the slice: the pass that scored best, every pass's figures, and the cost."""

    method: str
    metric: str
    best_epochs: int
    curve: list[dict[str, float]]
    best: dict[str, float]
    seconds: float
    stopped_early: bool
    dropped: str = ""  # why a race stopped it (it could not win against its rivals), else empty

    @property
    def score(self) -> float:
        """The optimised figure at the best pass (NaN when the slice could not measure it)."""
        return metric_value(self.best, self.metric)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "metric": self.metric, "best_epochs": self.best_epochs,
                "best": _plain(self.best), "curve": [_plain(row) for row in self.curve],
                "seconds": round(self.seconds, 3), "stopped_early": self.stopped_early,
                **({"dropped": self.dropped} if self.dropped else {})}


def _plain(row: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else (round(v, 6) if isinstance(v, float) else v))
            for k, v in row.items()}


def training_walks(holdout: Holdout, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The walks of the slice's training graph with the run's walk settings and seed: (flat nodes, offsets).
    Only the training graph is walked, so nothing held out (no late transition, no hidden item) reaches them."""
    return flatten_walks(random_walks_array(holdout.graph, config.walks))


def _cold_rows(holdout: Holdout, model: EgesModel, side: SideInfo | None, counts: np.ndarray, uses_side: bool,
               cold_start: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Side-information vectors of the hidden items: from the trained value rows (GES/EGES), or the value means of
    the behaviour vectors when the method trains no side rows (as the eges stage places cold items for it)."""
    if side is None or holdout.cold is None:
        return None, None
    n = holdout.n_items
    hidden_codes = side.codes[:n][holdout.hidden]
    visited = counts[:n] > 0
    if uses_side:
        seen = seen_values(side, n, visited)
        weights = model.attention_weights().mean(axis=0)[1:] if cold_start == "attention" else None
        return cold_start_vectors(model, hidden_codes, seen, weights)
    values, seen = value_means(model.table[:n], visited, side)
    return place_from_values(values, side.field_offset, hidden_codes, seen)


#: The later trials of the chosen recipe in the order a token budget funds them: by how often each won on the
#: 132 selections recorded on the study's logs (benchmarks/replay_budget.py: the direction won 21 of 28 times,
#: a narrower window 18 of 49, the short schedule 35 of 114). They still run in the stage's order (short schedule, direction, window); a trial runs
#: only if it fits with the tokens of those ranked above it that are still to run set aside.
LATER_TRIALS = ("undirected", "window", "short schedule")


def absolute_bound(bound_above: float, per_event: float, events: int) -> tuple[float, str]:
    """The absolute bound of a selection's walk tokens and the setting it comes from: validate.bound_above, or
    validate.bound_per_event x the log's ``events`` when that is lower (0 per event: none)."""
    if per_event > 0 and events > 0 and per_event * events < bound_above:
        return per_event * events, "validate.bound_per_event"
    return float(bound_above), "validate.bound_above"


def token_limit(training: float, multiple: float, bound_above: float) -> float:
    """The walk tokens a selection may train, its slice passes plus the refit's: ``multiple`` times ``training``
    (the run without validation: the epochs rule's passes x the whole log's walk tokens; validate.budget, 0 = no
    multiple), at most ``bound_above`` (validate.bound_above), and never less than ``training`` itself: a log
    whose training alone exceeds the bound selects within that training, so validation never makes it longer.
    The one home of both rules."""
    relative = multiple * training if multiple > 0 else math.inf
    return max(float(training), min(relative, float(bound_above)))


def _tokens(n: float) -> str:
    """Walk tokens as a sentence says them: "57.3 M" on a real log, "786" on a test's."""
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n:,.0f}"


@dataclasses.dataclass
class TokenBudget:
    """Walk tokens a selection may train: its slice passes plus the refit's passes stay within ``limit``
    (:func:`token_limit`). The refit is counted at the most passes any method's best pass so far asks for (after
    the choice, at the chosen passes), and a method goes on only while one more pass and a refit one pass longer
    still fit, with a pass of each other trial racing in turns (``racing``), which each trains before its next.
    ``limit`` inf: no bound. What the bound stopped is recorded in ``stopped`` (what -> why)."""

    limit: float
    slice_pass: int  # walk tokens of one pass over the slice's walks
    refit_pass: int  # walk tokens of one pass over the whole log's walks
    spent: int = 0
    refit_passes: int = 0
    training: int = 0  # the run without validation's walk tokens (what the limit is a multiple of)
    stopped: dict[str, str] = dataclasses.field(default_factory=dict)
    reserved: dict[str, int] = dataclasses.field(default_factory=dict)  # later trials still to run: their tokens
    racing: dict[str, int] = dataclasses.field(default_factory=dict)  # trials training in turns: passes done
    walk_passes: dict[str, int] = dataclasses.field(default_factory=dict)  # tokens of a pass, by walks (recorded)
    bound_rule: str = "validate.bound_above"  # the setting the absolute bound came from (the sentence names it)

    @classmethod
    def for_run(cls, passes: int, slice_pass: int, refit_pass: int, multiple: float, bound_above: float,
                refit_passes: int = 0, bound_rule: str = "validate.bound_above") -> TokenBudget:
        """The budget of a run whose training without validation is ``passes`` x ``refit_pass`` tokens."""
        training = passes * refit_pass
        return cls(token_limit(training, multiple, bound_above), slice_pass, refit_pass,
                   refit_passes=refit_passes, training=training,
                   walk_passes={"slice": slice_pass, "refit": refit_pass}, bound_rule=bound_rule)

    def fits(self, passes: int, refit_passes: int = 0, tokens: int = 0) -> bool:
        """Whether ``passes`` more slice passes (and ``tokens`` more), and a refit of ``refit_passes`` (at least
        the current), fit."""
        refit = max(self.refit_passes, refit_passes)
        return self.spent + passes * self.slice_pass + tokens + refit * self.refit_pass <= self.limit

    def tracker(self, metric: str, label: str = "", most: int = 0) -> PassCallback:
        """An ``on_pass`` for one trial of at most ``most`` passes (0: no end known): counts its pass, and stops
        it once another pass and a refit one pass longer would not fit beside the tokens kept for the later trials
        ranked above ``label``; recorded under ``label`` in ``stopped`` (not at its last pass: it ends there)."""
        values: list[float] = []
        key = label or f"trial {id(values)}"

        def on_pass(row: dict[str, float]) -> bool:
            self.spent += self.slice_pass
            value = metric_value(row, metric)
            values.append(value if value == value else -math.inf)
            best = 1 + int(np.argmax(values))
            self.refit_passes = max(self.refit_passes, best)
            kept, kept_for = self.kept_ahead(label, len(values) + 1)
            last = bool(most and len(values) >= most)
            # before its next pass, every other trial racing in turns takes one
            full = not self.fits(1 + len(self.racing.keys() - {key}), len(values) + 1, kept) and not last
            if full or last or row.get(ENDS):
                self.racing.pop(key, None)
            else:
                self.racing[key] = len(values)
            if full and label and not row.get(ENDS):  # patience or the race ended it: not the budget's stop
                self.stopped[label] = (f"stopped after {len(values)} pass(es): one more and a refit of "
                                       f"{max(self.refit_passes, len(values) + 1)} would pass "
                                       f"{_tokens(self.limit)} walk tokens"
                                       + (f" ({_tokens(kept)} kept for {', '.join(kept_for)})" if kept else ""))
            return full

        return on_pass

    def untried(self, label: str, passes: int = 1, refit_passes: int = 0) -> bool:
        """Records that ``label`` cannot start (``passes`` slice passes, and as many in all for each trial racing in
        turns beside it, at least one more each, and a refit of ``refit_passes``, at least the current, do not fit
        beside the tokens kept for the later trials ranked above it); True when so."""
        kept, kept_for = self.kept_ahead(label)
        passes += sum(max(1, passes - done) for done in self.racing.values())
        if self.fits(passes, refit_passes, tokens=kept):
            return False
        self.stopped[label] = (f"not tried: {_tokens(self.spent)} walk tokens spent, {passes} pass(es) and a refit of "
                               f"{max(self.refit_passes, refit_passes)} pass(es) would pass {_tokens(self.limit)}"
                               + (f" ({_tokens(kept)} kept for {', '.join(kept_for)})" if kept else ""))
        return True

    def reserve(self, cap: int, short_passes: int, undirected_pass: int, windows: int) -> None:
        """Set aside the later trials' tokens, each at its most: the short schedule ``short_passes`` slice passes
        (0: not tried); the direction ``cap`` passes of ``undirected_pass`` tokens (0: not tried) and the refit
        on walks as much longer; each of ``windows`` other windows ``cap`` passes on the longer walks."""
        longer = undirected_pass / max(self.slice_pass, 1)
        if undirected_pass:
            self.walk_passes["slice_undirected"] = undirected_pass
        plan = {"short schedule": short_passes * self.slice_pass,
                "undirected": cap * undirected_pass + int(self.refit_passes * self.refit_pass * max(longer - 1, 0)),
                "window": windows * cap * max(self.slice_pass, undirected_pass)}
        self.reserved = {label: tokens for label, tokens in plan.items() if tokens}

    def kept_ahead(self, label: str, refit_passes: int = 0) -> tuple[int, list[str]]:
        """The tokens kept for the later trials ranked above ``label``'s (:data:`LATER_TRIALS`) still to run: each,
        in rank order, that fits with those before it (a trial that cannot fit anyway keeps nothing)."""
        rank = next((i for i, name in enumerate(LATER_TRIALS) if label.startswith(name)), 0)
        kept, kept_for = 0, []
        for ahead in LATER_TRIALS[:rank]:
            tokens = self.reserved.get(ahead, 0)
            if tokens and self.fits(0, refit_passes, kept + tokens):
                kept, kept_for = kept + tokens, kept_for + [ahead]
        return kept, kept_for

    def allows(self, label: str, passes: int = 1) -> bool:
        """Whether later trial ``label`` (one of :data:`LATER_TRIALS`) starts: as a method, when ``passes`` slice
        passes (1; all of them for a trial judged at its last pass) and the refit fit beside the tokens kept for
        the trials ranked above it (:meth:`kept_ahead`); its tracker then stops it where one more pass would not
        fit. Its own reservation is released either way (``label`` "window 2" releases the windows')."""
        self.reserved.pop(next((name for name in LATER_TRIALS if label.startswith(name)), label), None)
        return not self.untried(label, passes)

    def record(self) -> dict[str, Any]:
        """What selection.json says of the budget (``slice_pass``/``refit_pass``: the walks the refit reads)."""
        bounded = self.limit < math.inf
        return {"limit": self.limit if bounded else None, "training": self.training, "spent": self.spent,
                "slice_pass": self.slice_pass, "refit_pass": self.refit_pass, "walk_passes": dict(self.walk_passes),
                "stopped": dict(self.stopped)}

    def sentence(self, multiple: float) -> str:
        """The choice's sentence's tail: what the budget stopped, and within what ("" when it stopped nothing);
        ``multiple``: validate.budget's, as the run applies it (0: none)."""
        if not self.stopped:
            return ""
        rule = self.bound_rule if self.limit < multiple * self.training or not multiple else "validate.budget"
        why = (f"; selected within {_tokens(self.limit)} walk tokens ({rule}: "
               f"{self.limit / max(self.training, 1):.2g} x the {_tokens(self.training)} of the training without "
               f"validation), {_tokens(self.spent)} of them on the slice")
        return why + "; the budget stopped " + "; ".join(f"{k}: {v}" for k, v in self.stopped.items())


def fit_and_score(holdout: Holdout, config: Config, method: str, side: SideInfo | None = None,
                  max_epochs: int | None = None, on_pass: PassCallback | None = None,
                  walks: tuple[np.ndarray, np.ndarray] | None = None, patience: int | None = None,
                  start: StartState | None = None, race: Race | None = None,
                  in_turns: bool = False) -> Trial | Iterator[Trial]:
    """Train ``method`` on the slice's training part, score every pass, stop early; the :class:`Trial`.

    With ``in_turns`` the trial is returned unstarted, as an iterator that trains and scores one pass per step and
    yields the trial so far (its curve, best pass and stop as of that pass), so that several methods can race in
    turns (:class:`eges.validation.sequence.TrialSequence`); it ends where the trial ends.

    Args:
        holdout: the slice (:func:`eges.validation.holdout.make_holdout`).
        config: the run's config (``train``, ``walks``, ``validate`` are read; ``train.epochs`` is not: the
            learning rate decays over ``max_epochs`` passes).
        method: a method of the table; one with side information needs ``side``.
        side: the catalog encoded over the vocabulary (rows = item indices), for side-information methods and for
            the cold-start figure of any method.
        max_epochs: most passes (default ``validate.max_epochs``).
        on_pass: called with each pass's curve row; True stops the trial.
        walks: the training walks when the caller shares them between methods (default :func:`training_walks`).
        patience: passes without improvement before stopping (default ``validate.patience``; 0 never stops early).
        start: the rows training starts from (a warm start: the parent's rows matched to the slice's items).
        race: its rivals; it stops once it trails them (:class:`Race`).
    """
    if method_of(method).side_info and side is None:
        raise ValueError(f"method {method} trains on side information: give side")
    passes = _scored_passes(holdout, config, method, side, max_epochs, on_pass, walks, patience, start, race)
    if in_turns:
        return passes
    *_, trial = passes  # the trial as its last pass left it (each pass and its scoring set their own limits)
    return trial


def _scored_passes(holdout: Holdout, config: Config, method: str, side: SideInfo | None, max_epochs: int | None,
                   on_pass: PassCallback | None, walks: tuple[np.ndarray, np.ndarray] | None, patience: int | None,
                   start: StartState | None, race: Race | None) -> Iterator[Trial]:
    """:func:`fit_and_score`'s passes, one per step (the checks run at the first)."""
    vcfg = config.validate
    row = method_of(method)
    started = time.perf_counter()
    values, offsets = walks if walks is not None else training_walks(holdout, config)
    n = holdout.n_items
    counts = np.bincount(values, minlength=n)
    max_epochs = int(max_epochs or vcfg.max_epochs)
    patience = vcfg.patience if patience is None else patience
    # validate.try_centred: a fresh run choosing on AUC also scores each pass centred (a warm start keeps its rows)
    centre = bool(vcfg.try_centred) and vcfg.metric == "auc" and start is None
    cfg = dataclasses.replace(config.train, epochs=max_epochs)
    train_side = side if (row.side_info and side is not None) else SideInfo([], np.zeros((n, 0), np.int32), [])
    curve: list[dict[str, float]] = []
    best: dict[str, Any] = {"value": -math.inf, "epoch": 0, "row": {}}
    state: dict[str, Any] = {"clock": time.perf_counter(), "stopped": False, "dropped": ""}

    def after_pass(epoch: int, loss: float, model: EgesModel) -> bool:
        trained = time.perf_counter()
        vectors = behaviour_vectors(model) if row.side_info else model.table[:n]
        cold_vectors, cold_has = _cold_rows(holdout, model, side, counts, row.side_info, cfg.cold_start)
        figures = score_vectors(holdout, vectors, counts > 0, vcfg.k, cold_vectors, cold_has, centre)
        scored = time.perf_counter()
        entry = {"epoch": epoch, "loss": float(loss), **figures, "train_seconds": trained - state["clock"],
                 "score_seconds": scored - trained}
        state["clock"] = scored
        curve.append(entry)
        value = metric_value(entry, vcfg.metric)
        if value > best["value"] + vcfg.min_delta or not best["row"]:
            best.update(value=value if value == value else -math.inf, epoch=epoch, row=entry)
        if patience and epoch - best["epoch"] >= patience and epoch < max_epochs:
            state["stopped"] = True
        if race is not None and epoch < max_epochs and not state["stopped"]:
            state["dropped"] = race.trails(curve, max_epochs)
        # Patience and the race are judged first: a budget told the trial ends here anyway (ENDS) counts the
        # pass but records no stop of its own, so token_budget.stopped names only what the budget cut.
        ends = bool(state["stopped"] or state["dropped"])
        stop = bool(on_pass({**entry, ENDS: True} if ends else entry)) if on_pass is not None else False
        return ends or stop

    trial = Trial(method, vcfg.metric, 0, curve, {}, 0.0, False)
    steps = train_passes(lambda: iter([(values, offsets)]), counts, n, train_side, cfg, method, start=start)
    resumed = started
    for epoch, loss, model in steps:
        with numba_threads(cfg.threads), one_blas_thread():  # train.threads scores too; BLAS: see train_stream
            ends = after_pass(epoch, loss, model)
        trial.best_epochs, trial.best = int(best["epoch"]), dict(best["row"])
        trial.seconds += time.perf_counter() - resumed  # its own time: in turns, other trials train in between
        trial.stopped_early, trial.dropped = bool(state["stopped"]), state["dropped"]
        yield trial
        resumed = state["clock"] = time.perf_counter()  # the next pass's training starts here
        if ends:
            return


def _cold(trial: Trial) -> float:
    return float(trial.best.get("cold_auc", math.nan))


def choose(trials: list[Trial], held_out: str = "the latest events held out",
           cold_tolerance: float = math.inf) -> tuple[Trial, str]:
    """The trial whose best pass scores highest (ties: the earlier candidate), and one sentence saying why
    (``held_out`` names the slice). With cold pairs on the slice, a trial whose cold AUC at its best pass is more
    than ``cold_tolerance`` below the best trial's cannot win: cold-start vectors stay good whatever wins."""
    colds = [_cold(t) for t in trials if _cold(t) == _cold(t)]
    barred = [t for t in trials if colds and _cold(t) == _cold(t) and _cold(t) < max(colds) - cold_tolerance]
    eligible = [t for t in trials if t not in barred] or trials
    scored = [t for t in eligible if t.score == t.score]
    winner = max(scored or eligible, key=lambda t: t.score if t.score == t.score else -math.inf)
    label = {"hitrate": "next-item HitRate", "auc": "link AUC"}[winner.metric]
    figure = f"{winner.score:.4f}" if winner.score == winner.score else "n/a"
    why = f"{winner.method} at {winner.best_epochs} pass(es): validation {label} {figure} on {held_out}"
    others = [t for t in trials if t is not winner and t not in barred]  # the barred ones are named below
    if others:
        why += ", above " + ", ".join(f"{t.method} {t.score:.4f} ({t.best_epochs} pass(es))" for t in others
                                      if t.score == t.score)
    if barred:
        why += "; not " + ", ".join(f"{t.method} (cold AUC {_cold(t):.4f} against {max(colds):.4f})" for t in barred)
    if winner.stopped_early:
        why += f"; stopped after {len(winner.curve)} passes without improvement"
    raced = [t for t in trials if t.dropped]
    if raced:
        why += "; raced out: " + ", ".join(f"{t.method} ({t.dropped})" for t in raced)
    return winner, why
