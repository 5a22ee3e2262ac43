"""The benchmark datasets' readers and cache rules on tiny hand-made raw files (no real data).

It needs the repository root on the path (``python -m pytest`` from the root puts it there).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from benchmarks.datasets import readers, registry


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return list(frame[["user_id", "item_id", "timestamp"]].itertuples(index=False, name=None))


def test_same_second_events_keep_the_file_order_and_users_are_sorted(tmp_path):
    # user 2's events in file order: items 9, 3, 5 in the same second, then 1 earlier; user 1 after them
    (tmp_path / "u.data").write_text("2\t9\t5\t100\n2\t3\t4\t100\n2\t5\t3\t100\n2\t1\t1\t50\n1\t7\t2\t80\n")
    flags = "|".join(["0"] * 19)
    (tmp_path / "u.item").write_text("".join(f"{i}|film {i}|01-Jan-1995||url|{flags}\n" for i in (1, 3, 5, 7, 9)),
                                     encoding="latin-1")
    events, catalog = readers.movielens_100k(tmp_path)
    assert _rows(events) == [(1, 7, 80), (2, 1, 50), (2, 9, 100), (2, 3, 100), (2, 5, 100)]
    assert list(events.columns[:3]) == ["user_id", "item_id", "timestamp"]
    assert set(catalog["genre"]) == {"unknown"} and set(catalog["year"]) == {1995}


def test_movielens_genres_first_and_all_flagged(tmp_path):
    (tmp_path / "u.data").write_text("1\t1\t5\t10\n1\t2\t5\t20\n")
    action_comedy = ["0"] * 19
    action_comedy[1] = action_comedy[5] = "1"
    (tmp_path / "u.item").write_text(f"1|a|01-01-1990||u|{'|'.join(action_comedy)}\n"
                                     f"2|b|||u|{'|'.join(['0'] * 19)}\n", encoding="latin-1")
    _, catalog = readers.movielens_100k(tmp_path)
    assert catalog.loc[0, ["genre", "genres", "year"]].tolist() == ["Action", "Action|Comedy", 1990]
    assert pd.isna(catalog.loc[1, "year"]) and catalog.loc[1, "genres"] == "unknown"


def test_taobao_drops_the_last_user_and_a_cut_line(tmp_path):
    lines = ["1,10,100,pv,1511544070", "1,11,101,buy,1511544000", "2,10,100,pv,1511544090",
             "3,12,102,cart,1511544100", "3,13,10"]  # user 3 may be cut by the copy: dropped whole
    (tmp_path / "UserBehavior.csv").write_text("\n".join(lines))
    events, catalog = readers.taobao_sample(tmp_path)
    assert _rows(events) == [(1, 11, 1511544000), (1, 10, 1511544070), (2, 10, 1511544090)]
    assert events["behaviour"].tolist() == ["buy", "pv", "pv"]
    assert catalog.to_dict("list") == {"item_id": [10, 11], "category_id": [100, 101]}


def test_sessions_become_users_and_sub_second_order_is_kept(tmp_path):
    header = "SessionId\tItemId\tTime\n"
    (tmp_path / "yoochoose-clicks-100k_train_full.txt").write_text(header + "5\t1\t10.9\n5\t2\t10.1\n")
    (tmp_path / "yoochoose-clicks-100k_test.txt").write_text(header + "7\t3\t20.0\n7\t4\t21.5\n")
    events, catalog = readers.yoochoose_100k(tmp_path)
    assert catalog is None
    assert _rows(events) == [(5, 2, 10), (5, 1, 10), (7, 3, 20), (7, 4, 21)]


def test_diginetica_time_is_day_plus_timeframe(tmp_path):
    (tmp_path / "sample_train-item-views.csv").write_text(
        "session_id;user_id;item_id;timeframe;eventdate\n1;NA;5;2500;2016-05-09\n1;NA;6;1000;2016-05-09\n")
    events, _ = readers.diginetica_sample(tmp_path)
    day = 1462752000  # 2016-05-09 00:00 UTC
    assert _rows(events) == [(1, 6, day + 1), (1, 5, day + 2)]


def test_completejourney_keeps_households_up_to_the_cut_and_products_bought(tmp_path):
    cut = readers.COMPLETEJOURNEY_HOUSEHOLDS
    stamp = pd.to_datetime(["2017-01-01 10:00:00", "2017-01-01 10:00:00", "2017-01-02 00:00:00"])
    pd.DataFrame({"household_id": [1, 1, cut + 1], "basket_id": [7, 7, 8], "product_id": [30, 20, 40],
                  "quantity": [1, 2, 1], "transaction_timestamp": stamp}).to_parquet(tmp_path / "transactions.parquet")
    pd.DataFrame({"product_id": [20, 30, 40], "manufacturer_id": [1, 2, 3], "department": ["A", "B", None]}
                 ).to_parquet(tmp_path / "products.parquet")
    events, catalog = readers.completejourney(tmp_path)
    assert _rows(events) == [(1, 30, 1483264800), (1, 20, 1483264800)]  # one basket, file order
    assert catalog["item_id"].tolist() == [20, 30] and catalog["department"].tolist() == ["A", "B"]


def test_groceries_baskets_at_midnight_with_name_ids(tmp_path):
    (tmp_path / "Groceries_dataset.csv").write_text(
        "transaction_number,date,items\n9,02-01-2015,milk\n9,01-01-2015,bread\n9,02-01-2015,eggs\n")
    events, _ = readers.groceries(tmp_path)
    assert _rows(events) == [(9, "bread", 1420070400), (9, "milk", 1420156800), (9, "eggs", 1420156800)]


def test_beauty_ordinal_times_and_attributes(tmp_path):
    (tmp_path / "Beauty.txt").write_text("1 4 5 6\n2 5\n")
    (tmp_path / "Beauty_item2attributes.json").write_text(json.dumps({"4": [1, 2, 3], "5": [7], "6": [], "8": [9]}))
    events, catalog = readers.amazon_beauty(tmp_path)
    assert _rows(events) == [(1, 4, 0), (1, 5, 60), (1, 6, 120), (2, 5, 0)]
    assert catalog.to_dict("list") == {"item_id": [4, 5, 6], "attr_first": [1, 7, -1], "attr_last": [3, 7, -1]}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EGES_DATASETS", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_missing_raw_files_name_the_commands_and_write_nothing(cache):
    with pytest.raises(registry.DatasetMissing) as err:
        registry.load("taobao")
    text = str(err.value)
    spec = registry.DATASETS["taobao"]
    assert spec.commit in text and "mydeep/UserBehavior.csv" in text and "--git-dir" in text
    assert not cache.exists()


def test_prepare_writes_parquet_and_a_stale_reader_is_prepared_again(cache, monkeypatch):
    raw = cache / "groceries" / "raw"
    raw.mkdir(parents=True)
    (raw / "Groceries_dataset.csv").write_text("transaction_number,date,items\n1,01-01-2015,a\n1,01-01-2015,b\n")
    events, catalog = registry.load("groceries")
    assert catalog is None and len(events) == 2 and registry.is_fresh("groceries")
    assert json.loads((cache / "groceries" / "meta.json").read_text())["raw_sha256"]
    changed = registry.Dataset(**{**registry.DATASETS["groceries"].__dict__, "rule": "another rule"})
    monkeypatch.setitem(registry.DATASETS, "groceries", changed)
    assert not registry.is_fresh("groceries")
    registry.load("groceries")
    assert registry.is_fresh("groceries")


def test_ordered_is_stable_for_every_tie():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 5, 200)
    times = rng.integers(0, 3, 200).astype(np.float64)
    frame = pd.DataFrame({"user_id": users, "item_id": rng.permutation(200), "row": np.arange(200)})
    out = readers._ordered(frame, pd.Series(times))
    key = list(zip(out["user_id"], out["timestamp"], strict=True))
    assert key == sorted(key)
    for _, group in out.groupby(["user_id", "timestamp"]):
        assert group["row"].is_monotonic_increasing  # the input row order within a tie, never the item order
