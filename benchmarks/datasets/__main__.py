"""``python -m benchmarks.datasets list`` | ``prepare NAME|all [--git-dir CLONE]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from benchmarks.datasets.registry import DATASETS, DatasetMissing, folder, is_fresh, prepare, spec


def summary(name: str) -> dict[str, object]:
    """One row of the ``list`` table, from the prepared files (or 'not prepared')."""
    d = spec(name)
    out = folder(name)
    row: dict[str, object] = {"name": name, "shape": d.shape}
    if not (out / "events.parquet").exists():
        return {**row, "events": "not prepared", "source": d.origin}
    ev = pd.read_parquet(out / "events.parquet", columns=["user_id", "item_id", "timestamp"])
    items = out / "items.parquet"
    fields = [c for c in pd.read_parquet(items).columns if c != "item_id"] if items.exists() else []
    n, users, n_items = len(ev), ev["user_id"].nunique(), ev["item_id"].nunique()
    first, last = (pd.to_datetime(ev["timestamp"].agg(f), unit="s") for f in ("min", "max"))
    return {**row, "events": n, "users": users, "items": n_items, "catalog": ",".join(fields) or "-",
            "span": f"{first:%Y-%m-%d}..{last:%Y-%m-%d} ({(last - first).days} d)",
            "ev/user": round(n / users, 1), "ev/item": round(n / n_items, 1),
            "source": d.origin + (f"@{d.commit[:10]}" if d.commit else "")
            + ("" if is_fresh(name) else " (stale: prepare again)")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.datasets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every log: shape, size, catalog fields, time span, source")
    prep = sub.add_parser("prepare", help="write events.parquet / items.parquet into the cache")
    prep.add_argument("name", choices=[*DATASETS, "all"])
    prep.add_argument("--git-dir", type=Path, help="a clone of the log's source repository to read raw files from")
    args = parser.parse_args(argv)
    if args.command == "list":
        with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 60):
            print(pd.DataFrame([summary(n) for n in DATASETS], dtype=object).fillna("").to_string(index=False))
        return 0
    failed = 0
    for name in DATASETS if args.name == "all" else [args.name]:
        try:
            out = prepare(name, args.git_dir if args.name != "all" else None)
        except DatasetMissing as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {out}  {np.int64(summary(name)['events']):,} events")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
