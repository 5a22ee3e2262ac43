"""Study of the validation slice's defaults (validate.fraction, validate.patience): docs/studies/validation.md.

For each log: an outer split holds out the latest 20% of events (and, with a catalog, 10% of the items) as the test.
On the outer training part the validate stage's selection runs as in a default run (an inner slice of
``validate.fraction`` of it, every method the catalog allows, early stop on next-item HitRate@50), the chosen
(method, passes) are refit on the whole outer training part and scored on the test; the same test scores every
method at 1, 3 and 10 fixed passes for reference. Patience 1..3 is read off one curve per fraction (a curve run with
patience 3 holds the curves of the smaller ones). Everything is in-process on eges.validation.

    python benchmarks/study_validation.py [--fractions 0.05,0.1,0.2] [--logs movielens-100k,groceries,...]
        [--generated 100000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from eges.api import sessionize
from eges.config import default_config
from eges.methods import allowed
from eges.side_info.encode import encode
from eges.validation import fit_and_score, make_holdout, metric_value

ROOT = Path(os.environ.get("EGES_DATASETS", Path.home() / ".cache" / "eges-datasets"))
FIXED = (1, 3, 10)


def load(name: str, generated: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    if name == "generated":
        from eges.sample_data import SampleSpec, make_sample

        events, catalog, _ = make_sample(SampleSpec(n_events=generated, n_items=max(1000, generated // 40)))
        return events, catalog
    events = pd.read_parquet(ROOT / name / "events.parquet")
    items = ROOT / name / "items.parquet"
    return events, (pd.read_parquet(items) if items.exists() else None)


def early_stop(curve: list[dict], patience: int, metric: str = "hitrate") -> tuple[int, float, float]:
    """(best pass, its figure, training seconds until the stop) of ``curve`` under ``patience``."""
    best, best_epoch, seconds = -np.inf, 0, 0.0
    for row in curve:
        seconds += row["train_seconds"] + row["score_seconds"]
        value = metric_value(row, metric)
        if value > best or best_epoch == 0:
            best, best_epoch = value, row["epoch"]
        if row["epoch"] - best_epoch >= patience:
            break
    return best_epoch, best, seconds


def study(name: str, fractions: list[float], generated: int) -> str:
    config = default_config()
    events, catalog = load(name, generated)
    sessions, vocab, _ = sessionize(events, config)
    vocab = vocab.sort_by("item_index")
    item, position, ts = (sessions[c].to_numpy() for c in ("item_index", "position", "ts"))
    n = vocab.num_rows
    side = None
    if catalog is not None:
        fields = [c for c in catalog.columns if c != "item_id"]
        catalog = catalog.drop_duplicates("item_id")
        side, _ = encode(catalog, vocab["item_id"].to_pylist(), "item_id", fields, 10, ())
    methods = allowed(side is not None)
    outer_cfg = config.replace("validate", fraction=0.2, max_pairs=50_000, max_queries=2000)
    outer = make_holdout(item, position, ts, n, outer_cfg, side is not None, seed=0)
    lines = [f"### {name}", "", f"{len(item):,} session events, {n:,} items; test: {outer.stats}", ""]
    tests: dict[tuple[str, int], dict] = {}

    def test(method: str, epochs: int, schedule: int | None = None) -> dict:
        """Test figures of ``method`` trained ``epochs`` passes, the learning rate decaying over ``schedule``
        passes (the validated refit follows the selection's schedule, as the training stages do)."""
        key = (method, epochs, schedule or epochs)
        if key not in tests:
            trial = fit_and_score(outer, config, method, side, max_epochs=schedule or epochs, patience=0,
                                  on_pass=lambda row: row["epoch"] >= epochs)
            tests[key] = {**trial.curve[-1], "seconds": trial.seconds}
        return tests[key]

    rows = []
    for method in methods:
        for epochs in FIXED:
            rows.append({"setting": f"{method}, {epochs} pass(es)", **_figures(test(method, epochs))})
    for fraction in fractions:
        inner_cfg = config.replace("validate", fraction=fraction)
        inner = make_holdout(outer.train_item, outer.train_position, outer.train_ts, n, inner_cfg,
                             side is not None, seed=1)
        curves = {m: fit_and_score(inner, inner_cfg, m, side, patience=3).curve for m in methods}
        shorts: dict[tuple[str, int], dict] = {}
        for patience in (1, 2, 3):
            choices = {m: early_stop(curves[m], patience) for m in methods}
            method = max(methods, key=lambda m: choices[m][1])
            epochs = choices[method][0]
            cost = sum(c[2] for c in choices.values())
            schedule = inner_cfg.validate.max_epochs
            if epochs < schedule:  # as the validate stage: the short schedule when it scores better on the slice
                if (method, epochs) not in shorts:
                    shorts[(method, epochs)] = fit_and_score(inner, inner_cfg, method, side, max_epochs=epochs,
                                                             patience=0).curve[-1]
                if metric_value(shorts[(method, epochs)], "hitrate") > choices[method][1]:
                    schedule = epochs
            rows.append({"setting": f"validated f={fraction} p={patience}: {method}, {epochs}/{schedule}",
                         **_figures(test(method, epochs, schedule)),
                         "selection s": round(cost, 1)})
    frame = pd.DataFrame(rows)
    lines.append(_markdown(frame))
    return "\n".join(lines) + "\n"


def _markdown(frame: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return f"{v:.4f}" if isinstance(v, float) and abs(v) < 1 else str(v)
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    return head + "".join("\n| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False))


def _figures(row: dict) -> dict:
    return {"HR@50": row["hitrate"], "next AUC": row["next_auc"], "link AUC": row["link_auc"],
            "cold AUC": row["cold_auc"], "train s": round(row.get("seconds", 0.0), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fractions", default="0.05,0.1,0.2")
    parser.add_argument("--logs", default="movielens-100k,groceries,generated")
    parser.add_argument("--generated", type=int, default=100_000)
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    for name in args.logs.split(","):
        started = time.perf_counter()
        print(study(name, fractions, args.generated), flush=True)
        print(f"({name}: {time.perf_counter() - started:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
