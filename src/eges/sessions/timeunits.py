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


def time_to_ms_sql(fetch: Any, sql: Any, raw: str, t: str, type_name: str, unit: str, name: str,
                   where: str) -> tuple[str, str]:
    """SQL turning the time column ``t`` of ``raw`` into BIGINT milliseconds, and the unit it was read in, in the
    engine's dialect (:class:`eges.sessions.source.Dialect`, queries run by ``fetch``).

    Integer units are decided from the median magnitude (:func:`unit_of`); a column whose values disagree about
    their unit, NaN or infinite values, and values too large for milliseconds are errors. Integers are widened
    to BIGINT before they are scaled: int32 seconds times 1000 overflow int32.
    """
    kind = sql.kind(type_name)
    if kind == "time":
        return sql.epoch_ms.format(x=f"CAST({t} AS TIMESTAMP)"), "timestamp"
    if kind == "text":
        # Numbers written as text, or date-times: decided by what most values are.
        n_rows, n_numeric = fetch(f"SELECT count(*), count(TRY_CAST({t} AS DOUBLE)) FROM {raw}")[0]
        as_numbers = unit != "timestamp" and 2 * n_numeric >= n_rows
        parsed = f"TRY_CAST({t} AS DOUBLE)" if as_numbers else f"TRY_CAST({t} AS TIMESTAMP)"
        bad = fetch(f"SELECT count(*), {sql.any_value}({t}) FROM {raw} WHERE {parsed} IS NULL")[0]
        if bad[0]:
            raise InputError(f"{where}: column {name!r} has {bad[0]} unparsable timestamp(s), e.g. {bad[1]!r}")
        if not as_numbers:
            return sql.epoch_ms.format(x=parsed), "timestamp"
        t, kind = parsed, "float"
    if unit == "timestamp":
        raise InputError(f"{where}: column {name!r} holds numbers but sessions.timestamp_unit is 'timestamp'")
    x = f"CAST({t} AS DOUBLE)"
    if kind == "float":
        n_bad, example = fetch(f"SELECT count(*), {sql.any_value}({t}) FROM {raw} "
                               f"WHERE {sql.not_finite.format(x=x)}")[0]
        if n_bad:
            raise InputError(f"{where}: column {name!r} has {n_bad:,} NaN or infinite timestamp(s), e.g. {example}")
    n_rows, median, biggest = fetch(f"SELECT count(*), {sql.median.format(x=f'abs({x})')}, max(abs({x})) "
                                    f"FROM {raw}")[0]
    if unit == "auto":
        unit = unit_of(float(median or 0))
        predicate = disagreeing_sql(x, unit)
        n_bad = fetch(f"SELECT count(*) FROM {raw} WHERE {predicate}")[0][0]
        if n_bad:
            examples = [r[0] for r in fetch(f"SELECT {t} FROM {raw} WHERE {predicate} LIMIT 3")]
            raise InputError(disagreement_message(where, name, unit, float(median), n_bad, n_rows, examples))
    divisor = TO_MS_DIVISOR[unit]
    if float(biggest or 0) / divisor >= 9.2e18:
        raise InputError(f"{where}: column {name!r} holds {biggest:.4g}, too large for a time in {unit}; "
                         "check sessions.timestamp_unit")
    if kind == "float":  # rounded to the nearest millisecond (Spark's cast would truncate); finer units floor
        scaled = f"round({x} * 1000)" if unit == "s" else f"round({x})" if unit == "ms" else \
            f"floor({x} / {divisor})"
        return f"CAST({scaled} AS BIGINT)", unit
    wide = f"CAST({t} AS BIGINT)"
    scaled = f"{wide} * 1000" if unit == "s" else wide if unit == "ms" else \
        f"CAST({sql.int_div.format(x=t, d=divisor)} AS BIGINT)"
    return scaled, unit
