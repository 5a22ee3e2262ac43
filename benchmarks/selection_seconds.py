"""Where a validate stage's seconds went: every trial of recorded selections (``validation/selection.json``), its
passes, training and scoring seconds, and scoring's share of a pass (the issue asks for about 5% at most).

    .venv/bin/python benchmarks/selection_seconds.py RUN_OR_SELECTION ...

e.g. ``.venv/bin/python benchmarks/selection_seconds.py /tmp/taobao-run`` after ``eges run --out /tmp/taobao-run``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def trials(selection: dict) -> list[tuple[str, list[dict]]]:
    """(label, curve) of every trial the selection recorded, in the stage's order."""
    out = [(t["method"], t["curve"]) for t in selection.get("trials", [])]
    if selection.get("short_schedule"):
        out.append(("short schedule", selection["short_schedule"]["curve"]))
    if selection.get("direction_trial"):
        out.append((selection["direction_trial"]["direction"], selection["direction_trial"]["curve"]))
    out += [(f"window {w['window']}", w["curve"]) for w in selection.get("window_trials") or []]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    for path in parser.parse_args().paths:
        file = path / "validation" / "selection.json" if path.is_dir() else path
        selection = json.loads(file.read_text())
        print(f"{file}: {selection['seconds']:.1f} s, chose {selection['method']} at {selection['epochs']} pass(es)")
        print(f"  {'trial':16s} {'passes':>6s} {'train s':>8s} {'score s':>8s} {'score/pass':>10s} {'share':>6s}")
        total_train = total_score = 0.0
        for label, curve in trials(selection):
            train = sum(r["train_seconds"] for r in curve)
            score = sum(r["score_seconds"] for r in curve)
            total_train, total_score = total_train + train, total_score + score
            print(f"  {label:16s} {len(curve):6d} {train:8.1f} {score:8.1f} {score / len(curve):10.3f} "
                  f"{score / max(train, 1e-9):6.1%}")
        print(f"  {'all':16s} {'':6s} {total_train:8.1f} {total_score:8.1f} {'':10s} "
              f"{total_score / max(total_train, 1e-9):6.1%}")


if __name__ == "__main__":
    main()
