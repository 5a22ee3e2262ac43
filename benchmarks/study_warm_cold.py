"""Where an update's cold AUC goes (docs/studies/warm-start.md, 2026-12-03 evening): after a study_warm_start run,
score each update's behaviour vectors (the query side) against each update's cold-start vectors (the side-information
rows that place cold items), and split the pairs by their query item (touched by the update's day or not, new to
the parent or not). Updates warm-started from one parent share its space (median cosine 0.95 and more to it), so
mixing their vectors says which side moved the cold AUC.

    python -m benchmarks.study_warm_cold --study /tmp/warm-study/taobao RUN [RUN ...] [--set train.dimension=32 ...]

RUN: update folders of that study (the first one's cold vectors are used for the split).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from benchmarks.study_warm_start import test_pairs, vectors

from eges.layout import NODES


def cold_auc(behaviour: Path, cold_from: Path, src: pd.Index, dst: pd.Index, cold: pd.Index) -> tuple[float, int]:
    """Cold AUC of ``behaviour``'s vectors as queries against ``cold_from``'s cold vectors, over the pairs given."""
    from eges.evaluation.metrics import transition_auc

    ids, vecs, _ = vectors(behaviour)
    cold_ids, cold_vecs, _ = vectors(cold_from, behaviour=False)
    keep = ~cold_ids.isin(ids)  # an item cold in one run may have behaviour in the other
    return transition_auc(np.asarray(ids.append(cold_ids[keep])), np.concatenate([vecs, cold_vecs[keep]]),
                          src, dst, np.asarray(cold))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, help="a study_warm_start output folder (OUT/DATASET)")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--set", dest="settings", action="append", default=[])
    args = parser.parse_args()
    out = Path(args.study)
    runs = [Path(r) if Path(r).is_absolute() else out / r for r in args.runs]
    test_ids, prev, cur = test_pairs(out / "day_k2.parquet", out, ["neighbours.k=50", *args.settings])
    known, cold = vectors(out / "retrain")[0], vectors(out / "retrain", behaviour=False)[0]
    src, dst = test_ids[prev], test_ids[cur]
    pairs = (known.get_indexer(src) >= 0) & (cold.get_indexer(dst) >= 0)
    print("| behaviour vectors of | " + " | ".join(f"cold vectors of {r.name}" for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for b in runs:
        cells = [f"{cold_auc(b, c, src[pairs], dst[pairs], cold)[0]:.4f}" for c in runs]
        print(f"| {b.name} | " + " | ".join(cells) + " |")
    parent_nodes = pq.read_table(out / "parent" / NODES, columns=["item_id", "last_seen"])
    newest = parent_nodes["last_seen"].to_numpy().max()
    nodes = pq.read_table(runs[0] / NODES, columns=["item_id", "last_seen"]).to_pandas()
    touched = pd.Index(nodes["item_id"][nodes["last_seen"] > newest])
    new = pd.Index(nodes["item_id"][~nodes["item_id"].isin(parent_nodes["item_id"].to_pylist())])
    groups = {"every query": pairs, "query touched by the day": pairs & src.isin(touched),
              "query untouched": pairs & ~src.isin(touched), "query new": pairs & src.isin(new),
              "query touched, old": pairs & src.isin(touched) & ~src.isin(new)}
    print("\n| behaviour vectors of | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for b in [out / "parent", *runs]:
        cells = []
        for mask in groups.values():
            auc, n = cold_auc(b, runs[0], src[mask], dst[mask], cold)
            cells.append(f"{auc:.3f} ({n})")
        print(f"| {b.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
