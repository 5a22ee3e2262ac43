"""The sessions stage's rules as Spark jobs: normalise, clean, cut sessions, build the vocabulary.

The cleaning predicates, the per-user counts and the vocabulary order are the SQL of
:mod:`eges.sessions.clean` (shared with DuckDB), and so are the checks and the normalised view
(:mod:`eges.sessions.source`, with the unit rule of :mod:`eges.sessions.timeunits`; one aggregation). The
session cut, sequential in the DuckDB path (:mod:`eges.sessions.kernels`), is written here as window functions over
(user ordered by time, then input row), after the user's counts as window aggregates, all from one shuffle by user:
a new session where the gap to the previous kept event exceeds the limit, a repeat where the item equals the
previous event's inside a session, sessions numbered per user counting short ones, positions over the kept events.
Every count of the report is one aggregation of that frame: each Spark job costs seconds on a cluster.
"""

from __future__ import annotations

from typing import Any

from eges.config import SessionsConfig
from eges.engines.spark.session import read_source
from eges.sessions.clean import SessionsReport, cleaning_predicates, user_counts, vocabulary_sql
from eges.sessions.source import SPARK, EventsSource, configured_columns
from eges.sessions.source import normalise as shared_normalise

EVENTS = "eges_spark_events"


def read_events(spark: Any, source: str, fmt: str = "auto") -> Any:
    """The raw events (see :func:`eges.engines.spark.session.read_source`) with ``eges_row``, the input order:
    the row number follows the files' and partitions' order."""
    from pyspark.sql import functions as F

    return read_source(spark, source, fmt, "events").withColumn("eges_row", F.monotonically_increasing_id())


def normalise(spark: Any, raw: Any, cfg: SessionsConfig, where: str) -> EventsSource:
    """Register the view ``eges_spark_events(user_id, item_id, ts ms, behaviour, dwell, seq)`` with the checks
    of the DuckDB path (:func:`eges.sessions.source.normalise`, in Spark's dialect)."""
    raw.createOrReplaceTempView("eges_spark_raw")
    types = {f.name: f.dataType.typeName() for f in raw.schema.fields}
    view_sql, source = shared_normalise(lambda q: [tuple(r) for r in spark.sql(q).collect()], SPARK,
                                        "eges_spark_raw", types, configured_columns(cfg), cfg.timestamp_unit,
                                        where, EVENTS, "eges_row")
    spark.sql(view_sql)
    return source


def cut_frame(spark: Any, cfg: SessionsConfig, events: EventsSource) -> Any:
    """Every event with its user's counts and its cut, from one shuffle by user: ``spam`` (the user is
    over-active), ``beh_drop`` (the user's events of a type not kept), ``user_first`` (one row per user),
    ``kept`` (cleaning keeps it) and, numbered over the user's kept events only, ``new`` (starts a session),
    ``session``, ``rep`` (a collapsed repeat), ``len`` (kept events of its session) and ``user_kept`` (the user
    has a session long enough). Window aggregates instead of a per-user table joined back: no join, and the
    counts of :func:`count_cut` need no second pass."""
    rules = cleaning_predicates(cfg, has_behaviour=events.has_behaviour, has_dwell=events.has_dwell)
    counts = user_counts(cfg, rules, over=" OVER u")
    gap = int(round(cfg.session_gap_seconds * 1000))
    collapse = "TRUE" if cfg.collapse_repeats else "FALSE"
    m = int(cfg.min_session_length)
    return spark.sql(f"""
        WITH counted AS (
            SELECT user_id, item_id, ts, seq, behaviour, dwell, {counts["spam"]} AS spam,
                   {counts["beh_drop"]} AS beh_drop, row_number() OVER (PARTITION BY user_id ORDER BY seq) = 1
                   AS user_first
            FROM {EVENTS} WINDOW u AS (PARTITION BY user_id)
        ), marked AS (
            SELECT *, CASE WHEN NOT spam AND ({rules["keep_beh"]}) AND {rules["dwell_ok"]} THEN TRUE ELSE FALSE END
                      AS kept
            FROM counted
        ), flagged AS (
            SELECT *, CASE WHEN lag(ts) OVER k IS NULL OR ts - lag(ts) OVER k > {gap} THEN 1 ELSE 0 END AS new,
                   lag(item_id) OVER k AS prev_item
            FROM marked WINDOW k AS (PARTITION BY user_id, kept ORDER BY ts, seq)
        ), numbered AS (
            SELECT *, CAST(sum(new) OVER (PARTITION BY user_id, kept ORDER BY ts, seq
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - 1 AS INT) AS session,
                   CASE WHEN {collapse} AND new = 0 AND prev_item = item_id THEN 1 ELSE 0 END AS rep
            FROM flagged
        ), sized AS (
            SELECT *, sum(1 - rep) OVER (PARTITION BY user_id, kept, session) AS len FROM numbered
        )
        SELECT user_id, item_id, ts, seq, spam, beh_drop, user_first, kept, new, session, rep, len,
               max(CASE WHEN len >= {m} THEN 1 ELSE 0 END) OVER (PARTITION BY user_id, kept) AS user_kept
        FROM sized
    """)


