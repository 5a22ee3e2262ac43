"""Shared harness of the hostile-input corpus (tests/test_trust_*.py).

Each case runs one command against a copy of an earlier good run and asserts the exit code, a fragment of the
message, that no traceback was printed, and that the good run's files are byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
#: Settings that make the template run take seconds (it still validates: at most two passes tried).
FAST = ("--set", "walks.walks_per_node=2", "--set", "train.dimension=8", "--set", "validate.max_epochs=2", "--quiet")


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (the byte-identical check); the writer lock's
    bookkeeping file (it holds the last writer's pid) is not an output and is left out."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".eges.lock"}


def build_template(root: Path, n_events: int = 20_000) -> tuple[Path, Path]:
    """A small events file and a complete BGE run of it under ``root`` (built once per test session)."""
    from eges.cli import main

    root.mkdir(parents=True, exist_ok=True)
    events = root / "events.parquet"
    pq.write_table(pq.read_table(DATA / "events.parquet").slice(0, n_events), events)
    out = root / "out"
    result = CliRunner().invoke(main, ["run", "--events", str(events), "--out", str(out), *FAST],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return events, out


@dataclass
class Outcome:
    exit_code: int
    output: str  # stdout and stderr together


def run_cli(*args: object, subprocess_run: bool = False, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Outcome:
    """Run ``eges ARGS``: in-process by default (an uncaught exception fails the test), or as a real process."""
    argv = [str(a) for a in args]
    if not subprocess_run:
        from eges.cli import main

        result = CliRunner().invoke(main, argv, catch_exceptions=False)
        return Outcome(result.exit_code, result.output)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "eges", *argv], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=300)
    return Outcome(proc.returncode, proc.stdout + proc.stderr)


def assert_named_error(outcome: Outcome, fragment: str, exit_code: int = 2) -> None:
    """One clear line naming the problem: the exit code, the fragment, no traceback."""
    assert outcome.exit_code == exit_code, outcome.output
    assert "Traceback" not in outcome.output, outcome.output
    assert fragment in outcome.output, outcome.output


def copy_run(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


def assert_refused(folder: Path, message: str, *args: object) -> Outcome:
    """Run ``eges ARGS``: a named error with ``message``, and every file under ``folder`` byte-identical after."""
    before = snapshot(folder)
    outcome = run_cli(*args)
    assert_named_error(outcome, message)
    assert snapshot(folder) == before
    return outcome


#: Edge lists each engine must refuse with the same named error.
BAD_EDGE_LISTS: dict[str, tuple[pa.Table, str]] = {
    "string weights": (pa.table({"src": [1, 2], "dst": [2, 3], "weight": ["a", "b"]}),
                       "column 'weight' has type string; weights must be numbers"),
    "mixed id types": (pa.table({"src": ["1", "x"], "dst": [2, 3]}), "give both the same id type"),
    "negative weights": (pa.table({"src": [1, 2], "dst": [2, 3], "weight": [1.0, -2.0]}), "negative, null or"),
    "null ids": (pa.table({"src": [1, None], "dst": [2, 3]}), "column 'src' has 1 null id(s)"),
    "list ids": (pa.table({"src": pa.array([[1], [2]]), "dst": pa.array([[2], [3]])}), "ids must be integers or text"),
    "fractional ids": (pa.table({"src": [1.5, 2.0], "dst": [2.0, 3.0]}), "number(s) that are not whole, e.g. 1.5"),
    "NaN ids": (pa.table({"src": [1.0, float("nan")], "dst": [2.0, 3.0]}), "1 number(s) that are not whole, e.g. nan"),
}


def late_item_id(tmp: Path, value: str, n: int, line: int) -> Path:
    """A CSV of ``n`` events with whole item ids, but ``value`` as the item id of data line ``line`` (1 = the first):
    a value past the rows DuckDB's sniffer samples to guess the column's type."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"user_id": np.arange(n) // 20, "item_id": np.arange(n) % 997,
                          "timestamp": 1_511_539_200 + np.arange(n) * 10})
    path = tmp / "events.csv"
    frame.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    parts = lines[line].split(",")
    parts[1] = value
    lines[line] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")
    return path


def late_fraction(tmp: Path, value: str) -> Path:
    """Whole item ids for 45,000 lines, then ``value`` on the last line (the sniffer typed the column BIGINT and
    rounded 0.5 to 1; issue 21, item 1)."""
    return late_item_id(tmp, value, 45_000, 45_000)
