"""The hostile-input corpus, part 3: input files. Each bad file is run into a copy of an earlier good run and must
end in one named error (exit 2, no traceback) with the good run byte-identical; some cases must instead succeed
and say what they did."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trust import (
    BAD_EDGE_LISTS,
    DATA,
    FAST,
    assert_named_error,
    assert_refused,
    copy_run,
    late_fraction,
    late_item_id,
    run_cli,
    snapshot,
)


def _events(n: int = 3000) -> pd.DataFrame:
    return pq.read_table(DATA / "events.parquet").slice(0, n).to_pandas()


def _csv_lines(tmp: Path, edit: Callable[[list[str]], None], n: int = 3000) -> Path:
    path = tmp / "events.csv"
    _events(n).to_csv(path, index=False)
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def _set_field(lines: list[str], row: int, field: int, value: str) -> None:
    parts = lines[row].split(",")
    parts[field] = value
    lines[row] = ",".join(parts)


def _parquet(tmp: Path, table: pa.Table | pd.DataFrame, name: str = "events.parquet") -> Path:
    path = tmp / name
    table = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(table, path)
    return path


def _late_type(tmp: Path) -> Path:
    """A CSV whose item ids turn into text after the rows DuckDB samples to guess the types."""
    return late_item_id(tmp, "sku-17", 60_000, 55_000)


EVENTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "a fraction 0.5 on the last of 45,000 csv lines": (lambda t: late_fraction(t, "0.5"),
                                                       "holds 1 number(s) that are not whole, e.g. 0.5"),
    "a fraction 1.5 on the last of 45,000 csv lines": (lambda t: late_fraction(t, "1.5"),
                                                       "holds 1 number(s) that are not whole, e.g. 1.5"),
    "corrupt parquet": (lambda t: _bytes(t / "events.parquet", b"PAR1" + os.urandom(3000) + b"PAR1"),
                        "cannot read events file"),
    "empty file": (lambda t: _bytes(t / "events.parquet", b""), "cannot read events file"),
    "a csv column that changes type late": (_late_type, "the first at line 55001: Error when converting column "
                                                        "\"item_id\""),
    "a quote that closes 50 lines later": (
        lambda t: _csv_lines(t, lambda ls: (_set_field(ls, 100, 3, '"pv'), _set_field(ls, 150, 3, 'pv"'))),
        "value(s) of column 'behaviour' span several lines"),
    "a ragged csv line": (lambda t: _csv_lines(t, lambda ls: ls.__setitem__(200, ls[200] + ",7,8")),
                          "could not be read, the first at line 201: Expected Number of Columns: 5 Found: 6"),
    "a short csv line": (lambda t: _csv_lines(t, lambda ls: ls.__setitem__(300, "1,2")),
                         "could not be read, the first at line 301"),
    "list<int> item ids": (lambda t: _parquet(t, pa.table({"user_id": [1, 1], "item_id": pa.array([[1], [2]]),
                                                            "timestamp": [1, 2]})),
                           "column 'item_id' (item id) has type BIGINT[]; ids must be integers or text"),
    "struct user ids": (lambda t: _parquet(t, pa.table({"user_id": [{"a": 1}, {"a": 1}], "item_id": [1, 2],
                                                         "timestamp": [1, 2]})),
                        "column 'user_id' (user id) has type STRUCT"),
    "boolean item ids": (lambda t: _parquet(t, pa.table({"user_id": [1, 1], "item_id": [True, False],
                                                         "timestamp": [1, 2]})),
                         "column 'item_id' (item id) has type BOOLEAN"),
    "fractional item ids": (lambda t: _parquet(t, _events().assign(item_id=lambda f: f["item_id"] + 0.5)),
                            "holds 3,000 number(s) that are not whole, e.g. "),
    "nan timestamps": (lambda t: _parquet(t, pa.table({"user_id": [1, 1, 1], "item_id": [1, 2, 3],
                                                       "timestamp": [1.5e9, float("nan"), 1.5e9 + 9]})),
                       "1 NaN or infinite timestamp(s)"),
    "infinite timestamps": (lambda t: _parquet(t, _events().assign(timestamp=lambda f: f["timestamp"].astype(float))
                                               .replace({"timestamp": {1511539200.0: np.inf}}).head(3000)
                                               .assign(timestamp=lambda f: f["timestamp"].where(f.index != 5, np.inf))),
                            "NaN or infinite timestamp"),
    "mixed units": (lambda t: _parquet(t, _events().assign(timestamp=lambda f: f["timestamp"].where(
        f.index != 7, f["timestamp"] * 1000))), "mixes timestamp units: most values are in s"),
    "nanoseconds read as ns": None,  # a success case, below
    "a quote in a column name": (lambda t: _parquet(t, _events().rename(columns={"timestamp": 'ti"me'})),
                                 "has no column 'timestamp' (sessions.time_col); its columns are: user_id, item_id, ti\"me"),
    "null user ids": (lambda t: _parquet(t, _events().assign(user_id=lambda f: f["user_id"].where(f.index != 3))),
                      "column 'user_id' (user id) has 1 null value(s)"),
    "a directory as events": (lambda t: (t / "dir.parquet").mkdir() or t / "dir.parquet",
                              "only the spark engine reads"),
    "a URI as events": (lambda t: "s3a://bucket/events/", "only the spark engine reads"),
    "a table as events": (lambda t: "table:db.events", "only the spark engine reads"),
    "a missing events file": (lambda t: t / "nowhere.parquet", "does not exist"),
}
EVENTS = {k: v for k, v in EVENTS.items() if v is not None}


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(EVENTS), ids=list(EVENTS))
def test_bad_event_logs_are_named_and_change_nothing(case, good_run, tmp_path):
    _, out = good_run
    make, message = EVENTS[case]
    assert_refused(out, message, "run", "--events", make(tmp_path), "--out", out, *FAST)


def _catalog(**changes) -> pd.DataFrame:
    return pq.read_table(DATA / "items.parquet").to_pandas().assign(**changes)


CATALOGS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "no id column": (lambda t: _parquet(t, _catalog().rename(columns={"item_id": "code"}), "items.parquet"),
                     "has no column 'item_id' (side_info.id_col); its columns are: code, category"),
    "no side column": (lambda t: _parquet(t, _catalog()[["item_id"]], "items.parquet"),
                       "has no usable side-information column"),
    "only null side columns": (lambda t: _parquet(t, _catalog()[["item_id"]].assign(c=pd.Series([None] * 8000,
                                                                                                 dtype="string")),
                                                  "items.parquet"), "has no usable side-information column"),
    "a float id 0.5": (lambda t: _parquet(t, _catalog().assign(item_id=lambda f: f["item_id"].astype(float)
                                                               .where(f.index != 0, 0.5)), "items.parquet"),
                       "holds 1 number(s) that are not whole, e.g. 0.5"),
    "uint64 ids beyond int64": (lambda t: _parquet(t, pa.table({
        "item_id": pa.array([2**64 - 1, 5], pa.uint64()), "category": ["a", "b"]}), "items.parquet"),
        "do not fit the event log's id type int64"),
    "list ids": (lambda t: _parquet(t, pa.table({"item_id": pa.array([[1], [2]]), "category": ["a", "b"]}),
                                    "items.parquet"), "column 'item_id' (item id) has type list<"),
    "null ids": (lambda t: _parquet(t, _catalog().assign(item_id=lambda f: f["item_id"].where(f.index != 2)),
                                    "items.parquet"), "null id(s)"),
    "a field that is not there": (lambda t: _parquet(t, _catalog(), "items.parquet"), "has no column 'colour'"),
    "ids that match nothing": (lambda t: _parquet(t, _catalog(item_id=lambda f: "sku-" + f["item_id"].astype(str)),
                                                  "items.parquet"), "no item id of the catalog's column"),
}


@pytest.mark.parametrize("case", list(CATALOGS), ids=list(CATALOGS))
def test_bad_catalogs_are_named_before_anything_is_written(case, good_run, tmp_path):
    events, out = good_run
    make, message = CATALOGS[case]
    extra = ["--set", "side_info.fields=['colour']"] if case == "a field that is not there" else []
    # --from sessions: every stage is about to run, and the catalog is checked before the first one writes. Ids
    # that match nothing can be told only against a graph that stays, so that case reuses the run's graph.
    start = [] if case == "ids that match nothing" else ["--from", "sessions"]
    assert_refused(out, message, "run", "--events", events, "--items", make(tmp_path), "--out", out, *start, *FAST,
                   *extra)


def test_a_method_that_needs_a_catalog_fails_before_the_sessions_are_cut(trust_template, tmp_path):
    events, _ = trust_template
    out = tmp_path / "new"
    assert_named_error(run_cli("run", "--events", events, "--out", out, "--method", "eges", *FAST),
                       "method eges trains on side information and needs an item catalog: give --items")
    assert sorted(p.name for p in out.iterdir()) == [".eges.lock", "manifest.json"]  # nothing but eges' marker


def test_neighbours_k_beyond_the_items_fails_before_training(trust_template, tmp_path):
    events, template = trust_template
    out = copy_run(template, tmp_path / "run")
    before = snapshot(out)
    assert_named_error(run_cli("run", "--events", events, "--out", out, "--from", "walks",
                               "--set", "neighbours.k=100000", *FAST), "neighbours.k = 100000 but the graph has only")
    assert snapshot(out) == before


@pytest.mark.parametrize("case", list(BAD_EDGE_LISTS), ids=list(BAD_EDGE_LISTS))
def test_bad_edge_lists_are_named(case, tmp_path):
    table, message = BAD_EDGE_LISTS[case]
    assert_named_error(run_cli("run", "--edges", _parquet(tmp_path, table, "edges.parquet"), "--out", tmp_path / "o",
                               *FAST), message)


@pytest.mark.parametrize("source", ["folder", "s3a://bucket/edges/", "table:db.edges"])
def test_an_edge_list_only_spark_reads_is_refused_by_duckdb(source, tmp_path):
    if source == "folder":
        (tmp_path / "edges").mkdir()
        source = tmp_path / "edges"
    assert_named_error(run_cli("run", "--edges", source, "--out", tmp_path / "o", *FAST),
                       "only the spark engine reads")
    assert not (tmp_path / "o").exists()


def test_integer_ids_of_two_widths_make_one_graph(tmp_path):
    edges = pa.table({"src": pa.array([1, 2, 3], pa.int32()), "dst": pa.array([2, 3, 1], pa.int64())})
    result = run_cli("run", "--edges", _parquet(tmp_path, edges, "edges.parquet"), "--out", tmp_path / "o",
                     "--until", "graph", *FAST)
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "o" / "graph" / "edges.parquet").num_rows == 3


def test_whole_float_ids_and_nanosecond_times_are_read_right(tmp_path):
    frame = _events(20_000)
    frame = frame.assign(item_id=frame["item_id"].astype(float), timestamp=frame["timestamp"] * 1_000_000_000)
    result = run_cli("run", "--events", _parquet(tmp_path, frame), "--out", tmp_path / "o", "--until", "sessions",
                     *FAST)
    assert result.exit_code == 0, result.output
    assert "times read in ns" in result.output
    vocab = pq.read_table(tmp_path / "o" / "sessions" / "items.parquet")
    assert vocab.schema.field("item_id").type == pa.int64()


def test_an_input_rewritten_with_size_and_mtime_restored_is_seen(tmp_path):
    events = tmp_path / "events.csv"
    _events(5000).to_csv(events, index=False)
    out = tmp_path / "run"
    assert run_cli("run", "--events", events, "--out", out, *FAST).exit_code == 0
    st = events.stat()
    lines = events.read_text().splitlines()
    user, item, ts, *rest = lines[10].split(",")
    lines[10] = ",".join([user, item, str(int(ts) + 1), *rest])  # one second later: same size, other content
    events.write_text("\n".join(lines) + "\n")
    assert events.stat().st_size == st.st_size
    os.utime(events, ns=(st.st_atime_ns, st.st_mtime_ns))
    status = run_cli("status", "--out", out).output
    assert "sessions stale input events changed" in " ".join(status.split())


def test_ties_keep_file_order_end_to_end(tmp_path):
    # One user, three items at the same second in file order 30, 10, 20: the graph has 30->10 and 10->20.
    frame = pd.DataFrame({"user_id": [1] * 4 + [2] * 4, "item_id": [30, 10, 20, 40, 30, 10, 20, 40],
                          "timestamp": [100, 100, 100, 101, 500, 500, 500, 501]})
    for name in ("ties.parquet", "ties.csv"):
        path = tmp_path / name
        frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path, index=False)
        out = tmp_path / f"out-{name}"
        assert run_cli("run", "--events", path, "--out", out, "--until", "graph", "--quiet").exit_code == 0
        nodes = pq.read_table(out / "graph" / "nodes.parquet").to_pandas().set_index("item_index")["item_id"]
        edges = pq.read_table(out / "graph" / "edges.parquet").to_pandas()
        pairs = {(nodes[s], nodes[d]) for s, d in zip(edges["src"], edges["dst"])}
        assert pairs == {(30, 10), (10, 20), (20, 40)}, name


def test_catalog_messages_show_plain_ids_and_an_all_inf_column_warns_like_an_all_null_one(good_run, tmp_path):
    """Issue 21 item 12: messages showed numpy reprs (np.int64(103378)), and a price column of only inf was
    silently unknown for every item while an all-NaN one warned."""
    import json

    events, out = good_run
    catalog = _catalog()
    first = int(catalog["item_id"].iloc[0])
    shifted = _parquet(tmp_path, catalog.assign(item_id=catalog["item_id"] + 10**9), "shifted.parquet")
    outcome = run_cli("run", "--events", events, "--items", shifted, "--out", out, *FAST)
    assert_named_error(outcome, f"catalog ids look like {first + 10**9}, log ids like ")
    assert "np." not in outcome.output
    odd = pd.concat([catalog, catalog.iloc[:2]], ignore_index=True).assign(price=float("inf"), weight=float("nan"))
    outcome = run_cli("run", "--events", events, "--items", _parquet(tmp_path, odd, "odd.parquet"), "--out", out, *FAST)
    assert outcome.exit_code == 0, outcome.output
    assert f"2 duplicate item id row(s), 0 with conflicting side information, e.g. {first}" in outcome.output
    assert "column(s) weight are entirely null and are not used" in outcome.output
    assert "number column(s) price hold no finite value (only inf, -inf or NaN) and are not used" in outcome.output
    assert "np." not in outcome.output
    details = json.loads((out / "manifest.json").read_text())["stages"]["eges"]["details"]
    assert details["non_finite_fields_skipped"] == ["price"] and "price" not in details["fields"]
