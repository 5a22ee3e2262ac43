"""Event logs: the formats eges reads (generic Parquet/CSV, Taobao UserBehavior, RetailRocket) and their
normalisation into one DuckDB view (user_id, item_id, ts in ms, behaviour, dwell, seq = input row), with every
check on the way: columns, nulls, id types, timestamp units, CSV lines the reader rejects.

Used by the sessions stage on files and by the in-memory API on tables; kept beside the session rules so the
API does not import the file layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from eges.config import SessionsConfig
from eges.duck import ROW_COLUMN, ident, sql_path
from eges.errors import InputError

EVENTS_VIEW = "eges_events"

#: Fixed column layouts of the two public formats we read natively.
TAOBAO_COLUMNS = {"user_id": "BIGINT", "item_id": "BIGINT", "category_id": "BIGINT",
                  "behaviour": "VARCHAR", "timestamp": "BIGINT"}
RETAILROCKET = {"user": "visitorid", "item": "itemid", "time": "timestamp", "behaviour": "event"}


@dataclass(frozen=True)
class EventsSource:
    """The normalised events view and which optional columns it has."""

    view: str
    has_behaviour: bool
    has_dwell: bool
    timestamp_unit: str
    #: Columns recognised under a common name because the configured (default) one was absent: role -> column.
    recognised: tuple[tuple[str, str], ...] = ()


def sniff_format(path: Path) -> str:
    """Tell the Taobao UserBehavior CSV and RetailRocket events.csv from a generic file by their first line."""
    from eges.pipeline.io import is_csv

    if not is_csv(path):
        return "generic"
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip().lower()
    fields = [f.strip() for f in first.split(",")]
    if {"visitorid", "itemid", "event"} <= set(fields):
        return "retailrocket"
    if len(fields) == 5 and fields[3] in {"pv", "buy", "cart", "fav"} and all(
            f.lstrip("-").isdigit() for f in fields[:3] + fields[4:]):
        return "taobao"
    return "generic"


def open_events(con: Any, path: str | Path, cfg: SessionsConfig) -> EventsSource:
    """Create a view of the raw event file, check its schema and values, and normalise it.

    Raises:
        InputError: the file is missing or unreadable, a column is missing, an id is null, or a
            timestamp is unparsable or negative.
    """
    from eges.pipeline.io import check_readable, is_csv  # the file layer, only for files

    path = Path(path)
    check_readable(path, "events")
    fmt = sniff_format(path) if cfg.format == "auto" else cfg.format
    p = sql_path(path)
    cols = {"user": cfg.user_col, "item": cfg.item_col, "time": cfg.time_col,
            "behaviour": cfg.behaviour_col, "dwell": cfg.dwell_col}
    unit = cfg.timestamp_unit
    row = f"row_number() OVER () - 1 AS {ROW_COLUMN}"  # CSV: file order, with insertion order kept (below)
    if fmt == "taobao":
        columns = ", ".join(f"'{k}': '{v}'" for k, v in TAOBAO_COLUMNS.items())
        source = f"read_csv('{p}', header = false, columns = {{{columns}}}, {CSV_REJECTS})"
        cols = {"user": "user_id", "item": "item_id", "time": "timestamp", "behaviour": "behaviour",
                "dwell": None}
        unit = "s" if unit == "auto" else unit
    elif fmt == "retailrocket":
        source = f"read_csv('{p}', header = true, {CSV_REJECTS})"
        cols = {**RETAILROCKET, "dwell": None}
        unit = "ms" if unit == "auto" else unit
    elif is_csv(path):
        source = f"read_csv('{p}', header = true, {CSV_REJECTS})"
    else:
        source = f"read_parquet('{p}', file_row_number = true)"
        row = f"file_row_number AS {ROW_COLUMN}"
    if source.startswith("read_csv"):
        # row_number() OVER () numbers rows in file order only while DuckDB keeps insertion order.
        con.execute("SET preserve_insertion_order = true")
    try:
        con.execute(f"DROP TABLE IF EXISTS {REJECTS}; DROP TABLE IF EXISTS {REJECTS}_scans")
        star = "* EXCLUDE (file_row_number)" if row.startswith("file_row_number") else "*"
        con.execute(f"CREATE OR REPLACE TEMP VIEW eges_raw AS SELECT {star}, {row} FROM {source}")
        schema = con.execute("DESCRIBE eges_raw").fetchall()
    except Exception as exc:  # duckdb raises several exception types for unreadable files
        raise InputError(f"cannot read events file {path} as {fmt}: {str(exc).splitlines()[0]}") from None
    types = {name: typ for name, typ, *_ in schema}
    if source.startswith("read_csv"):
        _check_csv(con, "eges_raw", types, cols, path)
    return _normalise(con, "eges_raw", types, cols, unit, f"events file {path}")


#: CSV lines DuckDB cannot read (too many or too few fields, a value that does not fit the column's type) are
#: collected instead of aborting the scan half-way, so the error can name the line; any of them is an error.
REJECTS = "eges_csv_rejects"
CSV_REJECTS = f"store_rejects = true, rejects_table = '{REJECTS}', rejects_scan = '{REJECTS}_scans'"


def _check_csv(con: Any, raw: str, types: dict[str, str], cols: dict[str, str | None], path: Path) -> None:
    """Fail on CSV lines the reader rejected and on quoted values that swallowed line breaks (rows lost silently
    otherwise: a quote that closes 50 lines later merges those lines into one value)."""
    named = [c for c in types if c != ROW_COLUMN]
    if len(named) == 1 and "," in named[0]:
        raise InputError(f"events file {path}: could not split the lines into columns (the header reads as one "
                         f"column {named[0]!r}); check the delimiter and quoting")
    wanted = [c for c in cols.values() if c and c in types]
    text = [c for c in wanted if types[c].upper() == "VARCHAR"]
    newline = ", ".join(f"count(*) FILTER (WHERE contains({ident(c)}, chr(10)))" for c in text) or "0"
    reads = "".join(f", count({ident(c)})" for c in wanted)
    counts = con.execute(f"SELECT count(*){reads}, {newline} FROM {raw}").fetchall()[0]  # parses every wanted
    # column, so every line the reader rejects is in the rejects table
    rejected = con.execute(f"SELECT count(DISTINCT line), min(line), arg_min(error_message, line) FROM {REJECTS}"
                           ).fetchall()[0]
    if rejected[0]:
        line, message = rejected[1], str(rejected[2]).split("\n")[0]
        raise InputError(f"events file {path}: {rejected[0]:,} line(s) could not be read, the first at line {line}: "
                         f"{message}; fix the file (eges does not skip rows silently)")
    merged = sum(counts[1 + len(wanted):])
    if merged:
        column = next(c for c, n in zip(text, counts[1 + len(wanted):]) if n)
        example = con.execute(f"SELECT {ident(column)} FROM {raw} WHERE contains({ident(column)}, chr(10)) "
                              "LIMIT 1").fetchall()[0][0]
        raise InputError(f"events file {path}: {merged:,} value(s) of column {column!r} span several lines (a quote "
                         f"that is not closed on its line), e.g. {example[:60]!r}; those lines would be merged "
                         "into one event")


def register_events(con: Any, events: Any, cfg: SessionsConfig) -> EventsSource:
    """Like :func:`open_events` for an in-memory pandas DataFrame or Arrow table."""
    if not isinstance(events, pa.Table):
        events = pa.Table.from_pandas(events, preserve_index=False)
    events = events.append_column(ROW_COLUMN, pa.array(np.arange(events.num_rows, dtype=np.int64)))
    con.register("eges_raw_mem", events)
    schema = con.execute("DESCRIBE eges_raw_mem").fetchall()
    cols = {"user": cfg.user_col, "item": cfg.item_col, "time": cfg.time_col,
            "behaviour": cfg.behaviour_col, "dwell": cfg.dwell_col}
    return _normalise(con, "eges_raw_mem", {n: t for n, t, *_ in schema}, cols, cfg.timestamp_unit, "events table")


def _normalise(con: Any, raw: str, types: dict[str, str], cols: dict[str, str | None], unit: str,
               where: str) -> EventsSource:
    from eges.columns import resolve

    available = [c for c in types if c != ROW_COLUMN]
    recognised = []
    for role in ("user", "item", "time"):
        key = f"sessions.{role}_col"
        cols[role], guessed = resolve(available, role, cols[role], getattr(SessionsConfig(), f"{role}_col"), key, where)
        if guessed:
            recognised.append((role, cols[role]))
    has_beh = bool(cols["behaviour"]) and cols["behaviour"] in types
    has_dwell = bool(cols["dwell"]) and cols["dwell"] in types
    u, i, t = (ident(cols[k]) for k in ("user", "item", "time"))
    ttype = types[cols["time"]].upper()

    # count(*) - count(col) is answered from Parquet statistics where they exist: no scan.
    nulls = con.execute(f"SELECT count(*) - count({u}), count(*) - count({i}), count(*) - count({t}), count(*) "
                        f"FROM {raw}").fetchall()[0]
    for n, (col, role) in zip(nulls[:3], [(cols["user"], "user id"), (cols["item"], "item id"),
                                          (cols["time"], "timestamp")]):
        if n:
            raise InputError(f"{where}: column {col!r} ({role}) has {n} null value(s) out of {nulls[3]} rows")
    if nulls[3] == 0:
        raise InputError(f"{where} has no rows")

    from eges.ids import id_sql

    u = id_sql(con, raw, u, types[cols["user"]], where, cols["user"], "user id")
    i = id_sql(con, raw, i, types[cols["item"]], where, cols["item"], "item id")
    ts_expr, unit = _timestamp_expr(con, raw, t, ttype, unit, cols["time"], where)
    neg = con.execute(f"SELECT count(*), min({ts_expr}) FROM {raw} WHERE {ts_expr} < 0").fetchall()[0]
    if neg[0]:
        raise InputError(f"{where}: column {cols['time']!r} has {neg[0]} negative timestamp(s), e.g. {neg[1]}")
    beh = f'CAST({ident(cols["behaviour"])} AS VARCHAR)' if has_beh else "NULL::VARCHAR"
    dwell = f'TRY_CAST({ident(cols["dwell"])} AS DOUBLE)' if has_dwell else "NULL::DOUBLE"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {EVENTS_VIEW} AS
        SELECT {u} AS user_id, {i} AS item_id, {ts_expr} AS ts, {beh} AS behaviour, {dwell} AS dwell,
               {ROW_COLUMN} AS seq
        FROM {raw}""")
    return EventsSource(EVENTS_VIEW, has_beh, has_dwell, unit, tuple(recognised))


