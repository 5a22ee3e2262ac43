"""Timestamp units decided from the bulk of the values; a column that disagrees about its unit is an error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import events
from eges.api import sessionize
from eges.errors import InputError
from eges.sessions.timeunits import UNITS, unit_of

NOW_S = 1_700_000_000
SCALE = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def log_in(unit: str, start_s: int = 0, n: int = 60, step_s: int = 10) -> list[tuple]:
    """One user viewing n distinct items step_s seconds apart, from NOW_S + start_s, in ``unit``."""
    return [(1, i, (NOW_S + start_s + i * step_s) * SCALE[unit]) for i in range(n)]


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(UNITS), st.integers(-10**8, 10**8), st.integers(3, 40), st.integers(1, 600))
def test_a_log_in_one_unit_is_read_in_that_unit(unit, start, n, step):
    sessions, _, report = _run(log_in(unit, start, n, step))
    assert report.timestamp_unit == unit
    assert sessions.num_rows == n  # one session: the steps are read as seconds apart, under the 1-hour gap


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(UNITS), st.sampled_from(UNITS), st.integers(-10**8, 10**8), st.integers(5, 40))
def test_a_few_values_in_another_unit_are_an_error_not_a_rescale(unit, other, start, n):
    if unit == other:
        return
    rows = log_in(unit, start, n)
    rows.append((0, 1, (NOW_S + 5) * SCALE[other]))  # one outlier: the median still says `unit`
    with pytest.raises(InputError, match=f"mixes timestamp units: most values are in {unit}"):
        _run(rows)


def test_one_millisecond_value_in_a_seconds_log_names_it_and_the_fix():
    rows = log_in("s") + [(0, 3, 1_700_000_123_456)]
    with pytest.raises(InputError) as err:
        _run(rows)
    assert "1 of 61 look like ms, e.g. 1700000123456" in str(err.value)
    assert "--set sessions.timestamp_unit=s" in str(err.value)


def test_relative_times_from_zero_are_seconds():
    _, _, report = _run([(1, 10, 0), (1, 11, 5), (1, 12, 9)])
    assert report.timestamp_unit == "s"


def test_forcing_a_unit_skips_the_check():
    rows = log_in("s") + [(0, 3, 1_700_000_123_456), (0, 4, 1_700_000_123_457)]
    _, _, report = _run(rows, ["sessions.timestamp_unit=s"])
    assert report.timestamp_unit == "s"


def test_nan_and_infinite_times_are_named():
    import pyarrow as pa

    for bad in (float("nan"), float("inf"), float("-inf")):
        table = pa.table({"user_id": [1, 1, 1], "item_id": [10, 11, 12], "timestamp": [1.0e9, 1.0e9 + 5, bad]})
        with pytest.raises(InputError, match="1 NaN or infinite timestamp"):
            sessionize(table)


def test_unit_of_bounds():
    assert [unit_of(x) for x in (0, 1.7e9, 1.7e12, 1.7e15, 1.7e18)] == ["s", "s", "ms", "us", "ns"]


def _run(rows, overrides=()):
    from eges.config import load_config

    return sessionize(events(rows), config=load_config(overrides=overrides))
