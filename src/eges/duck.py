"""Small DuckDB helpers shared by the relational code (no file handling here)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def duckdb_table(con: Any, query: str) -> pa.Table:
    """A DuckDB query's result as an Arrow table (DuckDB 2 renamed ``arrow()`` to ``to_arrow_table()``)."""
    rel = con.sql(query)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


def duckdb_batches(con: Any, query: str, rows: int = 1_000_000) -> pa.RecordBatchReader:
    """Stream a DuckDB query's result as Arrow record batches of about ``rows`` rows."""
    rel = con.sql(query)
    return rel.to_arrow_reader(rows) if hasattr(rel, "to_arrow_reader") else rel.fetch_arrow_reader(rows)
