"""All file reading and writing: event-log formats, schemas, atomic Parquet output, fingerprints.

Every output goes to a temporary file beside its destination and is renamed into place only when
complete, so an interrupted run never leaves a file that looks finished but is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq

from eges.config import EngineConfig, SessionsConfig
from eges.errors import InputError

EVENTS_VIEW = "eges_events"

#: Fixed column layouts of the two public formats we read natively.
TAOBAO_COLUMNS = {"user_id": "BIGINT", "item_id": "BIGINT", "category_id": "BIGINT",
                  "behaviour": "VARCHAR", "timestamp": "BIGINT"}
RETAILROCKET = {"user": "visitorid", "item": "itemid", "time": "timestamp", "behaviour": "event"}


# --------------------------------------------------------------------------------------------- atomic
@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(final: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; it takes ``final``'s place only if the block succeeds, so an
    interrupted export never leaves a directory of partial files.

    An existing non-empty ``final`` is replaced (and deleted) only with ``replace``, which callers pass after
    checking that it is eges' own earlier output (``export.check_destination``); otherwise it is an error.
    """
    import shutil

    final = Path(final)
    if not replace and (final.is_symlink() or final.is_file() or (final.is_dir() and any(final.iterdir()))):
        raise InputError(f"{final} already exists; eges does not replace what it did not write")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    old = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.old")
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    # Dictionary encoding pays for text; on high-cardinality integers it only costs time (30% of a write).
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def write_table(table: pa.Table, path: str | Path, row_group_size: int = 1_000_000,
                compression: str = "zstd") -> int:
    """Write an Arrow table to Parquet atomically; returns its row count."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression=compression,
                       use_dictionary=_dictionary_columns(table.schema))
    return table.num_rows


class ScratchFile:
    """An uncompressed Arrow IPC file for intermediate data a stage writes once and reads back once.

    Writing it costs a memory copy, and reading it back is memory-mapped, so it keeps memory bounded without
    paying for compression. Its name is per process (pid and a random part) and it is created exclusively, so
    two processes never share one and a symlink planted at the name is never followed.
    """

    def __init__(self, directory: str | Path, stem: str):
        self.path = Path(directory) / f".{stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.scratch"
        self._writer: Any = None
        self._sink: Any = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.close(fd)
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pa.ipc.new_file(self._sink, table.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        with pa.memory_map(str(self.path)) as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)

    def reader(self) -> pa.RecordBatchReader:
        with pa.memory_map(str(self.path)) as source:
            schema = pa.ipc.open_file(source).schema
        return pa.RecordBatchReader.from_batches(schema, self.batches())

    def remove(self) -> None:
        """Delete the file, and its directory if that is left empty (also after a failed write: disk full)."""
        with contextlib.suppress(OSError):
            self.close()
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


class AtomicParquetWriter:
    """Stream tables into one Parquet file (one row group per table), renamed into place on success.

    Keeps memory bounded to one batch whatever the total size. Without a schema, the first table's
    schema is used. ``delta_columns`` that hold integers are written with DELTA_BINARY_PACKED encoding and no
    compression pass: for sorted or small integers (user ids in user order, times, positions) that is as compact
    as zstd over plain values at a fraction of the encoding time.
    """

    def __init__(self, path: str | Path, schema: pa.Schema | None = None, compression: str = "zstd",
                 delta_columns: tuple[str, ...] = ()):
        self._ctx = atomic_path(path)
        self._tmp = self._ctx.__enter__()
        self._schema = schema
        self._compression = compression
        self._delta = delta_columns
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def _open(self) -> pq.ParquetWriter:
        schema = self._schema
        delta = [f.name for f in schema if f.name in self._delta and pa.types.is_integer(f.type)]
        compression: Any = self._compression
        if delta:
            compression = {f.name: "none" if f.name in delta else self._compression for f in schema}
        return pq.ParquetWriter(self._tmp, schema, compression=compression, use_dictionary=_dictionary_columns(schema),
                                column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED") or None)

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if self._writer is None:
            self._schema = self._schema or table.schema
            self._writer = self._open()
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows += table.num_rows

    def __enter__(self) -> AtomicParquetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is None and exc_type is None and self._schema is not None:
            self._writer = self._open()
        if self._writer is not None:
            self._writer.close()
        self._ctx.__exit__(exc_type, exc, tb)


class BackgroundWriter:
    """Hands tables to ``writer.write`` on a second thread, so encoding one batch (Parquet or Arrow IPC, which
    release the GIL) overlaps preparing the next. At most ``depth`` batches wait, which bounds memory. An error
    on the writer thread is raised in the caller at the next ``write`` or at exit.
    """

    def __init__(self, writer: Any, depth: int = 2):
        import queue
        import threading

        self._writer = writer
        self._queue: Any = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="eges-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write(table)
                except BaseException as exc:  # re-raised in the caller
                    self._error = exc

    def write(self, table: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(table)

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc_type is None:
            raise self._error


def vector_column(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """A float32 matrix as the fixed_size_list<float32> column every vectors file uses."""
    mat = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1)), mat.shape[1])


def write_keyed_vectors(keys: list[Any], vectors: np.ndarray, path: str | Path) -> None:
    """gensim KeyedVectors keyed by the original item ids, written atomically.

    Filled directly: ``KeyedVectors.add_vectors`` does per-key Python work (seconds for a few hundred thousand).
    """
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kv.index_to_key = list(keys)
    kv.key_to_index = {key: i for i, key in enumerate(kv.index_to_key)}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        kv.save(fh)


def read_vectors(path: str | Path) -> tuple[pa.Array, np.ndarray]:
    """(item ids, float32 matrix) from a vectors file."""
    table = read_table(path, ["item_id", "vector"], what="vectors")
    col = table["vector"].combine_chunks()
    return table["item_id"].combine_chunks(), col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size)


def read_sources(path: str | Path) -> np.ndarray:
    """Each row's ``source`` (behaviour / cold_start) from a vectors file; BGE files have none: all behaviour."""
    if "source" not in pq.ParquetFile(path).schema_arrow.names:
        return np.full(parquet_num_rows(path), "behaviour", dtype=object)
    return pq.read_table(path, columns=["source"])["source"].to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------------------------- reading
