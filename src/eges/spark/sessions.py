"""The sessions stage's rules as Spark jobs: normalise, clean, cut sessions, build the vocabulary.

The cleaning predicates, the per-user counts and the vocabulary order are the SQL of
:mod:`eges.sessions.clean` (shared with DuckDB); the unit of integer times is decided by
:mod:`eges.sessions.timeunits`. The session cut, sequential in the DuckDB path (:mod:`eges.sessions.kernels`), is
written here as window functions over (user ordered by time, then input row): a new session where the gap to the
previous event exceeds the limit, a repeat where the item equals the previous event's inside a session, sessions
numbered per user counting short ones, positions over the kept events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eges.config import SessionsConfig
from eges.errors import InputError
from eges.sessions import timeunits
from eges.sessions.clean import SessionsReport, cleaning_predicates, users_sql, vocabulary_sql
from eges.spark.session import read_source

EVENTS = "eges_spark_events"


@dataclass(frozen=True)
class SparkEvents:
    has_behaviour: bool
    has_dwell: bool
    timestamp_unit: str
    recognised: tuple[tuple[str, str], ...] = ()


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def read_events(spark: Any, source: str, fmt: str = "auto") -> Any:
    """The raw events (see :func:`eges.spark.session.read_source`) with ``eges_row``, the input order: the row
    number follows the files' and partitions' order."""
    from pyspark.sql import functions as F

    return read_source(spark, source, fmt, "events").withColumn("eges_row", F.monotonically_increasing_id())


def normalise(spark: Any, raw: Any, cfg: SessionsConfig, where: str) -> SparkEvents:
    """Register the view ``eges_spark_events(user_id, item_id, ts ms, behaviour, dwell, seq)`` with the checks
    of the DuckDB path (columns, null ids and times, units, negative times)."""
    from eges.columns import resolve

    types = {f.name: f.dataType.typeName() for f in raw.schema.fields}
    available = [c for c in types if c != "eges_row"]
    cols: dict[str, Any] = {"user": cfg.user_col, "item": cfg.item_col, "time": cfg.time_col,
                            "behaviour": cfg.behaviour_col, "dwell": cfg.dwell_col}
    recognised = []
    for role in ("user", "item", "time"):
        cols[role], guessed = resolve(available, role, cols[role], getattr(SessionsConfig(), f"{role}_col"),
                                      f"sessions.{role}_col", where)
        if guessed:
            recognised.append((role, cols[role]))
    has_beh = bool(cols["behaviour"]) and cols["behaviour"] in types
    has_dwell = bool(cols["dwell"]) and cols["dwell"] in types
    raw.createOrReplaceTempView("eges_spark_raw")
    u, i, t = (_q(cols[k]) for k in ("user", "item", "time"))
    nulls = spark.sql(f"SELECT count(*) - count({u}), count(*) - count({i}), count(*) - count({t}), count(*) "
                      "FROM eges_spark_raw").collect()[0]
    for n, (col, role) in zip(list(nulls)[:3], [(cols["user"], "user id"), (cols["item"], "item id"),
                                                (cols["time"], "timestamp")]):
        if n:
            raise InputError(f"{where}: column {col!r} ({role}) has {n} null value(s) out of {nulls[3]} rows")
    if nulls[3] == 0:
        raise InputError(f"{where} has no rows")
    ts_expr, unit = timestamp_expr(spark, t, types[cols["time"]], cfg.timestamp_unit, cols["time"], where)
    neg = spark.sql(f"SELECT count(*), min({ts_expr}) FROM eges_spark_raw WHERE {ts_expr} < 0").collect()[0]
    if neg[0]:
        raise InputError(f"{where}: column {cols['time']!r} has {neg[0]} negative timestamp(s), e.g. {neg[1]}")
    beh = f"CAST({_q(cols['behaviour'])} AS STRING)" if has_beh else "CAST(NULL AS STRING)"
    dwell = f"TRY_CAST({_q(cols['dwell'])} AS DOUBLE)" if has_dwell else "CAST(NULL AS DOUBLE)"
    spark.sql(f"""SELECT {u} AS user_id, {i} AS item_id, {ts_expr} AS ts, {beh} AS behaviour, {dwell} AS dwell,
                  eges_row AS seq FROM eges_spark_raw""").createOrReplaceTempView(EVENTS)
    return SparkEvents(has_beh, has_dwell, unit, tuple(recognised))


def timestamp_expr(spark: Any, t: str, ttype: str, unit: str, name: str, where: str) -> tuple[str, str]:
    """Spark SQL turning the time column into BIGINT milliseconds, and the unit (the DuckDB path's rule)."""
    if ttype in ("timestamp", "timestamp_ntz", "date"):
        return f"unix_millis(CAST({t} AS TIMESTAMP))", "timestamp"
    if ttype == "string":
        n_rows, n_numeric = spark.sql(f"SELECT count(*), count(TRY_CAST({t} AS DOUBLE)) FROM eges_spark_raw"
                                      ).collect()[0]
        if unit == "timestamp" or 2 * n_numeric < n_rows:
            parsed = f"TRY_CAST({t} AS TIMESTAMP)"
            bad = spark.sql(f"SELECT count(*), first({t}) FROM eges_spark_raw WHERE {parsed} IS NULL").collect()[0]
            if bad[0]:
                raise InputError(f"{where}: column {name!r} has {bad[0]} unparsable timestamp(s), e.g. {bad[1]!r}")
            return f"unix_millis({parsed})", "timestamp"
        t, ttype = f"TRY_CAST({t} AS DOUBLE)", "double"
    if unit == "timestamp":
        raise InputError(f"{where}: column {name!r} holds numbers but sessions.timestamp_unit is 'timestamp'")
    floating = ttype in ("double", "float")
    if floating:
        bad = spark.sql(f"SELECT count(*), first({t}) FROM eges_spark_raw WHERE isnan({t}) OR abs({t}) = "
                        "double('inf')").collect()[0]
        if bad[0]:
            raise InputError(f"{where}: column {name!r} has {bad[0]:,} NaN or infinite timestamp(s), e.g. {bad[1]}")
    n_rows, median, biggest = spark.sql(
        f"SELECT count(*), percentile_approx(abs(CAST({t} AS DOUBLE)), 0.5, 100000), max(abs(CAST({t} AS DOUBLE))) "
        "FROM eges_spark_raw").collect()[0]
    if unit == "auto":
        unit = timeunits.unit_of(float(median or 0))
        predicate = timeunits.disagreeing_sql(f"CAST({t} AS DOUBLE)", unit)
        n_bad = spark.sql(f"SELECT count(*) FROM eges_spark_raw WHERE {predicate}").collect()[0][0]
        if n_bad:
            examples = [r[0] for r in spark.sql(f"SELECT {t} FROM eges_spark_raw WHERE {predicate} LIMIT 3"
                                                ).collect()]
            raise InputError(timeunits.disagreement_message(where, name, unit, float(median), n_bad, n_rows,
                                                            examples))
    divisor = timeunits.TO_MS_DIVISOR[unit]
    if float(biggest or 0) / divisor >= 9.2e18:
        raise InputError(f"{where}: column {name!r} holds {biggest:.4g}, too large for a time in {unit}; "
                         "check sessions.timestamp_unit")
    if unit == "s":
        scaled = f"({t}) * 1000"
    elif unit == "ms":
        scaled = f"({t})"
    else:
        scaled = f"floor(({t}) / {divisor})" if floating else f"(({t}) div {divisor})"
    # DuckDB rounds a float to the nearest integer when casting; Spark truncates, so round first.
    return (f"CAST(round({scaled}) AS BIGINT)" if floating else f"CAST({scaled} AS BIGINT)"), unit


def sessions_frame(spark: Any, cfg: SessionsConfig, events: SparkEvents, report: SessionsReport) -> Any:
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
                   where: str) -> tuple[Any, Any, SparkEvents]:
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
