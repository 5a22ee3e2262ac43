"""Rerun the real-logs defaults study (docs/studies/real-logs-defaults.md, issue 19), or the per-log final table.

For each prepared log in ~/.cache/eges-datasets (or $EGES_DATASETS) and each setting ``LABEL:KEY=V[;KEY=V...]``
(default: ``1:train.epochs=1``, ``3:train.epochs=3``, ``10:train.epochs=10``, the passes study) runs

    eges evaluate --events E [--items I] --out OUT/NAME/LABEL --protocol link --protocol temporal [--protocol cold]
        --set KEY=V ... --quiet

keeps its output in OUT/NAME.LABEL.log and prints one markdown table per log: link AUC, next-item AUC, HitRate@10,
HitRate@50 and cold AUC (with a catalog) per method (BGE, GES, EGES) and setting, the baselines once (item2vec,
DeepWalk, co-occurrence, popularity, and the side-information mean for cold start), and the seconds of every
training stage (skipgram for BGE, eges for GES/EGES) summed over the protocols, read from the stage lines.

    python benchmarks/study_real_logs.py [--out /tmp/study] [--setting LABEL:KEY=V;KEY=V ...] [--protocol P ...]
        [--table-only] NAME ...

``--protocol`` (repeatable) runs only the protocols named, e.g. ``--protocol temporal`` for a grid of HR@50 only.

The final table of issue 19 (old against new defaults), for example:

    python benchmarks/study_real_logs.py --setting "old:train.own_weight=0.5;train.side_rate_power=0.5" \
        --setting "new:train.own_weight=0.25;train.side_rate_power=0" movielens-100k taobao
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(os.environ.get("EGES_DATASETS", Path.home() / ".cache" / "eges-datasets"))
ROWS = [("link", "auc", 0, "link AUC"), ("temporal", "auc", 0, "next-item AUC"),
        ("temporal", "hit_rate", 10, "HR@10"), ("temporal", "hit_rate", 50, "HR@50"), ("cold", "auc", 0, "cold AUC")]
DEFAULT_SETTINGS = ["1:train.epochs=1", "3:train.epochs=3", "10:train.epochs=10"]
METHODS = ("auto", "bge", "ges", "eges")  # auto: what a run with no --method trains
BASELINES = ("item2vec", "deepwalk", "cooccurrence", "popularity", "side_mean")
STAGE = re.compile(r"^\s+\[(\w+)/pipeline\] (validate|skipgram|eges): .* in ([\d.]+) s; (?:native: |gensim: )?(\w+)?")


def parse_setting(text: str) -> tuple[str, list[str]]:
    """'LABEL:KEY=V;KEY=V' as (label, ['KEY=V', ...])."""
    label, _, sets = text.partition(":")
    return label, [x.strip() for x in sets.split(";") if x.strip()]


def run(name: str, out: Path, label: str, sets: list[str], protocols: list[str] | None = None) -> None:
    """One `eges evaluate`; protocols None: link, temporal and (with a catalog) cold."""
    events = ROOT / name / "events.parquet"
    items = ROOT / name / "items.parquet"
    wanted = protocols or ["link", "temporal", "cold"]
    chosen = [x for x in wanted if x != "cold" or items.exists()]
    cmd = [sys.executable, "-m", "eges", "evaluate", "--events", str(events), "--out", str(out / name / label),
           *[a for x in chosen for a in ("--protocol", x)], *[a for x in sets for a in ("--set", x)], "--quiet"]
    if items.exists():
        cmd[6:6] = ["--items", str(items)]
    print(" ".join(cmd), file=sys.stderr)
    with open(out / f"{name}.{label}.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)


def train_seconds(logfile: Path) -> dict[str, float]:
    """method -> seconds of training summed over protocols, from the stage lines of one run."""
    secs: dict[str, float] = {}
    if not logfile.exists():
        return secs
    for line in logfile.read_text().splitlines():
        m = STAGE.match(line)
        if m:
            stage, s = m.group(2), float(m.group(3))
            secs["auto"] = secs.get("auto", 0.0) + s  # the default run: validation and training together
            if stage == "validate":
                continue
            trained = re.search(r"; (ges|eges): ", line)
            method = "bge" if stage == "skipgram" or trained is None else trained.group(1)
            secs[method] = secs.get(method, 0.0) + s
    return secs


def table(name: str, out: Path, labels: list[str]) -> str:
    frames = []
    for label in labels:
        for f in (out / name / label / "evaluation").glob("*/metrics.parquet"):
            d = pd.read_parquet(f)
            d["setting"] = label
            frames.append(d)
    if not frames:
        return "(no results)"
    d = pd.concat(frames)
    rows = [r for r in ROWS if (d.protocol == r[0]).any()]
    lines = ["| method | setting | " + " | ".join(r[3] for r in rows) + " | training (s) |",
             "|---|---|" + "---:|" * (len(rows) + 1)]

    def cell(sub, r):
        x = sub[(sub.protocol == r[0]) & (sub.metric == r[1]) & (sub.k == r[2])]
        return f"{x.value.iloc[0]:.4f}" if len(x) and pd.notna(x.value.iloc[0]) else "n/a"

    for method in METHODS:
        for label in labels:
            sub = d[(d.method == method) & (d.setting == label)]
            if sub.empty:
                continue
            t = train_seconds(out / f"{name}.{label}.log").get(method)
            lines.append(f"| {method} | {label} | " + " | ".join(cell(sub, r) for r in rows)
                         + (f" | {t:.1f} |" if t is not None else " | ? |"))
    for method in BASELINES:
        sub = d[(d.method == method) & (d.setting == labels[0])]
        if not sub.empty:
            lines.append(f"| {method} | - | " + " | ".join(cell(sub, r) for r in rows) + " | |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("names", nargs="+")
    p.add_argument("--out", type=Path, default=Path("/tmp/study"))
    p.add_argument("--setting", action="append", help="LABEL:KEY=V;KEY=V (repeatable); default: 1, 3, 10 passes")
    p.add_argument("--protocol", action="append", choices=["link", "temporal", "cold"],
                   help="protocol to run (repeatable); default: link, temporal and, with a catalog, cold")
    p.add_argument("--table-only", action="store_true")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    settings = [parse_setting(x) for x in (a.setting or DEFAULT_SETTINGS)]
    for name in a.names:
        if not a.table_only:
            for label, sets in settings:
                run(name, a.out, label, sets, a.protocol)
        print(f"\n### {name}\n\n{table(name, a.out, [label for label, _ in settings])}")


if __name__ == "__main__":
    main()
