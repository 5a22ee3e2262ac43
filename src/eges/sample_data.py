"""A seeded generator of behaviour logs with planted structure, for the bundled sample and benchmarks.

How the data is made (so results on it mean something):
- Items belong to latent *topics*. The catalog does not show the topic, but it leaks through the side
  information: each topic has a main category (taken by 80% of its items; categories are shared by
  a few topics), a handful of brands (70%), shops (60%) and a price level.
- Every item has three *related* items in its topic. A user prefers one to three topics; a session
  stays in one topic, moving to a related item (50%), a popular item of the topic (35%) or an item
  of another preferred topic (15%). So transitions carry more than topic membership.
- 5% of catalog items never appear in the log (cold items), for the side-information issue.
- Noise the cleaning must remove: consecutive repeats (5%), dwell under 1 s (3%), a few crawler users
  with thousands of clicks, and behaviour types pv/cart/fav/buy.
Timestamps are unix seconds; sessions of a user are at least two hours apart, events inside one are
seconds to minutes apart. Everything is vectorised, so ten million events take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

START = 1_511_539_200  # 2017-11-25 00:00 UTC, the start of the Taobao UserBehavior log


@dataclass(frozen=True)
class SampleSpec:
    n_events: int = 300_000
    n_items: int = 8_000
    n_topics: int = 40
    n_categories: int = 25
    n_brands: int = 400
    n_shops: int = 600
    cold_fraction: float = 0.05
    n_crawlers: int = 3
    seed: int = 7
    #: How much the catalog says about behaviour: 1 links category/brand/shop/price to the hidden topic as described
    #: above; 0 draws them independently of it (side information that carries no signal); in between, scaled.
    side_info_signal: float = 1.0


def make_catalog(spec: SampleSpec, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """The item catalog (item_id, category, brand, shop, price) and each item's hidden topic."""
    n, t = spec.n_items, spec.n_topics
    topic = np.sort(rng.choice(t, size=n, p=rng.dirichlet(np.full(t, 3.0))))
    item_id = rng.choice(np.arange(100_000, 100_000 + 50 * n), size=n, replace=False)
    signal = float(spec.side_info_signal)
    main_cat = rng.integers(0, spec.n_categories, t)
    cat = np.where(rng.random(n) < 0.8 * signal, main_cat[topic], rng.integers(0, spec.n_categories, n))
    topic_brands = rng.integers(0, spec.n_brands, (t, 5))
    brand = np.where(rng.random(n) < 0.7 * signal, topic_brands[topic, rng.integers(0, 5, n)],
                     rng.integers(0, spec.n_brands, n))
    topic_shops = rng.integers(0, spec.n_shops, (t, 8))
    shop = np.where(rng.random(n) < 0.6 * signal, topic_shops[topic, rng.integers(0, 8, n)],
                    rng.integers(0, spec.n_shops, n))
    price_level = rng.normal(3.5, 1.0, t)
    level = price_level[topic]
    if signal < 1:  # (drawn only then, so the bundled sample's random stream is unchanged)
        level = np.where(rng.random(n) < signal, level, rng.normal(3.5, 1.0, n))
    price = np.round(np.exp(rng.normal(level, 0.35)), 2)
    catalog = pd.DataFrame({
        "item_id": item_id.astype(np.int64),
        "category": pd.array([f"cat{c}" for c in cat], dtype="string"),
        "brand": pd.array([f"brand{b}" for b in brand], dtype="string"),
        "shop": pd.array([f"shop{s}" for s in shop], dtype="string"),
        "price": price,
    })
    return catalog, topic


