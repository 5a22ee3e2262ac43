"""Exact top-K nearest neighbours by blocked matrix products and a compiled partial selection.

Each block of query rows is scored against every item with one BLAS matrix product (all cores); a numba
loop then keeps the K best of each row in a small sorted buffer, one comparison per score for almost
every candidate, rows in parallel, the item itself excluded (``np.argpartition`` would allocate an int64 index
for every score). Memory is one block of scores (``block`` x n floats) at a time; figures in docs/studies/neighbours-kernel.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numba import njit, prange


#: Columns :func:`select_top` skims at once: their maximum decides whether any of them enters the list.
_SKIM = 64


@njit(cache=True, parallel=True)
def select_top(scores: np.ndarray, k: int, first_row: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row (best first), skipping column ``first_row + row`` (a row's own item when
    the rows are a block of the items; a ``first_row`` below ``-len(scores)`` skips nothing). Places no finite
    score fills are -1 with score -inf."""
    rows, n = scores.shape
    idx = np.empty((rows, k), dtype=np.int32)
    val = np.empty((rows, k), dtype=np.float32)
    for r in prange(rows):
        best_v = np.full(k, -np.inf, dtype=np.float32)
        best_i = np.full(k, -1, dtype=np.int32)
        own = first_row + r
        for lo in range(0, n, _SKIM):
            hi = min(lo + _SKIM, n)
            top = scores[r, lo]
            for c in range(lo + 1, hi):
                top = max(top, scores[r, c])
            if top <= best_v[k - 1]:  # once the list fills, most runs of columns hold nothing better: one max each
                continue
            for c in range(lo, hi):
                x = scores[r, c]
                if x <= best_v[k - 1] or c == own:
                    continue
                j = k - 1
                while j > 0 and best_v[j - 1] < x:
                    best_v[j] = best_v[j - 1]
                    best_i[j] = best_i[j - 1]
                    j -= 1
                best_v[j] = x
                best_i[j] = c
        idx[r] = best_i
        val[r] = best_v
    return idx, val


