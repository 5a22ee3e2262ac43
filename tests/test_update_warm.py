"""Daily updates (``eges run --warm-start``): aligning a parent's rows, zero-pass reproduction, new items placed
from side information, lineage staleness and the refusals of incompatible parents."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import eges
from eges.layout import EGES_STATE, EGES_VECTORS, MANIFEST, SIDE_VECTORS
from eges.side_info.encode import SideInfo
from eges.update.warm import ParentState, warm_start
from trust import DATA, FAST, assert_refused, run_cli, snapshot

DAY = 86_400
#: Small runs: eight dimensions, two walks per node, one pass.
SMALL = (*FAST, "--set", "train.epochs=1")


# --------------------------------------------------------------------------------------------- the arrays
def test_shared_rows_continue_new_values_start_at_their_fields_mean_and_new_items_at_their_values():
    rng = np.random.default_rng(0)
    parent = ParentState(item_ids=[10, 20, 30], rows=rng.random((3, 4), dtype=np.float32),
                         context=rng.random((3, 4), dtype=np.float32), attention=rng.random((3, 3), dtype=np.float32),
                         value_field=["cat", "cat", "brand"], value_label=["a", "b", "x"],
                         value_rows=rng.random((3, 4), dtype=np.float32))
    # child items 30, 40 (new), 10; field cat has values b, c (new), a; brand x
    side = SideInfo(["cat", "brand"], np.array([[0, 0], [1, 0], [2, -1]], dtype=np.int32), [["b", "c", "a"], ["x"]])
    start, counts = warm_start(parent, [30, 40, 10], side, seed=1, own_weight=0.5)
    values = start.table[3:]
    np.testing.assert_array_equal(values[[0, 2, 3]], parent.value_rows[[1, 0, 2]])
    np.testing.assert_allclose(values[1], parent.value_rows[:2].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(start.table[[0, 2]], parent.rows[[2, 0]])
    np.testing.assert_array_equal(start.context[[0, 2]], parent.context[[2, 0]])
    np.testing.assert_array_equal(start.attention[[0, 2]], parent.attention[[2, 0]])
    # item 40 has the new value c (not trained by the parent) and brand x: it starts at x's row
    np.testing.assert_array_equal(start.table[1], parent.value_rows[2])
    assert not start.context[1].any()
    # export slots: shared items keep the parent's (10 -> 0, 30 -> 2), the new one takes the next; 20 (parent row 1)
    # is kept in the state with its slot
    np.testing.assert_array_equal(counts.pop("slots"), [2, 3, 0])
    assert counts.pop("next_slot") == 4
    np.testing.assert_array_equal(counts.pop("kept"), [1])
    assert counts == {"shared_items": 2, "new_items": 1, "new_items_from_side_info": 1, "dropped_items": 1,
                      "shared_values": 3, "new_values": 1}


# --------------------------------------------------------------------------------------------- the pipeline
@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """(folder, day-1 events, days 1-2 events, a day-1 parent run with the catalog): day 1 leaves out every tenth
    item, so day 2 brings new ones."""
    root = tmp_path_factory.mktemp("days")
    events = pq.read_table(DATA / "events.parquet")
    start = pc.min(events["timestamp"]).as_py()
    two = events.filter(pc.less(events["timestamp"], start + 2 * DAY))
    one = two.filter(pc.and_(pc.less(two["timestamp"], start + DAY),
                             pc.not_equal(pc.bit_wise_and(two["item_id"], 7), 0)))
    pq.write_table(one, root / "day1.parquet")
    pq.write_table(two, root / "day2.parquet")
    parent = root / "parent"
    outcome = run_cli("run", "--events", root / "day1.parquet", "--items", DATA / "items.parquet", "--out", parent,
                      "--until", "eges", "--method", "eges", *SMALL)  # not left to validation: the refusals name it
    assert outcome.exit_code == 0, outcome.output
    return root, parent


def vectors(run) -> dict:
    """Item id -> vector of the run's behaviour items (cold-start items are placed anew each run)."""
    table = pq.read_table(run / EGES_VECTORS)
    table = table.filter(pc.equal(table["source"], "behaviour"))
    return dict(zip(table["item_id"].to_pylist(), np.stack(table["vector"].to_numpy(zero_copy_only=False))))


