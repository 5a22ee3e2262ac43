"""Exceptions with messages meant for the user: each names the offending file, column, key or value."""

from __future__ import annotations


class EgesError(Exception):
    """Base class; the CLI prints these as one line and exits with status 2."""


class ConfigError(EgesError):
    """A config key, value or file is wrong."""


class InputError(EgesError):
    """An input file or table is unreadable, misses a column, or holds bad values."""


class StageError(EgesError):
    """A stage cannot run (a missing upstream output, an unknown stage name, ...)."""


def require_columns(available: list[str], needed: list[str], where: str) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        raise InputError(f"{where} has no column {missing[0]!r}; its columns are: {', '.join(available)}")
