"""Side information as integer codes per field: categorical values as they are, numbers in quantile buckets.

Pure array code on Arrow/pandas tables; reading the catalog is the pipeline's job.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    #: per field cut into quantile buckets, its bounds (lowest value, inner edges, highest value): what a warm
    #: start cuts the field with, exactly (the labels keep six significant digits)
    bounds: dict[str, list[float]] = field(default_factory=dict)

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


def bucket_labels(bounds: np.ndarray | list[float]) -> list[str]:
    """The labels of the quantile buckets between consecutive ``bounds``: ``"[a, b)"``, each bound in '{:g}' text."""
    return [f"[{bounds[k]:g}, {bounds[k + 1]:g})" for k in range(len(bounds) - 1)]


_BUCKET = re.compile(r"\[(\S+), (\S+)\)")


def bounds_from_labels(labels: list[str]) -> np.ndarray | None:
    """The bounds :func:`bucket_labels` wrote ``labels`` from, to their six significant digits, or None when they are
    not a chain of ``"[a, b)"`` labels: how a warm start cuts a field of a parent that did not record its bounds.
    Written again they give the same labels (tests/test_side_info.py, a property test)."""
    found = [_BUCKET.fullmatch(label) for label in labels]
    if not found or any(m is None for m in found):
        return None
    if any(a[2] != b[1] for a, b in zip(found, found[1:])):  # each bucket starts where the one before ends
        return None
    return checked_bounds([found[0][1], *(m[2] for m in found)])


def strictly_usable(bounds: np.ndarray | None) -> bool:
    """Whether bounds read back from labels can cut a field: every bound above the one before. Read back to six
    digits, close bounds collapse ("[1.7e+09, 1.7e+09)"): the buckets between them would be empty and their items
    moved to a neighbour."""
    return bounds is not None and bool((np.diff(bounds) > 0).all())


def bounds_for_labels(labels: list[str], values: pd.Series | None, numeric_buckets: int,
                      numeric: bool = False) -> np.ndarray | None:
    """The bounds to cut ``values`` (a child's column) with, given only a parent's bucket ``labels``; None: cut
    afresh. A fresh cut that gives the parent's labels is the parent's own, exactly, on the same catalog (the bounds
    read back to six digits would move the items between an edge and its rounding); else the read-back bounds when
    :func:`strictly_usable`; else afresh, as before a parent's bounds were shared."""
    if values is not None and encode_column(values, numeric_buckets, numeric)[1] == labels:
        return None
    read = bounds_from_labels(labels)
    return read if strictly_usable(read) else None


def checked_bounds(values: Any) -> np.ndarray | None:
    """``values`` as bucket bounds (two or more finite numbers, in order), or None if they are not."""
    try:
        bounds = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return bounds if len(bounds) >= 2 and np.isfinite(bounds).all() and (np.diff(bounds) >= 0).all() else None


def quantile_bounds(finite: np.ndarray, numeric_buckets: int) -> np.ndarray:
    """A fresh cut of a column's finite values: its lowest value, the distinct inner quantiles and its highest."""
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, numeric_buckets + 1)[1:-1]))
    return np.concatenate([[finite.min()], edges, [finite.max()]])


def encode_column(values: pd.Series, numeric_buckets: int, numeric: bool = False,
                  bounds: np.ndarray | None = None) -> tuple[np.ndarray, list[str], str, np.ndarray | None]:
    """Codes and value labels for one column; the third item says how it was treated, the fourth is the bounds of
    its quantile buckets (None if it has none).

    ``bounds`` (a warm start: the parent's) cuts a quantity with those buckets and labels whatever its values, so
    every bucket keeps its parent's label; a value below the lowest bound or above the highest falls in the outer
    bucket."""
    if is_quantity(values, numeric):
        x = values.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = x[np.isfinite(x)]
        whose = ", the parent's"
        if bounds is None:
            distinct = np.unique(finite)
            if len(distinct) <= numeric_buckets:
                codes = np.where(np.isfinite(x), np.searchsorted(distinct, x), UNKNOWN)
                labels = [value_label(v) for v in distinct]
                return codes.astype(np.int32), labels, "numeric (one value per bucket)", None
            bounds, whose = quantile_bounds(finite, numeric_buckets), ""
        bounds = np.asarray(bounds, dtype=np.float64)
        codes = np.where(np.isfinite(x), np.searchsorted(bounds[1:-1], x, side="right"), UNKNOWN)
        labels = bucket_labels(bounds)
        return codes.astype(np.int32), labels, f"numeric ({len(labels)} quantile buckets{whose})", bounds
    cat = pd.Categorical(values.astype("string"))
    return cat.codes.astype(np.int32), [str(c) for c in cat.categories], "categorical", None


def encode(catalog: pd.DataFrame, item_ids: np.ndarray | list, id_col: str, fields: list[str],
           numeric_buckets: int, numeric: Collection[str],
           cuts: Mapping[str, np.ndarray] | None = None) -> tuple[SideInfo, dict[str, str]]:
    """Codes for ``item_ids`` (behaviour items first, then cold ones, as the caller orders them).

    ``numeric`` (``side_info.numeric``) has no default: every reader of the catalog must cut the same columns
    into buckets, or the slice would choose on other side information than the run trains on. ``cuts`` (a warm
    start: the parent's bounds by field, :func:`eges.pipeline.parent_buckets.parent_cuts`) likewise: a quantity it names
    is cut with those bounds, so its buckets keep the parent's labels and rows, however the catalog grew.

    Items missing from the catalog get unknown (-1) in every field. Returns the side information and
    how each field was treated.
    """
    rows = pd.Index(catalog[id_col]).get_indexer(pd.Index(item_ids))
    codes = np.full((len(item_ids), len(fields)), UNKNOWN, dtype=np.int32)
    values, how, bounds = [], {}, {}
    for s, name in enumerate(fields):
        col_codes, labels, kind, cut = encode_column(catalog[name], numeric_buckets, name in numeric,
                                                     (cuts or {}).get(name))
        present = rows >= 0
        codes[present, s] = col_codes[rows[present]]
        values.append(labels)
        how[name] = kind
        if cut is not None:
            bounds[name] = [float(b) for b in cut]
    return SideInfo(list(fields), codes, values, bounds), how
