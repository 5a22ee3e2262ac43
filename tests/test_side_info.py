"""Side information: encoding the catalog, GES/EGES training on planted structure, and cold-start placement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eges.config import TrainConfig
from eges.side_info.encode import bounds_from_labels, bucket_labels, encode, encode_column
from eges.side_info.fit import cold_start_vectors, seen_values
from eges.train.stream import behaviour_vectors, train
from test_train_stream import planted  # walks that stay within groups (group g has category value g)


def test_encode_categorical_and_numeric_buckets():
    catalog = pd.DataFrame({"item_id": [10, 11, 12, 13, 14, 15], "cat": ["a", "b", "a", None, "c", "b"],
                            "price": [1.0, 2.0, 3.0, 4.0, np.nan, 6.0]})
    side, how = encode(catalog, [12, 99, 10, 15], "item_id", ["cat", "price"], numeric_buckets=2, numeric=())
    assert how == {"cat": "categorical", "price": "numeric (2 quantile buckets)"}
    assert side.values[0] == ["a", "b", "c"]
    assert side.codes.tolist() == [[0, 1], [-1, -1], [0, 0], [1, 1]]  # 99 is not in the catalog
    codes, labels, kind, bounds = encode_column(pd.Series([5.0, 5.0, 5.0]), 10)
    assert kind.startswith("numeric (one value") and labels == ["5"] and codes.tolist() == [0, 0, 0] and bounds is None
    assert side.bounds == {"price": [1.0, 3.0, 6.0]}  # what a warm start of a child cuts with


@pytest.mark.parametrize("method", ["ges", "eges"])
def test_training_separates_groups_and_is_reproducible(method):
    from eges.side_info.encode import SideInfo

    values, offsets, n, group = planted()
    noise = np.random.default_rng(1).integers(0, 4, n)
    side = SideInfo(["group_cat", "noise"], np.stack([group, noise], axis=1).astype(np.int32),
                    [[f"g{k}" for k in range(4)], [f"n{k}" for k in range(4)]])
    cfg = TrainConfig(dimension=16, epochs=3, sample=0, threads=1, seed=4)
    model = train(values, offsets, n, side, cfg, method)
    assert model.losses[-1] < model.losses[0]
    vecs = behaviour_vectors(model)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -2)
    assert np.mean(group[sims.argmax(axis=1)] == group) > 0.9
    again = train(values, offsets, n, side, cfg, method)
    np.testing.assert_array_equal(model.table, again.table)
    if method == "eges":
        w = model.attention_weights()
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
        # The informative field should earn more weight than the noise field on average.
        assert w[:, 1].mean() > w[:, 2].mean()
    # Cold start: an unseen item with group g's category lands nearest to group g.
    cold_codes = np.array([[g, -1] for g in range(4)], dtype=np.int32)
    cold, ok = cold_start_vectors(model, cold_codes, seen_values(side, n))
    assert ok.all()
    cold /= np.linalg.norm(cold, axis=1, keepdims=True)
    nearest = (cold @ vecs.T).argmax(axis=1)
    assert (group[nearest] == np.arange(4)).all()


def test_in_memory_api_places_cold_items():
    from eges import random_walks, train_side_info
    from eges.config import WalksConfig, load_config
    from eges.graph.csr import from_edges

    # Two chains of items; the catalog gives each chain its own category, plus two cold items.
    src = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    dst = np.array([1, 2, 3, 0, 5, 6, 7, 4])
    walks = random_walks(from_edges(src, dst, None, 8), WalksConfig(walks_per_node=30, seed=1))
    node_ids = [f"i{k}" for k in range(8)]
    catalog = pd.DataFrame({"item_id": node_ids + ["cold_a", "cold_b"],
                            "category": ["a"] * 4 + ["b"] * 4 + ["a", "b"]})
    emb = train_side_info(walks, node_ids, catalog, load_config(None, ["train.dimension=8", "train.threads=1",
                                                                       "train.sample=0"]), method="ges")
    assert emb.item_ids == node_ids + ["cold_a", "cold_b"]
    assert emb.source == ["behaviour"] * 8 + ["cold_start"] * 2
    assert emb.attention.shape == (8, 2) and np.allclose(emb.attention, 0.5)  # GES: uniform weights
    vec = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
    assert np.argmax(vec[8] @ vec[:8].T) < 4 and np.argmax(vec[9] @ vec[:8].T) >= 4


def test_an_integer_column_is_a_code_unless_named_numeric():
    """category_id-like integers: one value per code (bucketing by the number merges unrelated categories);
    side_info.numeric cuts a named integer column into quantile buckets like a float one."""
    catalog = pd.DataFrame({"item_id": range(6), "category_id": [907, 12, 907, 5000, 12, 13],
                            "year": [1990, 1991, 1995, 2000, 2001, 2010]})
    side, how = encode(catalog, list(range(6)), "item_id", ["category_id", "year"], numeric_buckets=2,
                       numeric=["year"])
    assert how == {"category_id": "categorical", "year": "numeric (2 quantile buckets)"}
    assert side.values[0] == ["12", "13", "5000", "907"]  # codes as labels (sorted as text)
    assert side.codes[:, 0].tolist() == [3, 0, 3, 2, 0, 1]  # 12 and 13 stay apart, 907 and 5000 too
    _, how = encode(catalog, list(range(6)), "item_id", ["category_id"], numeric_buckets=2, numeric=["category_id"])
    assert how == {"category_id": "numeric (2 quantile buckets)"}


def test_side_info_numeric_must_name_a_number_field(tmp_path):
    from eges.config import SideInfoConfig
    from eges.errors import InputError
    from eges.pipeline.side_info_stage import read_catalog

    path = tmp_path / "items.parquet"
    pd.DataFrame({"item_id": [1, 2], "brand": ["a", "b"], "year": [1990, 1991]}).to_parquet(path)
    frame, fields, _ = read_catalog(path, SideInfoConfig(numeric=["year"]), None)
    assert fields == ["brand", "year"]
    for bad in (["brand"], ["price"]):
        with pytest.raises(InputError, match="side_info.numeric names"):
            read_catalog(path, SideInfoConfig(numeric=bad), None)


def test_an_integer_column_with_nulls_stays_a_code(tmp_path):
    """pandas reads an integer column with nulls as float64; the catalog reader keeps it integer, so a missing
    category id does not turn the column into bucketed numbers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from eges.config import SideInfoConfig
    from eges.pipeline.side_info_stage import catalog_by_id, read_catalog

    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": range(12), "category_id": pa.array([7, None, *range(100, 110)], pa.int64())}),
                   path)
    frame, fields, _ = read_catalog(path, SideInfoConfig(), None)
    side, how = encode(frame, list(range(12)), "item_id", fields, numeric_buckets=3, numeric=())
    assert how == {"category_id": "categorical"} and len(side.values[0]) == 11
    assert side.codes[1, 0] == -1  # the null is unknown
    shown = catalog_by_id(path, "item_id")["category_id"]  # beside items in exports and reports: 7, not 7.0
    assert str(shown[0]) == "7" and pd.isna(shown[1])


