"""eges: item embeddings from e-commerce behaviour logs (Alibaba EGES, KDD 2018).

The stages are usable on in-memory tables without touching files::

    from eges import sessionize, build_graph, random_walks, train_skipgram, train_side_info

a run folder is built with ``eges.run("out/", events="events.parquet")`` (which also takes an existing
SparkSession), and a finished one loads as an object to serve from: ``eges.load("out/")``. ``eges.tune(events,
out="out/", budget="20m")`` searches the settings on a validation slice of the log and writes them as a TOML file.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

__version__ = "0.1.0"


def numba_cache_dir(package_dir: str, home_cache: str, writable=os.access) -> str | None:  # noqa: ANN001
    """Where numba may cache compiled kernels, or None when its own choice works.

    numba caches beside the source (``__pycache__``) or in the user's cache folder; with neither writable (a
    read-only install and an unwritable HOME, as in some containers) ``@njit(cache=True)`` fails at import.
    Then a per-user folder in the temporary directory is used.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if writable(package_dir, os.W_OK) or writable(home_cache, os.W_OK) or (
            not os.path.exists(home_cache) and writable(os.path.dirname(home_cache) or ".", os.W_OK)):
        return None
    return os.path.join(tempfile.gettempdir(), f"eges-numba-cache-{os.getuid() if hasattr(os, 'getuid') else 0}")


_cache = numba_cache_dir(os.path.dirname(__file__), os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "numba"))
if _cache:
    os.environ["NUMBA_CACHE_DIR"] = _cache

__all__ = ["__version__", "build_graph", "load", "random_walks", "run", "sessionize", "train_side_info",
           "train_skipgram", "tune"]


def __getattr__(name: str) -> Any:
    # Imported lazily so `import eges` (and the CLI's start-up) does not load DuckDB, numba and gensim.
    if name == "load":
        from eges.outputs.run import load

        return load
    if name == "run":
        from eges.runs import run

        return run
    if name == "tune":
        from eges.tuning.run import tune

        return tune
    if name in __all__:
        from eges import api

        return getattr(api, name)
    raise AttributeError(name)
