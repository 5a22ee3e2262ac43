"""Replay the race of the validate stage's later trials (short schedule, direction, window) on recorded selections:
whether it would stop a trial that won, and how many passes it saves.

A selection recorded before these trials raced (``validation/selection.json`` with each later trial trained to its
own end) shows what the race would have stopped: each trial's curve is read pass by pass by
:class:`eges.validation.race.Race` against the curve it was compared with (the chosen method's, the short
schedule's when that won, the direction's when that won), a window at :func:`eges.validation.race.window_pace`.

    python benchmarks/replay_trials.py [--margin 0.1] [--cold-margin 0.1] [--window 5] SELECTION.json ...

e.g. ``python benchmarks/replay_trials.py $(find /tmp -path '*validation/selection.json')``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from eges.validation.race import RACE_FROM, Race, window_pace
from eges.validation.score import metric_value
from eges.validation.select import Trial


def _trial(doc: dict, metric: str) -> Trial:
    curve = [{k: (math.nan if v is None else v) for k, v in row.items()} for row in doc["curve"]]
    values = [metric_value(r, metric) for r in curve]
    best = max(range(len(curve)), key=lambda i: values[i] if values[i] == values[i] else -math.inf)
    return Trial(doc.get("method", ""), metric, int(curve[best]["epoch"]), curve, curve[best], 0.0, False)


def _cut(trial: Trial, race: Race, schedule: int) -> tuple[int | None, str]:
    """The pass the race stops ``trial`` at (None: it runs on), and why; never at a schedule's last pass."""
    for passes in range(RACE_FROM, min(len(trial.curve), schedule - 1) + 1):
        why = race.trails(trial.curve[:passes])
        if why:
            return passes, why
    return None, ""


def replay(selection: dict, margin: float, cold_margin: float, default_window: int) -> list[dict]:
    """One row per later trial: its name, whether it won, its passes, where the race stops it and why."""
    metric = selection["metric"]
    trials = {t["method"]: t for t in selection.get("trials") or []}
    if selection.get("method") not in trials:
        return []
    cap = selection.get("max_epochs") or 0
    schedule = selection.get("schedule_epochs") or cap
    reference = _trial(trials[selection["method"]], metric)
    rows = []

    def race(doc: dict, name: str, won: bool, against: list[Trial], last: int, pace: float = 1.0) -> Trial:
        trial = _trial(doc, metric)
        stop, why = _cut(trial, Race(metric, margin, cold_margin, against, pace), last)
        rows.append({"trial": name, "wins": won, "passes": len(trial.curve), "stop": stop, "why": why})
        return trial

    if selection.get("short_schedule"):
        short = selection["short_schedule"]
        won = schedule != cap
        trial = race(short, "short schedule", won, [reference], len(short["curve"]))
        reference = trial if won else reference
    if selection.get("direction_trial"):
        doc = selection["direction_trial"]
        trial = race(doc, "undirected", bool(doc["wins"]), [reference], schedule)
        reference = trial if doc["wins"] else reference
    rivals = [reference]
    for doc in selection.get("window_trials") or []:
        trial = race(doc, f"window {doc['window']}", bool(doc["wins"]), list(rivals), schedule,
                     window_pace(int(doc["window"]), default_window))
        if doc["wins"]:
            rivals.append(trial)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("selections", nargs="+", type=Path)
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--cold-margin", type=float, default=0.1)
    ap.add_argument("--window", type=int, default=5, help="the window the recorded runs trained by default")
    args = ap.parse_args()
    runs = trials = winners = stopped_winners = passes = saved = 0
    print("| selection | trial | won | passes | raced out at | why |\n|---|---|---|---|---|---|")
    for path in args.selections:
        selection = json.loads(path.read_text())
        if selection.get("raced_out") is not None:
            continue  # recorded with the race already: its trials are cut
        rows = replay(selection, args.margin, args.cold_margin, args.window)
        runs += bool(rows)
        for row in rows:
            trials += 1
            winners += row["wins"]
            stopped_winners += row["wins"] and row["stop"] is not None
            passes += row["passes"]
            saved += row["passes"] - row["stop"] if row["stop"] else 0
            print(f"| {path.parent.parent} | {row['trial']} | {row['wins']} | {row['passes']} | "
                  f"{row['stop'] or '-'} | {row['why']} |")
    print(f"\n{runs} selections, {trials} later trials ({winners} won); the race stops {stopped_winners} that won "
          f"and saves {saved} of {passes} passes")


if __name__ == "__main__":
    main()