def child_of(days, name: str, *extra: object):
    root, parent = days
    child = root / name
    outcome = run_cli("run", "--events", root / "day2.parquet", "--items", DATA / "items.parquet", "--out", child,
                      "--warm-start", parent, "--until", "eges", *SMALL, *extra)
    assert outcome.exit_code == 0, outcome.output
    return child


def test_a_warm_start_with_zero_passes_reproduces_the_parents_vectors_and_places_new_items(days):
    _, parent = days
    child = child_of(days, "zero", "--set", "update.alpha=0")
    before, after = vectors(parent), vectors(child)
    shared = [i for i in before if i in after]
    assert len(shared) > 0.9 * len(before)
    np.testing.assert_array_equal(np.stack([after[i] for i in shared]), np.stack([before[i] for i in shared]))
    # new behaviour items start from the mean of their side-information values' parent rows
    state = pq.read_table(child / EGES_STATE).to_pandas().set_index("item_id")
    old = set(pq.read_table(parent / EGES_STATE)["item_id"].to_pylist())
    new = [i for i in state.index if i not in old]
    assert new
    items = pq.read_table(DATA / "items.parquet").to_pandas().set_index("item_id")
    values = pq.read_table(parent / SIDE_VECTORS).to_pandas()
    rows = {(f, v): r for f, v, r in zip(values["field"], values["value"], values["vector"])}
    fields = json.loads(pq.read_schema(parent / EGES_STATE).metadata[b"eges.state"])["fields"]
    categorical = [f for f in fields if f != "price"]
    checked = 0
    for item in new[:20]:
        known = [rows[(f, items.loc[item, f])] for f in categorical if (f, items.loc[item, f]) in rows]
        price = [r for (f, v), r in rows.items() if f == "price"]  # a bucket label: found by the state, not here
        if len(known) == len(categorical) == 3 and price:
            own = state.loc[item, "row"]
            candidates = [np.mean([*known, p], axis=0) for p in price]
            assert min(np.abs(own - c).max() for c in candidates) < 1e-6
            checked += 1
    assert checked
    manifest = json.loads((child / MANIFEST).read_text())
    details = manifest["stages"]["eges"]["details"]
    assert details["warm_start"]["new_items"] == len(new) and details["epochs"] == 0
    assert details["lineage"]["chain"][-1]["path"] == str(parent)


def test_an_update_trains_from_the_parent_and_status_shows_the_chain(days):
    root, parent = days
    child = child_of(days, "update", "--set", "update.epochs=1")
    before, after = vectors(parent), vectors(child)
    shared = [i for i in before if i in after]
    a, b = np.stack([before[i] for i in shared]), np.stack([after[i] for i in shared])
    cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert not np.array_equal(a, b) and np.median(cos) > 0.5
    status = run_cli("status", "--out", child)
    assert f"warm start from {parent}" in status.output and "chain of updates (1)" in status.output
    grandchild = root / "grandchild"
    outcome = run_cli("run", "--events", root / "day2.parquet", "--items", DATA / "items.parquet", "--out",
                      grandchild, "--warm-start", child, "--until", "eges", *SMALL)
    assert outcome.exit_code == 0, outcome.output
    assert "chain of updates (2)" in run_cli("status", "--out", grandchild).output


def export_rows(run, to) -> dict:
    outcome = run_cli("export", "--out", run, "--format", "npy", "--to", to)
    assert outcome.exit_code == 0, outcome.output
    vocabulary = pq.read_table(to / "vocabulary.parquet")
    return dict(zip(vocabulary["item_id"].to_pylist(), vocabulary["row"].to_pylist()))


