"""Raw files of each public log -> (events, catalog) in eges's input shape.

Every reader takes the folder holding that log's raw files and returns ``events`` (user_id, item_id, timestamp in
whole seconds, and optional columns eges ignores or reads, such as behaviour) sorted by user and time, and the
item catalog (item_id + side-information columns) or None. Rows of one user with the same second keep the raw
file's order (a stable sort on the exact time), because eges breaks timestamp ties by input row and an order by
item id would invent transitions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

Frames = tuple[pd.DataFrame, "pd.DataFrame | None"]

ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western"]
COMPLETEJOURNEY_HOUSEHOLDS = 800  # households 1..800 of 2,500 ids: about a third of the 1.47 M lines (README)


def _ordered(events: pd.DataFrame, exact_time: pd.Series) -> pd.DataFrame:
    """Sort by user, then exact time, stably (ties keep file order); timestamp becomes whole seconds."""
    order = np.lexsort((exact_time.to_numpy(), events["user_id"].to_numpy()))  # lexsort is stable
    out = events.iloc[order].reset_index(drop=True)
    out["timestamp"] = np.floor(exact_time.to_numpy()[order]).astype(np.int64)
    extras = [c for c in out.columns if c not in ("user_id", "item_id", "timestamp")]
    return out[["user_id", "item_id", "timestamp", *extras]]


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    """Unix seconds (float) of datetimes, whatever unit pandas stores them in."""
    return (times.astype("datetime64[ns]").astype("int64") / 1e9).to_numpy(np.float64)


def movielens_100k(raw: Path) -> Frames:
    """MovieLens 100k: every rating is an event; the catalog is the genres and release year of each film."""
    data = pd.read_csv(raw / "u.data", sep="\t", header=None, names=["user_id", "item_id", "rating", "ts"],
                       dtype={"user_id": np.int64, "item_id": np.int64, "rating": np.int8, "ts": np.int64})
    events = _ordered(data[["user_id", "item_id", "rating"]], data["ts"].astype(np.float64))
    cols = ["item_id", "title", "release", "video_release", "url", *ML100K_GENRES]
    items = pd.read_csv(raw / "u.item", sep="|", header=None, names=cols, encoding="latin-1")
    flags = items[ML100K_GENRES].to_numpy(dtype=bool)
    names = np.array(ML100K_GENRES, dtype=object)
    combos = ["|".join(names[row]) or "unknown" for row in flags]
    first = [names[row][0] if row.any() else "unknown" for row in flags]
    year = pd.to_numeric(items["release"].astype("string").str.extract(r"(\d{4})\s*$")[0], errors="coerce")
    catalog = pd.DataFrame({"item_id": items["item_id"].astype(np.int64), "genre": first, "genres": combos,
                            "year": year.astype("Int64")})
    return events, catalog


def taobao_sample(raw: Path) -> Frames:
    """Taobao UserBehavior, the head of the file (users in id order): drops the last user, whose lines the copy
    may have cut, and a last line cut mid-way. Catalog: each item's category."""
    cols = ["user_id", "item_id", "category_id", "behaviour", "ts"]
    data = pd.read_csv(raw / "UserBehavior.csv", header=None, names=cols, on_bad_lines="skip",
                       dtype={"user_id": np.int64, "item_id": np.int64, "category_id": np.int64,
                              "behaviour": "string", "ts": "float64"})
    data = data.dropna()
    data = data[data["behaviour"].isin(["pv", "buy", "cart", "fav"])]
    data = data[data["user_id"] != data["user_id"].iloc[-1]]
    events = _ordered(data[["user_id", "item_id", "behaviour"]].astype({"behaviour": str}), data["ts"])
    catalog = (data.groupby("item_id", sort=True)["category_id"].agg(lambda s: s.mode().iloc[0])
               .reset_index().astype(np.int64))
    return events, catalog


def yoochoose_100k(raw: Path) -> Frames:
    """YooChoose clicks (RecSys Challenge 2015), session-rec's 100k sample: train and test parts together; every
    session is its own anonymous user. No catalog (the prepared sample dropped the category field)."""
    parts = [pd.read_csv(raw / name, sep="\t", dtype={"SessionId": np.int64, "ItemId": np.int64,
                                                     "Time": np.float64})
             for name in ("yoochoose-clicks-100k_train_full.txt", "yoochoose-clicks-100k_test.txt")]
    data = pd.concat(parts, ignore_index=True)
    events = data.rename(columns={"SessionId": "user_id", "ItemId": "item_id"})[["user_id", "item_id"]]
    return _ordered(events, data["Time"]), None


