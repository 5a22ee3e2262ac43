"""The warm-start study (docs/studies/warm-start.md, issue 20): how many passes and which learning rate a daily
update (``eges run --warm-start``) needs to match a full retrain.

For a multi-day log, by UTC day: a parent run on days 1..k; a full retrain on days 1..k+1 (fresh, train.epochs
passes); updates on days 1..k+1 warm-started from the parent, for each update.epochs x update.alpha (with
update.events at its default, 'new', their graph is the window's counts plus the parent's edges carried over, so
days 1..k count 1 + update.carry_over times; add update.events=window to a variant for the retrain's graph);
all scored on next-item transitions of day k+2 (HitRate@10/@50 of the next item among the query's nearest by
cosine, over pairs of items every model knows), with the training seconds of each run and the median cosine of
shared items' vectors to the parent's (drift).

    python -m benchmarks.study_warm_start [--out /tmp/warm-study] [--dataset sample|taobao|yoochoose]
        [--k 7] [--epochs 1,2,3] [--alphas 0.0025,0.01,0.025] [--variants 'key=v,key=v;...']
        [--set train.dimension=32 ...] [--retrain-seeds 2,3]

``--retrain-seeds`` adds full retrains with other ``train.seed`` values: their gap to the first retrain is the
retrain's own run-to-run noise, the yardstick for an update's gap.

update.epochs = 0 lets the new slice decide the passes: its validate stage's seconds count in ``train s``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("EGES_DATASETS", Path.home() / ".cache" / "eges-datasets"))
DAY = 86_400


def inputs(name: str) -> tuple[Path, Path | None]:
    folder = ROOT / "data" if name == "sample" else DATASETS / name
    items = folder / "items.parquet"
    return folder / "events.parquet", items if items.exists() else None


def split_days(events: Path, out: Path, k: int) -> tuple[Path, Path, Path, list[str]]:
    """Events of days 1..k, of days 1..k+1, and of day k+2 (days counted back from the log's last full day)."""
    table = pq.read_table(events)
    ts = table["timestamp"].to_numpy()
    days = np.unique(ts // DAY)
    counts = np.bincount(np.searchsorted(days, ts // DAY))
    busy = days[counts >= 0.2 * np.median(counts)]  # stray early days join day 1
    first = busy[0]
    bounds = [(first + d) * DAY for d in (k, k + 1, k + 2)]
    paths = [out / "days_1_k.parquet", out / "days_1_k1.parquet", out / "day_k2.parquet"]
    pq.write_table(table.filter(pc.less(table["timestamp"], bounds[0])), paths[0])
    pq.write_table(table.filter(pc.less(table["timestamp"], bounds[1])), paths[1])
    pq.write_table(table.filter(pc.and_(pc.greater_equal(table["timestamp"], bounds[1]),
                                        pc.less(table["timestamp"], bounds[2]))), paths[2])
    names = [str(pd.to_datetime(b, unit="s").date()) for b in (first * DAY, *bounds)]
    return paths[0], paths[1], paths[2], names


def vectors(run: Path, behaviour: bool = True) -> tuple[pd.Index, np.ndarray, float]:
    """Item ids, vectors and training seconds of a finished run (behaviour items only, or with ``behaviour``
    False the cold items placed from side information only; with its validate stage's seconds when it validated:
    an update whose slice decided its passes pays for the trial too)."""
    import eges
    from eges.methods import METHODS

    loaded = eges.load(run)
    method = METHODS[loaded.method]
    table = pq.read_table(run / method.vectors)
    if "source" in table.column_names:
        keep = pc.equal(table["source"], "behaviour")
        table = table.filter(keep if behaviour else pc.invert(keep))
    elif not behaviour:
        table = table.slice(0, 0)
    manifest = json.loads((run / "manifest.json").read_text())
    seconds = manifest["stages"][method.stage]["details"]["train_seconds"]
    seconds += manifest["stages"].get("validate", {}).get("seconds", 0.0) if "validate" in manifest["stages"] else 0.0
    return (pd.Index(table["item_id"].to_pylist()), np.stack(table["vector"].to_numpy(zero_copy_only=False)),
            float(seconds))


def test_pairs(test_events: Path, out: Path, settings: list[str]) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """The next-item transitions of the test day, cut into sessions like the training log."""
    import eges
    from eges.evaluation.nested import read_sessions

    eges.run(out / "test", events=str(test_events), until="sessions", settings=settings)
    ids, _, cur, prev = read_sessions(out / "test")
    has = prev >= 0
    return ids, prev[has], cur[has]


def hit_rates(ids: pd.Index, vecs: np.ndarray, test: tuple[pd.Index, np.ndarray, np.ndarray], known: pd.Index,
              ks: tuple[int, ...] = (10, 50)) -> dict[int, float]:
    from eges.evaluation.metrics import hits_and_recall
    from eges.evaluation.scorers import CosineScorer

    test_ids, prev, cur = test
    a, b = known.get_indexer(test_ids[prev]), known.get_indexer(test_ids[cur])
    ok = (a >= 0) & (b >= 0)  # the same pairs for every model: both items known to the full retrain
    a, b = a[ok], b[ok]
    rows = ids.get_indexer(known)
    has = rows >= 0  # a model without an item's vector misses its pairs
    matrix = np.zeros((len(known), vecs.shape[1]), dtype=np.float32)
    matrix[has] = vecs[rows[has]]
    scorer = CosineScorer("m", matrix, has)
    queries, query_of_pair = np.unique(a, return_inverse=True)
    top = scorer.top_k(queries, max(ks))
    return {k: v[0] for k, v in hits_and_recall(top, query_of_pair, b, ks).items()} | {"pairs": len(a)}


def aucs(run: Path, test: tuple[pd.Index, np.ndarray, np.ndarray], known: pd.Index,
         cold: pd.Index) -> dict[str, float]:
    """Next-item AUC (the test day's next item against a random known item, by cosine to the previous one; the
    log's stand-in for link AUC) and cold AUC (pairs whose next item has no behaviour in the retrain but a
    side-information vector, against a random such item); the same pairs and candidates for every model."""
    from eges.evaluation.metrics import transition_auc

    test_ids, prev, cur = test
    src, dst = test_ids[prev], test_ids[cur]
    ids, vecs, _ = vectors(run)
    both = known.get_indexer(src) >= 0
    link, _ = transition_auc(np.asarray(ids), vecs, src[both & (known.get_indexer(dst) >= 0)],
                             dst[both & (known.get_indexer(dst) >= 0)], np.asarray(known))
    cold_ids, cold_vecs, _ = vectors(run, behaviour=False)
    to_cold = both & (cold.get_indexer(dst) >= 0)
    cold_auc, n_cold = transition_auc(np.asarray(ids.append(cold_ids)), np.concatenate([vecs, cold_vecs]),
                                      src[to_cold], dst[to_cold], np.asarray(cold)) if len(cold) else (np.nan, 0)
    return {"next AUC": link, "cold AUC": cold_auc, "cold pairs": n_cold}


def run_facts(run: Path) -> dict[str, float]:
    """The passes the training stage trained and the validate stage's seconds (0 when it did not validate)."""
    import eges
    from eges.methods import METHODS

    stages = json.loads((run / "manifest.json").read_text())["stages"]
    trained = stages[METHODS[eges.load(run).method].stage]["details"]
    trials = stages.get("validate", {}).get("details", {}).get("curve", {})
    return {"passes": trained["epochs"], "tokens kept": trained.get("focus", {}).get("tokens_kept", 1.0),
            "trial passes": sum(len(c) for c in trials.values()),
            "validate s": float(stages.get("validate", {}).get("seconds", 0.0))}


def drift(a: tuple[pd.Index, np.ndarray], b: tuple[pd.Index, np.ndarray]) -> dict[str, float]:
    """Median cosine and top-10 neighbour overlap of the shared items (the drift stage's measure)."""
    from eges.update.drift import measure

    found = measure(np.asarray(a[0]), a[1], np.asarray(b[0]), b[1], k=10)
    return {"median cos to parent": found.median_cosine, "top-10 overlap": found.neighbour_overlap}


def main() -> None:
    import eges

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/warm-study")
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--k", type=int, default=7)
    parser.add_argument("--epochs", default="1,2,3")
    parser.add_argument("--alphas", default="0.0025,0.01,0.025")
    parser.add_argument("--variants", default="", help="update settings tried per epochs x alpha, ';' between "
                        "variants, ',' between settings (e.g. 'update.events=new;update.other_walks=0.2')")
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--retrain-seeds", default="", help="more full retrains, one per train.seed (e.g. '2,3')")
    args = parser.parse_args()
    out = Path(args.out) / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    events, items = inputs(args.dataset)
    train, window, test_day, names = split_days(events, out, args.k)
    settings = ["neighbours.k=50", *args.settings]
    common = {"items": str(items) if items else None, "settings": settings, "until": "eges" if items else "skipgram"}
    eges.run(out / "parent", events=str(train), **common)
    eges.run(out / "retrain", events=str(window), **common)
    test = test_pairs(test_day, out, settings)
    parent, retrain = vectors(out / "parent"), vectors(out / "retrain")
    known, cold = retrain[0], vectors(out / "retrain", behaviour=False)[0]
    rows = []

    def row(label: str, folder: Path) -> None:
        run = vectors(folder)
        hr = hit_rates(run[0], run[1], test, known)
        rows.append({"model": label, "HR@10": hr[10], "HR@50": hr[50], "pairs": hr["pairs"],
                     **aucs(folder, test, known, cold), **run_facts(folder),
                     "train s": run[2], **drift(parent[:2], run[:2])})

    row("parent (days 1..k, no update)", out / "parent")
    row("full retrain (days 1..k+1)", out / "retrain")
    for seed in [int(x) for x in args.retrain_seeds.split(",") if x]:
        eges.run(out / f"retrain_seed{seed}", events=str(window),
                 **{**common, "settings": [*settings, f"train.seed={seed}"]})
        row(f"full retrain train.seed={seed}", out / f"retrain_seed{seed}")
    variants = args.variants.split(";") if args.variants else [""]
    for e in [int(x) for x in args.epochs.split(",")]:
        for a in [float(x) for x in args.alphas.split(",")]:
            for variant in variants:
                extra = [x for x in variant.split(",") if x]
                tag = "".join(f"_{x}" for x in extra)
                folder = out / f"update_e{e}_a{a:g}{tag}"
                eges.run(folder, events=str(window), warm_start=out / "parent",
                         **{**common, "settings": [*settings, f"update.epochs={e}", f"update.alpha={a:g}", *extra]})
                label = f"update epochs={e}{' (slice)' if e == 0 else ''} alpha={a:g}{' ' + variant if variant else ''}"
                row(label, folder)
    table = pd.DataFrame(rows)
    full = table.loc[1]
    table["HR@50 vs retrain"] = table["HR@50"] / full["HR@50"] - 1
    table["time vs retrain"] = table["train s"] / full["train s"]  # train s: training + the update's validation
    # The cost in walk tokens, free of the shared machine's noise (an update's window has the retrain's walks):
    # trained passes times the share of tokens kept, over the retrain's passes (the trial's passes not counted).
    table["tokens vs retrain"] = table["passes"] * table["tokens kept"] / (full["passes"] * full["tokens kept"])
    print(f"{args.dataset}: days {names[0]}..{names[1]} (parent), update {names[1]}..{names[2]}, test {names[2]}..{names[3]}")
    table.to_csv(out / "table.csv", index=False)
    print(markdown(table))


def markdown(table: pd.DataFrame) -> str:
    """A markdown table (pandas' needs tabulate, which eges does not depend on)."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


if __name__ == "__main__":
    main()
