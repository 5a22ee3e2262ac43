"""Event logs: the formats eges reads (generic Parquet/CSV, Taobao UserBehavior, RetailRocket) and their
normalisation into one DuckDB view (user_id, item_id, ts in ms, behaviour, dwell, seq = input row), with every
check on the way: columns, nulls, id types, timestamp units, CSV lines the reader rejects.

Used by the sessions stage on files and by the in-memory API on tables; kept beside the session rules so the
API does not import the file layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from eges.config import SessionsConfig
from eges.duck import ROW_COLUMN, ident, sql_path
from eges.errors import InputError
from eges.sessions.source import DUCKDB, EventsSource, configured_columns, normalise, resolve_columns

__all__ = ["EVENTS_VIEW", "EventsSource", "open_events", "register_events", "sniff_format"]

EVENTS_VIEW = "eges_events"

#: Fixed column layouts of the two public formats we read natively.
TAOBAO_COLUMNS = {"user_id": "BIGINT", "item_id": "BIGINT", "category_id": "BIGINT",
                  "behaviour": "VARCHAR", "timestamp": "BIGINT"}
RETAILROCKET = {"user": "visitorid", "item": "itemid", "time": "timestamp", "behaviour": "event"}


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
    cols = configured_columns(cfg)
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
    where = f"events file {path}"

    def create(source: str) -> dict[str, str]:
        try:
            con.execute(f"DROP TABLE IF EXISTS {REJECTS}; DROP TABLE IF EXISTS {REJECTS}_scans")
            star = "* EXCLUDE (file_row_number)" if row.startswith("file_row_number") else "*"
            con.execute(f"CREATE OR REPLACE TEMP VIEW eges_raw AS SELECT {star}, {row} FROM {source}")
            schema = con.execute("DESCRIBE eges_raw").fetchall()
        except Exception as exc:  # duckdb raises several exception types for unreadable files
            raise InputError(f"cannot read events file {path} as {fmt}: {str(exc).splitlines()[0]}") from None
        return {name: typ for name, typ, *_ in schema}

    types = create(source)
    ids: dict[str, str] = {}
    if source.startswith("read_csv"):
        if fmt != "taobao":
            # DuckDB's CSV sniffer guesses a column's type from the first rows and then rounds a late 0.5 into a
            # BIGINT id; numeric id columns are read as text instead and converted exactly (or refused).
            numeric = _numeric_id_columns(types, cols, where)
            if numeric:
                text = ", ".join(f"'{sql_path(c)}': 'VARCHAR'" for c in numeric.values())
                types = create(source.replace("header = true, ", f"header = true, types = {{{text}}}, ", 1))
        _check_csv(con, "eges_raw", types, cols, path)
        if fmt != "taobao":
            ids = {role: _exact_id(con, "eges_raw", col, where, f"{role} id") for role, col in numeric.items()}
    return _normalise(con, "eges_raw", types, cols, unit, where, ids)


def _numeric_id_columns(types: dict[str, str], cols: dict[str, str | None], where: str) -> dict[str, str]:
    """The user and item columns (role -> column) the CSV sniffer typed as numbers."""
    resolved, _ = resolve_columns([c for c in types if c != ROW_COLUMN], cols, where)
    return {role: str(resolved[role]) for role in ("user", "item")
            if DUCKDB.kind(types[str(resolved[role])]) in ("integer", "float")}


def _exact_id(con: Any, raw: str, name: str, where: str, role: str) -> str:
    """SQL for a CSV id column read as text whose values are numbers: BIGINT, converted exactly. Text among the
    numbers names its line, a fraction anywhere is the not-whole error, and an integer beyond 64 bits is refused."""
    from eges.ids import not_whole_message

    c = ident(name)
    number = f"TRY_CAST({c} AS DOUBLE)"
    exact = (f"CASE WHEN regexp_full_match(trim({c}), '[+-]?[0-9]+') THEN TRY_CAST(trim({c}) AS BIGINT) "
             f"ELSE TRY_CAST({number} AS BIGINT) END")
    text, line, value, fraction, example, wide, big = con.execute(f"""
        SELECT count(*) FILTER (WHERE {number} IS NULL), min({ROW_COLUMN}) FILTER (WHERE {number} IS NULL),
               arg_min({c}, {ROW_COLUMN}) FILTER (WHERE {number} IS NULL),
               count(*) FILTER (WHERE NOT isfinite({number}) OR {number} <> round({number})),
               arg_min({c}, {ROW_COLUMN}) FILTER (WHERE NOT isfinite({number}) OR {number} <> round({number})),
               count(*) FILTER (WHERE isfinite({number}) AND {number} = round({number}) AND {exact} IS NULL),
               arg_min({c}, {ROW_COLUMN}) FILTER (WHERE isfinite({number}) AND {number} = round({number})
                                                 AND {exact} IS NULL)
        FROM {raw} WHERE {c} IS NOT NULL""").fetchall()[0]
    if text:
        raise InputError(f"{where}: {text:,} line(s) could not be read, the first at line {line + 2}: Error when "
                         f"converting column \"{name}\": {value!r} is not a number like the column's other values; "
                         "fix the file (eges does not skip rows silently)")
    if fraction:
        raise InputError(not_whole_message(where, name, role, int(fraction), float(example)))
    if wide:
        raise InputError(f"{where}: column {name!r} ({role}) holds {wide:,} whole number(s) beyond 64-bit integers, "
                         f"e.g. {big}; ids must be integers or text")
    return exact


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
    cols = configured_columns(cfg)
    return _normalise(con, "eges_raw_mem", {n: t for n, t, *_ in schema}, cols, cfg.timestamp_unit, "events table")


def _normalise(con: Any, raw: str, types: dict[str, str], cols: dict[str, str | None], unit: str,
               where: str, ids: dict[str, str] | None = None) -> EventsSource:
    """The shared checks and view (:func:`eges.sessions.source.normalise`) in DuckDB's dialect."""
    view_sql, source = normalise(lambda q: con.execute(q).fetchall(), DUCKDB, raw, types, cols, unit, where,
                                 EVENTS_VIEW, ROW_COLUMN, ids)
    con.execute(view_sql)
    return source
