"""Scorers: every method and baseline scores item pairs and lists each item's top K over one shared set of
item indices (the *universe*), so all of them are measured on exactly the same pairs.

- :class:`CosineScorer` serves the learned vectors (BGE, GES, EGES, item2vec) and the co-occurrence baseline
  (sparse item x session incidence rows; the cosine of two rows is the co-occurrence count over the geometric
  mean of the two items' session counts).
- :class:`PopularityScorer`: a pair scores the popularity of its target; every item's list is the most
  popular items. The reference every learned method has to beat.
- Learned baselines: item2vec (skip-gram on sessions), DeepWalk (skip-gram on uniform walks of the undirected
  training graph) and, for cold start, the side-information mean of item2vec's vectors; all served by
  :class:`CosineScorer`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from eges.recall.neighbours import count_above, normalised, select_top


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

    def usable(self) -> np.ndarray:
        """The known items whose vectors are finite (a diverged pass leaves NaN rows). Dense matrices only."""
        return self.has & np.isfinite(self.matrix).all(axis=1)

    def with_rows(self, rows: np.ndarray, vectors: np.ndarray, has: np.ndarray) -> CosineScorer:
        """A copy whose ``rows`` are ``vectors`` (known where ``has``): only those rows are normalised again, not
        the whole matrix (the slice's cold-start figure, every pass). Dense matrices only."""
        if self.sparse:
            raise TypeError("with_rows needs dense vectors")
        out = copy.copy(self)
        out.matrix = self.matrix.copy()
        out.matrix[rows] = normalised(np.asarray(vectors, dtype=np.float32))
        out.has = self.has.copy()
        out.has[rows] = has
        return out

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Scores of pairs (a[i], b[i]); NaN where the method cannot score one of the two items."""
        if self.sparse:
            scores = np.asarray(self.matrix[a].multiply(self.matrix[b]).sum(axis=1), dtype=np.float64).ravel()
        else:
            scores = np.einsum("ij,ij->i", self.matrix[a], self.matrix[b]).astype(np.float64)
        scores[~(self.has[a] & self.has[b])] = np.nan
        return scores

    def target_ranks(self, query: np.ndarray, target: np.ndarray, cells: int = 1 << 22,
                     usable: np.ndarray | None = None) -> np.ndarray:
        """For each pair (query[i], target[i]), how many known items other than the query score above the target
        for that query (0: the target is the nearest; equal scores rank the earlier item first, as the lists of
        :meth:`top_k` do); -1 where the method cannot score the pair (an unknown item, or a vector with a NaN or
        infinite entry, which is never a candidate either) or the target is the query. The target is among a
        query's K nearest exactly when its rank is below K, so a HitRate@K from ranks equals the one from
        :meth:`top_k` without building the lists. Dense matrices only; blocks of queries hold at most ``cells``
        scores. ``usable``: :meth:`usable` when the caller has it already."""
        if self.sparse:
            raise TypeError("target_ranks needs dense vectors")
        query, target = np.asarray(query, dtype=np.int64), np.asarray(target, dtype=np.int64)
        out = np.full(len(query), -1, dtype=np.int64)
        usable = self.usable() if usable is None else usable
        ok = np.flatnonzero(usable[query] & usable[target] & (query != target))
        if not len(ok):
            return out
        candidates = np.flatnonzero(usable)
        cand_pos = np.full(len(self.has), -1, dtype=np.int64)
        cand_pos[candidates] = np.arange(len(candidates))
        cand_matrix = self.matrix[candidates]
        queries, inverse = np.unique(query[ok], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.searchsorted(inverse[order], np.arange(0, len(queries) + 1))
        block = max(1, min(len(queries), cells // len(candidates)))
        buffer = np.empty((block, len(candidates)), dtype=np.float32)  # one block's scores, reused
        for lo in range(0, len(queries), block):
            hi = min(lo + block, len(queries))
            scores = np.matmul(self.matrix[queries[lo:hi]], cand_matrix.T, out=buffer[: hi - lo])
            pairs = order[starts[lo]:starts[hi]]
            out[ok[pairs]] = count_above(scores, inverse[pairs] - lo, cand_pos[target[ok[pairs]]],
                                         cand_pos[queries[lo:hi]])
        return out

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
    values = item.astype(np.int32)
    offsets = segment_starts.astype(np.int64)
    counts = np.bincount(values, minlength=n_universe)
    return _skipgram(lambda: iter([(values, offsets)]), counts, len(offsets) - 1, n_universe, cfg)


#: DeepWalk's walks as its authors' code runs them (Perozzi, Al-Rfou and Skiena, KDD 2014; github.com/phanein/
#: deepwalk: ``--number-walks 10 --walk-length 40 --window-size 5``, gensim's default five passes). The paper's
#: experiments use 80 walks per node and a window of 10: eight to sixteen times the tokens, for a yardstick.
DEEPWALK_WALK_LENGTH = 40
DEEPWALK_WALKS_PER_NODE = 10
DEEPWALK_WINDOW = 5


def deepwalk_vectors(item: np.ndarray, follows: np.ndarray, n_universe: int, cfg: Any, seed: int,
                     min_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """DeepWalk: uniform random walks over the undirected, unweighted graph of the training transitions, then
    skip-gram (the trainer BGE uses, negative sampling where the authors used a hierarchical softmax).

    Its distance to BGE is what the paper's directed, count-weighted graph adds to plain graph embedding.

    Args:
        item: universe index of each training event, sessions laid out one after another.
        follows: per event, whether it follows the event before in the same session (a transition).
        cfg: a :class:`eges.config.TrainConfig`; its window and epochs are replaced by DeepWalk's.
        seed: seed of the walks.
        min_weight: drop pairs seen fewer times (both directions counted), like ``graph.min_edge_weight``.
    """
    from dataclasses import replace

    from eges.config import WalksConfig
    from eges.graph.csr import CSRGraph
    from eges.graph.transitions import count_transitions
    from eges.walks.generate import flatten_walks, iter_walk_batches

    indptr, indices, weights = count_transitions(item.astype(np.int32), follows.astype(np.int32), n_universe,
                                                 True, min_weight)
    graph = CSRGraph(indptr, indices, np.ones_like(weights))  # unweighted: every neighbour equally likely
    walks_cfg = WalksConfig(walk_length=DEEPWALK_WALK_LENGTH, walks_per_node=DEEPWALK_WALKS_PER_NODE, seed=seed)

    def batches():  # noqa: ANN202
        return (flatten_walks(batch) for batch in iter_walk_batches(graph, walks_cfg))

    counts = np.zeros(n_universe, dtype=np.int64)
    n_walks = 0
    for values, offsets in batches():
        counts += np.bincount(values, minlength=n_universe)
        n_walks += len(offsets) - 1
    return _skipgram(batches, counts, n_walks, n_universe, replace(cfg, window=DEEPWALK_WINDOW))


def side_mean_matrix(matrix: np.ndarray, has: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The side-information mean baseline of cold start: an item without a vector gets the mean of its values'
    vectors, each value's vector the mean of the (unit, centred) vectors of the items that have one and that
    value.

    What a catalogue gives with no side-information training at all; GES/EGES must beat it on cold items.

    Args:
        matrix: (n_universe, d) vectors (item2vec's on the training sessions); rows where ``has`` is False unused.
        has: which items have a vector of their own.
        codes: (n_universe, n_fields) value index per field, -1 where unknown.

    Returns:
        (the matrix with placed rows for items without a vector, mask of items with either).
    """
    import scipy.sparse as sp

    unit = normalised(np.asarray(matrix, dtype=np.float32)) * has[:, None]
    # Centred: skip-gram vectors share a common direction (strongest in rare items), and a mean over many items
    # is mostly that direction; uncentred, a hidden item lands nearest the rarest items, below chance.
    unit = (unit - unit[has].mean(axis=0)) * has[:, None] if has.any() else unit
    total = np.zeros_like(unit)
    parts = np.zeros(len(has), dtype=np.int64)
    for s in range(codes.shape[1]):  # one sparse product per field, not per item
        code = codes[:, s].astype(np.int64)
        n_values = int(code.max(initial=-1)) + 1
        known = code >= 0
        member = sp.csr_matrix((np.ones(int(known.sum()), np.float32), (code[known], np.flatnonzero(known))),
                               shape=(n_values, len(has)))
        with_vector = member @ sp.diags(has.astype(np.float32))
        size = np.asarray(with_vector.sum(axis=1)).ravel()
        means = (with_vector @ unit) / np.maximum(size, 1)[:, None]
        usable = known & (size[np.maximum(code, 0)] > 0)
        total[usable] += means[code[usable]]
        parts += usable
    out = np.where(has[:, None], unit, total / np.maximum(parts, 1)[:, None]).astype(np.float32)
    return out, has | (parts > 0)


def _skipgram(batches: Any, counts: np.ndarray, n_walks: int, n_universe: int, cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Skip-gram without side information on ``batches()`` of (values, offsets), by the trainer BGE uses."""
    from eges.methods import backend, resolve

    plain = resolve("auto", has_catalog=False).name  # the method without side information
    if backend(plain, cfg.backend) == "gensim":
        from eges.train.gensim_ref import WalkCorpus, train_bge, vectors_by_index

        model = train_bge(WalkCorpus(batches), counts, n_walks, cfg)
        return placed(*vectors_by_index(model, n_universe), n_universe)
    from eges.train.stream import native_skipgram

    return placed(*native_skipgram(batches, counts, n_universe, cfg, plain), n_universe)
