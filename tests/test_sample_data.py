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
