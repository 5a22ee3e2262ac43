"""Bad input gets one clear error naming the problem, and leaves earlier outputs untouched."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA
from eges import layout

FAST = ["--set", "walks.walks_per_node=2", "--set", "train.epochs=1", "--set", "train.dimension=8",
        "--quiet"]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    from click.testing import CliRunner

    from eges.cli import main

    root = tmp_path_factory.mktemp("good")
    events = pq.read_table(DATA / "events.parquet").slice(0, 30_000)
    pq.write_table(events, root / "events.parquet")
    out = root / "out"
    result = CliRunner().invoke(main, ["run", "--events", str(root / "events.parquet"), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    return root, out


def snapshot(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def base_frame(n=20):
    return pd.DataFrame({"user_id": [1] * n, "item_id": list(range(n)), "timestamp": list(range(0, 10 * n, 10))})


def write(tmp_path, frame, name="bad.parquet"):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


CASES = {
    "missing column": (lambda: base_frame().rename(columns={"timestamp": "when"}),
                       "has no column 'timestamp' (sessions.time_col); its columns are: user_id, item_id, when; "
                       "set the column with --set sessions.time_col=NAME"),
    "null user": (lambda: base_frame().assign(user_id=[None] + [1] * 19),
                  "column 'user_id' (user id) has 1 null value(s)"),
    "null item": (lambda: base_frame().assign(item_id=[1.0, None] + [2.0] * 18),
                  "column 'item_id' (item id) has 1 null value(s)"),
    "unparsable time": (lambda: base_frame().assign(timestamp=["2020-01-01 10:00:00"] * 19 + ["yesterday"]),
                        "column 'timestamp' has 1 unparsable timestamp(s), e.g. 'yesterday'"),
    "negative time": (lambda: base_frame().assign(timestamp=[-5] + list(range(19))),
                      "column 'timestamp' has 1 negative timestamp(s)"),
    "empty after cleaning": (lambda: base_frame().assign(user_id=list(range(20))),
                             "no events are left after cleaning"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_events_fail_clearly_and_keep_outputs(case, good_run, cli, tmp_path):
    make, message = CASES[case]
    _, out = good_run
    before = snapshot(out)
    result = cli("run", "--events", write(tmp_path, make()), "--out", out, *FAST, ok=False)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert snapshot(out) == before


def test_bad_csv_timestamps(cli, tmp_path):
    frame = base_frame().assign(timestamp=["1500000000"] * 19 + ["noon"])
    result = cli("run", "--events", write(tmp_path, frame, "bad.csv"), "--out", tmp_path / "o", ok=False)
    assert "unparsable timestamp(s), e.g. 'noon'" in result.output


@pytest.mark.parametrize("content, message", [
    (b"this is not parquet", "cannot read events file"),
    (None, "does not exist"),
])
def test_unreadable_files(content, message, cli, tmp_path):
    path = tmp_path / "events.parquet"
    if content is not None:
        path.write_bytes(content)
    result = cli("run", "--events", path, "--out", tmp_path / "o", ok=False)
    assert result.exit_code == 2 and message in result.output


def test_config_typo_is_named_and_nothing_runs(good_run, cli):
    root, out = good_run
    before = snapshot(out)
    result = cli("run", "--events", root / "events.parquet", "--out", out, "--set", "walks.lenght=3", ok=False)
    assert result.exit_code == 2 and "unknown config key walks.lenght" in result.output
    assert snapshot(out) == before


def test_interrupted_stage_leaves_nothing_that_looks_complete(good_run, cli, monkeypatch, tmp_path):
    root, _ = good_run
    out = tmp_path / "out"

    def broken(graph, cfg):
        yield from []
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C in the middle of writing walks

    import eges.walks.generate as gen

    monkeypatch.setattr(gen, "iter_walk_batches", broken)
    result = cli("run", "--events", root / "events.parquet", "--out", out, *FAST, ok=False)
    assert result.exit_code == 130 and result.output.strip().endswith("\ninterrupted; nothing recorded for walks")
    assert not (out / layout.WALKS).exists()
    assert not [p for p in out.rglob("*.tmp")]
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["sessions", "graph"]
    monkeypatch.undo()
    result = cli("run", "--events", root / "events.parquet", "--out", out, *FAST)
    assert "sessions: fresh" in result.output and "walks: " in result.output


def test_stage_without_a_run(cli, tmp_path):
    result = cli("stage", "walks", "--out", tmp_path, ok=False)
    assert result.exit_code == 2 and "no pipeline run" in result.output


def test_edge_list_input(cli, tmp_path):
    edges = pa.table({"src": ["a", "a", "b", "c"], "dst": ["b", "c", "c", "a"], "weight": [1.0, 3.0, 2.0, 1.0]})
    pq.write_table(edges, tmp_path / "edges.parquet")
    out = tmp_path / "out"
    result = cli("run", "--edges", tmp_path / "edges.parquet", "--out", out, *FAST, "--set", "neighbours.k=2")
    assert "sessions" not in result.output and "graph: 4 rows in -> 4 out" in result.output
    vectors = pq.read_table(out / "skipgram" / "vectors.parquet")
    assert sorted(vectors["item_id"].to_pylist()) == ["a", "b", "c"]
    neighbours = pq.read_table(out / "neighbours" / "neighbours.parquet").to_pydict()
    assert sorted(neighbours["item_id"]) == ["a", "b", "c"] and all(len(n) == 2 for n in neighbours["neighbours"])
    result = cli("run", "--edges", tmp_path / "edges.parquet", "--out", out, *FAST, "--set", "neighbours.k=3",
                 ok=False)
    assert result.exit_code == 2 and "neighbours.k = 3 but the graph has only 3 items" in result.output
    bad = pa.table({"src": ["a", None], "dst": ["b", "c"]})
    pq.write_table(bad, tmp_path / "bad.parquet")
    result = cli("run", "--edges", tmp_path / "bad.parquet", "--out", tmp_path / "o2", ok=False)
    assert "column 'src' has 1 null id(s)" in result.output