def read_table(path: str | Path, columns: list[str] | None = None, what: str = "table") -> pa.Table:
    """Read a Parquet (or CSV) file into Arrow with errors that name the file and the missing column."""
    path = Path(path)
    _check_readable(path, what)
    try:
        if is_csv(path):
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path)
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read {what} file {path}: {exc}") from None
    if columns:
        require_columns(table.column_names, columns, f"{what} file {path}")
        table = table.select(columns)
    return table


def read_column(path: str | Path, name: str, dtype: Any) -> np.ndarray:
    """One numeric Parquet column as a NumPy array, filled row group by row group.

    ``read_table(...).to_numpy()`` holds the Arrow chunks and their concatenated copy at once; this holds the
    array and one row group, which halves the peak for the graph stage's 90-million-row columns.
    """
    pf = pq.ParquetFile(path)
    out = np.empty(pf.metadata.num_rows, dtype=dtype)
    start = 0
    for i in range(pf.metadata.num_row_groups):
        values = pf.read_row_group(i, columns=[name]).column(0).to_numpy()
        out[start:start + len(values)] = values
        start += len(values)
    return out


def require_columns(available: list[str], needed: list[str], where: str) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        raise InputError(f"{where} has no column {missing[0]!r}; its columns are: {', '.join(available)}")


