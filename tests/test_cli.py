"""End to end on the bundled sample: outputs, reruns that skip fresh stages, --set, stage, status, --from."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA, invoke_cli

FAST = ["--set", "walks.walks_per_node=5", "--set", "train.epochs=2", "--set", "train.dimension=32",
        "--method", "bge", "--quiet"]


def mtimes(out):
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.rglob("*.parquet")}


def ran(result) -> list[str]:
    return [line.split(":")[0] for line in result.output.splitlines()
            if " rows in -> " in line]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "out"
    return out, invoke_cli("run", "--events", DATA / "events.parquet", "--items", DATA / "items.parquet",
                           "--out", out, *FAST)


def test_full_run_writes_every_stage(sample_run):
    out, result = sample_run
    assert ran(result) == ["sessions", "graph", "walks", "skipgram", "neighbours", "users"]
    assert f"item vectors: {out / 'skipgram' / 'vectors.parquet'}" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["sessions", "graph", "walks", "skipgram", "neighbours", "users"]
    sessions = manifest["stages"]["sessions"]
    assert sessions["rows_in"] == pq.ParquetFile(DATA / "events.parquet").metadata.num_rows
    assert sessions["details"]["spam_users"] == 3  # the generator's crawlers
    assert sessions["details"]["short_dwell_dropped"] > 0 and sessions["details"]["repeats_collapsed"] > 0
    for entry in manifest["stages"].values():
        assert entry["seconds"] >= 0 and "numpy" in entry["versions"] and entry["outputs"]
    vectors = pq.read_table(out / "skipgram" / "vectors.parquet")
    assert vectors.schema.field("item_id").type == pa.int64()
    assert vectors.schema.field("vector").type == pa.list_(pa.float32(), 32)
    vocab = pq.read_table(out / "sessions" / "items.parquet")
    walks = pq.ParquetFile(out / "walks" / "walks.parquet")
    assert walks.schema_arrow.field("walk").type == pa.list_(pa.int32())
    visited = np.unique(pq.read_table(out / "walks" / "walks.parquet")["walk"].combine_chunks().flatten().to_numpy())
    # BGE gives a vector to every item some walk visits (an item no walk reaches has nothing to learn from).
    expected = vocab.filter(pa.compute.is_in(vocab["item_index"], pa.array(visited.astype(np.int32))))["item_id"]
    assert sorted(vectors["item_id"].to_pylist()) == sorted(expected.to_pylist())
    assert vectors.num_rows >= 0.99 * vocab.num_rows
    stats = json.loads((out / "graph" / "stats.json").read_text())
    assert stats["nodes"] == vocab.num_rows


def test_keyed_vectors_load_with_item_ids(sample_run):
    from gensim.models import KeyedVectors

    out, _ = sample_run
    kv = KeyedVectors.load(str(out / "skipgram" / "vectors.kv"))
    vectors = pq.read_table(out / "skipgram" / "vectors.parquet")
    first = vectors["item_id"][0].as_py()
    np.testing.assert_allclose(kv[first], np.asarray(vectors["vector"][0].as_py(), dtype=np.float32))


def test_neighbours_share_the_planted_topic(sample_run):
    """Nearest neighbours by cosine share the hidden topic far more often than chance (1 in ~40)."""
    out, _ = sample_run
    vectors = pq.read_table(out / "skipgram" / "vectors.parquet")
    truth = dict(zip(*pq.read_table(DATA / "item_topics.parquet").to_pydict().values()))
    ids = vectors["item_id"].to_pylist()[:1000]  # the most frequent items
    mat = np.asarray(vectors["vector"].to_pylist()[:1000], dtype=np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    sims = mat @ mat.T
    np.fill_diagonal(sims, -1)
    nearest = sims.argmax(axis=1)
    agree = np.mean([truth[ids[i]] == truth[ids[j]] for i, j in enumerate(nearest)])
    assert agree > 0.6


def test_rerun_skips_fresh_stages(sample_run, cli):
    out, _ = sample_run
    before = mtimes(out)
    result = cli("run", "--events", DATA / "events.parquet", "--items", DATA / "items.parquet", "--out", out, *FAST)
    assert ran(result) == []
    assert result.output.count("fresh, skipped") == 6  # eges is not used by the bge method
    assert mtimes(out) == before


def test_set_reruns_only_what_depends_on_it(sample_run, cli):
    out, _ = sample_run
    before = mtimes(out)
    args = ["run", "--events", DATA / "events.parquet", "--out", out, *FAST]
    result = cli(*args, "--set", "walks.walk_length=6")
    assert ran(result) == ["walks", "skipgram", "neighbours", "users"]
    after = mtimes(out)
    assert after["sessions/sessions.parquet"] == before["sessions/sessions.parquet"]
    assert after["graph/edges.parquet"] == before["graph/edges.parquet"]
    assert after["walks/walks.parquet"] != before["walks/walks.parquet"]
    walks = pq.read_table(out / "walks" / "walks.parquet")["walk"].to_pylist()
    assert max(map(len, walks)) == 6
    # The folder remembers the setting: a plain rerun reruns nothing, and neither does a change of threads.
    assert ran(cli(*args)) == []
    result = cli(*args, "--set", "walks.threads=1")
    assert ran(result) == []
    # Back to the earlier setting for the tests that follow.
    assert ran(cli(*args, "--set", "walks.walk_length=10")) == ["walks", "skipgram", "neighbours", "users"]


def test_status_stage_and_from(sample_run, cli):
    out, _ = sample_run
    status = cli("status", "--out", out).output
    assert [line.split()[:2] for line in status.splitlines()] == [
        ["sessions", "fresh"], ["graph", "fresh"], ["walks", "fresh"], ["validate", "skipped"], ["skipgram", "fresh"],
        ["eges", "skipped"], ["drift", "skipped"], ["neighbours", "fresh"], ["users", "fresh"],
        ["evaluate_link", "skipped"], ["evaluate_temporal", "skipped"], ["evaluate_cold", "skipped"]]
    assert "not requested" in status
    status = cli("status", "--out", out, "--set", "graph.min_edge_weight=2").output.splitlines()
    assert status[1].split()[1] == "stale" and "graph.min_edge_weight" in status[1]
    assert status[2].split()[1] == "stale" and "upstream stage graph" in status[2]
    assert status[0].split()[1] == "fresh"
    # Rerunning one stage by name: its output is rewritten, others are not.
    before = mtimes(out)
    result = cli("stage", "graph", "--out", out, "--quiet")
    assert ran(result) == ["graph"]
    after = mtimes(out)
    assert after["graph/edges.parquet"] != before["graph/edges.parquet"]
    assert after["walks/walks.parquet"] == before["walks/walks.parquet"]
    # The graph is rebuilt identically, so its content digest is unchanged and walks stay fresh.
    assert ["walks", "fresh"] in [line.split()[:2] for line in cli("status", "--out", out).output.splitlines()]
    result = cli("run", "--out", out, "--from", "walks", *FAST)
    assert ran(result) == ["walks", "skipgram", "neighbours", "users"]


def test_changed_input_makes_stages_stale(tmp_path, cli):
    events = pq.read_table(DATA / "events.parquet").slice(0, 40_000)
    pq.write_table(events, tmp_path / "events.parquet")
    out = tmp_path / "out"
    cli("run", "--events", tmp_path / "events.parquet", "--out", out, *FAST)
    pq.write_table(events.slice(0, 30_000), tmp_path / "events.parquet")
    status = cli("status", "--out", out).output
    assert any(line.split()[:2] == ["sessions", "stale"] and "input events changed" in line
               for line in status.splitlines())


def test_config_defaults_and_module_entry_point(tmp_path, cli):
    proc = subprocess.run([sys.executable, "-m", "eges", "config", "--defaults"], capture_output=True, text=True,
                          check=True)
    assert "[walks]" in proc.stdout and "walk_length = 10" in proc.stdout
    (tmp_path / "eges.toml").write_text(proc.stdout)
    # the entry point is checked above; the file read back needs no second interpreter
    assert "seed = 5" in cli("config", "--config", tmp_path / "eges.toml", "--set", "walks.seed=5").output
