"""Choosing the number of passes (early stopping) and the method on the validation slice.

:func:`fit_and_score` trains one method on the slice's training part (the training graph of :class:`Holdout`,
walked with the run's walk settings and seed), scores the vectors after every pass (:mod:`eges.validation.score`)
and stops once ``validate.metric`` has not improved for ``validate.patience`` passes. :func:`choose` picks the
method whose best pass scores highest and says why in one sentence. With several methods a :class:`Race` stops a
method early once it trails the methods trained before it (:func:`race_order`). Pure arrays: nothing is read or
written.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from eges.config import Config
from eges.methods import method_of, resolve
from eges.side_info.encode import SideInfo
from eges.side_info.fit import cold_start_vectors, place_from_values, seen_values, value_means
from eges.train.stream import EgesModel, StartState, behaviour_vectors, train_stream
from eges.validation.holdout import Holdout
from eges.validation.score import metric_value, score_vectors
from eges.walks.generate import flatten_walks, random_walks_array

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
    dropped: str = ""  # why a race stopped it (it trailed the methods trained before it), else empty

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


#: The first pass at which a race may stop a method: after one pass EGES's attention has barely moved, and on the
#: study's slices it trailed GES by up to 14% (HitRate) and 0.08 (cold AUC) at pass 1 before winning.
RACE_FROM = 2


def _best_so_far(curve: list[dict[str, float]], metric: str) -> tuple[float, float]:
    """(best metric, best cold AUC) over a curve's passes; NaN where the slice measures nothing."""
    values = [v for v in (metric_value(r, metric) for r in curve) if v == v]
    colds = [v for v in (r.get("cold_auc", math.nan) for r in curve) if v == v]
    return max(values, default=math.nan), max(colds, default=math.nan)