def test_a_uint64_column_with_nulls_keeps_its_large_codes(tmp_path):
    """Hashed ids of 2**63 and above in a uint64 column with nulls: read as nullable unsigned integers, each id its
    own code (a signed nullable type cannot hold them and the run crashed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from eges.config import SideInfoConfig
    from eges.pipeline.side_info_stage import read_catalog

    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": range(4), "shop": pa.array([2**63 + 5, 2**63 + 9, None, 7], pa.uint64())}),
                   path)
    frame, fields, _ = read_catalog(path, SideInfoConfig(), None)
    side, how = encode(frame, list(range(4)), "item_id", fields, numeric_buckets=3, numeric=())
    assert how == {"shop": "categorical"}
    assert sorted(side.values[0]) == sorted(["7", str(2**63 + 5), str(2**63 + 9)])
    assert side.codes[2, 0] == -1 and len(set(side.codes[[0, 1, 3], 0])) == 3


def test_one_value_per_bucket_labels_tell_close_large_values_apart():
    """Labels of a numeric column's own values are lossless: six significant digits gave 1234567 and 1234568 one
    label, and a warm start crashed on the parent's two rows of it."""
    catalog = pd.DataFrame({"item_id": range(4), "big": [1234567, 1234568, 1234567, 2.5]})
    side, how = encode(catalog, list(range(4)), "item_id", ["big"], numeric_buckets=10, numeric=())
    assert how == {"big": "numeric (one value per bucket)"}
    assert side.values[0] == ["2.5", "1234567", "1234568"] and side.codes[:, 0].tolist() == [1, 2, 1, 0]