def count_cut(spark: Any, frame: Any, cfg: SessionsConfig, report: SessionsReport) -> Any:
    """Sessions (user_id, session, position, item_id, ts) of the cut ``frame`` (:func:`cut_frame`), and every
    count of ``report`` but the vocabulary's from one aggregation of it (one action)."""
    frame = frame.persist()  # read by the counts, then by the sessions and the vocabulary
    frame.createOrReplaceTempView("eges_spark_cut")
    m = int(cfg.min_session_length)
    c = spark.sql(f"""
        SELECT count(*), count(CASE WHEN spam AND user_first THEN 1 END), count(CASE WHEN spam THEN 1 END),
               coalesce(sum(CASE WHEN NOT spam AND user_first THEN beh_drop END), 0),
               count(CASE WHEN kept THEN 1 END),
               coalesce(sum(CASE WHEN kept THEN rep END), 0),
               count(CASE WHEN kept AND new = 1 AND len < {m} AND len > 0 THEN 1 END),
               count(CASE WHEN kept AND len < {m} AND rep = 0 THEN 1 END),
               count(CASE WHEN kept AND new = 1 AND len >= {m} THEN 1 END),
               count(CASE WHEN kept AND new = 1 AND session = 0 AND user_kept = 1 THEN 1 END),
               count(CASE WHEN kept AND len >= {m} AND rep = 0 THEN 1 END)
        FROM eges_spark_cut""").collect()[0]
    report.events_in, report.spam_users, report.spam_events, report.behaviour_dropped = (int(x) for x in c[:4])
    sorted_rows = int(c[4])
    (report.repeats_collapsed, report.short_sessions_dropped, report.short_session_events_dropped,
     report.sessions_out, report.users_out, report.events_out) = (int(x) for x in c[5:])
    report.short_dwell_dropped = report.events_in - report.spam_events - report.behaviour_dropped - sorted_rows
    return spark.sql(f"""
        SELECT user_id, session,
               CAST(row_number() OVER (PARTITION BY user_id, session ORDER BY ts, seq) - 1 AS INT) AS position,
               item_id, ts
        FROM eges_spark_cut WHERE kept AND rep = 0 AND len >= {m}""")


def spark_sessions(spark: Any, source: str, cfg: SessionsConfig, report: SessionsReport,
                   where: str) -> tuple[Any, Any, EventsSource]:
    """(sessions with item_index sorted by user, session, position; vocabulary sorted by item_index; events)."""
    events = normalise(spark, read_events(spark, source, cfg.format if cfg.format in ("csv", "parquet") else "auto"),
                       cfg, where)
    sessions = count_cut(spark, cut_frame(spark, cfg, events), cfg, report)
    report.check_not_empty(cfg)
    sessions.createOrReplaceTempView("eges_spark_sessions")
    vocab = spark.sql(vocabulary_sql("eges_spark_sessions")).persist()  # joined, then written (its rows:
    # report.items_out, counted by the caller as it copies them: no action of its own)
    indexed = sessions.join(vocab.select("item_id", "item_index"), "item_id") \
        .select("user_id", "session", "position", "item_index", "ts") \
        .orderBy("user_id", "session", "position")
    return indexed, vocab.orderBy("item_index"), events
