"""Common column names are recognised when the default one is absent; otherwise the error suggests the fix."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from eges.columns import missing_message, resolve
from eges.errors import InputError
from trust import DATA, FAST, assert_named_error, run_cli


def test_a_single_common_name_is_recognised_only_for_a_default():
    assert resolve(["user", "sku", "ts"], "time", "timestamp", "timestamp", "sessions.time_col", "f") == ("ts", True)
    assert resolve(["User_ID", "x"], "user", "user_id", "user_id", "sessions.user_col", "f") == ("User_ID", True)
    with pytest.raises(InputError, match="did you mean --set sessions.time_col=ts"):
        resolve(["ts", "x"], "time", "when", "timestamp", "sessions.time_col", "f")  # the user chose 'when'
    with pytest.raises(InputError, match="did you mean --set sessions.time_col=ts \\(or time\\)"):
        resolve(["ts", "time"], "time", "timestamp", "timestamp", "sessions.time_col", "f")  # two candidates


def test_close_misspellings_are_suggested():
    message = missing_message(["user_id", "item_id", "timestamps"], "timestamp", "sessions.time_col", "events file x",
                              "time")
    assert message.endswith("did you mean --set sessions.time_col=timestamps")


def test_a_log_with_common_names_runs_and_says_what_it_used(tmp_path):
    frame = pq.read_table(DATA / "events.parquet").slice(0, 20_000).to_pandas()
    frame = frame.rename(columns={"user_id": "visitorid", "item_id": "sku", "timestamp": "event_time"})
    frame.to_parquet(tmp_path / "events.parquet", index=False)
    result = run_cli("run", "--events", tmp_path / "events.parquet", "--out", tmp_path / "o", "--until", "sessions",
                     *FAST)
    assert result.exit_code == 0, result.output
    assert "user column 'visitorid' (no user_col column), item column 'sku'" in result.output
    details = json.loads((tmp_path / "o" / "manifest.json").read_text())["stages"]["sessions"]["details"]
    assert details["columns_recognised"] == {"user": "visitorid", "item": "sku", "time": "event_time"}


def test_an_ambiguous_log_names_the_fix(tmp_path):
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "ts": [1, 2], "time": [1, 2]})
    frame.to_parquet(tmp_path / "events.parquet", index=False)
    assert_named_error(run_cli("run", "--events", tmp_path / "events.parquet", "--out", tmp_path / "o", *FAST),
                       "has no column 'timestamp' (sessions.time_col); its columns are: user_id, item_id, ts, time; "
                       "did you mean --set sessions.time_col=ts (or time)")


def test_a_catalog_id_under_a_common_name(tmp_path):
    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(DATA / "events.parquet").slice(0, 20_000), events)
    catalog = pq.read_table(DATA / "items.parquet").to_pandas().rename(columns={"item_id": "sku"})
    catalog.to_parquet(tmp_path / "items.parquet", index=False)
    result = run_cli("run", "--events", events, "--items", tmp_path / "items.parquet", "--out", tmp_path / "o",
                     "--until", "eges", *FAST)
    assert result.exit_code == 0, result.output
    details = json.loads((tmp_path / "o" / "manifest.json").read_text())["stages"]["eges"]["details"]
    assert details["id_column_recognised"] == "sku"
