"""eges: item embeddings from e-commerce behaviour logs (Alibaba EGES, KDD 2018).

The stages are usable on in-memory tables without touching files::

    from eges import sessionize, build_graph, random_walks, train_skipgram, train_side_info
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "build_graph", "random_walks", "sessionize", "train_side_info", "train_skipgram"]


def __getattr__(name: str) -> Any:
    # Imported lazily so `import eges` (and the CLI's start-up) does not load DuckDB, numba and gensim.
    if name in __all__:
        from eges import api

        return getattr(api, name)
    raise AttributeError(name)
