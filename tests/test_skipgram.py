"""BGE training on integer walks: the corpus adapter, planted structure, single-thread reproducibility."""

from __future__ import annotations

import numpy as np

from eges.api import random_walks, train_skipgram
from eges.config import TrainConfig, WalksConfig
from eges.graph.csr import from_edges
from eges.skipgram.bge import WalkCorpus, padded_batches


def two_communities(n=20):
    """Two dense groups of n nodes joined by a single edge each way."""
    rng = np.random.default_rng(0)
    src, dst = [], []
    for base in (0, n):
        for _ in range(8 * n):
            a, b = rng.integers(0, n, 2)
            if a != b:
                src.append(base + a)
                dst.append(base + b)
    src += [0, n]
    dst += [n, 0]
    return from_edges(np.array(src), np.array(dst), None, 2 * n)


def test_corpus_yields_int_lists_every_epoch():
    walks = np.array([[0, 1, 2], [3, 4, -1]], dtype=np.int32)
    corpus = WalkCorpus(padded_batches(walks))
    assert list(corpus) == [[0, 1, 2], [3, 4]]
    assert list(corpus) == [[0, 1, 2], [3, 4]]  # restartable
    assert all(type(x) is int for walk in corpus for x in walk)


def test_vectors_separate_planted_communities():
    n = 20
    walks = random_walks(two_communities(n), WalksConfig(walks_per_node=20, walk_length=10, seed=1))
    # No down-sampling: in a 40-node vocabulary every node would count as "frequent".
    kv = train_skipgram(walks, TrainConfig(dimension=16, epochs=5, sample=0, threads=1, seed=3))
    vecs = np.stack([kv[i] for i in range(2 * n)])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = vecs @ vecs.T
    same = np.mean([sims[i, j] for i in range(2 * n) for j in range(2 * n) if i != j and (i < n) == (j < n)])
    cross = np.mean([sims[i, j] for i in range(2 * n) for j in range(2 * n) if (i < n) != (j < n)])
    assert same - cross > 0.3
    np.fill_diagonal(sims, -2)
    nearest = sims.argmax(axis=1)
    assert np.mean((nearest < n) == (np.arange(2 * n) < n)) == 1.0


def test_single_thread_training_is_reproducible():
    walks = random_walks(two_communities(), WalksConfig(walks_per_node=5, seed=2))
    cfg = TrainConfig(dimension=8, threads=1, seed=5)
    a, b = train_skipgram(walks, cfg), train_skipgram(walks, cfg)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    c = train_skipgram(walks, TrainConfig(dimension=8, threads=1, seed=6))
    assert not np.array_equal(a.vectors, c.vectors)


def _separation(vecs: np.ndarray, n: int) -> tuple[float, float]:
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = vecs @ vecs.T
    group = np.arange(2 * n) < n
    same = sims[group[:, None] == group[None, :]].mean()
    np.fill_diagonal(sims, -2)
    return float(same - sims[group[:, None] != group[None, :]].mean()), float(np.mean(group[sims.argmax(1)] == group))


def test_native_bge_matches_gensim_on_the_same_walks():
    """The native trainer (the default backend) against gensim, the reference, on the same walks and settings."""
    from eges.skipgram.native import train_native_bge
    from eges.walks.generate import flatten_walks

    n = 20
    walks = random_walks(two_communities(n), WalksConfig(walks_per_node=20, walk_length=10, seed=1))
    cfg = TrainConfig(dimension=16, epochs=5, sample=0, threads=1, seed=3)
    kv = train_skipgram(walks, cfg)
    gensim_gap, gensim_nearest = _separation(np.stack([kv[i] for i in range(2 * n)]), n)
    values, offsets = flatten_walks(walks)
    index, native = train_native_bge(lambda: iter([(values, offsets)]), np.bincount(values, minlength=2 * n), 2 * n,
                                     cfg)
    assert index.tolist() == list(range(2 * n))
    native_gap, native_nearest = _separation(native, n)
    assert native_nearest == gensim_nearest == 1.0
    assert native_gap > 0.3 and native_gap > 0.8 * gensim_gap
