"""``eges export --format neighbours``: the neighbours table in long form (item_id, neighbour_id, rank, score), one
row per pair, for a key-value store or SQL. Streamed one row group at a time, so memory stays one group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq

from eges.errors import InputError
from eges.layout import NEIGHBOURS
from eges.outputs.destination import sidecar
from eges.pipeline import io


def long_form(group: pa.Table) -> pa.Table:
    """One row group of the neighbours table as (item_id, neighbour_id, rank, score) rows; missing places (an
    approximate index may find fewer than k) are left out."""
    lists = group["neighbours"].combine_chunks()
    offsets = lists.offsets.to_numpy()
    lengths = np.diff(offsets)
    starts = np.repeat(offsets[:-1], lengths)
    rank = (np.arange(offsets[0], offsets[-1]) - starts + 1).astype(np.int16)
    item = group["item_id"].combine_chunks().take(pa.array(np.repeat(np.arange(len(lengths)), lengths)))
    table = pa.table({"item_id": item, "neighbour_id": lists.flatten(), "rank": rank,
                      "score": group["scores"].combine_chunks().flatten().cast(pa.float32())})
    return table.filter(pa.compute.is_valid(table["neighbour_id"]))


def write_neighbours(out_dir: Path, to: Path, marker: dict[str, Any]) -> str:
    """Write the long-form table to ``to`` (CSV for a ``.csv`` path, else Parquet) atomically."""
    source = out_dir / NEIGHBOURS
    if not source.exists():
        raise InputError(f"{out_dir} has no neighbours table ({NEIGHBOURS}); run `eges run --out {out_dir}` first")
    table = pq.ParquetFile(source)
    id_type = table.schema_arrow.field("item_id").type
    schema = pa.schema([("item_id", id_type), ("neighbour_id", id_type), ("rank", pa.int16()),
                        ("score", pa.float32())], metadata={b"eges.export": json.dumps(marker)})
    rows = 0
    if to.suffix.lower() == ".csv":
        with io.atomic_path(to) as tmp, pa.csv.CSVWriter(str(tmp), schema.remove_metadata()) as out:
            for i in range(table.num_row_groups):
                part = long_form(table.read_row_group(i))
                out.write_table(part)
                rows += part.num_rows
        with io.atomic_path(sidecar(to)) as tmp:
            tmp.write_text(json.dumps(marker, indent=2))
    else:
        with io.AtomicParquetWriter(to, schema) as out:
            for i in range(table.num_row_groups):
                part = long_form(table.read_row_group(i)).cast(schema)
                out.write(part)
                rows += part.num_rows
    return f"{rows:,} (item, neighbour) pairs of {table.metadata.num_rows:,} items -> {to}"