def diginetica_sample(raw: Path) -> Frames:
    """DIGINETICA (CIKM Cup 2016) item views, the sample SR-GNN ships: anonymous sessions; the time is the event
    date plus the ``timeframe`` (milliseconds since the session began)."""
    data = pd.read_csv(raw / "sample_train-item-views.csv", sep=";",
                       dtype={"session_id": np.int64, "item_id": np.int64, "timeframe": np.int64})
    day = _epoch_seconds(pd.to_datetime(data["eventdate"], format="%Y-%m-%d"))
    seconds = day + data["timeframe"].to_numpy(np.float64) / 1000.0
    events = pd.DataFrame({"user_id": data["session_id"], "item_id": data["item_id"]})  # its user_id is mostly NA
    return _ordered(events, pd.Series(seconds)), None


def completejourney(raw: Path) -> Frames:
    """Dunnhumby's The Complete Journey (2017 release): grocery baskets of households 1..800 (seeded by id, no
    randomness); catalog: manufacturer, department, brand, category, type, package size of each product."""
    tx = pd.read_parquet(raw / "transactions.parquet",
                         columns=["household_id", "basket_id", "product_id", "quantity", "transaction_timestamp"])
    tx = tx[tx["household_id"] <= COMPLETEJOURNEY_HOUSEHOLDS]
    seconds = _epoch_seconds(tx["transaction_timestamp"])
    events = tx.rename(columns={"household_id": "user_id", "product_id": "item_id"})
    events = _ordered(events[["user_id", "item_id", "basket_id", "quantity"]].reset_index(drop=True),
                      pd.Series(seconds))
    products = pd.read_parquet(raw / "products.parquet")
    products = products.rename(columns={"product_id": "item_id"})
    products = products[products["item_id"].isin(events["item_id"].unique())]
    for col in products.columns.drop("item_id"):
        products[col] = products[col].astype("string")
    return events, products.sort_values("item_id").reset_index(drop=True)


def groceries(raw: Path) -> Frames:
    """The Kaggle 'Groceries dataset' (38,765 lines: member, day, item name): a member's items of one day form a
    basket, all at midnight of that day (so basket order is the file's). Item ids are the item names."""
    data = pd.read_csv(raw / "Groceries_dataset.csv", dtype={"transaction_number": np.int64})
    day = _epoch_seconds(pd.to_datetime(data["date"], format="%d-%m-%Y"))
    events = pd.DataFrame({"user_id": data["transaction_number"], "item_id": data["items"].astype(str)})
    return _ordered(events, pd.Series(day)), None


def amazon_beauty(raw: Path) -> Frames:
    """Amazon Beauty reviews (5-core), as S3-Rec ships them: one line per user, items in time order, *without*
    times. Timestamps are ordinal (the k-th item of a user at 60 k seconds after 1970-01-01, so each user is one
    session): fit for link and cold-start protocols, not for a split by date. Catalog: the first and the last
    of each item's anonymised attributes (S3-Rec lists the brand, when frequent, then category paths)."""
    users, items, positions = [], [], []
    for line in (raw / "Beauty.txt").read_text().split("\n"):
        ids = line.split()
        if len(ids) > 1:
            users.extend([int(ids[0])] * (len(ids) - 1))
            items.extend(int(i) for i in ids[1:])
            positions.extend(range(len(ids) - 1))
    events = pd.DataFrame({"user_id": np.array(users, np.int64), "item_id": np.array(items, np.int64)})
    events = _ordered(events, pd.Series(60.0 * np.array(positions, np.float64)))
    attrs = pd.read_json(raw / "Beauty_item2attributes.json", typ="series")
    catalog = pd.DataFrame({"item_id": attrs.index.astype(np.int64),
                            "attr_first": [a[0] if a else -1 for a in attrs],
                            "attr_last": [a[-1] if a else -1 for a in attrs]}).astype(np.int64)
    catalog = catalog[catalog["item_id"].isin(events["item_id"].unique())]
    return events, catalog.sort_values("item_id").reset_index(drop=True)
