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


def id_aggregates(sql: Dialect, column: str, type_name: str, role: str) -> dict[str, str]:
    """The aggregates :func:`id_expr` decides from (fractions in a float id column), named for the one query."""
    if sql.kind(type_name) != "float":
        return {}
    x = f"CAST({column} AS DOUBLE)"
    bad = f"{sql.not_finite.format(x=x)} OR {x} <> round({x})"
    return {f"{role}_fractions": f"count(*) FILTER (WHERE {bad})",
            f"{role}_fraction_e": f"{sql.any_value}({x}) FILTER (WHERE {bad})"}


def id_expr(sql: Dialect, column: str, type_name: str, where: str, name: str, role: str,
            got: dict[str, Any]) -> str:
    """SQL for an id column: as it is (integers, text) or as BIGINT (whole floats); a fraction is a named error.
    ``got`` holds the values of :func:`id_aggregates`."""
    from eges.ids import id_type_message, not_whole_message

    kind = sql.kind(type_name)
    if kind == "integer" or type_name.lower() in ("varchar", "string"):
        return column
    if kind == "float":
        key = role.split()[0]
        if got[f"{key}_fractions"]:
            raise InputError(not_whole_message(where, name, role, int(got[f"{key}_fractions"]),
                                               float(got[f"{key}_fraction_e"])))
        return f"CAST({column} AS BIGINT)"
    raise InputError(id_type_message(where, name, role, type_name))


def normalise(fetch: Fetch, sql: Dialect, raw: str, types: dict[str, str], cols: dict[str, str | None],
              unit: str, where: str, view: str, row_column: str,
              ids: dict[str, str] | None = None) -> tuple[str, EventsSource]:
    """Check the raw relation ``raw`` (column -> type name in ``types``) and return the SQL of the normalised
    view ``view`` with its :class:`EventsSource`; ``ids`` gives id expressions an engine has worked out itself."""
    from eges.sessions.timeunits import time_aggregates, time_to_ms_sql

    available = [c for c in types if c != row_column]
    cols, recognised = resolve_columns(available, cols, where)
    has_beh = bool(cols["behaviour"]) and cols["behaviour"] in types
    has_dwell = bool(cols["dwell"]) and cols["dwell"] in types
    u, i, t = (sql.ident(cols[k]) for k in ("user", "item", "time"))
    ids = ids or {}
    # Every check's figures come from one query (one scan; one action on Spark, whose job starts cost seconds
    # on a cluster), and the checks below decide from them in their order: the first failing check's message.
    wanted = {"user_nulls": f"count(*) - count({u})", "item_nulls": f"count(*) - count({i})",
              "time_nulls": f"count(*) - count({t})", "rows": "count(*)"}
    for role, column in (("user", u), ("item", i)):
        if role not in ids:
            wanted |= id_aggregates(sql, column, types[cols[role]], role)
    wanted |= time_aggregates(sql, t, types[cols["time"]], unit)
    got = dict(zip(wanted, fetch(f"SELECT {', '.join(wanted.values())} FROM {raw}")[0]))
    for role, label in (("user", "user id"), ("item", "item id"), ("time", "timestamp")):
        if got[f"{role}_nulls"]:
            raise InputError(f"{where}: column {cols[role]!r} ({label}) has {got[f'{role}_nulls']} null value(s) "
                             f"out of {got['rows']} rows")
    if got["rows"] == 0:
        raise InputError(f"{where} has no rows")
    u = ids.get("user") or id_expr(sql, u, types[cols["user"]], where, cols["user"], "user id", got)
    i = ids.get("item") or id_expr(sql, i, types[cols["item"]], where, cols["item"], "item id", got)
    ts_expr, unit, may_be_negative = time_to_ms_sql(fetch, sql, raw, t, types[cols["time"]], unit, cols["time"],
                                                    where, got)
    if may_be_negative:
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