def _timestamp_expr(con: Any, raw: str, t: str, ttype: str, unit: str, name: str, where: str) -> tuple[str, str]:
    """SQL turning the time column into BIGINT milliseconds, and the unit it was read in.

    Integer units are decided by :mod:`eges.sessions.timeunits` from the median magnitude; a column whose values
    disagree about their unit, NaN or infinite values, and values too large for milliseconds are errors.
    """
    from eges.sessions import timeunits

    if ttype.startswith(("TIMESTAMP", "DATE")):
        return f"epoch_ms(CAST({t} AS TIMESTAMP))", "timestamp"
    numeric = ttype in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                        "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE"} or ttype.startswith("DECIMAL")
    if not numeric:
        # A text column: numbers written as text, or date-times; decided by what most values are.
        n_rows, n_numeric = con.execute(f"SELECT count(*), count(TRY_CAST({t} AS DOUBLE)) FROM {raw}").fetchall()[0]
        as_numbers = unit != "timestamp" and 2 * n_numeric >= n_rows
        parsed = f"TRY_CAST({t} AS DOUBLE)" if as_numbers else f"TRY_CAST({t} AS TIMESTAMP)"
        bad = con.execute(f"SELECT count(*), any_value({t}) FROM {raw} WHERE {parsed} IS NULL").fetchall()[0]
        if bad[0]:
            raise InputError(f"{where}: column {name!r} has {bad[0]} unparsable timestamp(s), e.g. {bad[1]!r}")
        if not as_numbers:
            return f"epoch_ms({parsed})", "timestamp"
        t, ttype = parsed, "DOUBLE"
    if unit == "timestamp":
        raise InputError(f"{where}: column {name!r} holds numbers but sessions.timestamp_unit is 'timestamp'")
    if ttype in {"FLOAT", "DOUBLE"}:
        n_bad, example = con.execute(f"SELECT count(*), any_value({t}) FROM {raw} "
                                     f"WHERE NOT isfinite({t})").fetchall()[0]
        if n_bad:
            raise InputError(f"{where}: column {name!r} has {n_bad:,} NaN or infinite timestamp(s), e.g. {example}")
    n_rows, median, biggest = con.execute(f"SELECT count(*), approx_quantile(abs({t}::DOUBLE), 0.5), "
                                          f"max(abs({t}::DOUBLE)) FROM {raw}").fetchall()[0]
    if unit == "auto":
        unit = timeunits.unit_of(float(median or 0))
        predicate = timeunits.disagreeing_sql(f"{t}::DOUBLE", unit)
        n_bad = con.execute(f"SELECT count(*) FROM {raw} WHERE {predicate}").fetchall()[0][0]
        if n_bad:
            examples = [r[0] for r in con.execute(f"SELECT {t} FROM {raw} WHERE {predicate} LIMIT 3").fetchall()]
            raise InputError(timeunits.disagreement_message(where, name, unit, float(median), n_bad, n_rows,
                                                            examples))
    divisor = timeunits.TO_MS_DIVISOR[unit]
    if float(biggest or 0) / divisor >= 9.2e18:
        raise InputError(f"{where}: column {name!r} holds {biggest:.4g}, too large for a time in {unit}; "
                         "check sessions.timestamp_unit")
    scaled = f"({t}) * 1000" if unit == "s" else f"({t})" if unit == "ms" else f"({t}) // {divisor}"
    return f"CAST({scaled} AS BIGINT)", unit
