"""gensim's Word2Vec as the reference backend (``train.backend = "gensim"``, BGE only): what the native trainer is
checked and benchmarked against. Every method, and every baseline eges compares, trains natively by default.

Walks stay integer node indices end to end: gensim is given lists of Python ints (its vocabulary keys)
built walk by walk from the Arrow/NumPy buffers, and the vocabulary is built from a ``bincount`` of the
walks rather than by a Python scan. Our overhead on top of gensim is reading walks, nothing else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from eges.config import TrainConfig


class WalkCorpus:
    """A restartable iterable of walks (lists of int node indices) for gensim.

    ``batches`` is a callable returning a fresh iterator of ``(values, offsets)`` pairs: the flat int32
    node indices of a group of walks and their int64 offsets; gensim iterates it once per epoch.
    """

    def __init__(self, batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]],
                 on_batch: Callable[[int], None] | None = None):
        self._batches = batches
        self._on_batch = on_batch

    def __iter__(self) -> Iterator[list[int]]:
        for values, offsets in self._batches():
            if self._on_batch is not None:
                self._on_batch(len(offsets) - 1)
            # One C-level conversion per batch, then list slices: the cheapest way to hand gensim lists
            # of ints, so its producer thread does not starve the training threads.
            flat = values.tolist()
            bounds = offsets.tolist()
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                yield flat[lo:hi]


def padded_batches(walks: np.ndarray) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """Batches for :class:`WalkCorpus` from an in-memory padded walk matrix (-1 after the end)."""

    from eges.walks.generate import flatten_walks

    def gen() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield flatten_walks(walks)

    return gen


def resolve_threads(threads: int) -> int:
    return threads or os.cpu_count() or 1


def train_bge(corpus: Iterable[list[int]], node_counts: np.ndarray, n_walks: int, cfg: TrainConfig) -> Any:
    """Train gensim Word2Vec (skip-gram, negative sampling) on integer walks.

    Args:
        corpus: restartable iterable of walks (lists of node indices).
        node_counts: occurrences of each node index in the walks (``np.bincount``); nodes never
            visited get no vector.
        n_walks: number of walks (gensim needs it for the learning-rate schedule).

    Returns:
        The trained ``gensim.models.Word2Vec``; its ``wv`` keys are node indices (ints).
    """
    from gensim.models import Word2Vec

    logging.getLogger("gensim").setLevel(logging.WARNING)
    model = Word2Vec(vector_size=cfg.dimension, window=cfg.window, negative=cfg.negative, sg=1, hs=0,
                     min_count=1, sample=cfg.sample, ns_exponent=cfg.ns_exponent, alpha=cfg.alpha,
                     min_alpha=cfg.min_alpha, workers=resolve_threads(cfg.threads), seed=cfg.seed,
                     epochs=cfg.epochs)
    visited = np.flatnonzero(node_counts)
    model.build_vocab_from_freq({int(i): int(node_counts[i]) for i in visited})
    model.train(corpus, total_examples=n_walks, total_words=int(node_counts.sum()), epochs=cfg.epochs,
                compute_loss=False)
    return model


def vectors_by_index(model: Any, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(node indices that have a vector, float32 matrix of their vectors) ordered by node index."""
    keys = np.asarray(model.wv.index_to_key, dtype=np.int64)
    order = np.argsort(keys)
    return keys[order], np.ascontiguousarray(model.wv.vectors[order], dtype=np.float32)


def keyed_vectors(keys: list[Any], vectors: np.ndarray) -> Any:
    """gensim KeyedVectors of ``vectors`` keyed by ``keys``, with no lifecycle log (gensim's record of when and
    where an object was made and saved: a save time and a file name would make identical runs' files differ).

    Filled directly: ``KeyedVectors.add_vectors`` does per-key Python work (seconds for a few hundred thousand).
    """
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kv.index_to_key = list(keys)
    kv.key_to_index = {key: i for i, key in enumerate(kv.index_to_key)}
    kv.next_index = len(kv.index_to_key)
    kv.lifecycle_events = None
    return kv
