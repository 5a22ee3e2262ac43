"""A 100-million-event log through sessions and graph with the engine capped at 2 GiB: it must finish,
spilling to disk rather than failing. Reports time, peak memory and the spill directory's use.

    .venv/bin/python benchmarks/bench_memory_cap.py [--chunks 10] [--memory-limit 2GB]

The log is made in chunks of 10 million events by the sample generator (same catalog, disjoint users),
appended to one Parquet file, so making it never needs more than one chunk in memory.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import EGES, WORK, measured, report, stage_seconds

from eges.sample_data import SampleSpec, make_catalog, make_events


def make_log(chunks: int) -> str:
    path = WORK / f"events_{chunks * 10}m_chunked.parquet"
    if path.exists():
        return str(path)
    WORK.mkdir(parents=True, exist_ok=True)
    spec = SampleSpec(n_events=10_000_000, n_items=1_000_000, seed=11)
    catalog, topic = make_catalog(spec, np.random.default_rng(spec.seed))
    item_ids = catalog["item_id"].to_numpy()
    tmp = path.with_suffix(".tmp")
    writer = None
    for c in range(chunks):
        events = make_events(spec, topic, item_ids, np.random.default_rng(1000 + c))
        events["user_id"] += c * 100_000_000
        table = pa.Table.from_pandas(events, preserve_index=False)
        writer = writer or pq.ParquetWriter(tmp, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=1_000_000)
        print(f"chunk {c + 1}/{chunks}", flush=True)
    writer.close()
    tmp.rename(path)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--memory-limit", default="2GB")
    args = ap.parse_args()
    events = make_log(args.chunks)
    out = WORK / "memory_cap_out"
    shutil.rmtree(out, ignore_errors=True)
    wall, peak, stdout = measured([*EGES, "run", "--events", events, "--out", str(out), "--until", "graph", "--quiet",
                                   "--set", f"engine.memory_limit='{args.memory_limit}'"])
    secs = stage_seconds(out)
    n = pq.ParquetFile(events).metadata.num_rows
    report(f"sessions + graph, engine.memory_limit = {args.memory_limit}", [
        ("events", f"{n:,}"),
        ("sessions", f"{secs['sessions']:.1f} s"),
        ("graph", f"{secs['graph']:.1f} s"),
        ("events/s", f"{n / (secs['sessions'] + secs['graph']) / 1e6:.2f} M"),
        ("process wall", f"{wall:.1f} s"),
        ("peak RSS", f"{peak:.0f} MiB"),
        ("output", stdout.strip().splitlines()[-1][:160]),
    ])


if __name__ == "__main__":
    sys.exit(main())
