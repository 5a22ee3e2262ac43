"""eges.load: a run as an object (ids in their type, vectors, method, source, neighbours, users, KeyedVectors)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import eges
from eges.errors import EgesError
from trust import DATA, run_cli


@pytest.fixture(scope="module")
def eges_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    events = root / "events.parquet"
    pq.write_table(pq.read_table(DATA / "events.parquet").slice(0, 40_000), events)
    out = root / "run"
    result = run_cli("run", "--events", events, "--items", DATA / "items.parquet", "--out", out, "--quiet",
                     "--set", "walks.walks_per_node=3", "--set", "train.dimension=16", "--set", "neighbours.k=10",
                     "--set", "train.epochs=1")
    assert result.exit_code == 0, result.output
    return out


def test_load_gives_the_runs_vectors_with_their_ids_method_and_source(eges_run):
    run = eges.load(eges_run)
    table = pq.read_table(eges_run / "eges" / "vectors.parquet")
    assert run.method == "eges" and run.id_array.type == pa.int64()
    assert run.ids == table["item_id"].to_pylist() and all(type(i) is int for i in run.ids)
    assert run.vectors.dtype == np.float32 and run.vectors.shape == (table.num_rows, 16)
    assert set(run.source) == {"behaviour", "cold_start"}
    item = run.ids[5]
    assert item in run and run.index_of(item) == 5
    np.testing.assert_array_equal(run.vector(item), run.vectors[5])
    with pytest.raises(KeyError, match="has no vector in this run"):
        run.index_of(-1)


def test_most_similar_by_item_comes_from_the_neighbours_table_and_matches_exact_search(eges_run):
    run = eges.load(eges_run)
    item = run.ids[0]
    stored = run.neighbours.set_index("item_id").loc[item]
    got = run.most_similar(item, k=5)
    assert [i for i, _ in got] == list(stored["neighbours"][:5])
    exact = run._exact(run.vector(item), 5, exclude=0)
    assert [i for i, _ in got] == [i for i, _ in exact]
    assert all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(got, exact))
    # More than the table holds: exact search answers.
    assert len(run.most_similar(item, k=20)) == 20


def test_most_similar_by_vector(eges_run):
    run = eges.load(eges_run)
    found = run.most_similar(run.vectors[3], k=3)
    assert found[0][0] == run.ids[3] and found[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in found] == sorted([s for _, s in found], reverse=True)


def test_every_id_the_run_hands_out_is_accepted_by_its_own_methods(eges_run):
    """issue 21: run.most_similar(run.ids[0]) raised KeyError (ids[0] was a pyarrow scalar)."""
    run = eges.load(eges_run)
    assert isinstance(run.ids, list) and type(run.ids[0]) is int
    by_id = run.most_similar(run.ids[0], k=3)
    assert run.most_similar(run.id_array[0], k=3) == by_id  # an Arrow scalar of the id
    assert run.most_similar(np.int64(run.ids[0]), k=3) == by_id  # a NumPy scalar of the id
    assert run.index_of(run.id_array[0]) == 0 and run.id_array[0] in run
    # Returned ids are plain Python values for item and vector queries alike (was np.int64 against int).
    by_vector = run.most_similar(run.vectors[0], k=3)
    assert all(type(i) is int for i, _ in by_id + by_vector) and all(type(s) is float for _, s in by_id)
    by_item_exact = run.most_similar(run.ids[0], k=50)  # more than the neighbours table holds: exact search
    assert all(type(i) is int for i, _ in by_item_exact)


def test_repr_is_one_line_with_path_method_items_and_dimension(eges_run):
    run = eges.load(eges_run)
    text = repr(run)
    assert "\n" not in text and len(text) < 200, text
    assert str(eges_run) in text and "eges" in text and f"items={len(run)}" in text and "dimension=16" in text


def test_most_similar_documents_its_query_types():
    doc = eges.load.__globals__["Run"].most_similar.__doc__
    assert "item id" in doc and "vector" in doc and "list or tuple" in doc and "plain Python" in doc


@pytest.mark.parametrize("k", [-1, 0, 2.5, True, "3", None])
def test_a_k_that_is_not_a_positive_whole_number_is_a_named_error(eges_run, k):
    run = eges.load(eges_run)
    with pytest.raises(EgesError, match="k must be a whole number of at least 1"):
        run.most_similar(run.ids[0], k=k)
    with pytest.raises(EgesError, match="k must be a whole number of at least 1"):
        run.most_similar(run.vectors[0], k=k)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_query_vector_with_nan_or_inf_is_a_named_error(eges_run, bad):
    run = eges.load(eges_run)
    vector = run.vectors[0].copy()
    vector[3] = bad
    with pytest.raises(EgesError, match="NaN or inf"):
        run.most_similar(vector)


@pytest.mark.parametrize("shape", ["2-D array", "short list", "long tuple", "empty list", "text list"])
def test_a_query_of_the_wrong_shape_says_what_was_expected(eges_run, shape):
    run = eges.load(eges_run)
    query = {"2-D array": run.vectors[:2], "short list": [0.1] * 15, "long tuple": (0.1,) * 17,
             "empty list": [], "text list": ["a"] * 16}[shape]
    with pytest.raises(EgesError, match=f"expected an item id like {run.ids[0]!r} or a vector of dimension 16"):
        run.most_similar(query)


def test_an_unknown_id_names_the_ids_type(eges_run):
    run = eges.load(eges_run)
    with pytest.raises(KeyError, match="item '50' has no vector in this run \\(ids are int, like"):
        run.most_similar("50")


def test_keyed_vectors_and_users(eges_run):
    run = eges.load(eges_run)
    kv = run.to_keyed_vectors()
    item = run.ids[7]
    np.testing.assert_array_equal(kv[item], run.vector(item))
    user_ids, matrix = run.users
    assert len(user_ids) == matrix.shape[0] > 0 and matrix.shape[1] == 16
    np.testing.assert_array_equal(run.user_vector(user_ids[0]), matrix[0])


def test_outputs_from_other_vectors_are_not_served(eges_run, tmp_path):
    import shutil

    out = shutil.copytree(eges_run, tmp_path / "run")
    assert run_cli("run", "--out", out, "--set", "train.seed=7", "--until", "eges", "--quiet").exit_code == 0
    run = eges.load(out)
    assert run.neighbours is None and run.users is None  # computed from the previous training
    item = run.ids[0]
    assert [i for i, _ in run.most_similar(item, 3)] == [i for i, _ in run._exact(run.vector(item), 3, exclude=0)]


def test_load_errors_are_named(tmp_path, eges_run):
    with pytest.raises(EgesError, match="holds no eges run|is not an eges run"):
        eges.load(tmp_path)
    # The command it suggests must make the vectors (a plain `eges run --out OUT` skips everything as fresh).
    with pytest.raises(EgesError, match=f"holds no bge vectors .*run `eges run --out {eges_run} --method bge`"):
        eges.load(eges_run, method="bge")


def _copy(eges_run, tmp_path):
    import shutil

    return shutil.copytree(eges_run, tmp_path / "run")


def test_vectors_the_manifest_does_not_record_are_refused(eges_run, tmp_path):
    """issue 21 item 3: an interrupted stage left 16-dimensional vectors nobody recorded, and load served them."""
    out = _copy(eges_run, tmp_path)
    table = pq.read_table(out / "eges" / "vectors.parquet")
    half = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(table.num_rows * 8, np.float32)), 8)
    pq.write_table(table.set_column(table.column_names.index("vector"), "vector", half), out / "eges" / "vectors.parquet")
    with pytest.raises(EgesError, match=f"is not the file .* records .*rerun `eges run --out {out}`"):
        eges.load(out)


def test_an_untouched_file_with_a_new_mtime_still_loads(eges_run, tmp_path):
    """The size+mtime fast path falls back to the digest: a copy or a touch is not a change."""
    import os

    out = _copy(eges_run, tmp_path)
    os.utime(out / "eges" / "vectors.parquet", (1, 1))
    assert len(eges.load(out)) > 0


def test_a_neighbours_table_the_manifest_does_not_record_is_not_served(eges_run, tmp_path):
    out = _copy(eges_run, tmp_path)
    table = pq.read_table(out / "neighbours" / "neighbours.parquet")
    pq.write_table(table.slice(1), out / "neighbours" / "neighbours.parquet")  # provenance metadata kept
    run = eges.load(out)
    assert run.neighbours is None and run.neighbours_by_item is None
    assert len(run.most_similar(run.ids[0], k=3)) == 3  # exact search answers


@pytest.mark.parametrize("manifest", ["{}", '{"stages": {}}', '{"stages": {}, "inputs": {"events": "e.parquet"}}'])
def test_a_manifest_that_is_not_eges_is_not_a_run(tmp_path, manifest):
    (tmp_path / "manifest.json").write_text(manifest)
    (tmp_path / "users").mkdir()
    pq.write_table(pa.table({"user_id": [1], "vector": [[0.5, 0.5]]}), tmp_path / "users" / "vectors.parquet")
    with pytest.raises(EgesError, match="holds no eges run|is not an eges run"):
        eges.load(tmp_path)


def test_the_finetuning_example_runs_and_learns(eges_run):
    """examples/finetune_embedding.py: load, id-to-row map with a padding row, a few steps on next-item pairs."""
    pytest.importorskip("torch", reason="the example needs PyTorch (the test extra installs it)")
    import importlib.util

    from trust import ROOT

    spec = importlib.util.spec_from_file_location("finetune_embedding", ROOT / "examples" / "finetune_embedding.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.finetune(eges_run, steps=60, batch=256)
    run = eges.load(eges_run)
    assert result["method"] == "eges" and result["rows"] == len(run) + 1 and result["pairs"] > 1000
    before, after = result["held_out_loss"]
    assert after < before - 0.01  # it learns: the loss on a fixed batch falls
    assert result["padding_row_norm"] == 0.0 and result["unknown_item_row"] == 0


def test_run_from_python_follows_the_rerun_rule(eges_run, tmp_path):
    """``eges.run`` is ``eges run``: the folder's remembered inputs and config, settings on top, stale stages only."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(eges_run, out)
    lines = []
    eges.run(out, echo=lines.append)
    assert all(line.endswith("fresh, skipped") for line in lines), lines
    lines.clear()
    manifest = eges.run(out, settings=["neighbours.k=5"], echo=lines.append)
    assert [line.split(":")[0] for line in lines if "fresh" not in line] == ["neighbours"]
    assert manifest["config"]["neighbours"]["k"] == 5
    assert eges.load(out).neighbours["neighbours"].map(len).max() == 5
