"""The results of a search: the table of trials, and the best trial's settings as a TOML file that
``eges run --config`` takes. Written atomically into the run folder (``layout.TUNE_TRIALS``, ``layout.TUNE_BEST``);
a ``--to`` copy replaces only a file an earlier ``eges tune`` wrote (its first line is the marker)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from eges.config import Config, to_toml
from eges.errors import InputError
from eges.tuning.halving import TrialRecord
from eges.tuning.space import EPOCHS_KEY, Dimension

#: The first line of every TOML ``eges tune`` writes: a file that starts otherwise is not replaced.
MARKER = "# eges tune:"


def trials_table(records: Sequence[TrialRecord], dims: Sequence[Dimension], metric: str) -> pd.DataFrame:
    """One row per trial: where it ran (bracket, rung), its settings (None: the method does not read the key), its
    passes, the metric searched on (and any other the trial measured), seconds, and whether it is the best."""
    from eges.tuning.halving import best_trial

    best = best_trial(list(records))
    rows = []
    for r in records:
        row = {"trial": r.trial, "bracket": r.bracket, "rung": r.rung, "candidate": r.candidate}
        row.update({d.key: r.settings.get(d.key) for d in dims})
        row.update({EPOCHS_KEY: r.passes, metric: r.metric})
        row.update({k: v for k, v in r.metrics.items() if k != metric})
        row.update({"seconds": round(r.seconds, 3), "status": _status(r), "best": best is not None and r is best})
        rows.append(row)
    columns = ["trial", "bracket", "rung", "candidate", *(d.key for d in dims), EPOCHS_KEY, metric]
    table = pd.DataFrame(rows, columns=None if rows else columns)
    for d in dims:  # one type per column: numbers stay numbers where a method ignores the key (NaN)
        if d.key in table and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in d.choices):
            table[d.key] = pd.to_numeric(table[d.key])
    return table


def _status(record: TrialRecord) -> str:
    if record.metric is None:
        return "stopped at the deadline"
    return "done" if record.finished else "no score"


def format_trials(table: pd.DataFrame, metric: str) -> str:
    """The table as printed: short setting names, '-' where the method does not read a key, the best row starred."""
    if table.empty:
        return "(no trial finished)"
    shown = table.drop(columns=["candidate"]).copy()
    shown.insert(0, "", ["*" if b else "" for b in shown.pop("best")])
    shown.columns = [c.split(".", 1)[1] if "." in c and c != metric else c for c in shown.columns]
    shown = shown.rename(columns={"epochs": "passes"})
    return shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def write_trials(table: pd.DataFrame, path: Path) -> None:
    from eges.pipeline.io import write_table

    write_table(pa.Table.from_pandas(table, preserve_index=False), path)


def best_toml(config: Config, tuned: dict[str, object], headline: str, events: str | None,
              items: str | None = None) -> str:
    """The whole config of the best trial (the base config with its settings and passes), headed by what was
    tuned: ``eges run --config`` with it trains exactly that trial's settings on the whole log."""
    lines = [f"{MARKER} {headline}",
             "# tuned (train.epochs is the trial's passes, so no rule or early stop changes them):",
             *(f"#   {key} = {json.dumps(value)}" for key, value in tuned.items() if value is not None),
             f"# use: eges run --events {events or 'EVENTS'}{f' --items {items}' if items else ''} --out OUT "
             "--config THIS_FILE", ""]
    return "\n".join(lines) + to_toml(config, with_help=False)


def check_destination(to: Path) -> None:
    """``--to`` may be new or an earlier ``eges tune`` TOML; anything else is refused before the search starts."""
    if to.is_dir() or str(to).endswith(("/", "\\")):
        raise InputError(f"--to {to} is a folder; give a file name such as best.toml")
    if to.exists() or to.is_symlink():
        try:
            first = to.read_text(encoding="utf-8").splitlines()[:1]
        except (OSError, UnicodeDecodeError):
            first = []
        if not first or not first[0].startswith(MARKER):
            raise InputError(f"--to {to} exists and was not written by eges tune; eges does not replace what it did "
                             "not write: give a new file name")
    if not to.parent.exists():
        raise InputError(f"--to {to}: folder {to.parent} does not exist")


def write_toml(text: str, path: Path) -> None:
    from eges.pipeline.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
