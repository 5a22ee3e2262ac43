"""Shared helpers for the benchmark scripts: data sets, repeated timings, peak memory of a child process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("EGES_BENCH_DIR", "/tmp/eges-bench"))
PYTHON = sys.executable
EGES = [PYTHON, "-m", "eges"]


def sample_events(n_events: int, n_items: int) -> Path:
    """The generator's log of about ``n_events`` events (made once, then reused)."""
    out = WORK / (f"events_{n_events // 1_000_000}m" if n_events >= 1_000_000 else f"events_{n_events // 1000}k")
    if not (out / "events.parquet").exists():
        subprocess.run([*EGES, "sample", "--out", str(out), "--events", str(n_events), "--items", str(n_items)],
                       check=True)
    return out / "events.parquet"


_RSS_WRAPPER = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                "sys.exit(p.returncode)")


def measured(cmd: list[str], source: Path | None = None) -> tuple[float, float, str]:
    """Run a command in a fresh process; (wall seconds, its peak RSS in MiB, its stdout).

    ``source``: a ``src`` directory (see :func:`source_tree`) whose ``eges`` package the command imports instead
    of the installed one.
    """
    env = None if source is None else {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    proc = subprocess.run([PYTHON, "-c", _RSS_WRAPPER, *cmd], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds, int(proc.stderr.strip().splitlines()[-1]) / 1024, proc.stdout


def source_tree(rev: str) -> Path:
    """The package source at git revision ``rev``, extracted under the bench directory; returns its ``src``.

    Running an older revision beside the current code in the same benchmark run is the only fair comparison
    on a shared machine whose speed drifts by 20% within minutes.
    """
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], check=True, capture_output=True,
                            text=True).stdout.strip()
    out = WORK / f"src-{commit}"
    if not (out / "src" / "eges").is_dir():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out / "src"


def until_flag(source: Path | None) -> str:
    """``eges run``'s stop-after option in a source tree: ``--until`` (``--to`` before it was renamed)."""
    cli = (source if source is not None else ROOT / "src") / "eges" / "cli.py"
    return "--until" if '"--until"' in cli.read_text() else "--to"


def walks_subset(n_walks: int) -> Path:
    """The first ``n_walks`` walks of bench_walks.py's output, as their own Parquet file."""
    import pyarrow.parquet as pq

    source = WORK / "walks_out.parquet"
    if not source.exists():
        raise SystemExit("run benchmarks/bench_walks.py first (it makes the walks)")
    subset = WORK / f"walks_first_{n_walks}.parquet"
    pq.write_table(pq.read_table(source).slice(0, n_walks), subset, row_group_size=100_000)
    return subset


def median(values: list[float]) -> float:
    return statistics.median(values)


def stage_seconds(out_dir: Path) -> dict[str, float]:
    manifest = json.loads((out_dir / "manifest.json").read_text())
    return {name: entry["seconds"] for name, entry in manifest["stages"].items()}


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n## {title}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


#: gensim skip-gram on a walks file, trained on lists already in memory: prints (tokens, train seconds).
GENSIM_SCRIPT = r'''
import sys, time
import numpy as np, pyarrow.parquet as pq
from gensim.models import Word2Vec
col = pq.read_table(sys.argv[1])["walk"].combine_chunks()
off = col.offsets.to_numpy()
flat = col.values.to_numpy()[off[0]:off[-1]].tolist()
off = (off - off[0]).tolist()
walks = [flat[a:b] for a, b in zip(off[:-1], off[1:])]
t0 = time.perf_counter()
Word2Vec(walks, vector_size=128, window=5, negative=5, sg=1, hs=0, min_count=1, sample=0.001, alpha=0.025,
         min_alpha=0.0001, workers=2, seed=42, epochs=1)
print(len(flat), time.perf_counter() - t0)
'''
