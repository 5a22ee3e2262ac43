"""The eges stage end to end on the sample, method switching, and the catalog's bad-input cases."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA, invoke_cli

# The default run (validated), with at most two passes tried per method: the choice, not its depth or the vectors'
# quality, is tested here. The later trials of the chosen recipe (graph direction, window) are
# tests/test_graph_direction.py's and tests/test_validation_window.py's; here they would only retrain it on every
# method switch.
FAST = ["--set", "walks.walks_per_node=3", "--set", "train.dimension=16", "--set", "validate.max_epochs=2",
        "--set", "validate.try_undirected=false", "--set", "validate.windows=[5]", "--quiet"]


def ran(result) -> list[str]:
    return [line.split(":")[0] for line in result.output.splitlines() if " rows in -> " in line]


@pytest.fixture(scope="module")
def eges_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eges") / "out"
    args = ["run", "--events", str(DATA / "events.parquet"), "--items", str(DATA / "items.parquet"),
            "--out", str(out), *FAST]
    return out, invoke_cli(*args), args


def test_eges_is_the_default_with_a_catalog(eges_run):
    out, result, _ = eges_run
    assert ran(result) == ["sessions", "graph", "walks", "validate", "eges", "neighbours", "users"]
    assert f"item vectors: {out / 'eges' / 'vectors.parquet'}" in result.output
    vectors = pq.read_table(out / "eges" / "vectors.parquet")
    catalog = pq.read_table(DATA / "items.parquet")
    sources = vectors["source"].to_pylist()
    assert vectors.schema.field("vector").type == pa.list_(pa.float32(), 16)
    assert set(vectors["item_id"].to_pylist()) == set(catalog["item_id"].to_pylist())  # every item has a vector
    # Cold-start: catalogue items outside the graph, and graph nodes no walk visits (nothing to learn from).
    walks = json.loads((out / "validation" / "selection.json").read_text())["walks"]  # the walks it trained on
    visited = set(pq.read_table(out / walks)["walk"].combine_chunks().flatten().to_pylist())
    assert sources.count("cold_start") == catalog.num_rows - len(visited)
    attention = pq.read_table(out / "eges" / "attention.parquet")
    assert attention.column_names == ["item_id", "item", "category", "brand", "shop", "price"]
    side = pq.read_table(out / "eges" / "side_info_vectors.parquet")
    assert set(side["field"].to_pylist()) == {"category", "brand", "shop", "price"}
    assert side.filter(pa.compute.equal(side["field"], "price")).num_rows == 10  # quantile buckets
    details = json.loads((out / "manifest.json").read_text())["stages"]["eges"]["details"]
    chosen = json.loads((out / "validation" / "selection.json").read_text())["method"]  # by validation
    assert details["method"] == chosen and set(details["mean_attention"]) == {"item", "category", "brand", "shop",
                                                                             "price"}
    assert abs(sum(details["mean_attention"].values()) - 1) < 1e-3
    assert "mean weights: item" in result.output


def test_switching_method_reruns_only_training(eges_run, cli):
    out, _, args = eges_run
    # the method is chosen by validation under auto: naming one reruns the validate stage (it fits the passes)
    result = cli(*args, "--method", "ges")
    assert ran(result) == ["validate", "eges", "neighbours", "users"]
    result = cli(*args, "--method", "bge")
    assert ran(result) == ["validate", "skipgram", "neighbours", "users"]
    assert f"item vectors: {out / 'skipgram' / 'vectors.parquet'}" in result.output
    assert ran(cli(*args)) == []  # the folder remembers the method
    assert ran(cli(*args, "--method", "eges")) == ["validate", "eges", "neighbours", "users"]


def write_catalog(tmp_path, frame):
    path = tmp_path / "items.parquet"
    frame.to_parquet(path, index=False)
    return path


def base_catalog():
    items = pq.read_table(DATA / "items.parquet").to_pandas()
    return items


@pytest.fixture(scope="module")
def walked_template(tmp_path_factory):
    """A run up to the walks, copied for each catalog case (a run folder remembers its settings)."""
    from click.testing import CliRunner

    from eges.cli import main

    out = tmp_path_factory.mktemp("walked") / "out"
    result = CliRunner().invoke(main, ["run", "--events", str(DATA / "events.parquet"), "--out", str(out),
                                       "--until", "walks", *FAST])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def walked(walked_template, tmp_path):
    import shutil

    return shutil.copytree(walked_template, tmp_path / "out")


def run_eges(cli, out, catalog, *extra, ok=True):
    """EGES, one pass, up to its own stage: the catalog cases read what it writes, not the neighbours."""
    return cli("run", "--events", DATA / "events.parquet", "--items", catalog, "--out", out, "--method", "eges",
               "--set", "train.epochs=1", *FAST, *extra, "--until", "eges", ok=ok)


def test_catalog_without_id_column(cli, walked, tmp_path):
    catalog = write_catalog(tmp_path, base_catalog().rename(columns={"item_id": "code"}))
    result = run_eges(cli, walked, catalog, ok=False)
    assert result.exit_code == 2 and "has no column 'item_id'" in result.output
    result = run_eges(cli, walked, catalog, "--set", "side_info.id_col='code'")
    assert "eges: " in result.output


def test_duplicate_ids_first_wins_or_error(cli, walked, tmp_path, caplog):
    items = base_catalog()
    dup = items.iloc[:3].assign(category="other")
    catalog = write_catalog(tmp_path, pd.concat([items, dup], ignore_index=True))
    with caplog.at_level(logging.WARNING, logger="eges"):
        run_eges(cli, walked, catalog)
    assert "3 duplicate item id row(s), 3 with conflicting side information" in caplog.text
    details = json.loads((walked / "manifest.json").read_text())["stages"]["eges"]["details"]
    assert details["duplicate_rows_dropped"] == 3
    result = run_eges(cli, walked, catalog, "--set", "side_info.duplicates='error'", ok=False)
    assert result.exit_code == 2 and "duplicate item id" in result.output


def test_null_column_and_single_valued_numbers(cli, walked, tmp_path, caplog):
    items = base_catalog().assign(shop=None, price=9.99)
    catalog = write_catalog(tmp_path, items)
    with caplog.at_level(logging.WARNING, logger="eges"):
        run_eges(cli, walked, catalog)
    assert "column(s) shop are entirely null and are not used" in caplog.text
    details = json.loads((walked / "manifest.json").read_text())["stages"]["eges"]["details"]
    assert details["null_fields_skipped"] == ["shop"]
    assert details["fields"]["price"] == "numeric (one value per bucket)"
    attention = pq.read_table(walked / "eges" / "attention.parquet")
    assert "shop" not in attention.column_names


def test_items_without_known_side_info_are_counted(cli, walked, tmp_path):
    items = base_catalog()
    # Typed like the catalog's columns (all-null object columns would make pandas 2 warn about concat dtypes).
    extra = pd.DataFrame({"item_id": [1, 2]}).reindex(columns=items.columns).astype(items.dtypes.to_dict())
    catalog = write_catalog(tmp_path, pd.concat([items, extra], ignore_index=True))
    result = run_eges(cli, walked, catalog)
    assert "(2 cold items without known side info)" in result.output
    vectors = pq.read_table(walked / "eges" / "vectors.parquet")
    assert not {1, 2} & set(vectors["item_id"].to_pylist())


def test_catalog_ids_that_match_nothing(cli, walked, tmp_path):
    items = base_catalog().assign(item_id=lambda f: "sku-" + f["item_id"].astype(str))
    result = run_eges(cli, walked, write_catalog(tmp_path, items), ok=False)
    assert result.exit_code == 2 and "no item id of the catalog's column 'item_id' occurs in the log" in result.output


def test_method_needs_a_catalog(cli, walked):
    result = cli("run", "--events", DATA / "events.parquet", "--out", walked, "--method", "eges", *FAST, ok=False)
    assert result.exit_code == 2 and "method eges trains on side information and needs an item catalog" in result.output


@pytest.mark.parametrize("method, eges_key_counts", [("ges", False), ("eges", True), ("auto", True)])
def test_a_key_only_eges_reads_does_not_stale_a_ges_run(method, eges_key_counts):
    """GES reads no attention key: the eges stage of a GES run stays fresh when one changes; an EGES run, or auto
    (the slice may choose EGES), does not."""
    from eges.config import default_config
    from eges.pipeline.registry import STAGES, RunInputs
    from eges.pipeline.runner import stage_config

    inputs, config = RunInputs(events="events.parquet", items="items.parquet"), default_config().replace(
        "train", method=method)
    before = stage_config(STAGES["eges"], config, inputs)
    for key, value in (("attention_alpha", 0.01), ("own_weight", 0.3)):
        assert (stage_config(STAGES["eges"], config.replace("train", **{key: value}), inputs) != before) \
            == eges_key_counts, key
    assert stage_config(STAGES["eges"], config.replace("train", side_alpha=0.01), inputs) != before  # GES reads it