def parquet_num_rows(path: str | Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def _check_readable(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise InputError(f"{what} path {path} is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} file {path} is not readable")


def is_csv(path: Path) -> bool:
    return path.suffix.lower() in {".csv", ".tsv", ".txt"} or path.name.lower().endswith((".csv.gz",))


def sql_path(path: str | Path) -> str:
    return str(path).replace("'", "''")


def ident(name: str) -> str:
    """A column name quoted for SQL, whatever characters it holds (a quote in a name is doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


#: The input-order column every engine sorts ties in time by (see docs/pipeline.md, "Ties").
ROW_COLUMN = "eges_row"


# --------------------------------------------------------------------------------------------- DuckDB
@contextlib.contextmanager
def duckdb_session(engine: EngineConfig, spill_dir: str | Path | None = None) -> Iterator[Any]:
    """A connection from :func:`connect`, closed afterwards, its spill directory removed if left empty."""
    con = connect(engine, spill_dir)
    try:
        yield con
    finally:
        con.close()
        if spill_dir is not None and Path(spill_dir).is_dir() and not any(Path(spill_dir).iterdir()):
            Path(spill_dir).rmdir()


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


@dataclass(frozen=True)
class EventsSource:
    """The normalised events view and which optional columns it has."""

    view: str
    has_behaviour: bool
    has_dwell: bool
    timestamp_unit: str


def sniff_format(path: Path) -> str:
    """Tell the Taobao UserBehavior CSV and RetailRocket events.csv from a generic file by their first line."""
    if not is_csv(path):
        return "generic"
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip().lower()
    fields = [f.strip() for f in first.split(",")]
    if {"visitorid", "itemid", "event"} <= set(fields):
        return "retailrocket"
    if len(fields) == 5 and fields[3] in {"pv", "buy", "cart", "fav"} and all(
            f.lstrip("-").isdigit() for f in fields[:3] + fields[4:]):
        return "taobao"
    return "generic"


def open_events(con: Any, path: str | Path, cfg: SessionsConfig) -> EventsSource:
    """Create a view of the raw event file, check its schema and values, and normalise it.

    Raises:
        InputError: the file is missing or unreadable, a column is missing, an id is null, or a
            timestamp is unparsable or negative.
    """
    path = Path(path)
    _check_readable(path, "events")
    fmt = sniff_format(path) if cfg.format == "auto" else cfg.format
    p = sql_path(path)
    cols = {"user": cfg.user_col, "item": cfg.item_col, "time": cfg.time_col,
            "behaviour": cfg.behaviour_col, "dwell": cfg.dwell_col}
    unit = cfg.timestamp_unit
    row = f"row_number() OVER () - 1 AS {ROW_COLUMN}"  # CSV: file order, with insertion order kept (below)
    if fmt == "taobao":
        columns = ", ".join(f"'{k}': '{v}'" for k, v in TAOBAO_COLUMNS.items())
        source = f"read_csv('{p}', header = false, columns = {{{columns}}}, {CSV_REJECTS})"
        cols = {"user": "user_id", "item": "item_id", "time": "timestamp", "behaviour": "behaviour",
                "dwell": None}
        unit = "s" if unit == "auto" else unit
    elif fmt == "retailrocket":
        source = f"read_csv('{p}', header = true, {CSV_REJECTS})"
        cols = {**RETAILROCKET, "dwell": None}
        unit = "ms" if unit == "auto" else unit
    elif is_csv(path):
        source = f"read_csv('{p}', header = true, {CSV_REJECTS})"
    else:
        source = f"read_parquet('{p}', file_row_number = true)"
        row = f"file_row_number AS {ROW_COLUMN}"
    if source.startswith("read_csv"):
        # row_number() OVER () numbers rows in file order only while DuckDB keeps insertion order.
        con.execute("SET preserve_insertion_order = true")
    try:
        con.execute(f"DROP TABLE IF EXISTS {REJECTS}; DROP TABLE IF EXISTS {REJECTS}_scans")
        star = "* EXCLUDE (file_row_number)" if row.startswith("file_row_number") else "*"
        con.execute(f"CREATE OR REPLACE TEMP VIEW eges_raw AS SELECT {star}, {row} FROM {source}")
        schema = con.execute("DESCRIBE eges_raw").fetchall()
    except Exception as exc:  # duckdb raises several exception types for unreadable files
        raise InputError(f"cannot read events file {path} as {fmt}: {str(exc).splitlines()[0]}") from None
    types = {name: typ for name, typ, *_ in schema}
    if source.startswith("read_csv"):
        _check_csv(con, "eges_raw", types, cols, path)
    return _normalise(con, "eges_raw", types, cols, unit, f"events file {path}")


#: CSV lines DuckDB cannot read (too many or too few fields, a value that does not fit the column's type) are
#: collected instead of aborting the scan half-way, so the error can name the line; any of them is an error.
REJECTS = "eges_csv_rejects"
CSV_REJECTS = f"store_rejects = true, rejects_table = '{REJECTS}', rejects_scan = '{REJECTS}_scans'"


def _check_csv(con: Any, raw: str, types: dict[str, str], cols: dict[str, str | None], path: Path) -> None:
    """Fail on CSV lines the reader rejected and on quoted values that swallowed line breaks (rows lost silently
    otherwise: a quote that closes 50 lines later merges those lines into one value)."""
    named = [c for c in types if c != ROW_COLUMN]
    if len(named) == 1 and "," in named[0]:
        raise InputError(f"events file {path}: could not split the lines into columns (the header reads as one "
                         f"column {named[0]!r}); check the delimiter and quoting")
    wanted = [c for c in cols.values() if c and c in types]
    text = [c for c in wanted if types[c].upper() == "VARCHAR"]
    newline = ", ".join(f"count(*) FILTER (WHERE contains({ident(c)}, chr(10)))" for c in text) or "0"
    reads = "".join(f", count({ident(c)})" for c in wanted)
    counts = con.execute(f"SELECT count(*){reads}, {newline} FROM {raw}").fetchall()[0]  # parses every wanted
    # column, so every line the reader rejects is in the rejects table
    rejected = con.execute(f"SELECT count(DISTINCT line), min(line), arg_min(error_message, line) FROM {REJECTS}"
                           ).fetchall()[0]
    if rejected[0]:
        line, message = rejected[1], str(rejected[2]).split("\n")[0]
        raise InputError(f"events file {path}: {rejected[0]:,} line(s) could not be read, the first at line {line}: "
                         f"{message}; fix the file (eges does not skip rows silently)")
    merged = sum(counts[1 + len(wanted):])
    if merged:
        column = next(c for c, n in zip(text, counts[1 + len(wanted):]) if n)
        example = con.execute(f"SELECT {ident(column)} FROM {raw} WHERE contains({ident(column)}, chr(10)) "
                              "LIMIT 1").fetchall()[0][0]
        raise InputError(f"events file {path}: {merged:,} value(s) of column {column!r} span several lines (a quote "
                         f"that is not closed on its line), e.g. {example[:60]!r}; those lines would be merged "
                         "into one event")


def register_events(con: Any, events: Any, cfg: SessionsConfig) -> EventsSource:
    """Like :func:`open_events` for an in-memory pandas DataFrame or Arrow table."""
    if not isinstance(events, pa.Table):
        events = pa.Table.from_pandas(events, preserve_index=False)
    events = events.append_column(ROW_COLUMN, pa.array(np.arange(events.num_rows, dtype=np.int64)))
    con.register("eges_raw_mem", events)
    schema = con.execute("DESCRIBE eges_raw_mem").fetchall()
    cols = {"user": cfg.user_col, "item": cfg.item_col, "time": cfg.time_col,
            "behaviour": cfg.behaviour_col, "dwell": cfg.dwell_col}
    return _normalise(con, "eges_raw_mem", {n: t for n, t, *_ in schema}, cols, cfg.timestamp_unit, "events table")


def _normalise(con: Any, raw: str, types: dict[str, str], cols: dict[str, str | None], unit: str,
               where: str) -> EventsSource:
    require_columns([c for c in types if c != ROW_COLUMN], [cols["user"], cols["item"], cols["time"]], where)
    has_beh = bool(cols["behaviour"]) and cols["behaviour"] in types
    has_dwell = bool(cols["dwell"]) and cols["dwell"] in types
    u, i, t = (ident(cols[k]) for k in ("user", "item", "time"))
    ttype = types[cols["time"]].upper()

    # count(*) - count(col) is answered from Parquet statistics where they exist: no scan.
    nulls = con.execute(f"SELECT count(*) - count({u}), count(*) - count({i}), count(*) - count({t}), count(*) "
                        f"FROM {raw}").fetchall()[0]
    for n, (col, role) in zip(nulls[:3], [(cols["user"], "user id"), (cols["item"], "item id"),
                                          (cols["time"], "timestamp")]):
        if n:
            raise InputError(f"{where}: column {col!r} ({role}) has {n} null value(s) out of {nulls[3]} rows")
    if nulls[3] == 0:
        raise InputError(f"{where} has no rows")

    from eges.pipeline.ids import id_sql

    u = id_sql(con, raw, u, types[cols["user"]], where, cols["user"], "user id")
    i = id_sql(con, raw, i, types[cols["item"]], where, cols["item"], "item id")
    ts_expr, unit = _timestamp_expr(con, raw, t, ttype, unit, cols["time"], where)
    neg = con.execute(f"SELECT count(*), min({ts_expr}) FROM {raw} WHERE {ts_expr} < 0").fetchall()[0]
    if neg[0]:
        raise InputError(f"{where}: column {cols['time']!r} has {neg[0]} negative timestamp(s), e.g. {neg[1]}")
    beh = f'CAST({ident(cols["behaviour"])} AS VARCHAR)' if has_beh else "NULL::VARCHAR"
    dwell = f'TRY_CAST({ident(cols["dwell"])} AS DOUBLE)' if has_dwell else "NULL::DOUBLE"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {EVENTS_VIEW} AS
        SELECT {u} AS user_id, {i} AS item_id, {ts_expr} AS ts, {beh} AS behaviour, {dwell} AS dwell,
               {ROW_COLUMN} AS seq
        FROM {raw}""")
    return EventsSource(EVENTS_VIEW, has_beh, has_dwell, unit)


def _timestamp_expr(con: Any, raw: str, t: str, ttype: str, unit: str, name: str, where: str) -> tuple[str, str]:
    """SQL turning the time column into BIGINT milliseconds, and the unit it was read in.

    Integer units are decided by :mod:`eges.sessions.timeunits` from the median magnitude; a column whose values
    disagree about their unit, NaN or infinite values, and values too large for milliseconds are errors.
    """
    from eges.sessions import timeunits

    if ttype.startswith(("TIMESTAMP", "DATE")):
        return f"epoch_ms(CAST({t} AS TIMESTAMP))", "timestamp"
    numeric = ttype in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                        "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE"} or ttype.startswith("DECIMAL")
    if not numeric:
        # A text column: numbers written as text, or date-times; decided by what most values are.
        n_rows, n_numeric = con.execute(f"SELECT count(*), count(TRY_CAST({t} AS DOUBLE)) FROM {raw}").fetchall()[0]
        as_numbers = unit != "timestamp" and 2 * n_numeric >= n_rows
        parsed = f"TRY_CAST({t} AS DOUBLE)" if as_numbers else f"TRY_CAST({t} AS TIMESTAMP)"
        bad = con.execute(f"SELECT count(*), any_value({t}) FROM {raw} WHERE {parsed} IS NULL").fetchall()[0]
        if bad[0]:
            raise InputError(f"{where}: column {name!r} has {bad[0]} unparsable timestamp(s), e.g. {bad[1]!r}")
        if not as_numbers:
            return f"epoch_ms({parsed})", "timestamp"
        t, ttype = parsed, "DOUBLE"
    if unit == "timestamp":
        raise InputError(f"{where}: column {name!r} holds numbers but sessions.timestamp_unit is 'timestamp'")
    if ttype in {"FLOAT", "DOUBLE"}:
        n_bad, example = con.execute(f"SELECT count(*), any_value({t}) FROM {raw} "
                                     f"WHERE NOT isfinite({t})").fetchall()[0]
        if n_bad:
            raise InputError(f"{where}: column {name!r} has {n_bad:,} NaN or infinite timestamp(s), e.g. {example}")
    n_rows, median, biggest = con.execute(f"SELECT count(*), approx_quantile(abs({t}::DOUBLE), 0.5), "
                                          f"max(abs({t}::DOUBLE)) FROM {raw}").fetchall()[0]
    if unit == "auto":
        unit = timeunits.unit_of(float(median or 0))
        predicate = timeunits.disagreeing_sql(f"{t}::DOUBLE", unit)
        n_bad = con.execute(f"SELECT count(*) FROM {raw} WHERE {predicate}").fetchall()[0][0]
        if n_bad:
            examples = [r[0] for r in con.execute(f"SELECT {t} FROM {raw} WHERE {predicate} LIMIT 3").fetchall()]
            raise InputError(timeunits.disagreement_message(where, name, unit, float(median), n_bad, n_rows,
                                                            examples))
    divisor = timeunits.TO_MS_DIVISOR[unit]
    if float(biggest or 0) / divisor >= 9.2e18:
        raise InputError(f"{where}: column {name!r} holds {biggest:.4g}, too large for a time in {unit}; "
                         "check sessions.timestamp_unit")
    scaled = f"({t}) * 1000" if unit == "s" else f"({t})" if unit == "ms" else f"({t}) // {divisor}"
    return f"CAST({scaled} AS BIGINT)", unit


# --------------------------------------------------------------------------------------------- fingerprints
def fingerprint(path: str | Path, known: dict[str, Any] | None = None, trust_mtime: bool = True) -> dict[str, Any]:
    """Size, mtime and a content digest of a file.

    With ``trust_mtime`` (eges' own outputs) the digest is reused while size and mtime match; the run's inputs are
    always hashed, so a file rewritten with its size and mtime restored is still seen to change (about a second
    per GB).
    """
    st = os.stat(path)
    if trust_mtime and known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns:
        return dict(known)
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "digest": h.hexdigest()}
