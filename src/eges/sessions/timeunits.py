"""Which unit integer timestamps are in, decided from the bulk of the values, for every engine.

A unit is told by magnitude: today's date is about 1.7e9 in seconds, 1.7e12 in milliseconds, 1.7e15 in
microseconds and 1.7e18 in nanoseconds, so the classes are separated by the bounds below. The log's unit is the
class of its median magnitude (one outlier cannot move a median, while it moved the old maximum-based guess), and
values of another class are reported, not silently rescaled: a log whose values disagree about their unit is an
error that shows examples. Pure Python: DuckDB and Spark compute the inputs (a median, counts, examples) in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

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
