"""A warm start's numeric buckets for a parent from before recorded bounds (pipeline/parent_buckets.parent_cuts): its items
keep their buckets, and its damaged or garbled files are refused by name before anything is written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from eges.layout import EGES_STATE, EGES_VECTORS, MANIFEST, SIDE_VECTORS, STATE_KEY
from trust import DATA, FAST, assert_refused, run_cli, snapshot

DAY = 86_400
SMALL = (*FAST, "--set", "train.epochs=1")


@pytest.fixture(scope="module")
def older_parent(tmp_path_factory):
    """(folder, events, catalog, parent): a day-one parent whose catalog has a listing time in epoch seconds (items
    listed within one day), its manifest without numeric_bounds, as an eges from before them left it."""
    root = tmp_path_factory.mktemp("older")
    events = pq.read_table(DATA / "events.parquet")
    day1 = root / "day1.parquet"
    pq.write_table(events.filter(pc.less(events["timestamp"], pc.min(events["timestamp"]).as_py() + DAY)), day1)
    items = pq.read_table(DATA / "items.parquet")
    listed = 1.7e9 + np.random.default_rng(0).integers(0, DAY, items.num_rows).astype(float)
    catalog = root / "items.parquet"
    pq.write_table(items.append_column("listed_at", pa.array(listed)), catalog)
    parent = root / "parent"
    outcome = run_cli("run", "--events", day1, "--items", catalog, "--out", parent, "--until", "eges", "--method",
                      "eges", *SMALL)
    assert outcome.exit_code == 0, outcome.output
    manifest = json.loads((parent / MANIFEST).read_text())
    del manifest["stages"]["eges"]["details"]["numeric_bounds"]
    (parent / MANIFEST).write_text(json.dumps(manifest))
    return root, day1, catalog, parent


def test_an_older_parents_buckets_read_back_from_labels_keep_its_items_in_their_buckets(older_parent):
    """parent_cuts reads an older parent's bounds back from its '{:g}' labels. Cutting the parent's own catalog with
    them must put every item where the parent put it; for epoch seconds six digits are 10,000 s, wider than a bucket
    (8,640 s), so about a quarter of the items change bucket and one bucket is left empty (each then starts from
    another bucket's row, and the chain keeps that cut for good). Before the change the child cut afresh: 0 moved."""
    from eges.config import default_config
    from eges.pipeline.parent_buckets import parent_cuts
    from eges.pipeline.side_info_stage import read_catalog
    from eges.side_info.encode import encode

    _, _, catalog_path, parent = older_parent
    catalog, fields, _ = read_catalog(catalog_path, default_config().side_info)
    ids = catalog["item_id"].tolist()
    as_parent, _ = encode(catalog, ids, "item_id", fields, 10, ())  # how the parent cut it
    as_child, _ = encode(catalog, ids, "item_id", fields, 10, (), parent_cuts(str(parent)))
    k = fields.index("listed_at")
    assert as_child.values[k] == as_parent.values[k]  # the labels match (what the new tests check) ...
    moved = int((as_child.codes[:, k] != as_parent.codes[:, k]).sum())
    assert moved == 0, f"{moved} of {len(ids)} items change bucket"  # ... the codes do not (1,931 move)


def test_a_zero_pass_child_of_an_older_parent_on_the_same_log_and_catalog_writes_the_parents_vectors(older_parent):
    """update.alpha = 0 on the parent's own log and catalog: nothing trains, so every vector must be the parent's (it
    is for a parent that recorded its bounds, and was for an older parent before the change)."""
    root, day1, catalog, parent = older_parent
    child = root / "zero"
    outcome = run_cli("run", "--events", day1, "--items", catalog, "--out", child, "--warm-start", parent, "--until",
                      "eges", *SMALL, "--set", "update.alpha=0")
    assert outcome.exit_code == 0, outcome.output
    before, after = (pq.read_table(run / EGES_VECTORS).to_pandas().set_index("item_id")["vector"]
                     for run in (parent, child))
    changed = [i for i in before.index if not np.array_equal(before[i], after[i])]
    assert not changed, f"{len(changed)} of {len(before)} vectors changed at zero passes"


def test_an_older_parent_with_unreadable_value_rows_is_refused_by_name(older_parent, tmp_path):
    """check_parent reads an older parent's labels (parent_cuts, "readable, before anything is written"): a damaged
    side_info_vectors.parquet must be a named error (exit 2), not a pyarrow traceback."""
    root, day1, catalog, parent = older_parent
    damaged = tmp_path / "damaged"
    shutil.copytree(parent, damaged)
    path = damaged / SIDE_VECTORS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    child = tmp_path / "child"
    child.mkdir()
    assert_refused(child, "--warm-start", "run", "--events", day1, "--items", catalog, "--out", child,
                   "--warm-start", damaged, "--until", "eges", *SMALL)


def parent_codes(catalog_path, parent, grown=None):
    """(codes of the parent's cut, codes of a child's cut with parent_cuts) of listed_at for the parent's items; the
    child reads ``grown`` (default: the parent's catalog)."""
    from eges.config import default_config
    from eges.pipeline.parent_buckets import parent_cuts
    from eges.pipeline.side_info_stage import read_catalog
    from eges.side_info.encode import encode

    scfg = default_config().side_info
    catalog, fields, _ = read_catalog(catalog_path, scfg)
    ids = catalog["item_id"].tolist()
    ours, _ = read_catalog(grown or catalog_path, scfg)[:2]
    as_parent, _ = encode(catalog, ids, "item_id", fields, 10, ())
    as_child, _ = encode(ours, ids, "item_id", fields, 10, (), parent_cuts(str(parent), ours, scfg))
    k = fields.index("listed_at")
    return as_parent.codes[:, k], as_child.codes[:, k]


def test_a_grown_catalog_keeps_an_older_parents_items_in_their_buckets(older_parent):
    """The next day lists 2,000 more items: cut afresh every quantile moves, and the labels (all "[1.7e+09, 1.7e+09)"
    or so) cannot give the edges back; the parent's catalog file, unchanged, gives them exactly."""
    root, _, catalog, parent = older_parent
    items = pq.read_table(catalog)
    later = pa.table({"item_id": pa.array(np.arange(2_000) + 10_000_000, items["item_id"].type),
                      **{c: items[c].slice(0, 2_000) for c in items.column_names if c not in ("item_id", "listed_at")},
                      "listed_at": 1.7e9 + DAY + np.arange(2_000, dtype=float) * 40})
    grown = root / "grown.parquet"
    pq.write_table(pa.concat_tables([items, later.select(items.column_names)]), grown)
    before, after = parent_codes(catalog, parent, grown)
    moved = int((before != after).sum())
    assert moved == 0, f"{moved} of {len(before)} of the parent's items change bucket"


def test_an_older_parents_catalog_file_is_used_only_while_unchanged(older_parent, tmp_path):
    """A parent whose recorded catalog file changed since it trained is not recut from it: its labels alone decide
    (listed_at's collapse, so it is cut afresh; price's bounds are read back)."""
    from eges.pipeline.parent_buckets import parent_cuts

    root, _, catalog, parent = older_parent
    assert "listed_at" in parent_cuts(str(parent))
    changed, moved = tmp_path / "changed.parquet", tmp_path / "parent"
    items = pq.read_table(catalog)
    pq.write_table(items.set_column(1, items.column_names[1], items[1].take(np.roll(np.arange(items.num_rows), 1))),
                   changed)
    shutil.copytree(parent, moved)
    manifest = json.loads((moved / MANIFEST).read_text())
    manifest["inputs"]["items"] = str(changed)
    (moved / MANIFEST).write_text(json.dumps(manifest))
    assert set(parent_cuts(str(moved))) == {"price"}  # its labels' bounds do not collapse; listed_at's do
    manifest["inputs"]["items"] = str(catalog)  # unchanged again, but its recorded settings hand-edited
    manifest["stages"]["eges"]["config"]["side_info"] = ["garbled"]
    (moved / MANIFEST).write_text(json.dumps(manifest))
    assert set(parent_cuts(str(moved))) == {"price"}


def test_garbled_bounds_are_refused_before_anything_is_written_whatever_the_parent_trained(older_parent, tmp_path):
    """A parent whose eges stage trained BGE (chosen on its validation slice) still records the bounds its catalog
    was cut with, and the child's stages cut with them: garbled, they are refused before the first stage writes."""
    root, day1, catalog, parent = older_parent
    bge = tmp_path / "bge_parent"
    shutil.copytree(parent, bge)
    state = pq.read_table(bge / EGES_STATE)
    meta = json.loads(state.schema.metadata[STATE_KEY])
    pq.write_table(state.replace_schema_metadata({STATE_KEY: json.dumps({**meta, "method": "bge"}).encode()}),
                   bge / EGES_STATE, compression="none")
    manifest = json.loads((bge / MANIFEST).read_text())
    entry = manifest["stages"]["eges"]
    entry["details"]["numeric_bounds"] = {"listed_at": [3.0, "x"]}
    entry["outputs"].pop(EGES_STATE)  # so the parent's fingerprint does not look at the rewritten file
    entry["outputs"][EGES_STATE] = {"size": (bge / EGES_STATE).stat().st_size, "mtime_ns": 0, "digest": "x"}
    (bge / MANIFEST).write_text(json.dumps(manifest))
    child = tmp_path / "child"
    child.mkdir()
    assert_refused(child, "(numeric_bounds, field 'listed_at') are not two or more numbers in order", "run",
                   "--events", day1, "--items", catalog, "--out", child, "--warm-start", bge, *SMALL)
    assert snapshot(child) == {}
