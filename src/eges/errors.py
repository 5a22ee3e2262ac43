"""Exceptions with messages meant for the user: each names the offending file, column, key or value."""

from __future__ import annotations

from typing import Any


class EgesError(Exception):
    """Base class; the CLI prints these as one line and exits with status 2."""


class ConfigError(EgesError):
    """A config key, value or file is wrong."""


class InputError(EgesError):
    """An input file or table is unreadable, misses a column, or holds bad values."""


class StageError(EgesError):
    """A stage cannot run (a missing upstream output, an unknown stage name, ...)."""


class ParentError(EgesError):
    """The parent run of a warm start (--warm-start) is missing, unfinished, from an older eges, or incompatible."""


def plain(value: Any) -> Any:
    """A NumPy or Arrow scalar as the Python value it holds (``103378``, not ``np.int64(103378)``): for messages,
    and for ids a user passes back to a loaded run."""
    as_py = getattr(value, "as_py", None)  # an Arrow scalar
    if callable(as_py):
        return as_py()
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "ndim", None) == 0 else value


def require_columns(available: list[str], needed: list[str], where: str) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        raise InputError(f"{where} has no column {missing[0]!r}; its columns are: {', '.join(available)}")
