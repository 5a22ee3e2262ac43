"""The walks' graph direction chosen on the validation slice (validate.try_undirected): the undirected rule applied
to a built graph (one rule in NumPy and in SQL), the slice's verdict on logs built to want each direction, and the
training stages reading the walks that selection.json names while the walks stage keeps writing directed walks."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import eges.validation as validation
from eges.config import default_config
from eges.graph.csr import CSRGraph, edge_sources, symmetrized
from eges.graph.transitions import count_transitions, symmetrized_edges_sql
from eges.layout import EDGES, MANIFEST, SELECTION, WALKS, WALKS_UNDIRECTED
from eges.pipeline import validate_stage
from eges.pipeline.registry import RunInputs
from eges.validation import made_undirected, make_holdout, training_walks
from eges.validation.select import Trial
from eges.validation.variants import direction_trial

FAST = ["--set", "walks.walks_per_node=2", "--set", "train.dimension=8", "--set", "validate.max_epochs=2",
        "--set", "validate.windows=[]", "--set", "train.sample=0.0", "--set", "train.threads=1",
        "--set", "walks.threads=1", "--set", "validate.budget=0", "--quiet"]  # undirected walks 7x longer here


def _sessions(rng, n_items=30, n_rows=600):
    items = rng.integers(0, n_items, size=n_rows).astype(np.int32)
    position = np.zeros(n_rows, dtype=np.int32)
    for i in range(1, n_rows):
        position[i] = 0 if rng.random() < 0.25 else position[i - 1] + 1
    return items, position


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_symmetrized_is_the_undirected_count(seed):
    """Made undirected after the fact, the directed counts are the graph.undirected rule's counts (self-loops
    once, every other transition both ways)."""
    items, position = _sessions(np.random.default_rng(seed))
    got = symmetrized(CSRGraph(*count_transitions(items, position, 30, False, 1.0)))
    for a, b in zip((got.indptr, got.indices, got.weights), count_transitions(items, position, 30, True, 1.0)):
        np.testing.assert_array_equal(a, b)


def test_the_sql_rule_is_the_numpy_rule():
    """Spark walks the SQL form (symmetrized_edges_sql); DuckDB runs the same text here against the NumPy form."""
    import duckdb

    from eges.duck import duckdb_table

    items, position = _sessions(np.random.default_rng(3))
    graph = CSRGraph(*count_transitions(items, position, 30, False, 1.0))
    con = duckdb.connect()
    con.register("edges_in", pa.table({"src": edge_sources(graph), "dst": graph.indices, "weight": graph.weights}))
    got, want = duckdb_table(con, symmetrized_edges_sql("edges_in")), symmetrized(graph)
    np.testing.assert_array_equal(got["src"].to_numpy(), edge_sources(want))
    np.testing.assert_array_equal(got["dst"].to_numpy(), want.indices)
    np.testing.assert_array_equal(got["weight"].to_numpy(), want.weights)


# --------------------------------------------------------------------------------------------- two logs
def _pairs(users: int = 800, groups: int = 40, seed: int = 0) -> np.ndarray:
    """Two-item baskets from one of ``groups`` groups of three, always written lower id first: the directed graph
    walks one step and stops (the higher items have no out-edges), the undirected one keeps the group together."""
    rng = np.random.default_rng(seed)
    group, first = rng.integers(0, groups, users), rng.integers(0, 3, users)
    second = (first + 1 + rng.integers(0, 2, users)) % 3
    return np.stack([group * 3 + np.minimum(first, second), group * 3 + np.maximum(first, second)], axis=1)


def _cycles(users: int = 800, groups: int = 30, size: int = 5, noise_users: int = 5000,
            seed: int = 0) -> np.ndarray:
    """Sessions that walk a group's cycle of ``size`` items forward (four steps), and two noise items that each
    lead, in two-item sessions, to any item. Directed, no walk ever enters a noise item; made undirected, every
    item is linked to them more heavily than to its cycle and the walks leave the group: the reversed edges are
    noise. -1 pads the two-item sessions."""
    rng = np.random.default_rng(seed)
    group, start = rng.integers(0, groups, users), rng.integers(0, size, users)
    cycle = 2 + group[:, None] * size + (start[:, None] + np.arange(4)) % size
    noise = np.stack([rng.integers(0, 2, noise_users), 2 + rng.integers(0, groups * size, noise_users)], axis=1)
    return np.concatenate([cycle, np.pad(noise, ((0, 0), (0, 2)), constant_values=-1)])


def _frame(seq: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """One session per row of ``seq`` (-1 ends it early), users in a random order in time."""
    users, length = seq.shape
    order = np.random.default_rng(seed).permutation(users)
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(users), length), "item_id": seq.reshape(-1),
                          "timestamp": (np.repeat(order, length) * 100 + np.tile(np.arange(length), users)) * 1000})
    return frame[frame["item_id"] >= 0]


def _slice(frame: pd.DataFrame, config):
    """The validation slice of ``frame`` as the validate stage cuts it (item index = item id rank)."""
    frame = frame.sort_values(["user_id", "timestamp"])
    items = np.unique(frame["item_id"].to_numpy(), return_inverse=True)[1].astype(np.int32)
    position = frame.groupby("user_id").cumcount().to_numpy(np.int32)
    return make_holdout(items, position, frame["timestamp"].to_numpy(), int(items.max()) + 1, config, False, 0)


@pytest.mark.parametrize("log, undirected", [(_pairs, True), (_cycles, False)])
def test_the_slice_chooses_the_direction_its_log_wants(log, undirected):
    """Unordered baskets want the graph made undirected; cycles walked forward, whose reversed edges lead to noise
    items, keep it directed. Both decided by the stage's own trial on a real slice, real training."""
    config = default_config().replace("train", dimension=16, sample=0.0, threads=1) \
        .replace("walks", walks_per_node=4, threads=1).replace("validate", k=2)
    holdout = _slice(_frame(log()), config)
    walks = training_walks(holdout, config)
    reference = validation.fit_and_score(holdout, config, "bge", None, max_epochs=3, walks=walks, patience=0)
    sym = made_undirected(holdout)
    choice = direction_trial(holdout, sym, training_walks(sym, config), config, "bge", None, walks,
                                             3, reference, last_pass=True)
    assert choice.undirected is undirected
    assert choice.trial["direction"] == "undirected" and choice.trial["wins"] is undirected
    assert ("walks on the graph made undirected" in choice.why) is undirected
    assert choice.holdout is (sym if undirected else holdout)  # the window's trial trains on the chosen graph


