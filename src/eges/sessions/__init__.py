"""Cleaning event logs and cutting them into sessions (DuckDB for the relational part, NumPy for the rest)."""

from __future__ import annotations

from eges.sessions.clean import SessionsReport, index_items, sessionize_stream, vocabulary_sql

__all__ = ["SessionsReport", "index_items", "sessionize_stream", "vocabulary_sql"]
