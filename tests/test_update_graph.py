"""The graph of an update (a run with a parent): carried edges decay by update.carry_over, new and carried weights
add, forgotten items fall out, window mode ignores the parent, items are matched by id, and Spark equals DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from eges.config import load_config
from eges.errors import InputError
from eges.pipeline import runner
from eges.pipeline.registry import RunInputs

DAY = 86_400
T0 = 1_700_000_000
#: Day one: 40 is the most frequent item, so the parent's indices differ from the child's (where 20 leads).
DAY_ONE = [[10, 20, 30], [10, 20], [40, 50], [40, 50, 40], [40, 10]]
DAY_TWO = [[20, 30], [60, 10], [20, 30, 20], [70, 20]]


def _events(sessions: list[list[int]], start: int, text: bool = False) -> pd.DataFrame:
    """One user per session, a minute between its events."""
    rows = [(u, f"i{item}" if text else item, start + 60 * k)
            for u, items in enumerate(sessions) for k, item in enumerate(items)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


#: Tiny walks and training: every run here is complete, so that it can be a warm start's parent.
TINY = ("walks.walks_per_node=2", "walks.walk_length=4", "train.dimension=8", "train.epochs=1")


def _run(out: Path, events: pd.DataFrame, sets: tuple[str, ...] = (), parent: Path | None = None,
         until: str = "skipgram") -> Path:
    path = out.parent / f"{out.name}_events.parquet"
    events.to_parquet(path, index=False)
    config = load_config(overrides=(*TINY, *sets))
    runner.run(out, config, RunInputs(events=str(path), parent=str(parent) if parent else None), to_stage=until,
               progress=False, echo=lambda s: None)
    return out


def _edges(out: Path) -> dict[tuple[int, int], float]:
    """The graph's edges by item id (indices differ between runs)."""
    ids = pq.read_table(out / "graph/nodes.parquet").sort_by("item_index")["item_id"].to_pylist()
    e = pq.read_table(out / "graph/edges.parquet").to_pydict()
    return {(ids[s], ids[d]): w for s, d, w in zip(e["src"], e["dst"], e["weight"])}


def _nodes(out: Path) -> dict[int, dict]:
    return {r["item_id"]: r for r in pq.read_table(out / "graph/nodes.parquet").to_pylist()}


def _stats(out: Path) -> dict:
    return json.loads((out / "graph/stats.json").read_text())


@pytest.fixture
def parent(tmp_path):
    return _run(tmp_path / "parent", _events(DAY_ONE, T0))


@pytest.mark.parametrize("factor", [0.8, 0.3, 1.0])
def test_carried_weights_decay_exactly_by_the_factor(tmp_path, parent, factor):
    child = _run(tmp_path / "child", _events(DAY_TWO, T0 + DAY), (f"update.carry_over={factor}",
                                                                  "update.min_carried_weight=0"), parent)
    old, new = _edges(parent), _edges(child)
    assert old[(40, 50)] == 2.0 and new[(40, 50)] == 2.0 * factor  # exact: a carried-only edge
    assert new[(10, 20)] == old[(10, 20)] * factor
    grandchild = _run(tmp_path / "grandchild", _events([[80, 90]], T0 + 2 * DAY),
                      (f"update.carry_over={factor}", "update.min_carried_weight=0"), child)
    assert _edges(grandchild)[(40, 50)] == 2.0 * factor * factor


def test_new_and_carried_edges_add(tmp_path, parent):
    child = _run(tmp_path / "child", _events(DAY_TWO, T0 + DAY), ("update.carry_over=0.5",), parent)
    edges = _edges(child)
    assert edges[(20, 30)] == 0.5 * 1 + 2  # once yesterday, twice today
    assert edges[(60, 10)] == 1.0 and edges[(70, 20)] == 1.0  # new only
    assert edges[(10, 20)] == 0.5 * 2
    counts = _stats(child)["update"]
    assert counts["edges_new_and_carried"] == 1
    assert counts["edges_new"] == len({(20, 30), (30, 20), (60, 10), (70, 20)})
    assert counts["edges_carried"] == counts["parent_edges"] == len(_edges(parent))
    assert len(edges) == counts["edges_new"] + counts["edges_carried"] - counts["edges_new_and_carried"]


def test_min_edge_weight_applies_to_new_counts_and_the_floor_to_carried_weights(tmp_path, parent):
    sets = ("update.carry_over=0.5", "update.min_carried_weight=0.6", "graph.min_edge_weight=2")
    child = _run(tmp_path / "child", _events(DAY_TWO, T0 + DAY), sets, parent)
    edges = _edges(child)
    assert (60, 10) not in edges  # a new count of 1 is below graph.min_edge_weight
    assert edges[(20, 30)] == 2.0  # the carried 0.5 is below the floor, the new 2 counts
    parent_edges = _edges(parent)
    assert {e for e, w in parent_edges.items() if w * 0.5 >= 0.6} <= set(edges)
    assert _stats(child)["update"]["edges_decayed"] == sum(w * 0.5 < 0.6 for w in parent_edges.values())


