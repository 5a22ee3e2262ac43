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
