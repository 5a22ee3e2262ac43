"""File reading and writing: atomic outputs, Parquet and Arrow files, schemas, fingerprints. (Event-log formats
and their normalisation live in ``eges.sessions.events``; DuckDB's setup in ``eges.duck``.)

Every output goes to a temporary file beside its destination and is renamed into place only when
complete, so an interrupted run never leaves a file that looks finished but is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq

from eges.errors import InputError, require_columns  # noqa: F401  (require_columns: callers use io's)


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
    checking that it is eges' own earlier output (``outputs.destination.check_destination``); otherwise it is an error.
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
            if exc_type is None:
                self._writer.close()
            else:  # the file is thrown away; a write cut short (Ctrl-C cancels Arrow's work) fails to close
                with contextlib.suppress(Exception):
                    self._writer.close()
        self._ctx.__exit__(exc_type, exc, tb)


class BackgroundWriter:
    """Hands tables to ``writer.write`` on a second thread, so encoding one batch (Parquet or Arrow IPC, which
    release the GIL) overlaps preparing the next. At most ``depth`` batches wait, which bounds memory. An error
    on the writer thread is raised in the caller at the next ``write`` or at exit.

    The thread has always stopped when the block is left, by an error or an interrupt too (Ctrl-C): the writer it
    writes into is closed and its file removed right after, and a native writer closed under a running thread
    crashes the process (issue 21, item 7). After an error the queued tables are dropped, not written.
    """

    def __init__(self, writer: Any, depth: int = 2):
        import queue
        import threading

        self._writer = writer
        self._queue: Any = queue.Queue(depth)
        self._error: BaseException | None = None
        self._abandon = False
        # Set by the thread as its last act: waited on instead of ``Thread.join``, which an interrupt can cut short
        # with the thread marked finished while it still writes (CPython's tstate-lock race).
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="eges-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while (table := self._queue.get()) is not None:
                if self._error is None and not self._abandon:
                    try:
                        self._writer.write(table)
                    except BaseException as exc:  # re-raised in the caller
                        self._error = exc
        finally:
            self._done.set()

    def write(self, table: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(table)

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abandon = True
        interrupt = self._stop()
        if interrupt is not None and exc_type is None:
            raise interrupt
        if self._error is not None and exc_type is None:
            raise self._error

    def _stop(self) -> KeyboardInterrupt | None:
        """End the thread and wait for it, even if the wait is interrupted; the interrupt is returned, to be
        raised once the thread is gone."""
        interrupt = None
        sent = False
        while True:
            try:
                if not sent:
                    self._queue.put(None)
                    sent = True
                while not self._done.wait(0.05):
                    pass
                return interrupt
            except KeyboardInterrupt as caught:
                interrupt = caught
                self._abandon = True


def vector_column(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """A float32 matrix as the fixed_size_list<float32> column every vectors file uses."""
    mat = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1)), mat.shape[1])


#: The pickle protocol of KeyedVectors files: fixed, so a file does not change with gensim's default.
KEYED_VECTORS_PICKLE = 4


def write_keyed_vectors(keys: list[Any], vectors: np.ndarray, path: str | Path) -> None:
    """gensim KeyedVectors keyed by the original item ids, written atomically and byte-stable: the same keys and
    vectors give the same bytes (no save time or temporary file name in it; a fixed pickle protocol)."""
    from eges.train.gensim_ref import keyed_vectors

    kv = keyed_vectors(keys, vectors)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        kv.save(fh, pickle_protocol=KEYED_VECTORS_PICKLE)


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
    check_readable(path, what)
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


def parquet_num_rows(path: str | Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def check_readable(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise InputError(f"{what} path {path} is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} file {path} is not readable")


def is_csv(path: Path) -> bool:
    return path.suffix.lower() in {".csv", ".tsv", ".txt"} or path.name.lower().endswith((".csv.gz",))


# --------------------------------------------------------------------------------------------- sources
TABLE_PREFIX = "table:"


def is_external(source: str) -> bool:
    """A source only Spark reads: a URI (``s3a://``, ``hdfs://``, ``abfss://``...) or ``table:NAME``."""
    return source.startswith(TABLE_PREFIX) or "://" in source


def spark_only(source: str) -> bool:
    """A source the DuckDB engine cannot read (it reads one file): external, or a local folder of parts."""
    return is_external(source) or Path(source).is_dir()


def source_exists(source: str) -> bool:
    """Whether the source is there (an external one is taken on trust: Spark names a missing one when it reads)."""
    return is_external(source) or Path(source).exists()


def source_fingerprint(source: str) -> dict[str, Any]:
    """The fingerprint of a run's input: a file's (always hashed), a folder's (every file under it, by relative
    name, size and content), or an external source's name (eges cannot see a table or remote path change)."""
    if is_external(source):
        return {"external": source, "digest": f"external:{source}"}
    path = Path(source)
    if not path.is_dir():
        return fingerprint(path, trust_mtime=False)
    h = hashlib.blake2b(digest_size=16)
    total = 0
    for part in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))):
        h.update(f"{part.relative_to(path)}\0".encode())
        h.update(fingerprint(part, trust_mtime=False)["digest"].encode())
        total += part.stat().st_size
    return {"size": total, "files": True, "digest": h.hexdigest()}


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
