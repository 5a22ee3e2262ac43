"""`eges export`: the aligned matrix (parquet, npy), word2vec text and binary, projector files, atomicity and
bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA, invoke_cli
from eges.pipeline.io import atomic_dir

# One pass per method: what is exported does not depend on how the passes were chosen, and the module stays quick.
FAST = ["--set", "walks.walks_per_node=3", "--set", "train.dimension=16", "--set", "train.epochs=1", "--quiet",
        "--until", "eges"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "out"
    invoke_cli("run", "--events", DATA / "events.parquet", "--items", DATA / "items.parquet", "--out", out, *FAST)
    return out


def vectors_by_id(out):
    table = pq.read_table(out / "eges" / "vectors.parquet")
    return {i: np.asarray(v, dtype=np.float32) for i, v in zip(table["item_id"].to_pylist(), table["vector"].to_pylist())}


def test_matrix_rows_are_padding_then_item_indices_then_cold_items(run_dir, cli, tmp_path):
    """Row 0 is padding/unknown (Keras mask_zero, PyTorch padding_idx=0); item index i is row i + 1."""
    cli("export", "--out", run_dir, "--format", "parquet", "--to", tmp_path / "m.parquet")
    arrow = pq.read_table(tmp_path / "m.parquet")
    assert arrow.schema.field("item_id").type == pa.int64()  # ids keep their type, the padding id is null
    assert arrow["item_id"][0].as_py() is None and arrow["item_id"].null_count == 1
    assert json.loads(arrow.schema.metadata[b"eges.export"])["padding_row"] == 0
    table = arrow.to_pandas()
    nodes = pq.read_table(run_dir / "graph" / "nodes.parquet").to_pandas().sort_values("item_index")
    n = len(nodes)
    assert table["row"].tolist() == list(range(len(table)))
    assert table["item_id"].iloc[1:n + 1].tolist() == nodes["item_id"].tolist()  # row i + 1 is item index i
    assert set(table["source"].iloc[n + 1:]) == {"cold_start"} and len(table) > n + 1
    assert table["source"].iloc[0] == "padding"
    assert not np.any(table["vector"].iloc[0])
    expected = vectors_by_id(run_dir)
    for row in table.iloc[1:].sample(200, random_state=0).itertuples():
        np.testing.assert_array_equal(np.asarray(row.vector, dtype=np.float32), expected[int(row.item_id)])


def test_npy_export_matches_the_parquet_one(run_dir, cli, tmp_path):
    cli("export", "--out", run_dir, "--format", "npy", "--to", tmp_path / "npy")
    cli("export", "--out", run_dir, "--format", "parquet", "--to", tmp_path / "m.parquet")
    matrix = np.load(tmp_path / "npy" / "embeddings.npy")
    info = json.loads((tmp_path / "npy" / "export.json").read_text())
    table = pq.read_table(tmp_path / "m.parquet")
    assert matrix.shape == (table.num_rows, 16) and info["padding_row"] == 0 and not matrix[0].any()
    np.testing.assert_array_equal(matrix, np.asarray(table["vector"].to_pylist(), dtype=np.float32))
    vocab = pq.read_table(tmp_path / "npy" / "vocabulary.parquet")
    # The vocabulary lists real items only, from row 1; the padding row is named in export.json and the metadata.
    assert vocab["item_id"].to_pylist() == table["item_id"].to_pylist()[1:]
    assert vocab["row"].to_pylist() == list(range(1, table.num_rows))
    assert int(vocab.schema.metadata[b"eges.padding_row"]) == info["padding_row"]


def test_npy_vocabulary_keeps_integer_ids_exact(run_dir, cli, tmp_path):
    """No null in the id column: pandas keeps int64 (a null made it float64), so ids above 2**53 stay exact and
    the id -> row mapping has no None key."""
    cli("export", "--out", run_dir, "--format", "npy", "--to", tmp_path / "npy")
    vocab = pq.read_table(tmp_path / "npy" / "vocabulary.parquet")
    assert vocab["item_id"].null_count == 0 and "padding" not in vocab["source"].to_pylist()
    frame = vocab.to_pandas()
    assert frame["item_id"].dtype == np.int64
    row_of = dict(zip(frame["item_id"], frame["row"]))
    assert None not in row_of and len(row_of) == len(frame)
    lines = (tmp_path / "npy" / "vocabulary.tsv").read_text().splitlines()
    assert lines[0].replace('"', "") == "row\titem_id" and len(lines) == len(frame) + 1
    assert all(line.split("\t")[1].lstrip("-").isdigit() for line in lines[1:])


@pytest.mark.parametrize("name", ["vectors.txt", "vectors.bin"])
def test_word2vec_loads_in_gensim(run_dir, cli, tmp_path, name):
    from gensim.models import KeyedVectors

    cli("export", "--out", run_dir, "--format", "word2vec", "--to", tmp_path / name)
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / name), binary=name.endswith(".bin"))
    expected = vectors_by_id(run_dir)
    assert len(kv) == len(expected)
    some = list(expected)[:50]
    for item in some:
        np.testing.assert_allclose(kv[str(item)], expected[item], rtol=1e-5, atol=1e-6)


def test_projector_files(run_dir, cli, tmp_path):
    cli("export", "--out", run_dir, "--format", "projector", "--to", tmp_path / "proj")
    vectors = (tmp_path / "proj" / "vectors.tsv").read_text().splitlines()
    meta = (tmp_path / "proj" / "metadata.tsv").read_text().splitlines()
    assert meta[0].split("\t") == ["item_id", "source", "category", "brand", "shop", "price"]
    assert len(meta) == len(vectors) + 1 == len(vectors_by_id(run_dir)) + 1
    assert all(len(line.split("\t")) == 16 for line in vectors[:100])
    config = (tmp_path / "proj" / "projector_config.pbtxt").read_text()
    assert 'tensor_path: "vectors.tsv"' in config and 'metadata_path: "metadata.tsv"' in config


def test_export_bad_input(cli, tmp_path, run_dir):
    result = cli("export", "--out", run_dir, "--format", "csv", "--to", tmp_path / "x", ok=False)
    assert result.exit_code == 2 and "'csv' is not one of" in result.output
    result = cli("export", "--out", run_dir, "--format", "npy", "--to", tmp_path / "x", "--method", "bge", ok=False)
    assert result.exit_code == 2 and "holds no bge vectors" in result.output
    result = cli("export", "--out", tmp_path / "nothing", "--format", "npy", "--to", tmp_path / "x", ok=False)
    assert result.exit_code == 2 and "holds no eges run" in result.output


def test_an_interrupted_directory_export_keeps_the_old_one(tmp_path):
    target = tmp_path / "export"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target, replace=True) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def _example(name: str):
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ranking_example_finds_the_export_the_demo_prints_and_uses_row_0_for_padding(run_dir, cli, tmp_path,
                                                                                        capsys):
    """issue 22: with no argument it looked in out/sample/export while the printed command wrote .../export/npy;
    and it must agree with the export on the padding row (0, as Keras' mask_zero and padding_idx=0 expect)."""
    pytest.importorskip("torch", reason="the example needs PyTorch (the test extra installs it)")
    from pathlib import Path

    from eges.cli import next_steps
    from eges.pipeline import RunInputs

    example = _example("ranking_embedding")
    printed = next_steps(Path("out/sample"), RunInputs(events="data/events.parquet"))
    assert f"--format npy --to {example.DEFAULT_EXPORT} " in printed
    cli("export", "--out", run_dir, "--format", "npy", "--to", tmp_path / "npy")
    example.main(str(tmp_path / "npy"))
    assert "embedding layer" in capsys.readouterr().out
    vocab = pq.read_table(tmp_path / "npy" / "vocabulary.parquet")
    assert min(vocab["row"].to_pylist()) == 1 and not np.load(tmp_path / "npy" / "embeddings.npy")[0].any()
