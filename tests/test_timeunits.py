"""Timestamp units decided from the bulk of the values; a column that disagrees about its unit is an error."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
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


SECONDS = np.array([1_511_539_235 + 60 * k for k in range(6)] * 2)


@pytest.mark.parametrize("form", ["int32.parquet", "int64.parquet", "csv"])
@pytest.mark.parametrize("backend", ["duckdb", "spark"])
def test_seconds_of_any_width_and_file_format_become_milliseconds(backend, form, tmp_path, request):
    """int32 seconds (a downcast frame, a warehouse export; Spark infers int32 for a seconds CSV) are widened
    before they are scaled: 1511539235 * 1000 overflows int32 (issue 21, item 5)."""
    if backend == "spark":
        request.getfixturevalue("spark")
    from eges.pipeline import runner

    users = np.repeat([1, 2], 6)
    items = np.tile(np.arange(6), 2) + 10 * users
    width = pa.int64() if form == "int64.parquet" else pa.int32()
    table = pa.table({"user_id": users, "item_id": items, "timestamp": pa.array(SECONDS, width)})
    events = tmp_path / f"events.{form.split('.')[-1]}"
    if form == "csv":
        pacsv.write_csv(table, events)
    else:
        pq.write_table(table, events)
    out = tmp_path / "out"
    config, inputs, _ = runner.resolve(out, overrides=[f"engine.backend={backend}"], events=str(events))
    runner.run(out, config, inputs, to_stage="sessions", progress=False, echo=lambda s: None)
    sessions = pq.read_table(out / "sessions/sessions.parquet")
    assert sorted(sessions["ts"].to_pylist()) == sorted((SECONDS.astype(np.int64) * 1000).tolist())
    assert json.loads((out / "manifest.json").read_text())["stages"]["sessions"]["details"]["timestamp_unit"] == "s"