def _scored(value: float, cold: float = math.nan) -> Trial:
    row = {"epoch": 1, "hitrate": value, "cold_auc": cold}
    return Trial("bge", "hitrate", 1, [row], row, 0.0, False)


@pytest.mark.parametrize("directed, undirected, cold_before, cold_after, wins", [
    (0.30, 0.35, math.nan, math.nan, True),
    (0.30, 0.30, math.nan, math.nan, False),  # a tie keeps the graph as built
    (0.30, 0.35, 0.80, 0.70, False),  # cold-start vectors would fall by more than validate.cold_tolerance
    (0.30, 0.35, 0.80, 0.78, True),
])
def test_the_undirected_graph_wins_only_when_it_scores_higher(monkeypatch, directed, undirected, cold_before,
                                                               cold_after, wins):
    seen = {}

    def fake(holdout, config, method, side=None, **_):
        seen["graph"] = holdout.graph
        return _scored(undirected, cold_after)

    monkeypatch.setattr(validation, "fit_and_score", fake)
    sym = "the slice made undirected"
    choice = direction_trial(None, type("H", (), {"graph": sym})(), None, default_config(), "bge",
                                             None, None, 1, _scored(directed, cold_before), last_pass=False)
    assert choice.undirected is wins and seen["graph"] == sym


def test_the_direction_is_tried_only_by_a_fresh_validated_run_on_a_directed_graph():
    fresh = RunInputs(events="e.parquet")
    config = default_config()  # train.epochs = 0: the run validates
    assert validate_stage.tries_direction(fresh, config)
    assert not validate_stage.tries_direction(fresh, config.replace("graph", undirected=True))
    assert not validate_stage.tries_direction(fresh, config.replace("validate", try_undirected=False))
    assert not validate_stage.tries_direction(fresh, config.replace("train", epochs=3))  # no validation
    assert not validate_stage.tries_direction(RunInputs(events="e.parquet", parent="run"),
                                              config.replace("update", epochs=0))  # keeps its parent's walks


# --------------------------------------------------------------------------------------------- the pipeline
@pytest.fixture(scope="module")
def baskets(tmp_path_factory):
    """The two-item basket log (the slice chooses undirected) and a catalog whose one field says nothing of the
    groups (with the group as a field, EGES scores 1.0 on either graph and a tie keeps it directed)."""
    root = tmp_path_factory.mktemp("direction_log")
    frame = _frame(_pairs(users=400))
    frame.to_parquet(root / "events.parquet")
    items = np.unique(frame["item_id"])
    pd.DataFrame({"item_id": items, "shelf": items % 7}).to_parquet(root / "items.parquet")
    return root


def _steps(path) -> set[tuple[int, int]]:
    return {(a, b) for walk in pq.read_table(path)["walk"].to_pylist() for a, b in zip(walk[:-1], walk[1:])}


