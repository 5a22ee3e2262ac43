"""Run every benchmark in turn (slow: about 30 minutes, plus 10 to make the 100-million-event log once).

    .venv/bin/python benchmarks/run_all.py

Run it alone on the machine: the figures are medians, but a second heavy process still skews them.
Data sets and PecanPy's environment are kept in $EGES_BENCH_DIR (default /tmp/eges-bench).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_sessions_graph.py", "bench_walks.py", "bench_skipgram.py", "bench_eges.py", "bench_pipeline.py",
           "bench_memory_cap.py"]

if __name__ == "__main__":
    for script in SCRIPTS:
        print(f"\n# {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script)], cwd=HERE, check=True)
