"""The sessions kernel (cleaning and cutting) on small fixed logs with exact expected outputs."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import events
from eges.api import sessionize
from eges.config import load_config
from eges.errors import InputError


def cut(rows, *overrides):
    sessions, vocab, report = sessionize(events(rows), load_config(None, overrides))
    ids = dict(zip(vocab["item_index"].to_pylist(), vocab["item_id"].to_pylist()))
    out: dict[tuple, list] = {}
    for u, s, i in zip(sessions["user_id"].to_pylist(), sessions["session"].to_pylist(),
                       sessions["item_index"].to_pylist()):
        out.setdefault((u, s), []).append(ids[i])
    return list(out.values()), vocab, report


def test_split_exactly_at_the_gap():
    rows = [(1, 10, 0), (1, 11, 3600), (1, 12, 7201), (1, 13, 7202), (1, 14, 9000)]
    got, _, report = cut(rows)
    # 0 -> 3600 is a gap of exactly one hour: same session; 3600 -> 7201 is over: new session.
    assert got == [[10, 11], [12, 13, 14]]
    assert report.sessions_out == 2


def test_gap_is_configurable_and_users_are_separate():
    rows = [(1, 10, 0), (2, 20, 1), (1, 11, 100), (2, 21, 50), (1, 12, 300)]
    got, _, _ = cut(rows, "sessions.session_gap_seconds=150")
    assert sorted(got) == [[10, 11], [20, 21]]  # user 1's third event is alone after the gap -> dropped


def test_repeats_collapse_and_short_sessions_drop():
    rows = [(1, 10, 0), (1, 10, 5), (1, 10, 9), (1, 11, 20), (1, 10, 30),
            (2, 30, 0), (2, 30, 10)]  # user 2 only repeats one item: a session of length 1
    got, _, report = cut(rows)
    assert got == [[10, 11, 10]]
    assert report.repeats_collapsed == 3
    assert report.short_sessions_dropped == 1 and report.short_session_events_dropped == 1


def test_repeats_kept_when_not_collapsing():
    rows = [(1, 10, 0), (1, 10, 5), (1, 11, 20)]
    got, _, _ = cut(rows, "sessions.collapse_repeats=false")
    assert got == [[10, 10, 11]]


def test_short_dwell_and_behaviour_filters():
    rows = [(1, 10, 0, "pv", 5.0), (1, 11, 10, "pv", 0.5), (1, 12, 20, "cart", 3.0),
            (1, 13, 30, "pv", None), (1, 14, 40, "buy", 2.0)]
    got, _, report = cut(rows)
    assert got == [[10, 12, 13, 14]]
    assert report.short_dwell_dropped == 1
    got, _, report = cut(rows, "sessions.keep_behaviours=['pv']")
    assert got == [[10, 13]]
    assert report.behaviour_dropped == 2


def test_over_active_users_are_dropped():
    rows = [(1, 10 + k % 3, k) for k in range(6)] + [(2, 20, 0), (2, 21, 1)]
    rows += [(3, 30, 0, "buy"), (3, 31, 1, "buy"), (3, 32, 2, "buy")]
    rows = [r if len(r) == 4 else (*r, "pv") for r in rows]
    got, _, report = cut(rows, "sessions.max_user_clicks=5", "sessions.max_user_purchases=2")
    assert got == [[20, 21]]
    assert report.spam_users == 2 and report.spam_events == 9


def test_vocabulary_is_ordered_by_count():
    rows = [(1, 7, 0), (1, 8, 1), (1, 7, 2), (2, 9, 0), (2, 7, 1)]
    _, vocab, _ = cut(rows)
    assert vocab.to_pydict() == {"item_id": [7, 8, 9], "item_index": [0, 1, 2], "count": [3, 1, 1]}


def test_string_ids_keep_their_type():
    rows = [("u1", "a", 0), ("u1", "b", 10), ("u2", "b", 0), ("u2", "c", 5)]
    got, vocab, _ = cut(rows)
    assert sorted(got) == [["a", "b"], ["b", "c"]]
    assert pa.types.is_string(vocab.schema.field("item_id").type) or pa.types.is_large_string(
        vocab.schema.field("item_id").type)


@pytest.mark.parametrize("scale, unit", [(1, "s"), (1000, "ms"), (1_000_000, "us")])
def test_timestamp_units_are_detected(scale, unit):
    base = 1_500_000_000
    rows = [(1, 10, (base + 0) * scale), (1, 11, (base + 3599) * scale), (1, 12, (base + 7300) * scale),
            (1, 13, (base + 7301) * scale)]
    got, _, _ = cut(rows)
    assert got == [[10, 11], [12, 13]]


def test_timestamp_type_column():
    frame = events([(1, 10, 0), (1, 11, 4000), (1, 12, 4100)])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s")
    sessions, _, report = sessionize(frame)
    assert report.sessions_out == 1 and sessions.num_rows == 2


def test_forced_unit_overrides_detection():
    # As seconds these are 2 s apart; forced to milliseconds they are too: one session either way,
    # but 7,200,000 read as ms is two hours: a new session.
    rows = [(1, 10, 0), (1, 11, 1000), (1, 12, 7_201_000), (1, 13, 7_202_000)]
    got, _, _ = cut(rows, "sessions.timestamp_unit='ms'")
    assert got == [[10, 11], [12, 13]]


def test_ties_in_time_keep_the_input_order():
    # Equal timestamps: the file says 30 then 10 then 20; sorting ties by item id would invent 10 -> 20 -> 30.
    rows = [(1, 30, 100), (1, 10, 100), (1, 20, 100), (1, 40, 101)]
    got, _, _ = cut(rows)
    assert got == [[30, 10, 20, 40]]


def test_ties_keep_the_file_order_in_parquet_and_csv(tmp_path):
    from eges.config import load_config
    from eges.duck import duckdb_session
    from eges.sessions.clean import SessionsReport, sessionize_stream
    from eges.sessions.events import open_events

    frame = events([(1, 30, 100), (1, 10, 100), (1, 20, 100), (2, 5, 7), (2, 4, 7)])
    for name in ("ties.parquet", "ties.csv"):
        path = tmp_path / name
        frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
        cfg = load_config().sessions
        with duckdb_session(load_config().engine) as con:
            source = open_events(con, path, cfg)
            tables = list(sessionize_stream(con, source.view, cfg, has_behaviour=False, has_dwell=False,
                                            report=SessionsReport()))
        items = [t["item_id"].to_pylist() for t in tables]
        assert sum(items, []) == [30, 10, 20, 5, 4], name


def test_empty_after_cleaning_is_an_error():
    with pytest.raises(InputError, match="no events are left after cleaning"):
        cut([(1, 10, 0), (2, 11, 0)])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 20_000)), min_size=1, max_size=60),
       st.integers(1, 5000))
def test_sessions_match_a_reference(rows, gap):
    """Against a plain-Python reference: sort per user by time (ties in input order), cut at gaps, collapse
    repeats, drop singletons."""
    ref = []
    for user in sorted({r[0] for r in rows}):
        evs = sorted(((t, i) for u, i, t in rows if u == user), key=lambda e: e[0])  # stable: input order
        sess, prev_t = [], None
        for t, i in evs:
            if prev_t is not None and t - prev_t > gap:
                ref.append(sess)
                sess = []
            if not sess or sess[-1] != i:
                sess.append(i)
            prev_t = t
        ref.append(sess)
    ref = sorted(s for s in ref if len(s) >= 2)
    try:
        got, _, report = cut(rows, f"sessions.session_gap_seconds={gap}")
    except InputError:
        got = []
    assert sorted(got) == ref


def test_cut_kernel_on_a_fixed_sequence():
    import numpy as np

    from eges.sessions.kernels import cut_sessions

    # user a: items 1 1 2 | gap | 3 ; user b: 4 5
    new_user = np.array([True, False, False, False, True, False])
    item_changed = np.array([True, False, True, True, True, True])
    ts = np.array([0, 10, 20, 5000, 0, 1])
    keep, session, position, counts = cut_sessions(new_user, item_changed, ts, 100, True, 2)
    assert keep.tolist() == [True, False, True, False, True, True]
    assert session.tolist() == [0, 0, 0, 0] and position.tolist() == [0, 1, 0, 1]  # per kept row
    assert counts.tolist() == [1, 1, 1, 2, 2]  # one repeat; one short session of one row; two sessions, two users
    # Without the minimum length, a's second session is kept as session 1; a user whose only session is too
    # short is not counted.
    keep, session, position, counts = cut_sessions(new_user, item_changed, ts, 100, True, 1)
    assert session.tolist() == [0, 0, 1, 0, 0] and position.tolist() == [0, 1, 0, 0, 1]
    _, _, _, counts = cut_sessions(np.array([True, False, True]), np.ones(3, bool), np.array([0, 1, 0]), 100, True, 2)
    assert counts.tolist() == [0, 1, 1, 1, 1]


def test_predecessors_restart_at_every_session():
    import numpy as np

    from eges.sessions.clean import predecessors

    items = np.array([7, 3, 3, 9, 4, 1], dtype=np.int32)
    position = np.array([0, 1, 2, 0, 1, 0], dtype=np.int32)
    assert predecessors(items, position).tolist() == [-1, 7, 3, -1, 9, -1]
    assert predecessors(items[:0], position[:0]).tolist() == []
