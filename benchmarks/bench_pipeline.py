"""The whole pipeline on a 10-million-event log with default settings: wall time, peak memory, and
where the time goes, stage by stage.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeat 1] [--events 10000000] [--method bge|eges]

With ``--method eges`` the generator's catalog is passed as ``--items`` (EGES is the default then).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from common import EGES, WORK, measured, median, report, sample_events


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--method", choices=("bge", "eges"), default="bge")
    args = ap.parse_args()
    events = sample_events(args.events, 200_000)
    out = WORK / "pipeline_out"
    walls, peaks, stages = [], [], []
    for _ in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)
        items = ["--items", str(events.parent / "items.parquet")] if args.method == "eges" else []
        wall, peak, _ = measured([*EGES, "run", "--events", str(events), *items, "--out", str(out), "--quiet"])
        walls.append(wall)
        peaks.append(peak)
        manifest = json.loads((out / "manifest.json").read_text())
        stages.append({k: v["seconds"] for k, v in manifest["stages"].items()})
    rows = [("events", f"{manifest['stages']['sessions']['rows_in']:,}"),
            ("wall time", f"{median(walls):.1f} s (runs {[round(w, 1) for w in walls]})"),
            ("peak RSS", f"{median(peaks):.0f} MiB")]
    for name in stages[0]:
        secs = median([s[name] for s in stages])
        rows.append((f"  {name}", f"{secs:.1f} s ({100 * secs / median(walls):.0f}%)"))
    trainer = "skipgram" if args.method == "bge" else "eges"
    rows.append((f"{trainer} words/s", f"{manifest['stages'][trainer]['details']['words_per_second']:,}"))
    report(f"whole pipeline, default settings, {args.method}", rows)


if __name__ == "__main__":
    sys.exit(main())
