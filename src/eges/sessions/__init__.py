"""Cleaning event logs and cutting them into sessions (DuckDB SQL)."""

from __future__ import annotations

from eges.sessions.clean import SessionsReport, sessionize_sql

__all__ = ["SessionsReport", "sessionize_sql"]
