"""BGE on eges' own trainer: the GES/EGES kernel with no side-information fields, so each item's vector is its own
row only. One trainer for every method (``train.backend = "native"``); gensim stays the reference backend."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from eges.config import TrainConfig
from eges.side_info.encode import SideInfo


def train_native_bge(batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], counts: np.ndarray,
                     n_nodes: int, cfg: TrainConfig,
                     on_tokens: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(node indices that have a vector, their float32 vectors) ordered by node index, like the gensim path.

    Walks are streamed (``batches()`` once per epoch); nodes no walk visits get no vector (gensim's vocabulary
    leaves them out too).
    """
    from eges.side_info.train import behaviour_vectors, train_stream

    no_fields = SideInfo([], np.zeros((n_nodes, 0), dtype=np.int32), [])
    model = train_stream(batches, counts, n_nodes, no_fields, cfg, method="bge", on_tokens=on_tokens)
    visited = np.flatnonzero(np.asarray(counts[:n_nodes]) > 0)
    return visited.astype(np.int64), np.ascontiguousarray(behaviour_vectors(model)[visited])