@dataclasses.dataclass
class Race:
    """Methods trained one after another on the same slice, each compared pass by pass with those before it.

    From pass :data:`RACE_FROM` on, a method stops (it cannot win) when its best metric so far is more than
    ``margin`` (a share) below the best that a rival reached within as many passes, or when its best cold-start AUC
    so far is more than ``cold_margin`` below a rival's (with a catalog; choose() bars a method at ``cold_tolerance``,
    the race waits for twice that). A rival that is itself that far behind on cold start does not lead. Every
    method's passes are deterministic given the slice, so this is a race pass by pass, run in turn: the first
    method is never stopped by it. (Unlike :func:`eges.tuning.halving.successive_halving`, which retrains its
    survivors from scratch for each rung, a method here is only ever continued.)

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

    def trails(self, curve: list[dict[str, float]], cap: int = 0) -> str:
        """Why a method whose passes so far are ``curve`` cannot win within ``cap`` passes (0: unknown) (empty: it
        races on)."""
        passes = len(curve)
        if not self.margin or passes < RACE_FROM or not self.rivals:
            return ""
        return self._behind(curve) or self._out_of_reach(curve, cap)

    def _behind(self, curve: list[dict[str, float]]) -> str:
        """The margin's rule: too far below a rival's best within as many passes (or on cold start)."""
        passes = len(curve)
        mine, my_cold = _best_so_far(curve, self.metric)
        within = max(1, math.ceil(passes * self.pace - 1e-9))
        rivals = [(t.method, *_best_so_far(t.curve[:within], self.metric)) for t in self.rivals]
        colds = [c for _, _, c in rivals if c == c] + ([my_cold] if my_cold == my_cold else [])
        top_cold = max(colds, default=math.nan)
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
        colds = [c for _, _, c in wholes if c == c] + ([my_cold] if my_cold == my_cold else [])
        top_cold = max(colds, default=math.nan)
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
    """The order a race trains ``methods`` in: the method ``auto`` resolves to with a catalog first (it finishes
    its curve, the others race against it), the side-information methods before those without (BGE's cold items
    come from value means; it was barred on every catalog log of the study, docs/evaluation.md)."""
    first = resolve("auto", has_catalog=True).name
    return sorted(methods, key=lambda m: (m != first, not method_of(m).side_info))


#: The later trials of the chosen recipe in the order a token budget funds them: by how often each won on the
#: 132 selections recorded on the study's logs (benchmarks/replay_budget.py: the direction won 21 of 28 times,
#: a narrower window 18 of 49, the short schedule 35 of 114). They still run in the stage's order (short schedule, direction, window); a trial runs
#: only if it fits with the tokens of those ranked above it that are still to run set aside.
LATER_TRIALS = ("undirected", "window", "short schedule")


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
    still fit. ``limit`` inf: no bound. What the bound stopped is recorded in ``stopped`` (what -> why)."""

    limit: float
    slice_pass: int  # walk tokens of one pass over the slice's walks
    refit_pass: int  # walk tokens of one pass over the whole log's walks
    spent: int = 0
    refit_passes: int = 0
    training: int = 0  # the run without validation's walk tokens (what the limit is a multiple of)
    stopped: dict[str, str] = dataclasses.field(default_factory=dict)
    reserved: dict[str, int] = dataclasses.field(default_factory=dict)  # later trials still to run: their tokens
    walk_passes: dict[str, int] = dataclasses.field(default_factory=dict)  # tokens of a pass, by walks (recorded)

    @classmethod
    def for_run(cls, passes: int, slice_pass: int, refit_pass: int, multiple: float, bound_above: float,
                refit_passes: int = 0) -> TokenBudget:
        """The budget of a run whose training without validation is ``passes`` x ``refit_pass`` tokens."""
        training = passes * refit_pass
        return cls(token_limit(training, multiple, bound_above), slice_pass, refit_pass,
                   refit_passes=refit_passes, training=training,
                   walk_passes={"slice": slice_pass, "refit": refit_pass})

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

        def on_pass(row: dict[str, float]) -> bool:
            self.spent += self.slice_pass
            value = metric_value(row, metric)
            values.append(value if value == value else -math.inf)
            best = 1 + int(np.argmax(values))
            self.refit_passes = max(self.refit_passes, best)
            kept, kept_for = self.kept_ahead(label, len(values) + 1)
            full = not self.fits(1, len(values) + 1, kept) and not (most and len(values) >= most)
            if full and label and not row.get(ENDS):  # patience or the race ended it: not the budget's stop
                self.stopped[label] = (f"stopped after {len(values)} pass(es): one more and a refit of "
                                       f"{max(self.refit_passes, len(values) + 1)} would pass "
                                       f"{_tokens(self.limit)} walk tokens"
                                       + (f" ({_tokens(kept)} kept for {', '.join(kept_for)})" if kept else ""))
            return full

        return on_pass

    def untried(self, label: str, passes: int = 1) -> bool:
        """Records that ``label`` cannot start (``passes`` slice passes and the refit do not fit beside the tokens
        kept for the later trials ranked above it); True when so."""
        kept, kept_for = self.kept_ahead(label)
        if self.fits(passes, tokens=kept):
            return False
        self.stopped[label] = (f"not tried: {_tokens(self.spent)} walk tokens spent, {passes} pass(es) and a refit of "
                               f"{self.refit_passes} pass(es) would pass {_tokens(self.limit)}"
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

    def sentence(self, multiple: float, bound_above: float) -> str:
        """The choice's sentence's tail: what the budget stopped, and within what ("" when it stopped nothing)."""
        if not self.stopped:
            return ""
        rule = "validate.bound_above" if bound_above < multiple * self.training or not multiple else "validate.budget"
        why = (f"; selected within {_tokens(self.limit)} walk tokens ({rule}: "
               f"{self.limit / max(self.training, 1):.2g} x the {_tokens(self.training)} of the training without "
               f"validation), {_tokens(self.spent)} of them on the slice")
        return why + "; the budget stopped " + "; ".join(f"{k}: {v}" for k, v in self.stopped.items())


def fit_and_score(holdout: Holdout, config: Config, method: str, side: SideInfo | None = None,
                  max_epochs: int | None = None, on_pass: PassCallback | None = None,
                  walks: tuple[np.ndarray, np.ndarray] | None = None, patience: int | None = None,
                  start: StartState | None = None, race: Race | None = None) -> Trial:
    """Train ``method`` on the slice's training part, score every pass, stop early; the :class:`Trial`.

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
        race: the methods trained before this one; it stops once it trails them (:class:`Race`).
    """
    vcfg = config.validate
    row = method_of(method)
    if row.side_info and side is None:
        raise ValueError(f"method {method} trains on side information: give side")
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

    train_stream(lambda: iter([(values, offsets)]), counts, n, train_side, cfg, method, on_epoch=after_pass,
                 start=start)
    return Trial(method, vcfg.metric, int(best["epoch"]), curve, dict(best["row"]),
                 time.perf_counter() - started, bool(state["stopped"]), state["dropped"])


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