def test_exports_keep_the_parents_rows_and_append_new_items(days, tmp_path):
    root, parent = days
    day3 = root / "day3.parquet"  # day 2 without some of day 1's items: they are dropped, their rows stay vacant
    two = pq.read_table(root / "day2.parquet")
    pq.write_table(two.filter(pc.not_equal(pc.bit_wise_and(two["item_id"], 15), 1)), day3)
    child = root / "rows"
    outcome = run_cli("run", "--events", day3, "--items", DATA / "items.parquet", "--out", child,
                      "--warm-start", parent, "--until", "eges", *SMALL, "--set", "update.alpha=0",
                      "--set", "update.events=window")  # the window's graph alone: the left-out items drop out
    assert outcome.exit_code == 0, outcome.output
    before, after = export_rows(parent, tmp_path / "parent"), export_rows(child, tmp_path / "child")
    state = set(pq.read_table(parent / EGES_STATE)["item_id"].to_pylist())
    child_state = pq.read_table(child / EGES_STATE)["item_id"].to_pylist()
    nodes = set(pq.read_table(child / "graph" / "nodes.parquet")["item_id"].to_pylist())
    kept = [i for i in state if i in nodes]
    dropped = [i for i in state if i not in nodes]
    assert kept and dropped and set(child_state) >= state  # the dropped ones stay in the state, rows and all
    assert all(after[i] == before[i] for i in state)  # rows a ranking model learned stay the same items
    new = [i for i in child_state if i not in state]
    assert new and min(after[i] for i in new) > max(before[i] for i in state)
    matrix_before = np.load(tmp_path / "parent" / "embeddings.npy")
    matrix_after = np.load(tmp_path / "child" / "embeddings.npy")
    trained = set(vectors(parent)) & set(vectors(child))  # behaviour items of both (no pass: the same vectors)
    rows = [before[i] for i in kept if i in trained]
    assert len(rows) > 0.9 * len(kept)
    np.testing.assert_array_equal(matrix_after[rows], matrix_before[rows])


def test_a_parent_that_changed_makes_the_childs_training_stale(days):
    root, _ = days
    parent = root / "changing_parent"
    shutil.copytree(days[1], parent)
    child = root / "lineage"
    outcome = run_cli("run", "--events", root / "day2.parquet", "--items", DATA / "items.parquet", "--out", child,
                      "--warm-start", parent, "--until", "eges", *SMALL, "--set", "update.alpha=0")
    assert outcome.exit_code == 0, outcome.output
    assert re.search(r"^eges +fresh", run_cli("status", "--out", child).output, re.M)
    state = pq.read_table(parent / EGES_STATE)  # the parent rewritten (a rerun): other bytes, same shape
    pq.write_table(state, parent / EGES_STATE, compression="zstd")
    status = run_cli("status", "--out", child).output  # the graph carries the parent's edges: it is stale first
    assert re.search(r"^graph +stale +input parent changed", status, re.M) and re.search(r"^eges +stale", status, re.M)


def test_incompatible_or_unusable_parents_are_refused_before_anything_is_written(days, tmp_path):
    root, parent = days
    child = tmp_path / "child"
    child.mkdir()
    base = ("run", "--events", root / "day2.parquet", "--items", DATA / "items.parquet", "--out", child,
            "--warm-start", parent, *SMALL)
    # the default dimension changed (128 -> 64): a parent of the old default is refused with the setting that fits
    assert_refused(child, "has dimension 8, this run 16 (train.dimension); a warm start keeps the dimension: give "
                   "--set train.dimension=8", *base, "--set", "train.dimension=16")
    assert_refused(child, "was trained with method eges, this run trains ges", *base, "--method", "ges")
    assert_refused(child, "give --warm-start or --align-to, not both", *base, "--align-to", parent)
    fewer = tmp_path / "fewer.parquet"
    pq.write_table(pq.read_table(DATA / "items.parquet").drop_columns(["shop"]), fewer)
    assert_refused(child, "was trained on side-information fields", *base[:4], fewer, *base[5:])
    cents = tmp_path / "cents.parquet"  # price as integer cents: codes here, buckets in the parent
    items = pq.read_table(DATA / "items.parquet")
    pq.write_table(items.set_column(4, "price", pc.cast(pc.round(pc.multiply(items["price"], 100)), pa.int64())),
                   cents)
    assert_refused(child, "field(s) price (numeric in the parent, categorical here) would share no value", *base[:4], cents,
                   *base[5:])
    assert_refused(child, "holds no eges run", *base[:8], tmp_path, *SMALL)
    assert_refused(child, "no such run folder", *base[:8], tmp_path / "nowhere", *SMALL)
    old = tmp_path / "old_parent"
    shutil.copytree(parent, old)
    manifest = json.loads((old / MANIFEST).read_text())
    del manifest["stages"]["eges"]["outputs"][EGES_STATE]
    (old / MANIFEST).write_text(json.dumps(manifest))
    assert_refused(child, "rerun the parent with this eges version", *base[:8], old, *SMALL)
    garbled = tmp_path / "garbled_parent"  # a hand-edited record of its price buckets
    shutil.copytree(parent, garbled)
    manifest = json.loads((garbled / MANIFEST).read_text())
    manifest["stages"]["eges"]["details"]["numeric_bounds"]["price"] = [3.0, "x"]
    (garbled / MANIFEST).write_text(json.dumps(manifest))
    assert_refused(child, "(numeric_bounds, field 'price') are not two or more numbers in order", *base[:8], garbled,
                   *SMALL)
    assert snapshot(child) == {}


