"""Real public behaviour logs for calibrating eges's defaults (issue 19, item 5), loaded into eges's input shape.

``load(name) -> (events, catalog or None)``; ``prepare(name)`` writes ``events.parquet`` / ``items.parquet`` into
the cache outside the repository. ``python -m benchmarks.datasets list|prepare NAME|all``. See README.md here for
each log's shape, terms and exact source.
"""

from __future__ import annotations

from benchmarks.datasets.registry import DATASETS, DatasetMissing, cache_root, folder, load, prepare

NAMES = list(DATASETS)

__all__ = ["DATASETS", "NAMES", "DatasetMissing", "cache_root", "folder", "load", "prepare"]
