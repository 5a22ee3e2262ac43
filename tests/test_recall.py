"""Exact top-K neighbours against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eges.recall.neighbours import normalised, top_k


def brute_force(vectors, k, metric):
    mat = normalised(vectors) if metric == "cosine" else vectors.astype(np.float32)
    scores = mat @ mat.T
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 300), st.integers(1, 8), st.sampled_from(["cosine", "dot"]), st.integers(1, 17),
       st.integers(1, 100), st.integers(0, 1000))
def test_matches_brute_force(n, dim, metric, block, columns, seed):
    """Runs longer than the kernels skim at once (64 scores) included, and products of any width: each block
    right of the diagonal also fills its columns' lists."""
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    k = min(5, n - 1)
    idx, val = top_k(vectors, k, metric, block=block, columns=columns)
    ref_idx, ref_val = brute_force(vectors, k, metric)
    np.testing.assert_allclose(val, ref_val, rtol=1e-5, atol=1e-5)
    assert (idx != np.arange(n)[:, None]).all()
    # Scores decrease along each row.
    assert (np.diff(val, axis=1) <= 1e-6).all()


def test_fixed_example():
    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32)
    idx, val = top_k(v, 2)
    assert idx[:, 0].tolist() == [1, 0, 1, 2]
    assert (top_k(v, 2, block=1, columns=1)[0] == idx).all()
    np.testing.assert_allclose(val[0, 0], 0.9 / np.hypot(0.9, 0.1), rtol=1e-6)


def test_equal_scores_keep_the_earlier_item_first_however_the_products_are_cut():
    v = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)  # four identical rows
    for block, columns in ((1024, 8192), (1, 1), (2, 3), (3, 2)):
        idx, _ = top_k(v, 3, block=block, columns=columns)
        assert idx[:4].tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]], (block, columns)


def test_k_must_fit():
    with pytest.raises(ValueError, match="k must be between 1 and"):
        top_k(np.ones((3, 2)), 3)
    with pytest.raises(ValueError, match="metric"):
        top_k(np.ones((3, 2)), 1, metric="l2")


def test_user_vectors_mean_and_decay():
    from eges.recall.neighbours import user_vectors

    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    # user 0: items 0, 1, 2 (latest last); user 1: item 1, then an item without a vector (-1).
    first = np.array([0, 3])
    rows = np.array([0, 1, 2, 1, -1])
    out, used = user_vectors(first, rows, vectors, recent=2, half_life=0)
    np.testing.assert_allclose(out, [[0.5, 1.0], [0.0, 1.0]])
    assert used.tolist() == [2, 1]
    out, _ = user_vectors(first, rows, vectors, recent=3, half_life=1.0)
    # weights 0.25, 0.5, 1 for items 0, 1, 2
    np.testing.assert_allclose(out[0], (0.25 * vectors[0] + 0.5 * vectors[1] + vectors[2]) / 1.75, rtol=1e-6)


def clustered(n, dim, clusters, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return (centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dim))).astype(np.float32)


def test_faiss_index_recalls_the_exact_neighbours():
    """The approximate index, measured against exact search: recall@10 over 10,000 clustered vectors (three blocks)."""
    pytest.importorskip("faiss", reason="faiss-cpu is a dependency; this platform has no wheel for it")
    from eges.recall.neighbours import top_k_faiss_blocks

    vectors = clustered(10_000, 32, 100, seed=3)
    exact, _ = top_k(vectors, 10)
    approx = np.concatenate([idx for _, idx, _ in top_k_faiss_blocks(vectors, 10, block=4096)])
    assert (approx != np.arange(len(vectors))[:, None]).all()  # never the item itself
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    print(f"faiss HNSW recall@10 against exact search: {recall:.4f}")
    assert recall >= 0.95


def test_drop_self_keeps_k_and_marks_missing():
    from eges.recall.neighbours import _drop_self

    found = np.array([[0, 5, 6], [7, 1, -1]])
    scores = np.array([[1.0, 0.9, 0.8], [0.7, 1.0, -1.0]], dtype=np.float32)
    idx, val = _drop_self(found, scores, np.array([0, 1]), 2)
    assert idx.tolist() == [[5, 6], [7, -1]]
    assert val[1, 1] == -np.inf


