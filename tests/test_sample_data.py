"""The sample generator's knob for side information that says little about behaviour."""

from __future__ import annotations

import pandas as pd

from eges.sample_data import SampleSpec, make_sample


def _topic_share(signal: float) -> float:
    """The mean share of a topic's items in its most common category (1/25 would be no link at all)."""
    _, catalog, truth = make_sample(SampleSpec(n_events=20_000, n_items=4_000, side_info_signal=signal))
    merged = catalog.merge(truth, on="item_id")
    return float(merged.groupby("topic")["category"].agg(lambda c: c.value_counts().iloc[0] / len(c)).mean())


def test_side_info_signal_weakens_the_link_between_catalogue_and_topic():
    strong, weak = _topic_share(1.0), _topic_share(0.0)
    assert strong > 0.75 and weak < 0.2


def test_the_default_keeps_the_bundled_sample():
    from trust import DATA

    events, catalog, _ = make_sample(SampleSpec())
    assert events.reset_index(drop=True).equals(pd.read_parquet(DATA / "events.parquet"))
    assert catalog.reset_index(drop=True).equals(pd.read_parquet(DATA / "items.parquet"))


# ------------------------------------------------------------------------------------------ multi-day logs
def _days(n_days: int, day: int | None = None):
    from eges.sample_data import make_days

    return make_days(SampleSpec(n_events=6_000 * n_days, n_items=3_000), n_days, day)


def test_days_fall_within_their_day_and_drift():
    from eges.sample_data import DAY, START

    events, catalog, _ = _days(4)
    day = (events["timestamp"] - START) // DAY
    assert sorted(day.unique()) == [0, 1, 2, 3]
    assert set(events["item_id"]) <= set(catalog["item_id"])
    items = [set(events.loc[day == d, "item_id"]) for d in range(4)]
    seen = set(items[0])
    for d in range(1, 4):
        assert len(items[d] - seen) > 0, "new items appear each day"
        assert len(items[d - 1] - items[d]) > 0, "some items fade"
        seen |= items[d]
    users = [set(events.loc[day == d, "user_id"]) for d in range(4)]
    assert not users[0] & users[1], "a day's users are its own"


def _rank_stability(popularity_step: float) -> float:
    """Rank correlation of item view counts between the first and the last of four days."""
    from eges.sample_data import DAY, START, DaysSpec, make_days

    days = DaysSpec(popularity_step=popularity_step, late_share=0.0, fading_share=0.0)
    events, _, _ = make_days(SampleSpec(n_events=200_000, n_items=2_000), 4, days=days)
    day = (events["timestamp"] - START) // DAY
    first, last = (events.loc[day == d, "item_id"].value_counts() for d in (0, 3))
    shared = first.index.intersection(last.index)
    return float(first[shared].corr(last[shared], method="spearman"))


def test_popularity_shifts_from_day_to_day():
    assert _rank_stability(0.3) < _rank_stability(0.0) - 0.05  # 0.53 against 0.62 (seeded)


def test_one_day_is_that_day_of_the_whole_log(cli, tmp_path):
    from eges.sample_data import DAY, START

    events, _, _ = _days(5)  # day 2 of five days is day 2 of three (the same events per day)
    cli("sample", "--out", tmp_path, "--events", 18_000, "--items", 3_000, "--days", 3, "--day", 2)
    alone = pd.read_parquet(tmp_path / "events.parquet")
    whole = events[(events["timestamp"] - START) // DAY == 1].reset_index(drop=True)
    assert len(alone) > 1_000 and alone.equals(whole)
    assert cli("sample", "--out", tmp_path / "x", "--day", 2, ok=False).exit_code == 2  # a usage error
