"""The normalised events every engine cuts into sessions, and the checks on the way, written once for both.

An engine reads its input into a raw relation (a DuckDB view, a Spark temp view), names the SQL dialect it speaks
(:class:`Dialect`) and how to run a query (``fetch``); :func:`normalise` then checks the columns, the ids, the
null values and the times with the same queries and messages on either engine, and creates the view
``(user_id, item_id, ts ms, behaviour, dwell, seq)`` the cleaning rules of :mod:`eges.sessions.clean` read.
The timestamp-unit rule itself is :func:`eges.sessions.timeunits.time_to_ms_sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eges.config import SessionsConfig
from eges.errors import InputError

#: Runs one query and returns its rows as tuples.
Fetch = Callable[[str], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class Dialect:
    """What differs between DuckDB's and Spark's SQL in the checks below (templates over ``{x}``, ``{d}``)."""

    name: str
    quote_char: str
    any_value: str          # an aggregate giving some value of a column
    epoch_ms: str           # a TIMESTAMP -> BIGINT milliseconds
    median: str             # approximate median of a DOUBLE
    not_finite: str         # true for NaN and infinite DOUBLEs
    int_div: str            # integer division of a BIGINT
    create_view: str        # CREATE (OR REPLACE) TEMP VIEW {name} AS {query}
    kinds: dict[str, str]   # the engine's type names -> integer, float, time, text (others read as text)

    def ident(self, name: str) -> str:
        q = self.quote_char
        return q + str(name).replace(q, q + q) + q

    def kind(self, type_name: str) -> str:
        t = type_name.lower()
        if t.startswith("decimal"):
            return "float"
        if t.startswith(("timestamp", "date")):
            return "time"
        return self.kinds.get(t, "text")


DUCKDB = Dialect(
    "duckdb", '"', "any_value", "epoch_ms({x})", "approx_quantile({x}, 0.5)", "NOT isfinite({x})", "({x}) // {d}",
    "CREATE OR REPLACE TEMP VIEW {name} AS {query}",
    {**dict.fromkeys(("tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger",
                      "ubigint"), "integer"),
     **dict.fromkeys(("float", "double", "real"), "float"), "varchar": "text"})
SPARK = Dialect(
    "spark", "`", "first", "unix_millis({x})", "percentile_approx({x}, 0.5, 100000)",
    "(isnan({x}) OR abs({x}) = double('inf'))", "(({x}) div {d})", "CREATE OR REPLACE TEMP VIEW {name} AS {query}",
    {**dict.fromkeys(("byte", "short", "integer", "long"), "integer"),
     **dict.fromkeys(("float", "double"), "float"), "string": "text"})


@dataclass(frozen=True)
class EventsSource:
    """The normalised events view and what the engine found reading it."""

    view: str
    has_behaviour: bool
    has_dwell: bool
    timestamp_unit: str
    #: Columns recognised under a common name because the configured (default) one was absent: role -> column.
    recognised: tuple[tuple[str, str], ...] = ()


def configured_columns(cfg: SessionsConfig) -> dict[str, str | None]:
    return {"user": cfg.user_col, "item": cfg.item_col, "time": cfg.time_col, "behaviour": cfg.behaviour_col,
            "dwell": cfg.dwell_col}


def resolve_columns(available: list[str], cols: dict[str, str | None],
                    where: str) -> tuple[dict[str, str | None], tuple[tuple[str, str], ...]]:
    """The user, item and time columns (a common name stands in for an absent default), and which were guessed."""
    from eges.columns import resolve

    cols = dict(cols)
    recognised = []
    for role in ("user", "item", "time"):
        cols[role], guessed = resolve(available, role, cols[role], getattr(SessionsConfig(), f"{role}_col"),
                                      f"sessions.{role}_col", where)
        if guessed:
            recognised.append((role, cols[role]))
    return cols, tuple(recognised)


def id_expr(fetch: Fetch, sql: Dialect, raw: str, column: str, type_name: str, where: str, name: str,
            role: str) -> str:
    """SQL for an id column: as it is (integers, text) or as BIGINT (whole floats); a fraction is a named error."""
    from eges.ids import id_type_message, not_whole_message

    kind = sql.kind(type_name)
    if kind == "integer" or type_name.lower() in ("varchar", "string"):
        return column
    if kind == "float":
        x = f"CAST({column} AS DOUBLE)"
        bad = fetch(f"SELECT count(*), {sql.any_value}({x}) FROM {raw} "
                    f"WHERE {sql.not_finite.format(x=x)} OR {x} <> round({x})")[0]
        if bad[0]:
            raise InputError(not_whole_message(where, name, role, int(bad[0]), float(bad[1])))
        return f"CAST({column} AS BIGINT)"
    raise InputError(id_type_message(where, name, role, type_name))


def normalise(fetch: Fetch, sql: Dialect, raw: str, types: dict[str, str], cols: dict[str, str | None],
              unit: str, where: str, view: str, row_column: str,
              ids: dict[str, str] | None = None) -> tuple[str, EventsSource]:
    """Check the raw relation ``raw`` (column -> type name in ``types``) and return the SQL of the normalised
    view ``view`` with its :class:`EventsSource`; ``ids`` gives id expressions an engine has worked out itself."""
    from eges.sessions.timeunits import time_to_ms_sql

    available = [c for c in types if c != row_column]
    cols, recognised = resolve_columns(available, cols, where)
    has_beh = bool(cols["behaviour"]) and cols["behaviour"] in types
    has_dwell = bool(cols["dwell"]) and cols["dwell"] in types
    u, i, t = (sql.ident(cols[k]) for k in ("user", "item", "time"))
    # count(*) - count(col) is answered from Parquet statistics where they exist: no scan.
    nulls = fetch(f"SELECT count(*) - count({u}), count(*) - count({i}), count(*) - count({t}), count(*) "
                  f"FROM {raw}")[0]
    for n, (col, role) in zip(list(nulls)[:3], [(cols["user"], "user id"), (cols["item"], "item id"),
                                                (cols["time"], "timestamp")]):
        if n:
            raise InputError(f"{where}: column {col!r} ({role}) has {n} null value(s) out of {nulls[3]} rows")
    if nulls[3] == 0:
        raise InputError(f"{where} has no rows")
    ids = ids or {}
    u = ids.get("user") or id_expr(fetch, sql, raw, u, types[cols["user"]], where, cols["user"], "user id")
    i = ids.get("item") or id_expr(fetch, sql, raw, i, types[cols["item"]], where, cols["item"], "item id")
    ts_expr, unit = time_to_ms_sql(fetch, sql, raw, t, types[cols["time"]], unit, cols["time"], where)
    neg = fetch(f"SELECT count(*), min({ts_expr}) FROM {raw} WHERE {ts_expr} < 0")[0]
    if neg[0]:
        raise InputError(f"{where}: column {cols['time']!r} has {neg[0]} negative timestamp(s), e.g. {neg[1]}")
    beh = f"CAST({sql.ident(cols['behaviour'])} AS {_text(sql)})" if has_beh else f"CAST(NULL AS {_text(sql)})"
    dwell = f"TRY_CAST({sql.ident(cols['dwell'])} AS DOUBLE)" if has_dwell else "CAST(NULL AS DOUBLE)"
    query = (f"SELECT {u} AS user_id, {i} AS item_id, {ts_expr} AS ts, {beh} AS behaviour, {dwell} AS dwell, "
             f"{row_column} AS seq FROM {raw}")
    return (sql.create_view.format(name=view, query=query),
            EventsSource(view, has_beh, has_dwell, unit, recognised))


def _text(sql: Dialect) -> str:
    return "VARCHAR" if sql.name == "duckdb" else "STRING"
