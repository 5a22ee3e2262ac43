"""BGE on eges' own trainer: the GES/EGES kernel with no side-information fields, so each item's vector is its own
row only. One trainer for every method (``train.backend = "native"``); gensim stays the reference backend."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from eges.config import TrainConfig
from eges.side_info.encode import SideInfo


def train_native_bge(batches: Iterable[tuple[np.ndarray, np.ndarray]], n_nodes: int,
                     cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(node indices that have a vector, their float32 vectors) ordered by node index, like the gensim path.

    Nodes no walk visits get no vector (gensim's vocabulary leaves them out too).
    """
    from eges.side_info.train import behaviour_vectors, train

    values, lengths = [], []
    for vals, offsets in batches:
        values.append(np.asarray(vals, dtype=np.int32))
        lengths.append(np.diff(offsets))
    flat = np.concatenate(values) if values else np.zeros(0, np.int32)
    offs = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64) if lengths else np.zeros(1, np.int64)
    no_fields = SideInfo([], np.zeros((n_nodes, 0), dtype=np.int32), [])
    model = train(flat, offs, n_nodes, no_fields, cfg, method="bge")
    visited = np.flatnonzero(np.bincount(flat, minlength=n_nodes)[:n_nodes] > 0)
    return visited.astype(np.int64), np.ascontiguousarray(behaviour_vectors(model)[visited])