def test_a_parent_value_held_twice_matches_its_first_row():
    """A parent from before lossless value labels may hold one (field, label) twice: its first row, not a crash."""
    import pandas as pd

    from eges.update.warm import match

    parent = pd.MultiIndex.from_arrays([["big", "big", "cat"], ["1.23457e+06", "1.23457e+06", "a"]])
    child = pd.MultiIndex.from_arrays([["cat", "big", "cat"], ["a", "1.23457e+06", "b"]])
    assert match(parent, child).tolist() == [2, 0, -1]


def test_a_small_integer_field_read_the_other_way_still_shares_its_values(days, tmp_path):
    """A 0-3 tier bucketed one value per bucket in the parent is labelled by its values, as codes are: a child that
    reads it as codes shares every value, so it is not refused (the price-in-cents case above is)."""
    root, _ = days
    items = pq.read_table(DATA / "items.parquet")
    tiers = tmp_path / "tiers.parquet"
    pq.write_table(items.append_column("tier", pc.bit_wise_and(items["item_id"], 3)), tiers)
    parent, child = tmp_path / "parent", tmp_path / "child"
    outcome = run_cli("run", "--events", root / "day1.parquet", "--items", tiers, "--out", parent, "--until", "eges",
                      "--method", "eges", *SMALL, "--set", 'side_info.numeric=["tier"]')
    assert outcome.exit_code == 0, outcome.output
    outcome = run_cli("run", "--events", root / "day2.parquet", "--items", tiers, "--out", child, "--warm-start",
                      parent, "--until", "eges", *SMALL, "--set", "update.alpha=0")
    assert outcome.exit_code == 0, outcome.output
    details = json.loads((child / MANIFEST).read_text())["stages"]["eges"]["details"]
    assert details["fields"]["tier"] == "categorical" and details["warm_start"]["new_values"] == 0


def test_bge_warm_starts_too(days):
    """The skipgram stage: zero passes reproduce the parent's BGE vectors; new items start small and random."""
    root, _ = days
    parent, child = root / "bge_parent", root / "bge_child"
    outcome = run_cli("run", "--events", root / "day1.parquet", "--out", parent, "--until", "skipgram", *SMALL)
    assert outcome.exit_code == 0, outcome.output
    settings = [s for s in SMALL if "=" in s] + ["update.alpha=0"]
    eges.run(child, events=str(root / "day2.parquet"), warm_start=parent, until="skipgram", settings=settings)
    before, after = (pq.read_table(run / "skipgram" / "vectors.parquet").to_pandas().set_index("item_id")
                     for run in (parent, child))
    shared = before.index.intersection(after.index)
    assert len(shared) > 0.9 * len(before) and len(after) > len(shared)
    np.testing.assert_array_equal(np.stack(after.loc[shared, "vector"]), np.stack(before.loc[shared, "vector"]))
    new = np.stack(after.loc[after.index.difference(before.index), "vector"])
    assert np.abs(new).max() <= 0.5 / 8 and np.abs(new).max() > 0  # the trainer's fresh rows: (-0.5, 0.5) / dim



@pytest.fixture(scope="module")
def cheap_parent(days, tmp_path_factory):
    """A parent trained on a catalog without the dearest 30% of the items: the whole catalog has other quantiles."""
    root, _ = days
    folder = tmp_path_factory.mktemp("cheap")
    items = pq.read_table(DATA / "items.parquet")
    cheap = folder / "cheap.parquet"
    pq.write_table(items.filter(pc.less(items["price"], np.quantile(items["price"].to_numpy(), 0.7))), cheap)
    parent = folder / "parent"
    outcome = run_cli("run", "--events", root / "day1.parquet", "--items", cheap, "--out", parent, "--until", "eges",
                      "--method", "eges", *SMALL)
    assert outcome.exit_code == 0, outcome.output
    return parent


def price_rows(run) -> dict:
    """The run's price buckets: label -> value vector."""
    values = pq.read_table(run / SIDE_VECTORS).to_pandas()
    price = values[values["field"] == "price"]
    return dict(zip(price["value"], price["vector"]))