def base_popularity(spec: SampleSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Popularity within a topic: Zipf-like weights over a random order; cold items get none."""
    warm = rng.random(n) >= spec.cold_fraction
    return np.where(warm, 1.0 / (rng.permutation(n) % 200 + 1.0) ** 0.8, 0.0)


def make_events(spec: SampleSpec, topic: np.ndarray, item_id: np.ndarray, rng: np.random.Generator,
                popularity: np.ndarray | None = None, start: int = START,
                first_session_days: int = 3) -> pd.DataFrame:
    """The behaviour log: user_id, item_id, timestamp (s), behaviour, dwell (s).

    ``popularity`` (one day of :func:`make_days`) replaces the drawn one (items at 0 are not viewed); ``start`` and
    ``first_session_days`` place the users' first sessions."""
    n, t = len(topic), spec.n_topics
    pop = base_popularity(spec, n, rng) if popularity is None else popularity
    warm = pop > 0
    t_start = np.searchsorted(topic, np.arange(t))
    t_end = np.searchsorted(topic, np.arange(t), side="right")
    cum = np.cumsum(pop)
    mass_lo = np.where(t_start > 0, cum[t_start - 1], 0.0)
    mass_hi = cum[t_end - 1]

    def draw(topics: np.ndarray) -> np.ndarray:
        u = mass_lo[topics] + rng.random(len(topics)) * (mass_hi[topics] - mass_lo[topics])
        return np.minimum(np.searchsorted(cum, u, side="right"), t_end[topics] - 1)

    # Related items: three warm items of the same topic.
    related = draw(np.repeat(topic, 3)).reshape(n, 3)

    mean_len = 5.0
    n_sessions = int(spec.n_events / (mean_len - 0.15))  # ~5.15 events per session after noise
    n_users = max(n_sessions // 3, 1)
    prefs = rng.integers(0, t, (n_users, 3))
    n_prefs = rng.integers(1, 4, n_users)
    s_user = np.sort(rng.integers(0, n_users, n_sessions))
    s_topic = prefs[s_user, rng.integers(0, 3, n_sessions) % n_prefs[s_user]]
    s_len = np.minimum(2 + rng.geometric(1 / (mean_len - 1), n_sessions) - 1, 30)
    s_len[rng.random(n_sessions) < 0.1] = 1
    # Items step by step across all sessions at once.
    items = np.full((n_sessions, 30), -1, dtype=np.int64)
    cur = draw(s_topic)
    items[:, 0] = cur
    for pos in range(1, 30):
        live = s_len > pos
        r = rng.random(n_sessions)
        nxt = related[cur, rng.integers(0, 3, n_sessions)]
        fresh = draw(s_topic)
        other = draw(prefs[s_user, rng.integers(0, 3, n_sessions) % n_prefs[s_user]])
        nxt = np.where(r < 0.5, nxt, np.where(r < 0.85, fresh, other))
        cur = np.where(live, nxt, cur)
        items[live, pos] = cur[live]
    valid = items >= 0
    ev_item = items[valid]
    ev_sess = np.repeat(np.arange(n_sessions), valid.sum(axis=1))
    ev_pos = np.concatenate([np.arange(k) for k in valid.sum(axis=1)]) if n_sessions else np.zeros(0, int)
    # Session start times: per user, sessions at least two hours apart.
    first_of_user = np.r_[True, s_user[1:] != s_user[:-1]]
    gaps = np.where(first_of_user, rng.integers(0, 86_400 * first_session_days, n_sessions),
                    7_200 + rng.exponential(40_000, n_sessions))
    user_run = np.cumsum(first_of_user) - 1
    csum = np.cumsum(gaps)
    s_start = start + (csum - (csum - gaps)[np.flatnonzero(first_of_user)][user_run]).astype(np.int64)
    step = np.minimum(rng.exponential(60.0, len(ev_item)), 1_500).astype(np.int64) + 2
    step[ev_pos == 0] = 0
    sess_cum = np.cumsum(step)
    first_ev = np.flatnonzero(ev_pos == 0)
    ts = s_start[ev_sess] + sess_cum - sess_cum[first_ev][ev_sess]
    users = s_user[ev_sess]
    # Noise: repeats, accidental clicks, behaviour types, crawlers.
    rep = rng.random(len(ev_item)) < 0.05
    idx = np.sort(np.r_[np.arange(len(ev_item)), np.flatnonzero(rep)])
    ev_item, ts, users = ev_item[idx], ts[idx], users[idx]
    ts = ts + np.r_[0, (idx[1:] == idx[:-1]) * 5]
    dwell = np.round(rng.exponential(30.0, len(ev_item)) + 1.0, 1)
    accidental = rng.random(len(ev_item)) < 0.03
    dwell[accidental] = np.round(rng.random(accidental.sum()), 2)
    behaviour = rng.choice(np.array(["pv", "fav", "cart", "buy"]), len(ev_item), p=[0.9, 0.03, 0.05, 0.02])
    crawl_n = 4_000
    crawl_users = n_users + np.arange(spec.n_crawlers).repeat(crawl_n)
    crawl_items = rng.choice(np.flatnonzero(warm), len(crawl_users))
    crawl_ts = start + np.tile(np.arange(crawl_n) * 3, spec.n_crawlers)
    events = pd.DataFrame({
        "user_id": np.r_[users, crawl_users].astype(np.int64),
        "item_id": item_id[np.r_[ev_item, crawl_items]].astype(np.int64),
        "timestamp": np.r_[ts, crawl_ts].astype(np.int64),
        "behaviour": pd.array(np.r_[behaviour, np.full(len(crawl_users), "pv")], dtype="string"),
        "dwell": np.r_[dwell, np.full(len(crawl_users), 2.0)].astype(np.float32),
    })
    return events.sort_values(["timestamp", "user_id"], kind="stable", ignore_index=True)


def make_sample(spec: SampleSpec | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(events, catalog, truth): truth maps item_id to its hidden topic, for evaluation only."""
    spec = spec or SampleSpec()
    rng = np.random.default_rng(spec.seed)
    catalog, topic = make_catalog(spec, rng)
    events = make_events(spec, topic, catalog["item_id"].to_numpy(), rng)
    truth = pd.DataFrame({"item_id": catalog["item_id"], "topic": topic.astype(np.int32)})
    return events, catalog, truth


DAY = 86_400


@dataclass(frozen=True)
class DaysSpec:
    """Day-to-day drift of a multi-day log (:func:`make_days`); nothing here depends on the number of days, so day
    k is the same in a log of any length."""

    #: Share of the catalog's items that are not yet on sale on day 1; each arrives after about ``arrival_days``.
    late_share: float = 0.2
    arrival_days: float = 6.0
    #: Share of items that fade out (stop being viewed), about ``fade_days`` after they arrive.
    fading_share: float = 0.2
    fade_days: float = 5.0
    #: Standard deviation of each item's daily log-popularity step (a random walk: popularity shifts).
    popularity_step: float = 0.3


def day_popularity(spec: SampleSpec, days: DaysSpec, n_days: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(catalog, topics, popularity per day as an (n_days, items) array): items arrive, fade and drift."""
    rng = np.random.default_rng(spec.seed)
    catalog, topic = make_catalog(spec, rng)
    n = len(topic)
    base = base_popularity(spec, n, rng)
    late = rng.random(n) < days.late_share
    arrive = np.where(late, 1 + np.floor(rng.exponential(days.arrival_days, n)), 0)
    fades = rng.random(n) < days.fading_share
    gone = np.where(fades, arrive + 1 + np.floor(rng.exponential(days.fade_days, n)), np.inf)
    pop = np.zeros((n_days, n))
    log_drift = np.zeros(n)
    for d in range(n_days):
        if d:  # one generator per day, so the walk's steps do not depend on the number of days
            log_drift += np.random.default_rng([spec.seed, 2_000 + d]).normal(0, days.popularity_step, n)
        pop[d] = np.where((arrive <= d) & (d < gone), base * np.exp(log_drift), 0.0)
    return catalog, topic, pop


def make_days(spec: SampleSpec | None = None, n_days: int = 7, day: int | None = None,
              days: DaysSpec | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(events, catalog, truth) of a log over ``n_days`` days (about ``spec.n_events`` in all), or of day ``day``
    alone (1-based): each day's sessions fall within that day, by new users, over that day's items and popularity.
    The catalog holds every item, including those that arrive later."""
    spec = spec or SampleSpec()
    days = days or DaysSpec()
    catalog, topic, pop = day_popularity(spec, days, n_days)
    item_id = catalog["item_id"].to_numpy()
    per_day = replace(spec, n_events=max(spec.n_events // n_days, 100))
    frames = []
    for d in range(n_days) if day is None else [day - 1]:
        start = START + d * DAY
        events = make_events(per_day, topic, item_id, np.random.default_rng([spec.seed, 1_000 + d]), pop[d],
                             start=start, first_session_days=1)
        events = events[events["timestamp"] < start + DAY]
        events["user_id"] += (d + 1) * 10_000_000  # a day's users are its own (no session spans two days)
        frames.append(events)
    events = pd.concat(frames, ignore_index=True)
    truth = pd.DataFrame({"item_id": catalog["item_id"], "topic": topic.astype(np.int32)})
    return events, catalog, truth
