"""Exact top-K nearest neighbours by blocked matrix products and a compiled partial selection.

The score matrix of all items is symmetric, so only the blocks on and right of the diagonal are computed (BLAS),
and each serves two sets of lists: its rows' (:func:`merge_top`) and its columns' (:func:`merge_top_columns`, read
without transposing). A numba loop keeps the K best of each list in a small sorted buffer, skimming runs of 64
scores by their maximum, the item itself excluded. The products run on one BLAS thread (:func:`one_blas_thread`):
BLAS's own threads spin after each product and took a core from the numba loops that follow. Memory: every item's
list so far (n x k) and one block of scores; figures in docs/studies/neighbours-kernel.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numba import njit, prange

from eges.blas import one_blas_thread

#: Columns :func:`select_top` skims at once: their maximum decides whether any of them enters the list.
_SKIM = 64


@njit(cache=True, inline="always")
def _insert(best_i: np.ndarray, best_v: np.ndarray, item: int, x: float) -> None:
    """Put ``item`` scoring ``x`` (above the last score) into a list kept best first, after any equal score."""
    j = len(best_v) - 1
    while j > 0 and best_v[j - 1] < x:
        best_v[j] = best_v[j - 1]
        best_i[j] = best_i[j - 1]
        j -= 1
    best_v[j] = x
    best_i[j] = item


@njit(cache=True, inline="always")
def _merge_row(row: np.ndarray, first_column: int, own: int, best_i: np.ndarray, best_v: np.ndarray) -> None:
    """Merge one row of scores (columns ``first_column`` on) into a list kept best first (``best_i``/``best_v``,
    updated in place), skipping column ``own``. Columns are taken in order and only a strictly better score
    enters, so among equal scores the earlier column stays ahead, however the columns are split into blocks."""
    k, n = len(best_v), len(row)
    for lo in range(0, n, _SKIM):
        hi = min(lo + _SKIM, n)
        top = row[lo]
        for c in range(lo + 1, hi):
            top = max(top, row[c])
        if top <= best_v[k - 1]:  # once the list fills, most runs of columns hold nothing better: one max each
            continue
        for c in range(lo, hi):
            x = row[c]
            if x > best_v[k - 1] and first_column + c != own:
                _insert(best_i, best_v, first_column + c, x)


@njit(cache=True, parallel=True)
def select_top(scores: np.ndarray, k: int, first_row: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row (best first), skipping column ``first_row + row`` (a row's own item when
    the rows are a block of the items; a ``first_row`` below ``-len(scores)`` skips nothing). Places no finite
    score fills are -1 with score -inf."""
    rows = scores.shape[0]
    idx = np.full((rows, k), -1, dtype=np.int32)
    val = np.full((rows, k), -np.inf, dtype=np.float32)
    for r in prange(rows):
        _merge_row(scores[r], 0, first_row + r, idx[r], val[r])
    return idx, val


@njit(cache=True, parallel=True)
def merge_top(scores: np.ndarray, first_row: int, first_column: int, idx: np.ndarray, val: np.ndarray) -> None:
    """Merge a block of scores (rows ``first_row`` on, columns ``first_column`` on) into the running lists of all
    items (``idx``/``val``, best first, updated in place); a row's own item is skipped."""
    for r in prange(scores.shape[0]):
        _merge_row(scores[r], first_column, first_row + r, idx[first_row + r], val[first_row + r])


@njit(cache=True, parallel=True)
def merge_top_columns(scores: np.ndarray, first_row: int, first_column: int, idx: np.ndarray,
                      val: np.ndarray) -> None:
    """:func:`merge_top` of the transposed block without transposing it: column c of ``scores`` holds the scores
    of item ``first_column + c`` against items ``first_row`` on, and is merged into that item's list. Columns go in
    groups of 16 (one cache line of each row); each group skims runs of rows by their per-column maximum."""
    rows, cols = scores.shape
    k = idx.shape[1]
    for g in prange((cols + 15) // 16):
        c0 = g * 16
        width = min(16, cols - c0)
        top = np.empty(16, dtype=np.float32)
        for lo in range(0, rows, _SKIM):
            hi = min(lo + _SKIM, rows)
            for j in range(width):
                top[j] = scores[lo, c0 + j]
            for r in range(lo + 1, hi):
                for j in range(width):
                    top[j] = max(top[j], scores[r, c0 + j])
            for j in range(width):
                item = first_column + c0 + j
                best_v, best_i = val[item], idx[item]
                if top[j] <= best_v[k - 1]:
                    continue
                for r in range(lo, hi):
                    x = scores[r, c0 + j]
                    if x > best_v[k - 1] and first_row + r != item:
                        _insert(best_i, best_v, first_row + r, x)


@njit(cache=True, parallel=True)
def count_above(scores: np.ndarray, rows: np.ndarray, columns: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """For each pair i, how many columns of row ``rows[i]`` of ``scores`` come before its column ``columns[i]`` in
    the row's list, best first, equal scores in column order (as :func:`select_top` keeps them), not counting column
    ``skip[rows[i]]`` (a row's own item; -1 skips nothing): the rank of a target among a query's candidates, which
    is all a HitRate@K needs (no top-K lists)."""
    out = np.empty(len(rows), dtype=np.int64)
    for i in prange(len(rows)):
        r, target, own_item = rows[i], columns[i], skip[rows[i]]
        own = scores[r, target]
        count = 0
        for c in range(target):  # before the target, an equal score comes first too
            count += scores[r, c] >= own
        for c in range(target + 1, scores.shape[1]):
            count += scores[r, c] > own
        if own_item >= 0 and own_item != target and (scores[r, own_item] > own or
                                                     (scores[r, own_item] == own and own_item < target)):
            count -= 1
        out[i] = count
    return out


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def top_k_blocks(vectors: np.ndarray, k: int, metric: str = "cosine", block: int = 1024,
                 columns: int = 8192) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (first row, neighbour indices, scores) per block of ``block`` rows; neighbours best first. Half the
    score matrix is computed (it is symmetric), ``block`` x ``columns`` scores a product; the lists of all items
    are kept as they fill (n x k).

    Raises:
        ValueError: ``k`` is not below the number of items, or the metric is unknown.
    """
    mat = search_matrix(vectors, k, metric)
    n = len(mat)
    idx = np.full((n, k), -1, dtype=np.int32)  # every item's list so far: a block's rows are complete once their
    val = np.full((n, k), -np.inf, dtype=np.float32)  # row of blocks is done (the blocks before came transposed)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        with one_blas_thread():
            for col in range(lo, n, columns):  # each block right of the diagonal serves its rows' lists and,
                scores = mat[lo:hi] @ mat[col:col + columns].T  # read by columns, its columns'
                merge_top(scores, lo, col, idx, val)
                skip = max(hi - col, 0)  # the row block's own columns were merged as rows just now
                if scores.shape[1] > skip:
                    merge_top_columns(scores[:, skip:], lo, col + skip, idx, val)
        yield lo, idx[lo:hi], val[lo:hi]  # views: these rows are final, later products only write rows past hi


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


def top_k(vectors: np.ndarray, k: int, metric: str = "cosine", block: int = 1024,
          columns: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """All neighbours at once: (indices (n, k) int32, scores (n, k) float32)."""
    idx = np.empty((len(vectors), k), dtype=np.int32)
    val = np.empty((len(vectors), k), dtype=np.float32)
    for lo, i, s in top_k_blocks(vectors, k, metric, block, columns):
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