@pytest.mark.parametrize("stage, module, args", [
    ("skipgram", "eges.pipeline.stages", []),
    ("eges", "eges.pipeline.side_info_stage", ["--method", "eges"]),
])
def test_the_training_stage_trains_on_the_walks_selection_names(baskets, tmp_path, cli, monkeypatch, stage, module,
                                                                 args):
    """The slice chooses undirected on the basket log: the validate stage writes the whole graph's walks made
    undirected, the walks stage's stay directed, and the training stage reads the file selection.json names."""
    import importlib

    mod = importlib.import_module(module)
    read, real = [], mod.walk_counts
    monkeypatch.setattr(mod, "walk_counts", lambda path, n: read.append(path) or real(path, n))
    out = tmp_path / "run"
    items = ["--items", baskets / "items.parquet"] if args else []
    cli("run", "--events", baskets / "events.parquet", "--out", out, *items, *args, *FAST, "--until", stage)
    selection = json.loads((out / SELECTION).read_text())
    assert selection["direction"] == "undirected" and selection["walks"] == WALKS_UNDIRECTED
    assert selection["direction_trial"]["wins"] and "undirected" in selection["why"]
    edges = pq.read_table(out / EDGES)
    directed = set(zip(edges["src"].to_pylist(), edges["dst"].to_pylist()))
    assert _steps(out / WALKS) <= directed  # the walks stage's output is unchanged
    assert _steps(out / WALKS_UNDIRECTED) - directed  # the validate stage's walks take reversed edges
    assert [p.relative_to(out).as_posix() for p in read] == [WALKS_UNDIRECTED]
    stages = json.loads((out / MANIFEST).read_text())["stages"]
    assert stages[stage]["details"]["walks"] == WALKS_UNDIRECTED
    assert stages["validate"]["details"]["direction"] == "undirected"


def _status(cli, out, *sets):
    lines = cli("status", "--out", out, *[a for s in sets for a in ("--set", s)]).output.splitlines()
    return {line.split()[0]: line.split()[1] for line in lines if line.strip()}


def test_the_walks_stage_stays_where_it_was_and_training_follows_the_choice(baskets, tmp_path, cli):
    """--until walks neither validates nor trains; the walks stage does not read the choice (a training setting
    leaves it fresh); turning the trial off reruns validate and the training stage, which then reads walks.parquet;
    undirected walks changed by hand are refused by name."""
    out = tmp_path / "run"
    events = baskets / "events.parquet"
    cli("run", "--events", events, "--out", out, *FAST, "--until", "walks")
    assert set(json.loads((out / MANIFEST).read_text())["stages"]) == {"sessions", "graph", "walks"}
    cli("run", "--events", events, "--out", out, *FAST, "--until", "skipgram")
    status = _status(cli, out, "train.dimension=12")
    assert status["walks"] == "fresh" and status["validate"] == "stale" and status["skipgram"] == "stale"
    off = "validate.try_undirected=false"
    status = _status(cli, out, off)
    assert status["walks"] == "fresh" and status["validate"] == "stale" and status["skipgram"] == "stale"
    cli("run", "--events", events, "--out", out, *FAST, "--set", off, "--until", "skipgram")
    assert json.loads((out / SELECTION).read_text())["direction"] == "directed"
    assert not (out / WALKS_UNDIRECTED).exists()  # the validate stage's folder holds only what it wrote
    assert json.loads((out / MANIFEST).read_text())["stages"]["skipgram"]["details"]["walks"] == WALKS
    cli("run", "--events", events, "--out", out, *FAST, "--set", "validate.try_undirected=true", "--until", "validate")
    assert json.loads((out / SELECTION).read_text())["direction"] == "undirected"
    with open(out / WALKS_UNDIRECTED, "ab") as fh:
        fh.write(b"x")
    result = cli("run", "--events", events, "--out", out, *FAST, "--until", "skipgram", ok=False)
    assert result.exit_code == 2 and "rerun the validate stage" in result.output


@pytest.mark.parametrize("parent_walks, warns", [(WALKS_UNDIRECTED, True), (WALKS, False)])
def test_a_warm_start_trains_on_its_directed_walks_and_says_when_its_parent_did_not(tmp_path, caplog,
                                                                                       parent_walks, warns):
    from eges.pipeline.registry import StageContext

    parent = tmp_path / "parent"
    (parent / "validation").mkdir(parents=True)
    (parent / SELECTION).write_text(json.dumps({"walks": parent_walks}))
    ctx = StageContext(tmp_path / "child", default_config().replace("update", epochs=0),
                       RunInputs(events="e.parquet", parent=str(parent)), progress=False)
    with caplog.at_level("WARNING", logger="eges"):
        assert validate_stage.chosen_walks(ctx) == WALKS
    assert ("does not choose the direction" in caplog.text) is warns
