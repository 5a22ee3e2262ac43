"""The in-memory API's skip-gram: the native trainer, keyed by node index, reproducible, with a progress bar."""

from __future__ import annotations

import numpy as np

from eges.api import random_walks, train_skipgram
from eges.config import TrainConfig, WalksConfig
from eges.graph.csr import from_edges


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


def test_vectors_are_keyed_by_node_index_for_visited_nodes_only():
    """KeyedVectors keyed by node index (plain ints); a node no walk visits gets no vector, as with gensim."""
    walks = np.array([[0, 2, 3, 2], [3, 0, -1, -1]], dtype=np.int32)
    kv = train_skipgram(walks, TrainConfig(dimension=4, epochs=1, sample=0, threads=1), progress=False)
    assert kv.index_to_key == [0, 2, 3] and all(type(k) is int for k in kv.index_to_key)
    assert 1 not in kv.key_to_index and kv.get_index(2) == 1  # (gensim reads an unknown int key as a position)


def test_progress_bar_on_request(capsys):
    """A long in-memory training run is not silent: progress=True draws a bar of training tokens on stderr."""
    walks = random_walks(two_communities(), WalksConfig(walks_per_node=2, seed=2))
    train_skipgram(walks, TrainConfig(dimension=4, epochs=1, threads=1), progress=True)
    err = capsys.readouterr().err
    assert "skipgram" in err and "token" in err
    train_skipgram(walks, TrainConfig(dimension=4, epochs=1, threads=1), progress=False)
    assert capsys.readouterr().err == ""
