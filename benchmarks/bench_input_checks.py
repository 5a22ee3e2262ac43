"""CPU time of the DuckDB input checks (``open_events``: the checks and the normalised view), ours against another tree.

    .venv/bin/python benchmarks/bench_input_checks.py --against /work/main/src [--rows 10000000] [--repeat 6]

Writes a log of ``--rows`` events (int64 user and item ids, int64 seconds in random order, a behaviour column)
once under ``$EGES_BENCH_DIR``, then opens it alternately with this tree's ``eges`` and the ``--against`` tree's,
one DuckDB thread, and prints the median process CPU seconds of each (CPU time, so a shared machine's load moves it
less than wall time). The first round is a warm-up and is left out of the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

OURS = str(Path(__file__).resolve().parents[1] / "src")


def make_log(rows: int) -> Path:
    path = Path(os.environ.get("EGES_BENCH_DIR", "/tmp/eges-bench")) / f"checks_{rows}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        pq.write_table(pa.table({"user_id": rng.integers(0, rows // 50, rows),
                                 "item_id": rng.integers(0, rows // 10, rows),
                                 "timestamp": rng.integers(1_500_000_000, 1_600_000_000, rows),
                                 "behaviour": np.array(["click", "buy"])[rng.integers(0, 2, rows)]}), path)
    return path


def open_with(tree: str, log: Path) -> float:
    """Process CPU seconds of ``open_events`` with the ``eges`` of ``tree`` (its modules loaded afresh)."""
    import duckdb

    sys.path.insert(0, tree)
    try:
        for name in [m for m in sys.modules if m == "eges" or m.startswith("eges.")]:
            del sys.modules[name]
        from eges.config import SessionsConfig
        from eges.sessions.events import open_events

        con = duckdb.connect()
        con.execute("SET threads = 1")
        start = time.process_time()
        open_events(con, log, SessionsConfig())
        return time.process_time() - start
    finally:
        sys.path.remove(tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="another tree's src folder (e.g. /work/main/src)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    log = make_log(args.rows)
    seconds: dict[str, list[float]] = {"ours": [], "against": []}
    for _ in range(args.repeat):
        for label, tree in (("against", args.against), ("ours", OURS)):
            seconds[label].append(open_with(tree, log))
    for label, values in seconds.items():
        print(f"{label:<8} median {statistics.median(values[1:]):.2f} s CPU  "
              f"({' '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
