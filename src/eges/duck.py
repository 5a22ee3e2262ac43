"""DuckDB for the relational code: connections with the configured memory cap, threads and spill folder, SQL
quoting, and Arrow results. No file handling beyond what DuckDB itself reads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from eges.config import EngineConfig


def duckdb_table(con: Any, query: str) -> pa.Table:
    """A DuckDB query's result as an Arrow table (DuckDB 2 renamed ``arrow()`` to ``to_arrow_table()``)."""
    rel = con.sql(query)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


def duckdb_batches(con: Any, query: str, rows: int = 1_000_000) -> pa.RecordBatchReader:
    """Stream a DuckDB query's result as Arrow record batches of about ``rows`` rows."""
    rel = con.sql(query)
    return rel.to_arrow_reader(rows) if hasattr(rel, "to_arrow_reader") else rel.fetch_arrow_reader(rows)


def sql_path(path: str | Path) -> str:
    return str(path).replace("'", "''")


def ident(name: str) -> str:
    """A column name quoted for SQL, whatever characters it holds (a quote in a name is doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


#: The input-order column every engine sorts ties in time by (see docs/pipeline.md, "Ties").
ROW_COLUMN = "eges_row"


@contextlib.contextmanager
def duckdb_session(engine: EngineConfig, spill_dir: str | Path | None = None) -> Iterator[Any]:
    """A connection from :func:`connect`, closed afterwards, its spill directory removed if left empty."""
    con = connect(engine, spill_dir)
    try:
        yield con
    except Exception as exc:
        if _interrupted(exc):  # DuckDB turns Ctrl-C during a query into an error: it is an interrupt
            raise KeyboardInterrupt from None
        raise
    finally:
        con.close()
        if spill_dir is not None and Path(spill_dir).is_dir() and not any(Path(spill_dir).iterdir()):
            Path(spill_dir).rmdir()


def _interrupted(exc: Exception) -> bool:
    import duckdb

    return isinstance(exc, getattr(duckdb, "InterruptException", ())) or str(exc) == "Query interrupted"


def connect(engine: EngineConfig, spill_dir: str | Path | None = None) -> Any:
    """An in-process DuckDB connection with the configured memory cap, threads and spill directory."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{engine.memory_limit}'")
    if engine.threads:
        con.execute(f"SET threads = {int(engine.threads)}")
    spill = engine.temp_directory or (str(spill_dir) if spill_dir else "")
    if spill:
        Path(spill).mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{sql_path(spill)}'")
    con.execute("SET preserve_insertion_order = false")
    return con
