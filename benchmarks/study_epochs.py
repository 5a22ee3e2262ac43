"""How many passes over the walks a log needs: BGE quality against train.epochs on generated logs of three sizes.

    .venv/bin/python benchmarks/study_epochs.py [--sizes 100000 300000 1000000] [--epochs 1 3 10]

Each log comes from the sample generator (items in proportion to events); each runs ``eges evaluate`` with the
link and temporal protocols, BGE only, once per epochs value (``--vary``), and the table lists link AUC, temporal
HitRate@10 and @50, the walk tokens of one epoch and the training seconds. The figures behind the epochs rule in
docs/studies/epochs.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import EGES, WORK, report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--epochs", type=int, nargs="+", default=[1, 3, 10])
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        data = WORK / f"epochs_log_{n}"
        if not (data / "events.parquet").exists():
            subprocess.run([*EGES, "sample", "--out", str(data), "--events", str(n), "--items", str(max(2000, n // 40))],
                           check=True, capture_output=True)
        out = WORK / f"epochs_eval_{n}"
        vary = "train.epochs=" + ",".join(map(str, args.epochs))
        subprocess.run([*EGES, "evaluate", "--events", str(data / "events.parquet"), "--out", str(out), "--quiet",
                        "--protocol", "link", "--protocol", "temporal", "--method", "bge", "--vary", vary,
                        "--set", "evaluate.baselines=['popularity']"], check=True, capture_output=True)
        for e in args.epochs:
            folder = out / "variants" / f"train.epochs={e}"
            manifest = json.loads((folder / "evaluation" / "temporal" / "pipeline" / "manifest.json").read_text())
            tokens = manifest["stages"]["walks"]["details"].get("steps") or 0
            seconds = manifest["stages"]["skipgram"]["details"]["train_seconds"]
            items = manifest["stages"]["sessions"]["details"]["items_out"]
            metrics = {}
            for protocol in ("link", "temporal"):
                summary = json.loads((folder / "evaluation" / protocol / "summary.json").read_text())
                metrics.update({(protocol, k): v for k, v in summary["metrics"]["bge"].items()})
            rows.append((f"{n:,} events, {items:,} items, epochs {e}",
                         f"link AUC {metrics.get(('link', 'auc'), float('nan')):.4f}, temporal HR@10 "
                         f"{metrics.get(('temporal', 'hit_rate@10'), float('nan')):.4f}, HR@50 "
                         f"{metrics.get(('temporal', 'hit_rate@50'), float('nan')):.4f}; {tokens:,} tokens/epoch, "
                         f"train {seconds:.1f} s"))
    report("BGE quality against epochs", rows)


if __name__ == "__main__":
    sys.exit(main())
