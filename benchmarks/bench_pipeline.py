"""The whole pipeline on a 10-million-event log with default settings: wall time, peak memory, and
where the time goes, stage by stage.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeat 1] [--events 10000000] [--method bge|eges] [--pecanpy]
        [--gensim [--gensim-epochs N]]

With ``--method eges`` the generator's catalog is passed as ``--items`` (EGES is the default then). ``--pecanpy``
uses the PecanPy + gensim stack's settings (20 walks of 10 nodes per node, dimension 64, one epoch) instead of
eges' defaults. ``--gensim`` then retrains BGE with gensim on the same walks and settings in the same run
(``eges stage skipgram --set train.backend=gensim``), for the tokens/s comparison; ``--gensim-epochs N`` gives
gensim N passes instead of the run's (at the defaults a 10 M-event log trains ten, about half an hour for gensim,
and every pass costs gensim the same, so one pass measures its rate).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from common import EGES, WORK, measured, median, report, sample_events

#: The PecanPy + gensim stack's usual settings (PecanPy's defaults: 10 walks of 80 nodes; the issue's comparison
#: uses 20 walks of 10 nodes, gensim's dimension 64 and one epoch).
PECANPY = ("walks.walks_per_node=20", "walks.walk_length=10", "train.dimension=64", "train.epochs=1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--method", choices=("bge", "eges"), default="bge")
    ap.add_argument("--pecanpy", action="store_true", help="PecanPy's settings instead of eges' defaults")
    ap.add_argument("--gensim", action="store_true", help="also train BGE with gensim on the same walks")
    ap.add_argument("--gensim-epochs", type=int, default=0, help="gensim's passes (0: the run's)")
    args = ap.parse_args()
    sets = [a for kv in PECANPY for a in ("--set", kv)] if args.pecanpy else []
    events = sample_events(args.events, 200_000)
    out = WORK / "pipeline_out"
    walls, peaks, stages = [], [], []
    for _ in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)
        items = ["--items", str(events.parent / "items.parquet")] if args.method == "eges" else []
        wall, peak, _ = measured([*EGES, "run", "--events", str(events), *items, "--out", str(out), "--quiet",
                                  *sets])
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
    if args.gensim:
        epochs = ["--set", f"train.epochs={args.gensim_epochs}"] if args.gensim_epochs else []
        wall, peak, _ = measured([*EGES, "stage", "skipgram", "--out", str(out), "--quiet", *sets, "--set",
                                  "train.method=bge", "--set", "train.backend=gensim", *epochs])
        manifest = json.loads((out / "manifest.json").read_text())
        skipgram = manifest["stages"]["skipgram"]
        rows.append(("gensim BGE, same walks", f"{skipgram['seconds']:.1f} s, {skipgram['details'].get('epochs', '?')} "
                     f"epoch(s), {skipgram['details']['words_per_second']:,} words/s, peak {peak:.0f} MiB"))
    settings = "PecanPy's settings" if args.pecanpy else "default settings"
    report(f"whole pipeline, {settings}, {args.method}", rows)


if __name__ == "__main__":
    sys.exit(main())
