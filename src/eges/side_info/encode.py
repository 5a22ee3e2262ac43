"""Side information as integer codes per field: categorical values as they are, numbers in quantile buckets.

Pure array code on Arrow/pandas tables; reading the catalog is the pipeline's job.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

UNKNOWN = -1


@dataclass(frozen=True)
class SideInfo:
    """Codes of every item (rows aligned with ``item_ids``) and the values behind them.

    ``codes[i, s]`` is the value index of item i in field s, or -1 if unknown. ``values[s][k]`` is the
    label of value k of field s (the category itself, or a price range such as ``"[10.5, 20)"``).
    """

    fields: list[str]
    codes: np.ndarray  # int32 (n_items, n_fields)
    values: list[list[str]]

    @property
    def field_offset(self) -> np.ndarray:
        sizes = [len(v) for v in self.values]
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)

    @property
    def n_values(self) -> int:
        return int(sum(len(v) for v in self.values))


def is_number(values: pd.Series) -> bool:
    """A number column (booleans are not numbers here)."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def is_quantity(values: pd.Series, numeric: bool = False) -> bool:
    """Whether a column is a quantity cut into quantile buckets: a float column, or an integer one named in
    ``side_info.numeric``. An integer column is otherwise a code (category_id, brand_id), whose number orders
    nothing: bucketing it by value would merge unrelated categories."""
    return is_number(values) and (numeric or pd.api.types.is_float_dtype(values))


def value_label(value: float) -> str:
    """A value's own label, lossless (a whole number as an integer, as its code would read; others as Python's
    shortest round-trip text): '{:g}' kept six digits, so 1234567 and 1234568 shared a label and a warm start
    could not tell their rows apart."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def encode_column(values: pd.Series, numeric_buckets: int, numeric: bool = False) -> tuple[np.ndarray, list[str], str]:
    """Codes and value labels for one column; the third item says how it was treated."""
    if is_quantity(values, numeric):
        x = values.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = x[np.isfinite(x)]
        distinct = np.unique(finite)
        if len(distinct) <= numeric_buckets:
            codes = np.where(np.isfinite(x), np.searchsorted(distinct, x), UNKNOWN)
            return codes.astype(np.int32), [value_label(v) for v in distinct], "numeric (one value per bucket)"
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, numeric_buckets + 1)[1:-1]))
        codes = np.where(np.isfinite(x), np.searchsorted(edges, x, side="right"), UNKNOWN)
        bounds = np.concatenate([[finite.min()], edges, [finite.max()]])
        labels = [f"[{bounds[k]:g}, {bounds[k + 1]:g})" for k in range(len(bounds) - 1)]
        return codes.astype(np.int32), labels, f"numeric ({len(labels)} quantile buckets)"
    cat = pd.Categorical(values.astype("string"))
    return cat.codes.astype(np.int32), [str(c) for c in cat.categories], "categorical"


def encode(catalog: pd.DataFrame, item_ids: np.ndarray | list, id_col: str, fields: list[str],
           numeric_buckets: int, numeric: Collection[str]) -> tuple[SideInfo, dict[str, str]]:
    """Codes for ``item_ids`` (behaviour items first, then cold ones, as the caller orders them).

    ``numeric`` (``side_info.numeric``) has no default: every reader of the catalog must cut the same columns
    into buckets, or the slice would choose on other side information than the run trains on.

    Items missing from the catalog get unknown (-1) in every field. Returns the side information and
    how each field was treated.
    """
    rows = pd.Index(catalog[id_col]).get_indexer(pd.Index(item_ids))
    codes = np.full((len(item_ids), len(fields)), UNKNOWN, dtype=np.int32)
    values, how = [], {}
    for s, field in enumerate(fields):
        col_codes, labels, kind = encode_column(catalog[field], numeric_buckets, field in numeric)
        present = rows >= 0
        codes[present, s] = col_codes[rows[present]]
        values.append(labels)
        how[field] = kind
    return SideInfo(list(fields), codes, values), how
