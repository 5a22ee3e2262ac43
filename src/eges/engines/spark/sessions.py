"""The sessions stage's rules as Spark jobs: normalise, clean, cut sessions, build the vocabulary.

The cleaning predicates, the per-user counts and the vocabulary order are the SQL of
:mod:`eges.sessions.clean` (shared with DuckDB), and so are the checks and the normalised view
(:mod:`eges.sessions.source`, with the unit rule of :mod:`eges.sessions.timeunits`). The session cut, sequential
in the DuckDB path (:mod:`eges.sessions.kernels`), is written here as window functions over (user ordered by time, then input row): a new session where the gap to the
previous event exceeds the limit, a repeat where the item equals the previous event's inside a session, sessions
numbered per user counting short ones, positions over the kept events.
"""

from __future__ import annotations

from typing import Any

from eges.config import SessionsConfig
from eges.engines.spark.session import read_source
from eges.sessions.clean import SessionsReport, cleaning_predicates, users_sql, vocabulary_sql
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


def sessions_frame(spark: Any, cfg: SessionsConfig, events: EventsSource, report: SessionsReport) -> Any:
    """The cleaned events with their cut: every kept event of a non-spam user with ``new`` (starts a session),
    ``session``, ``rep`` (a collapsed repeat) and ``len`` (kept events of its session). Fills the counts of
    ``report`` known before the cut."""
    rules = cleaning_predicates(cfg, has_behaviour=events.has_behaviour, has_dwell=events.has_dwell)
    users = spark.sql(users_sql(EVENTS, cfg, rules)).persist()
    users.createOrReplaceTempView("eges_spark_users")
    totals = spark.sql("""
        SELECT sum(n), count(*) FILTER (WHERE spam), coalesce(sum(n) FILTER (WHERE spam), 0),
               coalesce(sum(beh_drop) FILTER (WHERE NOT spam), 0), coalesce(sum(n) FILTER (WHERE NOT spam), 0)
        FROM eges_spark_users""").collect()[0]
    report.events_in, report.spam_users, report.spam_events, report.behaviour_dropped = (int(x or 0)
                                                                                         for x in totals[:4])
    gap = int(round(cfg.session_gap_seconds * 1000))
    collapse = "TRUE" if cfg.collapse_repeats else "FALSE"
    frame = spark.sql(f"""
        WITH kept AS (
            SELECT e.user_id, e.item_id, e.ts, e.seq FROM {EVENTS} e
            LEFT ANTI JOIN (SELECT user_id FROM eges_spark_users WHERE spam) s ON e.user_id = s.user_id
            WHERE ({rules["keep_beh"]}) AND {rules["dwell_ok"]}
        ), flagged AS (
            SELECT *, CASE WHEN lag(ts) OVER u IS NULL OR ts - lag(ts) OVER u > {gap} THEN 1 ELSE 0 END AS new,
                   lag(item_id) OVER u AS prev_item
            FROM kept WINDOW u AS (PARTITION BY user_id ORDER BY ts, seq)
        ), numbered AS (
            SELECT *, CAST(sum(new) OVER (PARTITION BY user_id ORDER BY ts, seq
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - 1 AS INT) AS session,
                   CASE WHEN {collapse} AND new = 0 AND prev_item = item_id THEN 1 ELSE 0 END AS rep
            FROM flagged
        )
        SELECT *, sum(1 - rep) OVER (PARTITION BY user_id, session) AS len FROM numbered
    """)
    users.unpersist()
    return frame


def cut_and_count(spark: Any, frame: Any, cfg: SessionsConfig, report: SessionsReport) -> Any:
    """Sessions (user_id, session, position, item_id, ts) and the cut's counts into ``report``."""
    frame = frame.persist()
    frame.createOrReplaceTempView("eges_spark_cut")
    m = int(cfg.min_session_length)
    c = spark.sql(f"""
        SELECT count(*), coalesce(sum(rep), 0),
               count(DISTINCT CASE WHEN len < {m} AND len > 0 THEN struct(user_id, session) END),
               coalesce(sum(CASE WHEN len < {m} AND rep = 0 THEN 1 ELSE 0 END), 0),
               count(DISTINCT CASE WHEN len >= {m} THEN struct(user_id, session) END),
               count(DISTINCT CASE WHEN len >= {m} THEN user_id END),
               coalesce(sum(CASE WHEN len >= {m} AND rep = 0 THEN 1 ELSE 0 END), 0)
        FROM eges_spark_cut""").collect()[0]
    sorted_rows = int(c[0])
    (report.repeats_collapsed, report.short_sessions_dropped, report.short_session_events_dropped,
     report.sessions_out, report.users_out, report.events_out) = (int(x) for x in c[1:])
    report.short_dwell_dropped = report.events_in - report.spam_events - report.behaviour_dropped - sorted_rows
    return spark.sql(f"""
        SELECT user_id, session,
               CAST(row_number() OVER (PARTITION BY user_id, session ORDER BY ts, seq) - 1 AS INT) AS position,
               item_id, ts
        FROM eges_spark_cut WHERE rep = 0 AND len >= {m}""")


def spark_sessions(spark: Any, source: str, cfg: SessionsConfig, report: SessionsReport,
                   where: str) -> tuple[Any, Any, EventsSource]:
    """(sessions with item_index sorted by user, session, position; vocabulary sorted by item_index; events)."""
    events = normalise(spark, read_events(spark, source, cfg.format if cfg.format in ("csv", "parquet") else "auto"),
                       cfg, where)
    sessions = cut_and_count(spark, sessions_frame(spark, cfg, events, report), cfg, report)
    report.check_not_empty(cfg)
    sessions.createOrReplaceTempView("eges_spark_sessions")
    vocab = spark.sql(vocabulary_sql("eges_spark_sessions")).persist()
    report.items_out = vocab.count()
    indexed = sessions.join(vocab.select("item_id", "item_index"), "item_id") \
        .select("user_id", "session", "position", "item_index", "ts") \
        .orderBy("user_id", "session", "position")
    return indexed, vocab.orderBy("item_index"), events