def test_neighbours_stage_with_faiss(tmp_path, cli):
    """The stage with the approximate index on the sample agrees with the exact one on most neighbours."""
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is a dependency; this platform has no wheel for it")
    import pyarrow.parquet as pq

    from conftest import DATA

    out = tmp_path / "out"
    args = ["run", "--events", DATA / "events.parquet", "--out", out, "--quiet", "--method", "bge",
            "--set", "walks.walks_per_node=3", "--set", "train.dimension=16", "--set", "train.epochs=2",
            "--until", "neighbours"]
    cli(*args)
    exact = pq.read_table(out / "neighbours" / "neighbours.parquet")["neighbours"].to_pylist()
    result = cli(*args, "--set", "neighbours.index='faiss'")
    assert "(faiss)" in result.output
    approx = pq.read_table(out / "neighbours" / "neighbours.parquet")["neighbours"].to_pylist()
    recall = np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)])
    assert recall >= 0.9, recall
    # The index is kept for serving: querying it with an item's unit vector finds the item first.
    index = faiss.read_index(str(out / "neighbours" / "index.faiss"))
    row_ids = pq.read_table(out / "neighbours" / "index_ids.parquet")["item_id"].to_pylist()
    vectors = pq.read_table(out / "skipgram" / "vectors.parquet")
    first = np.asarray(vectors["vector"][0].as_py(), dtype=np.float32)
    _, found = index.search((first / np.linalg.norm(first))[None, :], 1)
    assert row_ids[found[0, 0]] == vectors["item_id"][0].as_py()
    # Long form, Parquet and CSV, from the run's neighbours table.
    cli("export", "--out", out, "--format", "neighbours", "--to", tmp_path / "pairs.parquet")
    pairs = pq.read_table(tmp_path / "pairs.parquet").to_pandas()
    first_item = vectors["item_id"][0].as_py()
    table = pq.read_table(out / "neighbours" / "neighbours.parquet").to_pandas().set_index("item_id")
    mine = pairs[pairs["item_id"] == first_item].sort_values("rank")
    assert mine["neighbour_id"].tolist() == [x for x in table.loc[first_item, "neighbours"] if x is not None]
    assert mine["rank"].tolist() == list(range(1, len(mine) + 1))
    cli("export", "--out", out, "--format", "neighbours", "--to", tmp_path / "pairs.csv")
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "pairs.csv")) == len(pairs)
    # An exact rerun removes the index (it would describe other vectors).
    cli(*args, "--set", "neighbours.index='exact'")
    assert not (out / "neighbours" / "index.faiss").exists()


def test_one_blas_thread_limits_the_main_thread_nests_and_leaves_other_threads_alone():
    """The limit holds for the main thread's products and nested uses share it; another thread gets no limit and
    changes nothing (threadpoolctl lets one thread own OpenBLAS's limit), and after any mix of the two the main
    thread's next use still limits and its exit restores BLAS."""
    import threading

    from threadpoolctl import threadpool_info

    from eges.blas import one_blas_thread

    def numpy_blas_threads():  # numpy's own (pthreads) OpenBLAS: its limit is the process's
        infos = [i for i in threadpool_info() if i["user_api"] == "blas"]
        return next((i["num_threads"] for i in infos if "numpy" in i["filepath"]), infos[0]["num_threads"])

    before = numpy_blas_threads()
    seen = {}

    def elsewhere():
        with one_blas_thread():
            seen["other thread"] = numpy_blas_threads()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(10)
    assert seen["other thread"] == before and numpy_blas_threads() == before
    for _ in range(2):  # a second round: the first exit gave up OpenBLAS's control properly
        with one_blas_thread():
            with one_blas_thread():
                assert numpy_blas_threads() == 1
            assert numpy_blas_threads() == 1  # the inner exit keeps the outer limit
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join(10)
            assert numpy_blas_threads() == 1
        assert numpy_blas_threads() == before
