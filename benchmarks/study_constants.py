"""Rerun the calibration of train.own_weight and train.side_rate_power on real logs
(docs/studies/constants-real-logs.md, issue 19).

For each log with a catalog, prepared in ~/.cache/eges-datasets (or $EGES_DATASETS), and for the generator
(``generator``: ``eges sample --events 100000 --items 3000 --seed 7`` into OUT/generator_data), runs

    eges evaluate --events E --items I --out OUT/NAME/own_weight --protocol link --protocol temporal
        --protocol cold --method eges --vary train.own_weight=0,0.25,0.5,0.75
        --set train.epochs=3 --set 'evaluate.baselines=["popularity"]' --quiet
    eges evaluate ... --out OUT/NAME/side_rate_power --method ges --method eges
        --vary train.side_rate_power=0,0.5,1 ...

keeps each command's output in OUT/NAME.STUDY.log and prints one markdown table per constant: one row per log
and value, with link AUC, next-item HR@50 and cold AUC per method, and popularity's figures once per log.

    python benchmarks/study_constants.py [--out /tmp/cal] [--epochs 3] [--table-only] NAME ...
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(os.environ.get("EGES_DATASETS", Path.home() / ".cache" / "eges-datasets"))
STUDIES = {"own_weight": ("train.own_weight", "0,0.25,0.5,0.75", ("eges",)),
           "side_rate_power": ("train.side_rate_power", "0,0.5,1", ("ges", "eges"))}
COLUMNS = [("link", "auc", 0, "link AUC"), ("temporal", "hit_rate", 50, "HR@50"), ("cold", "auc", 0, "cold AUC")]


def inputs(name: str, out: Path) -> tuple[Path, Path]:
    if name == "generator":
        data = out / "generator_data"
        if not (data / "events.parquet").exists():
            subprocess.run([sys.executable, "-m", "eges", "sample", "--out", str(data), "--events", "100000",
                            "--items", "3000", "--seed", "7"], check=True)
        return data / "events.parquet", data / "items.parquet"
    return ROOT / name / "events.parquet", ROOT / name / "items.parquet"


def run(name: str, study: str, out: Path, epochs: int) -> None:
    key, values, methods = STUDIES[study]
    events, items = inputs(name, out)
    cmd = [sys.executable, "-m", "eges", "evaluate", "--events", str(events), "--items", str(items),
           "--out", str(out / name / study), "--protocol", "link", "--protocol", "temporal", "--protocol", "cold",
           *[a for m in methods for a in ("--method", m)], "--vary", f"{key}={values}",
           "--set", f"train.epochs={epochs}", "--set", 'evaluate.baselines=["popularity"]', "--quiet"]
    print(" ".join(cmd), file=sys.stderr)
    with open(out / f"{name}.{study}.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)


def figures(directory: Path) -> pd.DataFrame:
    """metrics.parquet of every variant and protocol, with the variant's value as a column."""
    frames = []
    if not (directory / "variants").is_dir():
        return pd.DataFrame()
    for variant in sorted((directory / "variants").iterdir()):
        for f in (variant / "evaluation").glob("*/metrics.parquet"):
            d = pd.read_parquet(f)
            d["value_of_setting"] = float(variant.name.split("=")[-1])
            frames.append(d)
    return pd.concat(frames) if frames else pd.DataFrame()


def table(study: str, names: list[str], out: Path) -> str:
    _, _, methods = STUDIES[study]
    header = ["log", "value"] + [f"{m.upper()} {c[3]}" for m in methods for c in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]

    def cell(sub: pd.DataFrame, c: tuple) -> str:
        x = sub[(sub.protocol == c[0]) & (sub.metric == c[1]) & (sub.k == c[2])]
        return f"{x.value.iloc[0]:.4f}" if len(x) and pd.notna(x.value.iloc[0]) else "n/a"

    for name in names:
        d = figures(out / name / study)
        if d.empty:
            continue
        values = sorted(d.value_of_setting.unique())
        for v in values:
            at = d[d.value_of_setting == v]
            lines.append(f"| {name} | {v:g} | " + " | ".join(cell(at[at.method == m], c) for m in methods
                                                              for c in COLUMNS) + " |")
        pop = d[(d.method == "popularity") & (d.value_of_setting == values[0])]
        lines.append(f"| {name} | popularity | " + " | ".join(cell(pop, c) for _ in methods for c in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("names", nargs="+", help="prepared logs with a catalog, or 'generator'")
    p.add_argument("--out", type=Path, default=Path("/tmp/cal"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--study", choices=sorted(STUDIES), action="append")
    p.add_argument("--table-only", action="store_true")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    studies = a.study or sorted(STUDIES)
    if not a.table_only:
        for name in a.names:
            for study in studies:
                run(name, study, a.out, a.epochs)
    for study in studies:
        print(f"\n### {STUDIES[study][0]}\n\n{table(study, a.names, a.out)}")


if __name__ == "__main__":
    main()
