"""The validate stage in a run: it records the passes and method chosen on the slice, and the training stage
refits on the whole log with them; an explicit train.epochs and method skip it."""

from __future__ import annotations

import json

import pytest

import eges
from conftest import invoke_cli
from eges.layout import MANIFEST, SELECTION, VALIDATION_CURVE

FAST = ["--set", "walks.walks_per_node=4", "--set", "train.dimension=16", "--quiet"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate_sample")
    invoke_cli("sample", "--out", root, "--events", 20_000, "--items", 800)
    return root


def _manifest(out):
    return json.loads((out / MANIFEST).read_text())


def test_a_default_run_records_the_selection_and_trains_with_it(sample, tmp_path, cli):
    out = tmp_path / "run"
    cli("run", "--events", sample / "events.parquet", "--items", sample / "items.parquet", "--out", out, *FAST)
    selection = json.loads((out / SELECTION).read_text())
    assert selection["candidates"] == ["bge", "ges", "eges"]
    assert selection["method"] in selection["candidates"] and selection["epochs"] >= 1
    assert selection["why"] and len(selection["trials"]) == 3
    assert all(t["curve"] and t["curve"][0]["epoch"] == 1 for t in selection["trials"])
    assert (out / VALIDATION_CURVE).is_file()
    stages = _manifest(out)["stages"]
    assert stages["validate"]["details"]["method"] == selection["method"]
    trained = stages["eges"]["details"]
    assert trained["epochs"] == selection["epochs"] and trained["method"] == selection["method"]
    run = eges.load(out)
    assert run.trained_method == selection["method"]
    assert (run.source == "cold_start").any()  # cold items placed whichever method won


def test_explicit_epochs_and_method_skip_validation(sample, tmp_path, cli):
    out = tmp_path / "run"
    cli("run", "--events", sample / "events.parquet", "--out", out, "--method", "bge", "--set", "train.epochs=2",
        *FAST)
    assert not (out / SELECTION).exists()
    assert _manifest(out)["stages"]["skipgram"]["details"]["epochs"] == 2


def test_explicit_epochs_win_over_the_choice(sample, tmp_path, cli):
    out = tmp_path / "run"
    cli("run", "--events", sample / "events.parquet", "--out", out, "--set", "train.epochs=2", "--items",
        sample / "items.parquet", *FAST)
    selection = json.loads((out / SELECTION).read_text())
    assert selection["epochs"] == 2 and all(len(t["curve"]) == 2 for t in selection["trials"])
    assert _manifest(out)["stages"]["eges"]["details"]["epochs"] == 2


def test_a_log_too_small_to_hold_out_trains_by_the_old_rule(tmp_path, cli):
    import pandas as pd

    from eges.train.stream import MAX_AUTO_EPOCHS

    early = [(u, 1 + (u + k) % 6, 1_000 + 10 * k + 100 * u) for u in range(50) for k in range(4)]
    late = [(99, 100 + k, 1_000_000 + 10 * k) for k in range(30)]  # the held-out part: items never seen before
    events = tmp_path / "events.parquet"
    pd.DataFrame(early + late, columns=["user_id", "item_id", "timestamp"]).to_parquet(events)
    out = tmp_path / "run"
    cli("run", "--events", events, "--out", out, "--set", "neighbours.k=5", *FAST)
    selection = json.loads((out / SELECTION).read_text())
    assert selection["why"].startswith("no validation slice") and selection["method"] == "bge"
    assert _manifest(out)["stages"]["skipgram"]["details"]["epochs"] == MAX_AUTO_EPOCHS


def test_an_edge_list_validates_on_held_out_edges(sample, tmp_path, cli):
    """A run on an edge list chooses its passes too (link AUC on held-out edges: it has no next-item pairs), so
    the link protocol's nested run trains what a default run would, not the token-budget rule."""
    import pyarrow.parquet as pq

    logged = tmp_path / "logged"
    cli("run", "--events", sample / "events.parquet", "--out", logged, "--until", "graph", *FAST)
    nodes = pq.read_table(logged / "graph" / "nodes.parquet").to_pandas().set_index("item_index")["item_id"]
    edges = pq.read_table(logged / "graph" / "edges.parquet").to_pandas()
    edges["src"], edges["dst"] = nodes[edges["src"]].to_numpy(), nodes[edges["dst"]].to_numpy()
    edges.to_parquet(tmp_path / "edges.parquet")
    out = tmp_path / "run"
    cli("run", "--edges", tmp_path / "edges.parquet", "--out", out, *FAST)
    selection = json.loads((out / SELECTION).read_text())
    assert selection["metric"] == "auc" and "held-out edges" in selection["why"]
    assert selection["holdout"]["held_out_edges"] > 0 and selection["holdout"]["next_item_pairs"] == 0
    assert _manifest(out)["stages"]["skipgram"]["details"]["epochs"] == selection["epochs"]


@pytest.mark.parametrize("method, items, eges_keys_count", [("auto", None, False), ("bge", "items.parquet", False),
                                                            ("auto", "items.parquet", True),
                                                            ("eges", "items.parquet", True)])
def test_only_the_keys_of_the_methods_it_tries_make_the_stage_stale(method, items, eges_keys_count):
    """A BGE run's validate stage does not read EGES's keys; with a catalog and auto it trains EGES too."""
    from eges.config import default_config
    from eges.pipeline.registry import STAGES, RunInputs
    from eges.pipeline.runner import stage_config

    inputs, config = RunInputs(events="events.parquet", items=items), default_config().replace("train", method=method)
    before = stage_config(STAGES["validate"], config, inputs)
    for key, value in (("attention_alpha", 0.01), ("side_alpha", 0.01)):
        changed = stage_config(STAGES["validate"], config.replace("train", **{key: value}), inputs)
        assert (changed != before) == eges_keys_count, key
    assert stage_config(STAGES["validate"], config.replace("train", window=3), inputs) != before
    # the slice always trains natively: who trains the refit is the training stage's business
    assert stage_config(STAGES["validate"], config.replace("train", backend="native"), inputs) == before
