"""Cleaning an event log and cutting it into sessions, as SQL run in DuckDB.

Why SQL: this is relational work over logs of tens to hundreds of millions of rows. DuckDB runs it
in-process on all cores, spills to disk under a memory cap instead of crashing, and the same window
SQL runs unchanged on Spark SQL when a log outgrows one machine. The functions here only take a
connection and the name of a view holding the raw events; reading and writing files is the job of
:mod:`eges.pipeline.io`.

The raw-events view must have the columns ``user_id``, ``item_id``, ``ts`` (BIGINT milliseconds),
``behaviour`` (VARCHAR, may be NULL) and ``dwell`` (DOUBLE seconds, may be NULL); see
:func:`eges.pipeline.io.normalise_events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eges.config import SessionsConfig
from eges.errors import InputError

SESSIONS_TABLE = "eges_sessions"
VOCAB_TABLE = "eges_vocab"


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")" if values else "(NULL)"


@dataclass(frozen=True)
class SessionsReport:
    """What cleaning dropped and why, with counts; it goes into the manifest and the stage log line."""

    events_in: int
    spam_users: int
    spam_events: int
    behaviour_dropped: int
    short_dwell_dropped: int
    repeats_collapsed: int
    short_sessions_dropped: int
    short_session_events_dropped: int
    events_out: int
    sessions_out: int
    users_out: int
    items_out: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sessionize_sql(con: Any, events_view: str, cfg: SessionsConfig, *, has_behaviour: bool,
                   has_dwell: bool) -> SessionsReport:
    """Clean ``events_view`` and build the temp tables ``eges_sessions`` and ``eges_vocab``.

    ``eges_sessions`` has one row per kept event: user_id, session (number within the user),
    position (within the session), item_index, ts (ms). ``eges_vocab`` has item_id, item_index, count,
    with indices ordered by count (most frequent first) so that the index is stable for a given log.

    Raises:
        InputError: nothing is left after cleaning.
    """
    clicks = "TRUE" if not has_behaviour else f"behaviour IN {_sql_list(cfg.click_behaviours)}"
    purchases = "FALSE" if not has_behaviour else f"behaviour IN {_sql_list(cfg.purchase_behaviours)}"
    keep_beh = "TRUE"
    if has_behaviour and cfg.keep_behaviours:
        keep_beh = f"behaviour IN {_sql_list(cfg.keep_behaviours)}"
    dwell_ok = f"(dwell IS NULL OR dwell >= {float(cfg.min_dwell_seconds)!r})" if has_dwell else "TRUE"
    gap_ms = int(round(cfg.session_gap_seconds * 1000))

    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE eges_spam AS
        SELECT user_id, count(*) AS n FROM {events_view} GROUP BY user_id
        HAVING count(*) FILTER (WHERE {clicks}) > {int(cfg.max_user_clicks)}
            OR count(*) FILTER (WHERE {purchases}) > {int(cfg.max_user_purchases)}
    """)
    spam_users, spam_events = con.execute("SELECT count(*), coalesce(sum(n), 0) FROM eges_spam").fetchall()[0]

    flagged = f"""
        SELECT e.*, ({keep_beh}) AS beh_ok, ({dwell_ok}) AS dwell_ok
        FROM {events_view} e ANTI JOIN eges_spam s ON e.user_id = s.user_id
    """
    # Gaps are measured between consecutive kept events of a user; a repeat of the previous item
    # that does not open a new session is collapsed into it.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE eges_steps AS
        WITH flagged AS ({flagged}),
        kept AS (SELECT user_id, item_id, ts FROM flagged WHERE beh_ok AND dwell_ok),
        marked AS (
            SELECT user_id, item_id, ts,
                   lag(ts) OVER w AS prev_ts, lag(item_id) OVER w AS prev_item
            FROM kept WINDOW w AS (PARTITION BY user_id ORDER BY ts, item_id)
        ),
        starts AS (
            SELECT user_id, item_id, ts,
                   (prev_ts IS NULL OR ts - prev_ts > {gap_ms})::INTEGER AS new_session,
                   (prev_ts IS NOT NULL AND ts - prev_ts <= {gap_ms} AND item_id = prev_item) AS is_repeat
            FROM marked
        )
        SELECT user_id, item_id, ts, is_repeat,
               (sum(new_session) OVER (PARTITION BY user_id ORDER BY ts, item_id
                                      ROWS UNBOUNDED PRECEDING))::INTEGER - 1 AS session
        FROM starts
    """)
    counts = con.execute(f"""
        SELECT count(*) FILTER (WHERE NOT beh_ok), count(*) FILTER (WHERE beh_ok AND NOT dwell_ok)
        FROM ({flagged})
    """).fetchall()[0]
    behaviour_dropped, short_dwell_dropped = int(counts[0]), int(counts[1])
    events_in = int(con.execute(f"SELECT count(*) FROM {events_view}").fetchall()[0][0])

    repeat_filter = "NOT is_repeat" if cfg.collapse_repeats else "TRUE"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE eges_lengths AS
        SELECT user_id, session, count(*) AS len FROM eges_steps WHERE {repeat_filter}
        GROUP BY user_id, session
    """)
    repeats = int(con.execute("SELECT count(*) FROM eges_steps WHERE is_repeat").fetchall()[0][0]
                  ) if cfg.collapse_repeats else 0
    short = con.execute(f"""
        SELECT count(*), coalesce(sum(len), 0) FROM eges_lengths WHERE len < {int(cfg.min_session_length)}
    """).fetchall()[0]

    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE eges_kept AS
        SELECT s.user_id, s.session, s.item_id, s.ts,
               (row_number() OVER (PARTITION BY s.user_id, s.session ORDER BY s.ts, s.item_id) - 1)::INTEGER
                   AS position
        FROM eges_steps s SEMI JOIN (
            SELECT user_id, session FROM eges_lengths WHERE len >= {int(cfg.min_session_length)}
        ) l ON s.user_id = l.user_id AND s.session = l.session
        WHERE {repeat_filter}
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {VOCAB_TABLE} AS
        SELECT item_id, (row_number() OVER (ORDER BY count(*) DESC, item_id) - 1)::INTEGER AS item_index,
               count(*) AS count
        FROM eges_kept GROUP BY item_id
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {SESSIONS_TABLE} AS
        SELECT k.user_id, k.session, k.position, v.item_index, k.ts
        FROM eges_kept k JOIN {VOCAB_TABLE} v ON k.item_id = v.item_id
    """)
    for table in ("eges_steps", "eges_lengths", "eges_kept", "eges_spam"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    events_out, sessions_out, users_out = con.execute(f"""
        SELECT count(*), count(DISTINCT (user_id, session)), count(DISTINCT user_id) FROM {SESSIONS_TABLE}
    """).fetchall()[0]
    items_out = int(con.execute(f"SELECT count(*) FROM {VOCAB_TABLE}").fetchall()[0][0])
    report = SessionsReport(
        events_in=events_in, spam_users=int(spam_users), spam_events=int(spam_events),
        behaviour_dropped=behaviour_dropped, short_dwell_dropped=short_dwell_dropped,
        repeats_collapsed=repeats, short_sessions_dropped=int(short[0]),
        short_session_events_dropped=int(short[1]), events_out=int(events_out),
        sessions_out=int(sessions_out), users_out=int(users_out), items_out=items_out,
    )
    if events_out == 0:
        raise InputError(
            "no events are left after cleaning "
            f"({report.events_in} in; {report.spam_events} from {report.spam_users} over-active users, "
            f"{report.behaviour_dropped} by behaviour type, {report.short_dwell_dropped} with short dwell, "
            f"{report.short_session_events_dropped} in sessions shorter than {cfg.min_session_length}); "
            "check the sessions settings"
        )
    return report