@njit(cache=True, parallel=True)
def count_above(scores: np.ndarray, rows: np.ndarray, columns: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """For each pair i, how many columns of row ``rows[i]`` of ``scores`` score above its column ``columns[i]``,
    not counting column ``skip[rows[i]]`` (a row's own item; -1 skips nothing): the rank of a target among a
    query's candidates, which is all a HitRate@K needs (no top-K lists)."""
    out = np.empty(len(rows), dtype=np.int64)
    for i in prange(len(rows)):
        r = rows[i]
        own = scores[r, columns[i]]
        count = 0
        for c in range(scores.shape[1]):
            if scores[r, c] > own and c != skip[r]:
                count += 1
        out[i] = count
    return out


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def top_k_blocks(vectors: np.ndarray, k: int, metric: str = "cosine",
                 block: int = 1024) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (first row, neighbour indices, scores) per block of rows; neighbours best first.

    Raises:
        ValueError: ``k`` is not below the number of items, or the metric is unknown.
    """
    mat = search_matrix(vectors, k, metric)
    for lo in range(0, len(mat), block):
        hi = min(lo + block, len(mat))
        idx, val = select_top(mat[lo:hi] @ mat.T, k, lo)
        yield lo, idx, val


def search_matrix(vectors: np.ndarray, k: int, metric: str) -> np.ndarray:
    """The float32 rows both searches score by inner product (unit rows for cosine), after checking ``k`` and
    ``metric``.

    Raises:
        ValueError: ``k`` is not below the number of items, or the metric is unknown.
    """
    n = len(vectors)
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and the number of items minus one ({n - 1}), got {k}")
    if metric not in ("cosine", "dot"):
        raise ValueError(f"metric must be 'cosine' or 'dot', got {metric!r}")
    return normalised(vectors) if metric == "cosine" else np.ascontiguousarray(vectors, dtype=np.float32)


def top_k_faiss_blocks(vectors: np.ndarray, k: int, metric: str = "cosine", block: int = 1024, hnsw_m: int = 32,
                       ef_search: int = 128, built: list | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Like :func:`top_k_blocks`, from a faiss HNSW index (inner product): approximate, for very many items.

    HNSW needs no training pass and answers a query in roughly logarithmic time, so the cost grows with
    n log n instead of n squared. Each query asks for k + 1 results so the item itself can be dropped.

    ``built``, when given, receives the index (so the caller can save it for serving).

    Raises:
        ImportError: faiss is not installed.
    """
    import faiss

    mat = search_matrix(vectors, k, metric)
    n = len(mat)
    index = faiss.IndexHNSWFlat(mat.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = max(ef_search, k + 1)
    index.add(mat)
    if built is not None:
        built.append(index)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        scores, found = index.search(mat[lo:hi], k + 1)
        yield lo, *_drop_self(found, scores, np.arange(lo, hi), k)


def _drop_self(found: np.ndarray, scores: np.ndarray, own: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k results of each row that are not the row's own item (faiss marks missing results -1)."""
    keep = found != own[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # own item (if found) moves to the end
    idx = np.take_along_axis(found, order, axis=1).astype(np.int32)
    val = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    val[idx < 0] = -np.inf
    return idx, val


def top_k(vectors: np.ndarray, k: int, metric: str = "cosine", block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """All neighbours at once: (indices (n, k) int32, scores (n, k) float32)."""
    idx = np.empty((len(vectors), k), dtype=np.int32)
    val = np.empty((len(vectors), k), dtype=np.float32)
    for lo, i, s in top_k_blocks(vectors, k, metric, block):
        idx[lo:lo + len(i)] = i
        val[lo:lo + len(i)] = s
    return idx, val


def top_k_rows(vectors: np.ndarray, rows: np.ndarray, k: int, metric: str = "cosine",
               block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours of the items at ``rows`` only, among all items (each item itself excluded): what
    :func:`top_k` gives those rows, for a sample of query items (drift measures) without scoring every item."""
    mat = search_matrix(vectors, k, metric)
    rows = np.asarray(rows, dtype=np.int64)
    idx = np.empty((len(rows), k), dtype=np.int32)
    val = np.empty((len(rows), k), dtype=np.float32)
    for lo in range(0, len(rows), block):
        query = rows[lo:lo + block]
        found, scores = select_top(mat[query] @ mat.T, min(k + 1, len(mat)), -len(mat) - 1)  # skips nothing
        idx[lo:lo + len(query)], val[lo:lo + len(query)] = _drop_self(found, scores, query, k)
    return idx, val


def user_vectors(user_first_row: np.ndarray, item_rows: np.ndarray, vectors: np.ndarray, recent: int,
                 half_life: float) -> tuple[np.ndarray, np.ndarray]:
    """Per user, the (decayed) mean of the vectors of their last ``recent`` events.

    Events are rows sorted by (user, time); ``user_first_row`` holds each user's first row (ascending) and
    ``item_rows`` each event's row in ``vectors`` (-1: the item has no vector, skipped). Returns
    (user vectors, number of events used per user).
    """
    from scipy.sparse import csr_matrix

    n_events = len(item_rows)
    n_users = len(user_first_row)
    user = np.repeat(np.arange(n_users), np.diff(np.r_[user_first_row, n_events]))
    ends = np.r_[user_first_row[1:], n_events]
    age = ends[user] - 1 - np.arange(n_events)  # 0 for a user's latest event
    use = (age < recent) & (item_rows >= 0)
    weight = np.ones(n_events) if half_life <= 0 else 0.5 ** (age / half_life)
    mat = csr_matrix((weight[use], (user[use], item_rows[use])), shape=(n_users, len(vectors)))
    total = np.asarray(mat.sum(axis=1)).ravel()
    out = np.asarray(mat @ vectors, dtype=np.float32)
    ok = total > 0
    out[ok] /= total[ok, None].astype(np.float32)
    return out, np.bincount(user[use], minlength=n_users)
