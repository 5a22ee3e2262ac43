"""Which unit integer timestamps are in, decided from the bulk of the values, for every engine.

A unit is told by magnitude: today's date is about 1.7e9 in seconds, 1.7e12 in milliseconds, 1.7e15 in
microseconds and 1.7e18 in nanoseconds, so the classes are separated by the bounds below. The log's unit is the
class of its median magnitude (one outlier cannot move a median, while it moved the old maximum-based guess), and
values of another class are reported, not silently rescaled: a log whose values disagree about their unit is an
error that shows examples. Pure Python: DuckDB and Spark compute the inputs (a median, counts, examples) in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eges.errors import InputError

#: Units from coarsest to finest, the upper bound of each one's magnitudes, and how to reach milliseconds.
UNITS = ("s", "ms", "us", "ns")
UPPER = {"s": 1e11, "ms": 1e14, "us": 1e17, "ns": float("inf")}
TO_MS_DIVISOR = {"s": 0.001, "ms": 1, "us": 1_000, "ns": 1_000_000}
#: Values at least this large look like absolute times (1e8 s is 1973), so a smaller class among them is a unit
#: disagreement; below it they may be offsets from the start of the log and say nothing about the unit.
ABSOLUTE_FROM = 1e8


def unit_of(magnitude: float) -> str:
    """The unit whose range holds ``magnitude`` (an absolute value)."""
    for unit in UNITS:
        if magnitude < UPPER[unit]:
            return unit
    return "ns"


def lower_bound(unit: str) -> float:
    i = UNITS.index(unit)
    return 0.0 if i == 0 else UPPER[UNITS[i - 1]]


def disagreeing_sql(column: str, unit: str) -> str:
    """A SQL predicate (DuckDB and Spark SQL alike) true for values whose magnitude says another unit than ``unit``:
    any larger class, or a smaller class among values large enough to be absolute times."""
    lo = lower_bound(unit)
    above = f"abs({column}) >= {UPPER[unit]!r}" if UPPER[unit] != float("inf") else "FALSE"
    below = f"(abs({column}) < {lo!r} AND abs({column}) >= {ABSOLUTE_FROM!r})" if lo > ABSOLUTE_FROM else "FALSE"
    return f"({above} OR {below})"


def disagreement_message(where: str, name: str, unit: str, median: float, n_bad: int, n_rows: int,
                         examples: Sequence[object]) -> str:
    shown = ", ".join(str(_plain(e)) for e in examples[:3])
    others = sorted({unit_of(abs(float(e))) for e in examples[:3]} - {unit})
    return (f"{where}: column {name!r} mixes timestamp units: most values are in {unit} (median {_plain(median)}), "
            f"but {n_bad:,} of {n_rows:,} look like {'/'.join(others) or 'another unit'}, e.g. {shown}; fix the "
            f"column, or force one unit with --set sessions.timestamp_unit={unit}")


def _plain(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def time_aggregates(sql: Any, t: str, type_name: str, unit: str) -> dict[str, str]:
    """The aggregates over the raw relation that :func:`time_to_ms_sql` decides from, named, in the engine's
    dialect: every branch's, since which branch applies is known only from them, so that they run in one query
    with the other input checks (:func:`eges.sessions.source.normalise`; one scan, and on Spark one action)."""
    kind = sql.kind(type_name)
    if kind == "time":
        return {"t_lowest": f"min({sql.epoch_ms.format(x=f'CAST({t} AS TIMESTAMP)')})"}
    out: dict[str, str] = {}
    if kind == "text":  # numbers written as text, or date-times: both readings, decided by what most values are
        number, stamp = f"TRY_CAST({t} AS DOUBLE)", f"TRY_CAST({t} AS TIMESTAMP)"
        out |= {"t_numeric": f"count({number})",
                "t_bad_number": f"count(*) FILTER (WHERE {number} IS NULL)",
                "t_bad_number_e": f"{sql.any_value}({t}) FILTER (WHERE {number} IS NULL)",
                "t_bad_stamp": f"count(*) FILTER (WHERE {stamp} IS NULL)",
                "t_bad_stamp_e": f"{sql.any_value}({t}) FILTER (WHERE {stamp} IS NULL)",
                "t_lowest_stamp": f"min({sql.epoch_ms.format(x=stamp)})"}
        t, kind = number, "float"
    x = f"CAST({t} AS DOUBLE)"
    if kind == "float":
        bad = sql.not_finite.format(x=x)
        out |= {"t_not_finite": f"count(*) FILTER (WHERE {bad})",
                "t_not_finite_e": f"{sql.any_value}({t}) FILTER (WHERE {bad})"}
    out |= {"t_median": sql.median.format(x=f"abs({x})"), "t_biggest": f"max(abs({x}))", "t_lowest": f"min({x})"}
    if unit == "auto":
        out |= {f"t_disagree_{u}": f"count(*) FILTER (WHERE {disagreeing_sql(x, u)})" for u in UNITS}
    return out


def time_to_ms_sql(fetch: Any, sql: Any, raw: str, t: str, type_name: str, unit: str, name: str,
                   where: str, got: dict[str, Any]) -> tuple[str, str, bool]:
    """SQL turning the time column ``t`` of ``raw`` into BIGINT milliseconds, the unit it was read in, and whether
    a time may be negative (when it cannot, the caller's count of negative times is zero without a query), in
    the engine's dialect (:class:`eges.sessions.source.Dialect`). ``got`` holds the values of
    :func:`time_aggregates` and ``rows``; ``fetch`` runs a query only to show examples of an error.

    Integer units are decided from the median magnitude (:func:`unit_of`); a column whose values disagree about
    their unit, NaN or infinite values, and values too large for milliseconds are errors. Integers are widened
    to BIGINT before they are scaled: int32 seconds times 1000 overflow int32.
    """
    kind = sql.kind(type_name)
    if kind == "time":
        return sql.epoch_ms.format(x=f"CAST({t} AS TIMESTAMP)"), "timestamp", _below_zero(got["t_lowest"])
    n_rows = got["rows"]
    if kind == "text":
        as_numbers = unit != "timestamp" and 2 * got["t_numeric"] >= n_rows
        reading = "number" if as_numbers else "stamp"
        if got[f"t_bad_{reading}"]:
            raise InputError(f"{where}: column {name!r} has {got[f't_bad_{reading}']} unparsable timestamp(s), "
                             f"e.g. {got[f't_bad_{reading}_e']!r}")
        if not as_numbers:
            return (sql.epoch_ms.format(x=f"TRY_CAST({t} AS TIMESTAMP)"), "timestamp",
                    _below_zero(got["t_lowest_stamp"]))
        t, kind = f"TRY_CAST({t} AS DOUBLE)", "float"
    if unit == "timestamp":
        raise InputError(f"{where}: column {name!r} holds numbers but sessions.timestamp_unit is 'timestamp'")
    x = f"CAST({t} AS DOUBLE)"
    if kind == "float" and got["t_not_finite"]:
        raise InputError(f"{where}: column {name!r} has {got['t_not_finite']:,} NaN or infinite timestamp(s), "
                         f"e.g. {got['t_not_finite_e']}")
    median, biggest = got["t_median"], got["t_biggest"]
    if unit == "auto":
        unit = unit_of(float(median or 0))
        n_bad = got[f"t_disagree_{unit}"]
        if n_bad:
            predicate = disagreeing_sql(x, unit)
            examples = [r[0] for r in fetch(f"SELECT {t} FROM {raw} WHERE {predicate} LIMIT 3")]
            raise InputError(disagreement_message(where, name, unit, float(median), n_bad, n_rows, examples))
    divisor = TO_MS_DIVISOR[unit]
    if float(biggest or 0) / divisor >= 9.2e18:
        raise InputError(f"{where}: column {name!r} holds {biggest:.4g}, too large for a time in {unit}; "
                         "check sessions.timestamp_unit")
    # Every scaling below keeps a value that is not negative at zero or above (and cannot overflow past the
    # check above), so only a negative raw value can give a negative time.
    may_be_negative = _below_zero(got["t_lowest"])
    if kind == "float":  # rounded to the nearest millisecond (Spark's cast would truncate); finer units floor
        scaled = f"round({x} * 1000)" if unit == "s" else f"round({x})" if unit == "ms" else \
            f"floor({x} / {divisor})"
        return f"CAST({scaled} AS BIGINT)", unit, may_be_negative
    wide = f"CAST({t} AS BIGINT)"
    scaled = f"{wide} * 1000" if unit == "s" else wide if unit == "ms" else \
        f"CAST({sql.int_div.format(x=t, d=divisor)} AS BIGINT)"
    return scaled, unit, may_be_negative


def _below_zero(lowest: Any) -> bool:
    return lowest is not None and float(lowest) < 0
