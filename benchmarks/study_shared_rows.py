"""The study behind ``train.side_rate_power`` and ``train.own_weight``: BGE, GES and EGES on logs of other shapes.

    .venv/bin/python benchmarks/study_shared_rows.py [--logs sample,weak,sparse] [--vary train.side_rate_power=0,0.5,1]

For each log (the bundled sample; ``eges sample --side-info-signal 0``, a catalogue that says nothing about
behaviour; ``eges sample --events 300000 --items 60000``, about five events per item) and each value of the varied
setting, runs ``eges evaluate`` with the link, temporal and cold protocols for BGE, GES and EGES (default settings
otherwise; the log decides the epochs) and prints one row per method: link AUC, temporal AUC, HitRate@10 and @50,
cold-start AUC and HitRate@50, and EGES's mean attention. About 2-4 minutes per log and value on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

from common import EGES, ROOT, WORK

LOGS = {
    "sample": (ROOT / "data", None),
    "weak": (WORK / "study_weak", ["--side-info-signal", "0"]),
    "sparse": (WORK / "study_sparse", ["--events", "300000", "--items", "60000", "--seed", "11"]),
}


def log_dir(name: str) -> Path:
    folder, args = LOGS[name]
    if args is not None and not (folder / "events.parquet").exists():
        subprocess.run([*EGES, "sample", "--out", str(folder), *args], check=True, capture_output=True)
    return folder


def evaluate(folder: Path, out: Path, sets: list[str]) -> tuple[dict, str]:
    cmd = [*EGES, "evaluate", "--events", str(folder / "events.parquet"), "--items", str(folder / "items.parquet"),
           "--out", str(out), "--protocol", "link", "--protocol", "temporal", "--protocol", "cold",
           "--method", "bge", "--method", "ges", "--method", "eges", "--quiet"]
    for kv in sets:
        cmd += ["--set", kv]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    weights = re.findall(r"eges: .*?mean weights: ([^\n]*)", done.stdout + done.stderr)
    metrics = {}
    for protocol in ("link", "temporal", "cold"):
        summary = json.loads((out / "evaluation" / protocol / "summary.json").read_text())
        metrics[protocol] = summary
    return metrics, weights[-1] if weights else ""


def value(metrics: dict, protocol: str, method: str, metric: str) -> str:
    try:
        return f"{metrics[protocol]['metrics'][method][metric]:.4f}"
    except (KeyError, TypeError):
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", default="sample,weak,sparse")
    ap.add_argument("--vary", default="train.side_rate_power=0,0.5,1", help="KEY=V1,V2,...")
    args = ap.parse_args()
    key, values = args.vary.split("=", 1)
    print("| log | " + key + " | method | link AUC | temporal AUC | HitRate@10 | HitRate@50 | cold AUC | cold HitRate@50 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for log in args.logs.split(","):
        folder = log_dir(log)
        for v in values.split(","):
            out = WORK / "study_shared_rows" / f"{log}_{v}"
            metrics, weights = evaluate(folder, out, [f"{key}={v}"])
            for method in ("bge", "ges", "eges"):
                print(f"| {log} | {v} | {method} | {value(metrics, 'link', method, 'auc')} | "
                      f"{value(metrics, 'temporal', method, 'auc')} | {value(metrics, 'temporal', method, 'hit_rate@10')} | "
                      f"{value(metrics, 'temporal', method, 'hit_rate@50')} | {value(metrics, 'cold', method, 'auc')} | "
                      f"{value(metrics, 'cold', method, 'hit_rate@50')} |", flush=True)
            print(f"| {log} | {v} | eges attention | {weights} | | | | | |", flush=True)


if __name__ == "__main__":
    main()
