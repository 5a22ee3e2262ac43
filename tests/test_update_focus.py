"""An update's walks focused on the items its new events touched (``update.other_walks``): which walks are kept,
and that an update trained on them keeps a vector for every item, the parent's own row for items no kept walk
centres on."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

import eges
from eges.layout import EGES_STATE, EGES_VECTORS, MANIFEST, NODES
from eges.update.focus import filter_walks, kept_walks, touched_items, training_counts
from trust import DATA

SMALL = ["walks.walks_per_node=4", "train.dimension=16"]


def test_walks_from_touched_items_are_kept_and_a_share_of_the_others():
    values = np.array([0, 1, 2, 1, 2, 2, 0, 3], dtype=np.int32)
    offsets = np.array([0, 3, 5, 8])  # walks 0-1-2, 1-2, 2-0-3
    touched = touched_items(np.array([1, 2, 3]), np.array([5, 20, 30]), 4, since_ms=10, before_ms=30)
    np.testing.assert_array_equal(touched, [False, False, True, False])  # 1 is old, 3 at the cut
    keep = np.array([False, True, True])
    kept_values, kept_offsets = filter_walks(values, offsets, keep)
    np.testing.assert_array_equal(kept_values, [1, 2, 2, 0, 3])
    np.testing.assert_array_equal(kept_offsets, [0, 2, 5])
    starts = np.random.default_rng(1).integers(0, 4, 20_000)
    kept = kept_walks(starts, touched, 0.25, seed=3)
    assert kept[starts == 2].all()
    assert abs(kept[starts != 2].mean() - 0.25) < 0.02
    np.testing.assert_array_equal(kept, kept_walks(starts, touched, 0.25, seed=3))  # the same walks every pass
    np.testing.assert_array_equal(training_counts(np.array([0, 4, 0]), np.array([2, 9, 0])), [1, 4, 0])


def _rows(run, path) -> dict:
    table = pq.read_table(run / path)
    if "source" in table.column_names:
        table = table.filter(pc.equal(table["source"], "behaviour"))
    column = "row" if "row" in table.column_names else "vector"
    return dict(zip(table["item_id"].to_pylist(), np.stack(table[column].to_numpy(zero_copy_only=False))))


def test_a_focused_update_trains_fewer_tokens_and_keeps_every_items_vector(tmp_path):
    events = pq.read_table(DATA / "events.parquet").slice(0, 20_000)
    ts = events["timestamp"]
    middle = pc.min(ts).as_py() + (pc.max(ts).as_py() - pc.min(ts).as_py()) // 2
    pq.write_table(events.filter(pc.less(ts, middle)), tmp_path / "first.parquet")
    pq.write_table(events, tmp_path / "all.parquet")
    items = str(DATA / "items.parquet")
    eges.run(tmp_path / "parent", events=str(tmp_path / "first.parquet"), items=items,
             settings=[*SMALL, "train.epochs=1", "train.method=eges"], until="eges")
    for name, share in (("all", 1.0), ("focused", 0.0)):
        eges.run(tmp_path / name, events=str(tmp_path / "all.parquet"), warm_start=str(tmp_path / "parent"),
                 items=items, until="eges", settings=[*SMALL, "train.method=eges", "update.epochs=1",
                                                      "update.events=window", f"update.other_walks={share}"])
    # no item loses its behaviour vector (an item only dropped walks visit is not placed as a cold item)
    assert _rows(tmp_path / "focused", EGES_VECTORS).keys() == _rows(tmp_path / "all", EGES_VECTORS).keys()
    details = json.loads((tmp_path / "focused" / MANIFEST).read_text())["stages"]["eges"]["details"]
    parent_seen = pq.read_table(tmp_path / "parent" / NODES)["last_seen"].to_numpy().max()
    nodes = pq.read_table(tmp_path / "focused" / NODES)
    assert details["focus"]["touched_items"] == int((nodes["last_seen"].to_numpy() > parent_seen).sum()) > 0
    assert 0 < details["focus"]["tokens_kept"] < 1
    parent = _rows(tmp_path / "parent", EGES_STATE)
    focused, everything = _rows(tmp_path / "focused", EGES_STATE), _rows(tmp_path / "all", EGES_STATE)
    untouched = set(nodes["item_id"].to_numpy()[nodes["last_seen"].to_numpy() <= parent_seen].tolist()) & parent.keys()
    # untouched items no kept walk centres on keep the parent's own row; training on every walk moves them all
    assert [i for i in untouched if np.array_equal(focused[i], parent[i])]
    assert not [i for i in untouched if np.array_equal(everything[i], parent[i])]


def test_a_third_of_a_fresh_runs_tokens_buys_more_passes_on_focused_walks():
    from eges.config import TrainConfig, UpdateConfig
    from eges.pipeline.parent import warm_train_config

    fresh = TrainConfig(epochs=10)
    passes = {kept: warm_train_config(fresh, UpdateConfig(epochs=-1), kept=kept)[1]
              for kept in (1.0, 0.839, 0.349, 0.05)}
    assert passes == {1.0: 3, 0.839: 3, 0.349: 9, 0.05: 10}  # at most a third of the tokens, a fresh run's passes
    cfg, chosen = warm_train_config(fresh, UpdateConfig(epochs=0), {"epochs": 4, "schedule_epochs": 10}, kept=0.349)
    assert (cfg.epochs, chosen) == (10, 4)  # the slice's choice, its learning rate decaying as on its curve
    assert warm_train_config(fresh, UpdateConfig(epochs=0), None)[1] == 3  # no slice: the -1 rule
    assert warm_train_config(fresh, UpdateConfig(epochs=-1, alpha=0.0))[1] == 0
