"""Replay the race between methods (validate.race_margin) on recorded selections: which choices it changes and how
many passes and seconds it saves.

Every method's passes on a slice are fixed by the slice and its seed, so a selection recorded without the race
(``validation/selection.json`` with every method trained to its own early stop) shows what the race would have
stopped: each method's curve is cut where :class:`eges.validation.race.Race` stops it, in
:func:`eges.validation.race.race_order`, and :func:`eges.validation.select.choose` picks from the cut trials.

    python benchmarks/replay_race.py [--margin 0.1] [--cold-margin 0.1] SELECTION.json ...

e.g. ``python benchmarks/replay_race.py /tmp/final/*/*/evaluation/*/pipeline/validation/selection.json`` (the
study runs of docs/evaluation.md, made before the race).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from eges.validation.race import Race, race_order
from eges.validation.score import metric_value
from eges.validation.select import Trial, choose


def _trial(doc: dict, passes: int, metric: str) -> Trial:
    curve = [{k: (math.nan if v is None else v) for k, v in row.items()} for row in doc["curve"][:passes]]
    values = [metric_value(r, metric) for r in curve]
    best = max(range(len(curve)), key=lambda i: values[i] if values[i] == values[i] else -math.inf)
    return Trial(doc["method"], metric, int(curve[best]["epoch"]), curve, curve[best], 0.0, False)


def replay(selection: dict, margin: float, cold_margin: float, tolerance: float) -> dict:
    metric = selection["metric"]
    docs = {t["method"]: t for t in selection["trials"]}
    methods = [t["method"] for t in selection["trials"]]
    full = [_trial(docs[m], len(docs[m]["curve"]), metric) for m in methods]
    raced: list[Trial] = []
    race = Race(metric, margin, cold_margin, raced)
    for method in race_order(methods):
        whole = _trial(docs[method], len(docs[method]["curve"]), metric)
        cut = next((p for p in range(1, len(whole.curve)) if race.trails(whole.curve[:p])), len(whole.curve))
        raced.append(_trial(docs[method], cut, metric))
    raced.sort(key=lambda t: methods.index(t.method))

    def seconds(trials: list[Trial]) -> float:
        return sum(r.get("train_seconds", 0) + r.get("score_seconds", 0) for t in trials for r in t.curve)

    before, after = choose(full, cold_tolerance=tolerance)[0], choose(raced, cold_tolerance=tolerance)[0]
    return {"before": (before.method, before.best_epochs), "after": (after.method, after.best_epochs),
            "passes": (sum(len(t.curve) for t in full), sum(len(t.curve) for t in raced)),
            "seconds": (seconds(full), seconds(raced))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("selections", nargs="+", type=Path)
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--cold-margin", type=float, default=0.1)
    ap.add_argument("--cold-tolerance", type=float, default=0.05)
    args = ap.parse_args()
    totals = [0, 0, 0.0, 0.0]
    changed = 0
    print("| selection | choice | with the race | passes | seconds |\n|---|---|---|---|---|")
    for path in args.selections:
        selection = json.loads(path.read_text())
        if len(selection["trials"]) < 2:
            continue  # one method: nothing races
        r = replay(selection, args.margin, args.cold_margin, args.cold_tolerance)
        changed += r["before"] != r["after"]
        totals = [totals[0] + r["passes"][0], totals[1] + r["passes"][1], totals[2] + r["seconds"][0],
                  totals[3] + r["seconds"][1]]
        name = "/".join(path.parts[-7:-3])
        print(f"| {name} | {r['before'][0]} {r['before'][1]} | {r['after'][0]} {r['after'][1]} | "
              f"{r['passes'][0]} -> {r['passes'][1]} | {r['seconds'][0]:.0f} -> {r['seconds'][1]:.0f} |")
    print(f"\nchanged choices: {changed}; passes {totals[0]} -> {totals[1]}; seconds {totals[2]:.0f} -> {totals[3]:.0f}")


if __name__ == "__main__":
    main()
