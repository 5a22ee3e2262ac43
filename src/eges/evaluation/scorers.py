"""Scorers: every method and baseline scores item pairs and lists each item's top K over one shared set of
item indices (the *universe*), so all of them are measured on exactly the same pairs.

- :class:`CosineScorer` serves the learned vectors (BGE, GES, EGES, item2vec) and the co-occurrence baseline
  (sparse item x session incidence rows; the cosine of two rows is the co-occurrence count over the geometric
  mean of the two items' session counts).
- :class:`PopularityScorer`: a pair scores the popularity of its target; every item's list is the most
  popular items. The reference every learned method has to beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eges.recall.neighbours import normalised, select_top


class CosineScorer:
    """Cosine similarity of rows of a dense float matrix or a scipy sparse matrix over the universe.

    Args:
        name: method name for tables.
        matrix: (n_universe, d) rows; rows of items the method knows nothing about are ignored.
        has: which universe items the method can score.
    """

    def __init__(self, name: str, matrix: Any, has: np.ndarray):
        self.name = name
        self.has = np.asarray(has, dtype=bool)
        self.sparse = hasattr(matrix, "tocsr")
        if self.sparse:
            import scipy.sparse as sp

            mat = matrix.tocsr().astype(np.float32)
            norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
            self.matrix = sp.diags((1.0 / np.maximum(norms, 1e-12)).astype(np.float32)) @ mat
            self.matrix = self.matrix.tocsr()
        else:
            self.matrix = normalised(np.asarray(matrix, dtype=np.float32))

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Scores of pairs (a[i], b[i]); NaN where the method cannot score one of the two items."""
        if self.sparse:
            scores = np.asarray(self.matrix[a].multiply(self.matrix[b]).sum(axis=1), dtype=np.float64).ravel()
        else:
            scores = np.einsum("ij,ij->i", self.matrix[a], self.matrix[b]).astype(np.float64)
        scores[~(self.has[a] & self.has[b])] = np.nan
        return scores

    def top_k(self, queries: np.ndarray, k: int, block: int = 512) -> np.ndarray:
        """The ``k`` most similar known items of each query (best first, the query itself excluded);
        rows of queries the method cannot score, and unfilled places, are -1."""
        candidates = np.flatnonzero(self.has)
        out = np.full((len(queries), k), -1, dtype=np.int64)
        if len(candidates) == 0:
            return out
        cand_pos = np.full(len(self.has), -1, dtype=np.int64)
        cand_pos[candidates] = np.arange(len(candidates))
        cand_matrix = self.matrix[candidates]
        if self.sparse:  # a dense block of scores costs block x candidates floats; keep it near 256 MB
            block = max(1, min(block, (64 << 20) // max(len(candidates), 1)))
        known = self.has[queries]
        rows = np.flatnonzero(known)
        for lo in range(0, len(rows), block):
            r = rows[lo:lo + block]
            q = queries[r]
            scores = self.matrix[q] @ cand_matrix.T
            scores = np.asarray(scores.toarray() if hasattr(scores, "toarray") else scores, dtype=np.float32)
            own = cand_pos[q]
            has_own = own >= 0
            scores[np.flatnonzero(has_own), own[has_own]] = -np.inf
            idx, _ = select_top(np.ascontiguousarray(scores), min(k, len(candidates)), -len(scores) - 1)
            found = np.where(idx >= 0, candidates[np.maximum(idx, 0)], -1)
            out[r, : found.shape[1]] = found
        return out


class PopularityScorer:
    """A pair (a, b) scores b's count in the training data; every list is the most popular items."""

    def __init__(self, counts: np.ndarray, name: str = "popularity"):
        self.name = name
        self.counts = np.asarray(counts, dtype=np.float64)
        self.has = np.ones(len(self.counts), dtype=bool)

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.counts[b].copy()

    def top_k(self, queries: np.ndarray, k: int) -> np.ndarray:
        known = np.flatnonzero(self.counts > 0)
        ranked = known[np.argsort(-self.counts[known], kind="stable")][: k + 1]
        tiled = np.tile(ranked, (len(queries), 1))
        # Push the query itself (if among the most popular) to the end, then keep k.
        order = np.argsort(tiled == queries[:, None], axis=1, kind="stable")
        top = np.take_along_axis(tiled, order, axis=1)[:, :k]
        out = np.full((len(queries), k), -1, dtype=np.int64)
        out[:, : top.shape[1]] = top
        return out


def placed(rows: np.ndarray, vectors: np.ndarray, n_universe: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors put at their rows of the universe (rows < 0 are left out): (matrix with zero rows for items without
    a vector, mask of items with one)."""
    keep = rows >= 0
    matrix = np.zeros((n_universe, vectors.shape[1]), dtype=np.float32)
    matrix[rows[keep]] = vectors[keep]
    has = np.zeros(n_universe, dtype=bool)
    has[rows[keep]] = True
    return matrix, has


def cooccurrence_matrix(segment: np.ndarray, item: np.ndarray, n_universe: int) -> Any:
    """Binary item x session incidence (CSR): row i marks the sessions item i occurs in.

    Args:
        segment: session number of each event (any integers).
        item: universe index of each event.
    """
    import scipy.sparse as sp

    _, seg = np.unique(segment, return_inverse=True)
    mat = sp.csr_matrix((np.ones(len(item), dtype=np.float32), (item, seg)),
                        shape=(n_universe, int(seg.max(initial=-1)) + 1))
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return mat


def item2vec_vectors(item: np.ndarray, segment_starts: np.ndarray, n_universe: int, cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """item2vec (Barkan & Koenigstein 2016): skip-gram straight on sessions, no graph, no walks.

    Trained by the trainer BGE uses (``train.backend``: the native one unless gensim, the reference, is chosen), so
    a comparison with the methods measures sessions against walks, not one trainer against another.

    Args:
        item: universe index of each event, sessions laid out one after another.
        segment_starts: offsets of the sessions in ``item`` (with the end as the last offset).
        cfg: a :class:`eges.config.TrainConfig` (the same settings as BGE).

    Returns:
        (matrix over the universe, mask of items with a vector).
    """
    from eges.methods import backend, resolve

    values = item.astype(np.int32)
    offsets = segment_starts.astype(np.int64)
    counts = np.bincount(values, minlength=n_universe)
    plain = resolve("auto", has_catalog=False).name  # the method without side information
    if backend(plain, cfg.backend) == "gensim":
        from eges.train.gensim_ref import WalkCorpus, train_bge, vectors_by_index

        model = train_bge(WalkCorpus(lambda: iter([(values, offsets)])), counts, len(offsets) - 1, cfg)
        return placed(*vectors_by_index(model, n_universe), n_universe)
    from eges.train.stream import native_skipgram

    return placed(*native_skipgram(lambda: iter([(values, offsets)]), counts, n_universe, cfg, plain), n_universe)