@pytest.mark.parametrize("days_later, forgotten", [(40, True), (10, False)])
def test_items_unseen_for_forget_days_fall_out(tmp_path, parent, days_later, forgotten):
    child = _run(tmp_path / "child", _events(DAY_TWO, T0 + days_later * DAY), ("update.forget_days=30",), parent)
    nodes, edges = _nodes(child), _edges(child)
    assert (40 in nodes) is not forgotten and (50 in nodes) is not forgotten
    assert ((40, 50) in edges) is not forgotten
    assert not any(40 in e or 50 in e for e in edges) or not forgotten
    assert _stats(child)["update"]["nodes_forgotten"] == (2 if forgotten else 0)
    # items seen today get today's last event time; the others keep the parent's
    today = _events(DAY_TWO, T0 + days_later * DAY)
    assert nodes[20]["last_seen"] == today.loc[today.item_id == 20, "timestamp"].max() * 1000
    if not forgotten:
        assert nodes[40]["last_seen"] == _nodes(parent)[40]["last_seen"] and nodes[40]["count"] == 0
    never = _run(tmp_path / "never", _events(DAY_TWO, T0 + days_later * DAY), ("update.forget_days=0",), parent)
    assert 40 in _nodes(never)


def test_window_mode_ignores_the_parent(tmp_path, parent):
    window = _events(DAY_ONE[2:] + DAY_TWO, T0 + DAY)
    child = _run(tmp_path / "child", window, ("update.events='window'",), parent)
    alone = _run(tmp_path / "alone", window)
    for rel in ("graph/edges.parquet", "graph/nodes.parquet"):
        assert pq.read_table(child / rel).equals(pq.read_table(alone / rel))
    assert "update" not in _stats(child)
    recorded = json.loads((child / "manifest.json").read_text())["stages"]["graph"]["inputs"]
    assert "@parent" not in recorded
    carried = _run(tmp_path / "carried", window, (), parent)
    assert "@parent" in json.loads((carried / "manifest.json").read_text())["stages"]["graph"]["inputs"]


def test_parent_items_are_matched_by_id_not_index(tmp_path, parent):
    child = _run(tmp_path / "child", _events(DAY_TWO, T0 + DAY), ("update.carry_over=0.5",
                                                                  "update.min_carried_weight=0"), parent)
    old_index = {k: v["item_index"] for k, v in _nodes(parent).items()}
    new_index = {k: v["item_index"] for k, v in _nodes(child).items()}
    assert old_index[40] == 0 and new_index[20] == 0  # the orders differ
    expected = {e: 0.5 * w for e, w in _edges(parent).items()}
    today = _edges(_run(tmp_path / "today", _events(DAY_TWO, T0 + DAY)))
    for e, w in today.items():
        expected[e] = expected.get(e, 0.0) + w
    assert _edges(child) == expected
    assert sorted(new_index.values()) == list(range(len(new_index)))


def test_text_ids_are_matched_too(tmp_path):
    parent = _run(tmp_path / "parent", _events(DAY_ONE, T0, text=True))
    child = _run(tmp_path / "child", _events(DAY_TWO, T0 + DAY, text=True), ("update.carry_over=0.5",), parent)
    assert _edges(child)[("i40", "i50")] == 1.0


def test_a_parent_with_other_id_kinds_is_a_named_error(tmp_path, parent):
    with pytest.raises(InputError, match="item ids of another kind"):
        _run(tmp_path / "child", _events(DAY_TWO, T0 + DAY, text=True), (), parent)


def test_a_parent_without_last_seen_is_refused_before_anything_is_written(tmp_path, parent):
    nodes = parent / "graph/nodes.parquet"
    pq.write_table(pq.read_table(nodes).drop_columns(["last_seen"]), nodes)
    manifest = json.loads((parent / "manifest.json").read_text())  # re-vouch the edited file
    from eges.pipeline.io import fingerprint

    manifest["stages"]["graph"]["outputs"]["graph/nodes.parquet"] = fingerprint(nodes)
    (parent / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="no last_seen column"):
        _run(tmp_path / "child", _events(DAY_TWO, T0 + DAY), (), parent)
    assert not (tmp_path / "child" / "sessions").exists()


def test_a_parent_without_a_graph_is_refused(tmp_path, parent):
    (parent / "graph/edges.parquet").unlink()
    with pytest.raises(InputError, match="holds no recorded graph"):
        _run(tmp_path / "child", _events(DAY_TWO, T0 + DAY), (), parent)


# ------------------------------------------------------------------------------------------------ Spark
def test_spark_equals_duckdb_on_a_parent_and_a_new_day(spark, tmp_path):
    """A slice of the sample's first days as the parent, the next day as the update, with forgetting and the floor
    at work: the Spark engine's graph files and statistics are the DuckDB engine's."""
    sample = pq.read_table(Path(__file__).resolve().parents[1] / "data" / "events.parquet").to_pandas()
    start = sample["timestamp"].min()
    first = sample[sample["timestamp"] < start + 2 * DAY].head(6_000)
    day = sample[(sample["timestamp"] >= start + 4 * DAY) & (sample["timestamp"] < start + 5 * DAY)].head(3_000)
    parent = _run(tmp_path / "parent", first)
    sets = ("update.carry_over=0.6", "update.min_carried_weight=0.7", "update.forget_days=3.5",
            "graph.min_edge_weight=1")
    duck = _run(tmp_path / "duck", day, sets, parent, until="graph")
    _run(tmp_path / "spark", day, sets, parent, until="sessions")  # (Spark's sessions are tests/test_spark.py's)
    on_spark = _run(tmp_path / "spark", day, (*sets, "engine.backend=spark"), parent, until="graph")
    counts = _stats(duck)["update"]
    assert counts["edges_decayed"] > 0 and counts["nodes_forgotten"] > 0 and counts["edges_new_and_carried"] > 0
    for rel in ("graph/edges.parquet", "graph/nodes.parquet"):
        a, b = pq.read_table(duck / rel), pq.read_table(on_spark / rel)
        assert a.schema == b.schema, rel
        assert a.equals(b), rel
    a, b = _stats(duck), _stats(on_spark)
    assert b.pop("total_weight") == pytest.approx(a.pop("total_weight"), rel=1e-12)
    assert a == b
