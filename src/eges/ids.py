"""What an id column may hold, for every input (event logs, catalogs, edge lists): integers or text.

Floats are accepted only when every value is a whole number (a CSV written from pandas with a missing value
turns integer ids into 1.0, 2.0, ...), and are read as 64-bit integers; 0.5 is an error, never silently 0.
Lists, structs, booleans, binary and dates are errors that name the type. Catalog ids are read in the event
log's id type, so 64-bit ids compare exactly (never through float64, which loses precision above 2**53).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eges.errors import InputError


def check_id_array(values: pa.ChunkedArray | pa.Array, where: str, name: str, role: str) -> pa.ChunkedArray:
    """An Arrow id column as integers or text (whole floats become int64); anything else is a named error."""
    values = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    t = values.type
    if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return values
    if pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_integer(t.value_type)):
        return values.cast(t.value_type)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        x = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        missing = values.is_null().to_numpy(zero_copy_only=False)  # nulls read as NaN here; NaN itself is no id
        bad = ~missing & (~np.isfinite(x) | (x != np.round(x)))
        if bad.any():
            raise InputError(not_whole_message(where, name, role, int(bad.sum()), float(x[bad][0])))
        return values.cast(pa.int64())
    raise InputError(id_type_message(where, name, role, t))


def not_whole_message(where: str, name: str, role: str, count: int, example: float) -> str:
    """The named error for ids given as numbers with a fraction (both engines)."""
    return f"{where}: column {name!r} ({role}) holds {count:,} number(s) that are not whole, e.g. {example:g}; " \
           "ids must be integers or text"


def id_type_message(where: str, name: str, role: str, t: object) -> str:
    """The named error for an id column of a type that is neither integers nor text (both engines)."""
    return f"{where}: column {name!r} ({role}) has type {t}; ids must be integers or text"


def align_ids(values: pa.ChunkedArray, target: pa.DataType, where: str, name: str) -> pa.ChunkedArray:
    """Catalog ids in the event log's id type (``target``), exactly; out-of-range integers are a named error."""
    values = check_id_array(values, where, name, "item id")
    if values.type == target:
        return values
    if pa.types.is_integer(values.type) and pa.types.is_integer(target):
        try:
            return values.cast(target)  # safe cast: raises on overflow instead of wrapping
        except (pa.ArrowInvalid, OverflowError):
            lo, hi = pc.min_max(values).values()
            raise InputError(f"{where}: column {name!r} holds ids from {lo} to {hi}, which do not fit the event "
                             f"log's id type {target}") from None
    return values  # text against integers: compared as they are (and reported if nothing matches)
