"""How many of a warm start's price buckets start from the parent's rows when the catalog grew (docs/updates.md).

    PYTHONPATH=src .venv/bin/python benchmarks/study_warm_buckets.py [--out /tmp/eges-bench/warm_buckets]

On the bundled sample: a parent trained on day one's events with part of the catalog, then a warm start on days one
and two with the whole catalog, at ``update.alpha = 0`` (no pass: every value row the child writes is the row it
started from). Two parents: one whose catalog lacks the dearest 30% of the items (the quantiles move a lot), one
whose catalog lacks a random 10% (they move a little), and the first parent again without the bounds it recorded
(``numeric_bounds``: a parent from before them, recut from its unchanged catalog file), and once more with that file
gone (its bounds read back from its labels). Prints, per case, the child's price buckets, how many carry
a parent's label and how many start from the parent's row (the others start from the field's mean). Run it with
another tree's ``src`` on PYTHONPATH to compare (a few seconds per run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from common import EGES, ROOT, WORK

import eges

DAY = 86_400
SETTINGS = ["walks.walks_per_node=2", "train.dimension=8", "train.epochs=1", "train.threads=1"]


def run(out: Path, events: Path, items: Path, *extra: str) -> None:
    sets = [a for s in SETTINGS for a in ("--set", s)]
    subprocess.run([*EGES, "run", "--events", str(events), "--items", str(items), "--out", str(out), "--until", "eges",
                    "--method", "eges", "--quiet", *sets, *extra], check=True, capture_output=True)


def price_rows(run_dir: Path) -> dict[str, np.ndarray]:
    values = pq.read_table(run_dir / "eges" / "side_info_vectors.parquet").to_pandas()
    price = values[values["field"] == "price"]
    return {label: np.asarray(v) for label, v in zip(price["value"], price["vector"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WORK / "warm_buckets")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    events = pq.read_table(ROOT / "data" / "events.parquet")
    start = pc.min(events["timestamp"]).as_py()
    two = events.filter(pc.less(events["timestamp"], start + 2 * DAY))
    one = two.filter(pc.and_(pc.less(two["timestamp"], start + DAY),
                             pc.not_equal(pc.bit_wise_and(two["item_id"], 7), 0)))
    pq.write_table(one, out / "day1.parquet")
    pq.write_table(two, out / "day2.parquet")
    items = pq.read_table(ROOT / "data" / "items.parquet")
    price = items["price"].to_numpy()
    cases = {"dearest 30% added": items.filter(pc.less(items["price"], np.quantile(price, 0.7))),
             "random 10% added": items.filter(np.random.default_rng(0).random(items.num_rows) >= 0.1)}
    print("| parent's catalog -> whole catalog | price buckets | parent's label | parent's row | eges version |")
    print("|---|---|---|---|---|")
    older = ["dearest 30% added, no recorded bounds", "dearest 30% added, no recorded bounds, its catalog file gone"]
    for n, (case, parent_items) in enumerate([*cases.items(), *((case, None) for case in older)]):
        parent, child = out / f"parent_{n}", out / f"child_{n}"
        if parent_items is None:  # the first case's parent as an older eges left it
            parent_items = cases["dearest 30% added"]
            shutil.rmtree(parent, ignore_errors=True)
            shutil.copytree(out / "parent_0", parent)
            manifest = json.loads((parent / "manifest.json").read_text())
            manifest["stages"]["eges"]["details"].pop("numeric_bounds", None)
            if case.endswith("gone"):
                manifest["inputs"]["items"] = str(out / "moved_away.parquet")
            (parent / "manifest.json").write_text(json.dumps(manifest))
        else:
            pq.write_table(parent_items, out / f"items_{n}.parquet")
            run(parent, out / "day1.parquet", out / f"items_{n}.parquet")
        run(child, out / "day2.parquet", ROOT / "data" / "items.parquet", "--warm-start", str(parent),
            "--set", "update.alpha=0")
        before, after = price_rows(parent), price_rows(child)
        labelled = [label for label in after if label in before]
        same = [label for label in labelled if np.array_equal(after[label], before[label])]
        how = json.loads((child / "manifest.json").read_text())["stages"]["eges"]["details"]["fields"]["price"]
        print(f"| {case} ({parent_items.num_rows:,} -> {items.num_rows:,} items) | {len(after)} | {len(labelled)} | "
              f"{len(same)} | {eges.__file__.split('/src/')[0]} ({how}) |")


if __name__ == "__main__":
    main()