def test_a_grown_catalog_keeps_the_parents_price_buckets_and_their_rows(days, cheap_parent, tmp_path):
    """The parent's catalog lacks the dearest items; the child's has them all, which moves every price quantile. The
    child cuts price with the parent's bounds, so each bucket keeps its label and starts from the parent's row (cut
    afresh, none of its 10 buckets kept its label); an older parent's bounds are read from its labels."""
    root, _ = days
    parent = cheap_parent
    bounds = json.loads((parent / MANIFEST).read_text())["stages"]["eges"]["details"]["numeric_bounds"]
    assert len(bounds["price"]) == 11 and set(bounds) == {"price"}
    old = tmp_path / "old_parent"  # a parent from before recorded bounds
    shutil.copytree(parent, old)
    manifest = json.loads((old / MANIFEST).read_text())
    del manifest["stages"]["eges"]["details"]["numeric_bounds"]
    (old / MANIFEST).write_text(json.dumps(manifest))
    before = price_rows(parent)
    for run in (parent, old):
        child = tmp_path / f"child_of_{run.name}"
        outcome = run_cli("run", "--events", root / "day2.parquet", "--items", DATA / "items.parquet", "--out", child,
                          "--warm-start", run, "--until", "eges", *SMALL, "--set", "update.alpha=0")
        assert outcome.exit_code == 0, outcome.output
        after = price_rows(child)
        assert list(after) == list(before)
        np.testing.assert_array_equal(np.stack(list(after.values())), np.stack(list(before.values())))
        details = json.loads((child / MANIFEST).read_text())["stages"]["eges"]["details"]
        assert details["fields"]["price"] == "numeric (10 quantile buckets, the parent's)"
        assert len(details["numeric_bounds"]["price"]) == 11  # its own children cut the same way


def test_the_warm_slice_cuts_the_catalog_as_the_update_trains_it(days, cheap_parent, tmp_path, monkeypatch):
    """update.epochs = 0: the validate stage's trial starts from the parent's rows matched by label too, so it must
    cut price with the parent's bounds, as the training stage does."""
    import eges.validation

    root, _ = days
    seen = []
    real = eges.validation.fit_and_score

    def spy(holdout, config, method, side, **kw):
        seen.append(side.values[side.fields.index("price")])
        return real(holdout, config, method, side, **kw)

    monkeypatch.setattr(eges.validation, "fit_and_score", spy)
    child = tmp_path / "child"
    outcome = run_cli("run", "--events", root / "day2.parquet", "--items", DATA / "items.parquet", "--out", child,
                      "--warm-start", cheap_parent, "--until", "eges", *SMALL, "--set", "update.epochs=0")
    assert outcome.exit_code == 0, outcome.output
    assert seen == [list(price_rows(cheap_parent))]
    assert list(price_rows(child)) == seen[0]


def test_buckets_that_share_a_label_continue_the_parents_rows_in_order():
    """An epoch-seconds column's buckets all read "[1.7e+09, 1.7e+09)" ('{:g}' keeps six digits); cut with the
    parent's bounds the child holds them in the parent's order, so each continues its own row, not the first's."""
    rng = np.random.default_rng(0)
    label = "[1.7e+09, 1.7e+09)"
    parent = ParentState(item_ids=[1], rows=rng.random((1, 4), dtype=np.float32),
                         context=rng.random((1, 4), dtype=np.float32), attention=rng.random((1, 3), dtype=np.float32),
                         value_field=["cat", "t", "t", "t"], value_label=["a", label, label, label],
                         value_rows=rng.random((4, 4), dtype=np.float32))
    side = SideInfo(["t", "cat"], np.array([[2, 0]], dtype=np.int32), [[label] * 3, ["a"]])
    start, counts = warm_start(parent, [1], side, seed=1, own_weight=0.5)
    np.testing.assert_array_equal(start.table[1:], parent.value_rows[[1, 2, 3, 0]])
    assert counts["shared_values"] == 4 and counts["new_values"] == 0
    empty = ParentState(item_ids=[1], rows=parent.rows, context=parent.context, attention=parent.attention,
                        value_field=[], value_label=[], value_rows=np.zeros((0, 4), np.float32))
    assert warm_start(empty, [1], side, seed=1, own_weight=0.5)[1]["new_values"] == 4
