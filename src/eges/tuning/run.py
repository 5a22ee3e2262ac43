"""``eges tune`` end to end: check the request, prepare the run's sessions, hold out the validation slice once,
search (:mod:`eges.tuning.halving`) with each trial trained and scored on the slice (:mod:`eges.validation`), and
write the table of trials and the best trial's TOML into ``OUT/tune/``.

Everything the user gave is checked before anything is written (a named error, exit status 2), and the budget
counts from the start: preparing the sessions and the slice spend it too.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from eges.config import Config
from eges.errors import EgesError, InputError
from eges.layout import TUNE_BEST, TUNE_TRIALS
from eges.tuning import results
from eges.tuning.budget import format_seconds, parse_budget
from eges.tuning.halving import Outcome, TrialRecord, best_trial, successive_halving
from eges.tuning.space import EPOCHS_KEY, apply, candidates, dimensions

#: Seconds kept back from the search for writing the results.
RESERVE = 1.0


class TuneError(EgesError):
    """The search cannot run on these inputs, or no trial finished within the budget."""


@dataclasses.dataclass
class TuneResult:
    """What :func:`eges.tune` returns: every trial (one row each, the best one flagged), the best trial's whole config
    and the settings it tuned, and where its TOML was written."""

    trials: pd.DataFrame
    metric: str  # the table's column searched on
    best_metric: float
    best_config: Config
    best_settings: dict[str, Any]
    path: Path
    copy: Path | None
    seconds: float  # counted against the budget
    holdout: dict[str, Any]  # the slice's sizes
    compile_seconds: float = 0.0  # compiling the kernels, once per installation (not counted)

    def table(self) -> str:
        return results.format_trials(self.trials, self.metric)


@dataclasses.dataclass
class Request:
    """A checked tune request: the run folder, its config and inputs, the budget in seconds."""

    out: Path
    config: Config
    inputs: Any
    budget: float
    seed: int
    to: Path | None


def check_request(out: str | Path, events: str | None, items: str | None, budget: str | float,
                  config_path: str | None, settings: Iterable[str], metric: str | None, to: str | Path | None,
                  seed: int) -> Request:
    """Every named error a tune can meet before it writes anything."""
    from eges.pipeline.lock import check_run_folder
    from eges.pipeline.runner import resolve

    seconds = parse_budget(budget)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TuneError(f"--seed must be a whole number at least 0, got {seed!r}")
    for flag, value in (("--events", events), ("--items", items)):
        if value is not None and not Path(value).is_file():
            raise InputError(f"{flag} file {value} does not exist" if not Path(value).is_dir()
                             else f"{flag} {value} is a directory, not a file")
    out = Path(out)
    check_run_folder(out)
    sets = [*settings, *([f"validate.metric={metric}"] if metric is not None else [])]

    def absolute(path: str | None) -> str | None:
        return None if path is None else str(Path(path).resolve())

    config, inputs, _ = resolve(out, config_path, sets, events=absolute(events), items=absolute(items))
    if inputs.events is None:
        raise TuneError("eges tune needs the event log (--events): it holds out the latest events to score trials on")
    if inputs.items is not None:  # a catalog the trials cannot use is refused before the sessions are written
        from eges.pipeline.side_info_stage import read_catalog

        read_catalog(inputs.items, config.side_info)
    if to is not None:
        results.check_destination(Path(to))
    return Request(out, config, inputs, seconds, seed, Path(to) if to is not None else None)


def tune(events: str | None, items: str | None = None, *, out: str | Path, budget: str | float = "20m",
         config: str | None = None, settings: Iterable[str] = (), metric: str | None = None,
         to: str | Path | None = None, seed: int = 0, progress: bool = False,
         echo: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic) -> TuneResult:
    """Search the settings that matter on a validation slice of ``events`` within ``budget`` (``"20m"``, ``"90s"``,
    ``"1h"``), and write ``OUT/tune/trials.parquet`` and ``OUT/tune/best.toml`` (and ``to``).

    ``config``/``settings``: the base config (a TOML path, ``--set`` strings) the search starts from and keeps for
    every key it does not search; ``metric``: ``hitrate`` or ``auc`` (``validate.metric``); ``seed``: the draws of
    candidates. ``eges run --config OUT/tune/best.toml`` then trains the best trial's settings on the whole log.
    """
    from eges.pipeline.lock import run_lock
    from eges.pipeline.runner import run as run_pipeline

    started = clock()
    say = echo or (lambda line: None)
    request = check_request(out, events, items, budget, config, settings, metric, to, seed)
    with run_lock(request.out):
        run_pipeline(request.out, request.config, request.inputs, to_stage="sessions", progress=progress,
                     echo=lambda line: say(f"  {line}"))
        trials = Trials.prepare(request)
        say(f"validation slice: {trials.describe()}")
        compiling = clock()
        trials.warm_up()
        compiled = clock() - compiling
        if compiled > 5:
            say(f"compiled the kernels in {compiled:.0f} s (once per installation: numba caches them; not counted "
                "in the budget)")
        started += compiled  # the budget's clock runs from the start, less the compiler's once-only work
        dims = dimensions(trials.has_catalog)
        with _bar(progress, request.budget) as bar:
            def on_trial(record: TrialRecord, best: TrialRecord | None) -> None:
                bar.update(min(clock() - started, request.budget) - bar.n)
                if best is not None:
                    bar.set_postfix_str(f"{len(trials.seen)} trials, best {trials.column} {best.metric:.4f} "
                                        f"(trial {best.trial})")

            records = successive_halving(
                trials.objective(started + request.budget, clock), candidates(request.config, trials.has_catalog,
                                                                                request.seed),
                max(request.budget - RESERVE, 0.0), clock=clock, start=started, on_trial=on_trial)
        best = best_trial(records)
        if best is None:
            raise TuneError(f"no trial finished within the budget of {format_seconds(request.budget)} (preparing the "
                            f"log took {compiling - started + compiled:.0f} s); give a longer --budget")
        table = results.trials_table(records, dims, trials.column)
        best_config = apply(request.config, best.settings, best.passes)
        tuned = {**{k: v for k, v in best.settings.items() if v is not None}, EPOCHS_KEY: best.passes}
        headline = (f"the best of {len(records)} trials in {format_seconds(clock() - started)}: validation "
                    f"{trials.column} {best.metric:.4f} (trial {best.trial}, {best.passes} pass(es))")
        text = results.best_toml(best_config, tuned, headline, request.inputs.events, request.inputs.items)
        results.write_trials(table, request.out / TUNE_TRIALS)
        results.write_toml(text, request.out / TUNE_BEST)
    if request.to is not None:
        results.write_toml(text, request.to)
    return TuneResult(table, trials.column, float(best.metric), best_config, tuned, request.out / TUNE_BEST,
                      request.to, clock() - started, dict(trials.holdout.stats), compiled)


class _NoBar:
    n = 0.0

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        return None


def _bar(show: bool, budget: float) -> Any:
    """A bar of the budget's seconds with the best result so far, on a terminal only (progress.py's rule)."""
    if not show or not sys.stderr.isatty():
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=round(budget), unit="s", desc="tune", leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s{postfix}")


class Trials:
    """The slice and the inputs every trial shares, and the objective that trains and scores one candidate."""

    def __init__(self, request: Request, holdout: Any, side: Any, vocab_size: int):
        self.request = request
        self.config = request.config
        self.holdout = holdout
        self.side = side
        self.has_catalog = side is not None
        self.n_items = vocab_size
        self.metric = self.config.validate.metric
        self.column = {"hitrate": f"hitrate@{self.config.validate.k}", "auc": "link_auc"}[self.metric]
        self.seen: list[int] = []
        self._graphs: dict[bool, Any] = {False: holdout.graph}  # the slice's graph is directed (read_slice)

    @classmethod
    def prepare(cls, request: Request) -> Trials:
        from eges.tuning.prepare import read_slice

        holdout, side, n_items = read_slice(request.out, request.config, request.inputs)
        return cls(request, holdout, side, n_items)

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the walk, training and scoring kernels on a tiny model of the slice,
        so the first trial's time, which sizes the first bracket, is a trial's and not the compiler's."""
        base = next(candidates(self.config, self.has_catalog, 0))
        tiny = {**base, "train.dimension": 2, "walks.walk_length": 2, "walks.walks_per_node": 1}
        self.run(apply(self.config, tiny, 1))

    def describe(self) -> str:
        s = self.holdout.stats
        return (f"{s['train_events']:,} of {s['events']:,} session events train, the latest {s['held_out_events']:,} "
                f"score: {s['next_item_pairs']:,} next-item pairs, {s['link_pairs']:,} new links"
                + (f", {s['cold_pairs']:,} cold-start pairs ({s['hidden_items']:,} items hidden)"
                   if self.has_catalog else ""))

    def holdout_for(self, config: Config) -> Any:
        """The slice with the training graph the candidate's graph settings make (the pairs stay the same, so every
        candidate is scored on the same questions)."""
        from eges.graph.csr import CSRGraph
        from eges.graph.transitions import count_transitions

        undirected = bool(config.graph.undirected)
        if undirected not in self._graphs:
            h = self.holdout
            self._graphs[undirected] = CSRGraph(*count_transitions(h.train_item, h.train_position, h.n_items,
                                                                   undirected, float(config.graph.min_edge_weight)))
        return dataclasses.replace(self.holdout, graph=self._graphs[undirected])

    def run(self, config: Config, stop: Callable[[], bool] | None = None) -> dict[str, float] | None:
        """Train ``config``'s method for exactly ``config.train.epochs`` passes on the slice and score the last pass:
        the figures (NaN where the slice cannot measure one), or None when ``stop`` cut the trial short."""
        from eges.validation import fit_and_score

        passes = int(config.train.epochs)
        # A tuned TOML fixes method and passes, so its run does not validate and never writes centred vectors:
        # its trials are scored as that run would write them (validate.try_centred off).
        config = config.replace("validate", try_centred=False)
        trial = fit_and_score(self.holdout_for(config), config, config.train.method, self.side, max_epochs=passes,
                              on_pass=(lambda row: stop()) if stop is not None else None, patience=0)
        if len(trial.curve) < passes:
            return None
        return dict(trial.curve[-1])

    def score_of(self, figures: Mapping[str, float]) -> float:
        from eges.validation import metric_value

        return metric_value(dict(figures), self.metric)

    def objective(self, deadline: float, clock: Callable[[], float] = time.monotonic) -> Callable[[Mapping[str, Any], int], Outcome | None]:
        names = {"hitrate": f"hitrate@{self.config.validate.k}", "next_auc": "next_auc", "link_auc": "link_auc",
                 "cold_auc": "cold_auc"}

        def objective(candidate: Mapping[str, Any], passes: int) -> Outcome | None:
            self.seen.append(passes)
            figures = self.run(apply(self.config, candidate, passes), stop=lambda: clock() > deadline)
            if figures is None:
                return None
            shown = {label: float(figures[key]) for key, label in names.items()
                     if key in figures and not (key == "cold_auc" and not self.has_catalog)}
            return Outcome(self.score_of(figures), shown)

        return objective


def reproduce(out: str | Path, config: Config) -> float:
    """The validation metric of ``config`` (a tuned TOML, loaded) on the run folder's slice: what the best row of
    ``OUT/tune/trials.parquet`` says when ``config`` is its trial (with train.threads = 1 bit for bit)."""
    from eges.pipeline.runner import resume

    _, inputs = resume(Path(out))
    request = Request(Path(out), config, inputs, 0.0, 0, None)
    trials = Trials.prepare(request)
    figures = trials.run(config)
    assert figures is not None
    return trials.score_of(figures)