def test_a_parents_bounds_cut_a_grown_column_into_the_parents_buckets():
    """A warm start cuts a numeric field with its parent's bounds: a catalog that grew (dearer items) would move the
    quantiles, and the buckets' labels, which carry the parent's rows, would no longer match."""
    rng = np.random.default_rng(3)
    old = pd.DataFrame({"item_id": range(200), "price": rng.gamma(2.0, 10.0, 200).round(4)})
    parent, _ = encode(old, list(range(200)), "item_id", ["price"], numeric_buckets=10, numeric=())
    grown = pd.concat([old, pd.DataFrame({"item_id": range(200, 300), "price": rng.gamma(2.0, 40.0, 100).round(4)})])
    fresh, _ = encode(grown, list(range(300)), "item_id", ["price"], numeric_buckets=10, numeric=())
    assert len(set(fresh.values[0]) & set(parent.values[0])) <= 1  # cut afresh, hardly a label matches
    cuts = {"price": np.asarray(parent.bounds["price"])}
    child, how = encode(grown, list(range(300)), "item_id", ["price"], numeric_buckets=10, numeric=(), cuts=cuts)
    assert how == {"price": "numeric (10 quantile buckets, the parent's)"}
    assert child.values == parent.values and child.bounds == parent.bounds
    np.testing.assert_array_equal(child.codes[:200], parent.codes)  # the parent's items keep their buckets
    beyond = grown["price"].to_numpy()[200:]
    top, bottom = beyond > parent.bounds["price"][-1], beyond < parent.bounds["price"][0]
    assert top.any() and (child.codes[200:][top, 0] == 9).all() and (child.codes[200:][bottom, 0] == 0).all()
    # a column the parent did not cut is cut afresh; a field read as codes ignores the bounds
    tiers = pd.DataFrame({"item_id": range(3), "price": [1, 2, 3]})
    side, how = encode(tiers, [0, 1, 2], "item_id", ["price"], numeric_buckets=10, numeric=(), cuts=cuts)
    assert how == {"price": "categorical"} and side.bounds == {}


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(st.lists(finite, min_size=2, max_size=12).map(sorted), st.lists(finite, max_size=20))
def test_labels_read_back_into_bounds_that_write_the_same_labels_and_codes(bounds, others):
    """A parent that did not record its bounds may be cut with the bounds read back from its labels: those must give
    the same labels again, and reading them once more the same bounds (six significant digits, idempotent); a value
    changes bucket only between an edge and its read-back."""
    labels = bucket_labels(bounds)
    read = bounds_from_labels(labels)
    assert read is not None and bucket_labels(read) == labels
    np.testing.assert_array_equal(bounds_from_labels(bucket_labels(read)), read)
    assert np.allclose(read, bounds, rtol=1e-5, atol=0)
    x = pd.Series([*bounds, *read, *others], dtype="float64")
    exact, by_labels = (encode_column(x, 10, bounds=b)[0] for b in (np.asarray(bounds), read))
    edges = np.sort([bounds[1:-1], read[1:-1]], axis=0)
    between = ((x.to_numpy()[:, None] >= edges[0]) & (x.to_numpy()[:, None] <= edges[1])).any(axis=1)
    np.testing.assert_array_equal(by_labels[~between], exact[~between])


def test_labels_that_are_not_a_chain_of_buckets_give_no_bounds():
    assert bounds_from_labels(["[1, 2)", "[3, 4)"]) is None  # a gap: not one cut
    assert bounds_from_labels(["a", "b"]) is None and bounds_from_labels([]) is None
    assert bounds_from_labels(["[2, 1)"]) is None and bounds_from_labels(["[1, inf)"]) is None
    assert bounds_from_labels(["[1, 2.5)", "[2.5, 1e+06)"]).tolist() == [1.0, 2.5, 1e6]


close = st.lists(st.integers(0, 86_400), min_size=12, max_size=60)


@given(close, st.integers(-3, 12).map(lambda e: 10.0 ** e), close)
def test_a_parents_labels_cut_its_own_catalog_into_its_own_codes(steps, scale, grown):
    """A child of a parent that recorded no bounds (only its '{:g}' labels) on the parent's catalog puts every item in
    the parent's bucket, however close the values (epoch seconds: six digits cannot tell the edges apart); on
    another catalog it uses the labels' bounds only when they do not collapse."""
    from eges.side_info.encode import bounds_for_labels

    x = pd.Series(1.7e9 * scale + np.asarray(steps, dtype=np.float64) * scale / 1e4)
    codes, labels, _, bounds = encode_column(x, 10)
    if bounds is None:
        return
    again = bounds_for_labels(labels, x, 10)
    np.testing.assert_array_equal(encode_column(x, 10, bounds=again)[0], codes)
    other = bounds_for_labels(labels, pd.Series(np.concatenate([x, 1.7e9 * scale + np.asarray(grown) * scale])), 10)
    assert other is None or (np.diff(other) > 0).all()
