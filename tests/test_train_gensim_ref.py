"""gensim, the reference backend: the corpus adapter, and the native trainer against it on the same walks."""

from __future__ import annotations

import numpy as np

from eges.api import random_walks
from eges.config import TrainConfig, WalksConfig
from eges.train.gensim_ref import WalkCorpus, padded_batches, train_bge, vectors_by_index
from eges.train.stream import native_skipgram
from eges.walks.generate import flatten_walks
from test_api import two_communities


def test_corpus_yields_int_lists_every_epoch():
    walks = np.array([[0, 1, 2], [3, 4, -1]], dtype=np.int32)
    corpus = WalkCorpus(padded_batches(walks))
    assert list(corpus) == [[0, 1, 2], [3, 4]]
    assert list(corpus) == [[0, 1, 2], [3, 4]]  # restartable
    assert all(type(x) is int for walk in corpus for x in walk)


def _separation(vecs: np.ndarray, n: int) -> tuple[float, float]:
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = vecs @ vecs.T
    group = np.arange(2 * n) < n
    same = sims[group[:, None] == group[None, :]].mean()
    np.fill_diagonal(sims, -2)
    return float(same - sims[group[:, None] != group[None, :]].mean()), float(np.mean(group[sims.argmax(1)] == group))


def test_native_bge_matches_gensim_on_the_same_walks():
    """The native trainer (the default backend) against gensim, the reference, on the same walks and settings."""
    n = 20
    walks = random_walks(two_communities(n), WalksConfig(walks_per_node=20, walk_length=10, seed=1))
    cfg = TrainConfig(dimension=16, epochs=5, sample=0, threads=1, seed=3)
    values, offsets = flatten_walks(walks)
    counts = np.bincount(values, minlength=2 * n)
    model = train_bge(WalkCorpus(padded_batches(walks)), counts, len(walks), cfg)
    keys, reference = vectors_by_index(model, 2 * n)
    assert keys.tolist() == list(range(2 * n))
    gensim_gap, gensim_nearest = _separation(reference, n)
    index, native = native_skipgram(lambda: iter([(values, offsets)]), counts, 2 * n, cfg)
    assert index.tolist() == list(range(2 * n))
    native_gap, native_nearest = _separation(native, n)
    assert native_nearest == gensim_nearest == 1.0
    assert native_gap > 0.3 and native_gap > 0.8 * gensim_gap
