"""Daily updates against full retrains (docs/studies/updates.md, issue 20).

On a multi-day log (the generator's ``make_days``, or a prepared real log split by UTC day):

1. one update: a full run on days 1..k is the parent; day k+1 is added by
   - a full retrain on days 1..k+1 (random start, ``train.epochs`` passes),
   - updates with ``--warm-start PARENT`` on day k+1 alone (``update.events = new``) for each carry_over,
   - an update on a window of the last ``--window`` days (``update.events = window``);
   each is tested on day k+2's next-item pairs (HitRate@10/@50 and AUC against random targets, over one universe:
   every item of the log), with its training seconds (the manifest's ``train_seconds``) and its drift from the
   parent (median cosine of the items both have);
2. a chain of daily updates from day k+1 to the log's last day but one, each tested on the next day, against a
   full retrain on days 1..d.

    python benchmarks/study_updates.py --log generated --out /tmp/study-updates
    python benchmarks/study_updates.py --log taobao --out /tmp/study-updates --set walks.walks_per_node=5

Runs are BGE (no catalog) so the figures isolate the graph and the warm start, unless ``--method`` and
``--catalog`` (the prepared log's items.parquet) say otherwise; HitRates and drift then read the vectors of items
with behaviour. Each eges run is a subprocess and its output is kept in OUT/LOG/*.log. Needs ``eges run --warm-start`` (the warm start of issue 20).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(os.environ.get("EGES_DATASETS", Path.home() / ".cache" / "eges-datasets"))
DAY = 86_400


# ------------------------------------------------------------------------------------------------ the days
def day_files(log: str, folder: Path, n_days: int, events: int, items: int) -> list[Path]:
    """One events file per day (day 1 first)."""
    folder.mkdir(parents=True, exist_ok=True)
    if log == "generated":
        from eges.sample_data import START, SampleSpec, make_days

        frame, _, _ = make_days(SampleSpec(n_events=events, n_items=items), n_days)
        start = START
    else:
        frame = pd.read_parquet(ROOT / log / "events.parquet")
        counts = (frame["timestamp"] // DAY).value_counts()
        first = int(counts[counts >= 0.2 * counts.max()].index.min())  # the log's first full day (no stragglers)
        start = first * DAY
        frame = frame[frame["timestamp"] >= start]
    day = (frame["timestamp"] - start) // DAY
    files = []
    for d in sorted(day.unique())[:n_days]:
        path = folder / f"day{d + 1:02d}.parquet"
        frame[day == d].to_parquet(path, index=False)
        files.append(path)
    return files


def window(files: list[Path], first: int, last: int, folder: Path) -> Path:
    """Days first..last (1-based, inclusive) in one file."""
    path = folder / f"days{first:02d}-{last:02d}.parquet"
    if not path.exists():
        pd.concat([pd.read_parquet(f) for f in files[first - 1:last]], ignore_index=True).to_parquet(path, index=False)
    return path


# ------------------------------------------------------------------------------------------------ runs
def eges_run(out: Path, events: Path, sets: list[str], parent: Path | None = None, method: str = "bge",
             items: Path | None = None) -> dict:
    """``eges run`` up to training; (wall seconds, training seconds, graph statistics)."""
    from eges.methods import METHODS

    stage = METHODS[method].stage
    cmd = [sys.executable, "-m", "eges", "run", "--events", str(events), "--out", str(out), "--method", method,
           "--until", stage, "--quiet", *[a for s in sets for a in ("--set", s)]]
    if items is not None:
        cmd += ["--items", str(items)]
    if parent is not None:
        cmd += ["--warm-start", str(parent)]
    started = time.perf_counter()
    with open(f"{out}.log", "w") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        raise SystemExit(f"failed ({Path(f'{out}.log').read_text()[-2000:]}): {' '.join(cmd)}")
    manifest = json.loads((out / "manifest.json").read_text())
    stats = json.loads((out / "graph/stats.json").read_text())
    details = manifest["stages"][stage]["details"]
    focus = details.get("focus", {})  # focused walks (update.other_walks) train a share of each pass's tokens
    # the walk tokens trained: the walks stage's "steps" (every item of every walk) x the share kept x passes
    # (the trainer's words_per_second counts the kept tokens in the eges stage, every token in skipgram's)
    tokens = manifest["stages"]["walks"]["details"]["steps"] * focus.get("tokens_kept", 1.0) * details["epochs"]
    return {"wall": time.perf_counter() - started, "train": details["train_seconds"], "epochs": details["epochs"],
            "tokens": tokens / 1e6,
            "rule": focus.get("rule", {}),
            "edges": stats["edges"], "nodes": stats["nodes"], "update": stats.get("update")}


def vectors(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """Item ids and vectors of the items with behaviour (a catalog's cold items left out, as in a BGE run)."""
    import eges
    from eges.methods import METHODS

    table = pq.read_table(run / METHODS[eges.load(run).method].vectors)
    if "source" in table.column_names:
        table = table.filter(pc.equal(table["source"], "behaviour"))
    return table["item_id"].to_numpy(), np.stack(table["vector"].to_numpy(zero_copy_only=False)).astype(np.float32)


def test_pairs(events: Path, folder: Path, limit: int = 30_000) -> tuple[np.ndarray, np.ndarray]:
    """(previous item, item) of every consecutive pair in the day's sessions (eges's own cleaning and cut)."""
    out = folder / f"test-{events.stem}"
    subprocess.run([sys.executable, "-m", "eges", "run", "--events", str(events), "--out", str(out), "--until",
                    "sessions", "--quiet"], check=True, stdout=subprocess.DEVNULL)
    s = pq.read_table(out / "sessions/sessions.parquet", columns=["position", "item_index"]).to_pandas()
    ids = pq.read_table(out / "sessions/items.parquet").sort_by("item_index")["item_id"].to_numpy()
    item = ids[s["item_index"].to_numpy()]
    later = np.flatnonzero(s["position"].to_numpy() > 0)
    keep = np.random.default_rng(0).permutation(len(later))[:limit]
    return item[later[keep] - 1], item[later[keep]]


def scores(run: Path, pairs: tuple[np.ndarray, np.ndarray], universe: np.ndarray) -> dict[str, float]:
    """HitRate@10/@50 and AUC (against a random target per pair) of one run's vectors on a day's pairs."""
    from eges.evaluation.score import Pairs, score, summary
    from eges.evaluation.scorers import CosineScorer

    ids, vecs = vectors(run)
    matrix = np.zeros((len(universe), vecs.shape[1]), dtype=np.float32)
    has = np.zeros(len(universe), dtype=bool)
    rows = np.searchsorted(universe, ids)
    matrix[rows], has[rows] = vecs, True
    query, target = (np.searchsorted(universe, x) for x in pairs)
    neg = np.random.default_rng(1).integers(0, len(universe), len(query))
    found = summary(score("next", CosineScorer("run", matrix, has), "vectors", Pairs(query, target, query, neg),
                          ks=(10, 50)))["run"]
    return {"hr10": found["hit_rate@10"], "hr50": found["hit_rate@50"], "auc": found["auc"]}


def drift(parent: Path, child: Path) -> tuple[float, float]:
    """Median cosine and top-10 neighbour overlap of the items both runs have (the drift stage's measure)."""
    from eges.update.drift import measure

    found = measure(*vectors(parent), *vectors(child), k=10)
    return found.median_cosine, found.neighbour_overlap


def one_update(args: argparse.Namespace, files: list[Path], folder: Path, sets: list[str], parent: Path,
               arms: dict, universe: np.ndarray) -> None:
    """The one-update table: day k+1 added by a full retrain, updates per carry_over and a window update."""
    k = args.k
    pairs = test_pairs(files[k + 1], folder)
    full = folder / f"full-1-{k + 1}"
    arms[f"full retrain (days 1..{k + 1})"] = (eges_run(full, window(files, 1, k + 1, folder / "days"), sets, **catalog(args)), full)
    for f in [float(x) for x in args.carry.split(",")]:
        out = folder / f"update-{k + 1}-carry{f}"
        arms[f"update, new day, carry_over {f}"] = (
            eges_run(out, files[k], [*sets, "update.events='new'", f"update.carry_over={f}"], parent,
                     **catalog(args)), out)
    first = max(1, k + 2 - args.window)
    out = folder / f"update-{k + 1}-window"
    arms[f"update, window days {first}..{k + 1}"] = (
        eges_run(out, window(files, first, k + 1, folder / "days"), [*sets, "update.events='window'"], parent,
                 **catalog(args)), out)
    print(f"\n## One update: day {k + 1} added, tested on day {k + 2} ({len(pairs[0]):,} pairs)\n")
    print("| run | HR@10 | HR@50 | next-item AUC | passes | M tokens trained | train s | wall s | nodes | edges | "
          "drift from parent |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (info, run) in arms.items():
        s = scores(run, pairs, universe)
        d = "" if run == parent else "{:.3f} / {:.3f}".format(*drift(parent, run))
        print(f"| {name} | {s['hr10']:.4f} | {s['hr50']:.4f} | {s['auc']:.4f} | {info['epochs']} | "
              f"{info['tokens']:.1f} | {info['train']:.1f} | "
              f"{info['wall']:.0f} | {info['nodes']:,} | {info['edges']:,} | {d} |", flush=True)


def catalog(args: argparse.Namespace) -> dict:
    """The method and catalog every run of the study trains with."""
    return {"method": args.method, "items": ROOT / args.log / "items.parquet" if args.catalog else None}


# ------------------------------------------------------------------------------------------------ the study
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", default="generated", help="'generated' or a prepared log (python -m benchmarks.datasets list)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/study-updates"))
    ap.add_argument("--days", type=int, default=9, help="days of the log used")
    ap.add_argument("--events", type=int, default=135_000, help="generated log: events over all days")
    ap.add_argument("--items", type=int, default=3_000, help="generated log: catalog size")
    ap.add_argument("--k", type=int, default=4, help="the parent is trained on days 1..k")
    ap.add_argument("--carry", default="0,0.5,0.8,0.95", help="update.carry_over values of the one-update table")
    ap.add_argument("--window", type=int, default=3, help="days in the window update")
    ap.add_argument("--epochs", type=int, default=6, help="train.epochs of the full runs (updates: update.epochs)")
    ap.add_argument("--chain-carry", type=float, default=None, help="carry_over of the chain (default: the config's)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="more --set for every run")
    ap.add_argument("--skip-chain", action="store_true")
    ap.add_argument("--skip-one", action="store_true", help="skip the one-update table (the chain only)")
    ap.add_argument("--method", default="bge", help="train.method of every run (ges/eges need --catalog)")
    ap.add_argument("--catalog", action="store_true", help="a prepared log: give every run its items.parquet")
    ap.add_argument("--tag", default="", help="suffix of the chain's update folders (a second chain with other "
                    "--set reuses the full retrains)")
    args = ap.parse_args()

    folder = args.out / args.log
    files = day_files(args.log, folder / "days", args.days, args.events, args.items)
    everything = pd.concat([pd.read_parquet(f, columns=["item_id"]) for f in files])["item_id"].unique()
    universe = np.sort(everything)
    sets = [f"train.epochs={args.epochs}", *args.sets]
    k = args.k
    print(f"# {args.log}: {len(files)} days, " + ", ".join(f"{pq.ParquetFile(f).metadata.num_rows:,}" for f in files)
          + " events a day", flush=True)

    # ---------------------------------------------------------------- one update
    parent = folder / f"full-1-{k}"
    arms = {f"parent (days 1..{k})": (eges_run(parent, window(files, 1, k, folder / "days"), sets, **catalog(args)),
                                               parent)}
    if not args.skip_one:
        one_update(args, files, folder, sets, parent, arms, universe)
    if args.skip_chain:
        return
    # ---------------------------------------------------------------- a chain of daily updates
    print(f"\n## Daily updates from day {k + 1} to day {len(files) - 1}, each tested on the next day\n")
    print("| day | update HR@10 | full HR@10 | update HR@50 | full HR@50 | update / full | update AUC | full AUC | "
          "update passes | other walks / alpha | update M tokens | full M tokens | update train s | full train s | "
          "drift: median cos / top-10 overlap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    chain_sets = [*sets, "update.events='new'"]
    if args.chain_carry is not None:
        chain_sets.append(f"update.carry_over={args.chain_carry}")
    previous = parent
    for d in range(k + 1, len(files)):
        test = test_pairs(files[d], folder)
        upd = folder / ((f"chain-{d}" if args.chain_carry is None else f"chain-{d}-carry{args.chain_carry}") + args.tag)
        info_u = eges_run(upd, files[d - 1], chain_sets, previous, **catalog(args))
        full = folder / f"full-1-{d}"
        # a fresh folder's stages are reused
        info_f = eges_run(full, window(files, 1, d, folder / "days"), sets, **catalog(args))
        su, sf = scores(upd, test, universe), scores(full, test, universe)
        rule = info_u["rule"]
        ruled = f"{rule['other_walks']:.2f} / {rule['alpha']:.4f}" if rule else "set"
        print(f"| {d} | {su['hr10']:.4f} | {sf['hr10']:.4f} | {su['hr50']:.4f} | {sf['hr50']:.4f} | "
              f"{su['hr50'] / max(sf['hr50'], 1e-12):.3f} | {su['auc']:.4f} | {sf['auc']:.4f} | {info_u['epochs']} | "
              f"{ruled} | {info_u['tokens']:.1f} | {info_f['tokens']:.1f} | {info_u['train']:.1f} | "
              f"{info_f['train']:.1f} | " + "{:.3f} / {:.3f} |".format(*drift(previous, upd)), flush=True)
        previous = upd


if __name__ == "__main__":
    main()
