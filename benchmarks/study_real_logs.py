"""Rerun the real-logs defaults study (docs/studies/real-logs-defaults.md, issue 19).

For each prepared log in ~/.cache/eges-datasets (or $EGES_DATASETS) runs

    eges evaluate --events E [--items I] --out OUT/NAME --protocol link --protocol temporal [--protocol cold]
        --vary train.epochs=1,3,10 --quiet

keeps its output in OUT/NAME.log and prints one markdown table per log: link AUC, next-item AUC, HitRate@10,
HitRate@50 and cold AUC (with a catalog) per method and number of passes, the baselines once, and the seconds of
every training stage (skipgram for BGE, eges for GES/EGES) summed over the protocols, read from the stage lines.

    python benchmarks/study_real_logs.py [--out /tmp/study] [--epochs 1,3,10] [--table-only] NAME ...
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
STAGE = re.compile(r"^\s+\[(\w+)/pipeline\] (skipgram|eges): .* in ([\d.]+) s; (?:native: |gensim: )?(\w+)?")


def run(name: str, out: Path, epochs: str) -> None:
    events = ROOT / name / "events.parquet"
    items = ROOT / name / "items.parquet"
    cmd = [sys.executable, "-m", "eges", "evaluate", "--events", str(events), "--out", str(out / name),
           "--protocol", "link", "--protocol", "temporal", "--vary", f"train.epochs={epochs}", "--quiet"]
    if items.exists():
        cmd[5:5] = ["--items", str(items)]
        cmd += ["--protocol", "cold"]
    print(" ".join(cmd), file=sys.stderr)
    with open(out / f"{name}.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)


def train_seconds(logfile: Path) -> dict[tuple[str, str], float]:
    """(epochs, method) -> seconds of training summed over protocols, from the stage lines."""
    secs: dict[tuple[str, str], float] = {}
    variant = "?"
    for line in logfile.read_text().splitlines():
        if line.startswith("== train.epochs="):
            variant = line.split("=")[-1]
        m = STAGE.match(line)
        if m:
            stage, s = m.group(2), float(m.group(3))
            method = "bge" if stage == "skipgram" else re.search(r"; (ges|eges): ", line).group(1)
            secs[(variant, method)] = secs.get((variant, method), 0.0) + s
    return secs


def table(name: str, out: Path) -> str:
    variants = sorted((out / name / "variants").iterdir(), key=lambda p: int(p.name.split("=")[-1]))
    frames = []
    for v in variants:
        for f in (v / "evaluation").glob("*/metrics.parquet"):
            d = pd.read_parquet(f)
            d["epochs"] = v.name.split("=")[-1]
            frames.append(d)
    d = pd.concat(frames)
    rows = [r for r in ROWS if (d.protocol == r[0]).any()]
    secs = train_seconds(out / f"{name}.log")
    lines = ["| method | passes | " + " | ".join(r[3] for r in rows) + " | training (s) |",
             "|---|---|" + "---:|" * (len(rows) + 1)]

    def cell(sub, r):
        x = sub[(sub.protocol == r[0]) & (sub.metric == r[1]) & (sub.k == r[2])]
        return f"{x.value.iloc[0]:.4f}" if len(x) and pd.notna(x.value.iloc[0]) else "n/a"

    for method in ("bge", "ges", "eges"):
        for e in [v.name.split("=")[-1] for v in variants]:
            sub = d[(d.method == method) & (d.epochs == e)]
            if sub.empty:
                continue
            t = secs.get((e, method))
            lines.append(f"| {method} | {e} | " + " | ".join(cell(sub, r) for r in rows)
                         + f" | {t:.1f} |" if t is not None else " | ? |")
    first = variants[0].name.split("=")[-1]
    for method in ("item2vec", "cooccurrence", "popularity"):
        sub = d[(d.method == method) & (d.epochs == first)]
        if not sub.empty:
            lines.append(f"| {method} | - | " + " | ".join(cell(sub, r) for r in rows) + " | |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("names", nargs="+")
    p.add_argument("--out", type=Path, default=Path("/tmp/study"))
    p.add_argument("--epochs", default="1,3,10")
    p.add_argument("--table-only", action="store_true")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for name in a.names:
        if not a.table_only:
            run(name, a.out, a.epochs)
        print(f"\n### {name}\n\n{table(name, a.out)}")


if __name__ == "__main__":
    main()
