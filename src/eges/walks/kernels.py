"""Weighted first-order random walks over CSR arrays, compiled with numba.

Why this shape: each step draws one 64-bit number from a per-walk generator (splitmix64 seeded by the
walk's id, its round and start node, so walks are the same for a seed whatever the thread count or engine),
picks a column of the current node's alias table with the high 32 bits and accepts or aliases it with the low
32 bits: O(1) per step, no Python objects, no global random state. Functions are cached on disk
(``cache=True``) so only the first process pays for compilation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from eges.rng import GOLDEN as _GOLDEN
from eges.rng import LOW32 as _LOW32
from eges.rng import SHIFT32 as _S32
from eges.rng import mix64 as _mix


@njit(cache=True, parallel=True)
def build_alias(indptr: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose alias tables for every node's out-edges.

    Returns ``prob`` (float64, per edge: probability of keeping this column) and ``alias`` (int32, per
    edge: the column, relative to the node's first edge, taken otherwise).
    """
    n = len(indptr) - 1
    m = len(weights)
    prob = np.ones(m, dtype=np.float64)
    alias = np.zeros(m, dtype=np.int32)
    small = np.empty(m, dtype=np.int32)  # per-node scratch lives in the node's own edge range
    large = np.empty(m, dtype=np.int32)
    for v in prange(n):
        lo = indptr[v]
        deg = indptr[v + 1] - lo
        if deg == 0:
            continue
        total = 0.0
        for k in range(deg):
            total += weights[lo + k]
        if total <= 0.0:
            for k in range(deg):
                prob[lo + k] = 1.0
                alias[lo + k] = k
            continue
        ns = 0
        nl = 0
        for k in range(deg):
            p = weights[lo + k] * deg / total
            prob[lo + k] = p
            if p < 1.0:
                small[lo + ns] = k
                ns += 1
            else:
                large[lo + nl] = k
                nl += 1
        while ns > 0 and nl > 0:
            ns -= 1
            s = small[lo + ns]
            g = large[lo + nl - 1]
            alias[lo + s] = g
            prob[lo + g] = prob[lo + g] + prob[lo + s] - 1.0
            if prob[lo + g] < 1.0:
                nl -= 1
                small[lo + ns] = g
                ns += 1
        for k in range(nl):
            prob[lo + large[lo + k]] = 1.0
        for k in range(ns):
            prob[lo + small[lo + k]] = 1.0
    return prob, alias


@njit(cache=True, parallel=True)
def pack_edges(indptr: np.ndarray, indices: np.ndarray, prob: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """One (m, 3) uint32 row per edge: acceptance threshold * 2**32, its node, its alias's node.

    A step then touches a single 12-byte row instead of four arrays: one cache miss, not four.
    """
    n = len(indptr) - 1
    table = np.empty((len(indices), 3), dtype=np.uint32)
    for v in prange(n):
        lo = indptr[v]
        for e in range(lo, indptr[v + 1]):
            table[e, 0] = np.uint32(min(prob[e] * 4294967296.0, 4294967295.0)) if prob[e] < 1.0 else 4294967295
            table[e, 1] = indices[e]
            table[e, 2] = indices[lo + alias[e]]
    return table


#: Walks advanced together by one thread. Their steps are independent, so the CPU overlaps their
#: cache misses (a step is one random read of the edge table); 16 doubled throughput over 1 here.
GROUP = 16


@njit(cache=True, parallel=True)
def walk_batch(indptr: np.ndarray, table: np.ndarray, starts: np.ndarray, walk_ids: np.ndarray, seed: int,
               length: int) -> np.ndarray:
    """Walks from ``starts`` (one each), as an int32 matrix padded with -1 after a dangling node.

    ``table`` comes from :func:`pack_edges`. Walk ``k`` of the batch uses the generator seeded by
    ``(seed, walk_ids[k])``, so the result depends neither on the number of threads nor on the batching.
    """
    n_walks = len(starts)
    out = np.empty((n_walks, length), dtype=np.int32)
    base = _mix(np.uint64(seed) * _GOLDEN + np.uint64(1))
    n_groups = (n_walks + GROUP - 1) // GROUP
    for grp in prange(n_groups):
        lo_k = grp * GROUP
        hi_k = min(lo_k + GROUP, n_walks)
        size = hi_k - lo_k
        cur = np.empty(GROUP, dtype=np.int64)
        state = np.empty(GROUP, dtype=np.uint64)
        alive = np.zeros(GROUP, dtype=np.bool_)
        for j in range(size):
            k = lo_k + j
            state[j] = base ^ _mix(np.uint64(walk_ids[k]) * _GOLDEN)
            cur[j] = starts[k]
            out[k, 0] = starts[k]
            alive[j] = True
        for step in range(1, length):
            for j in range(size):
                k = lo_k + j
                if not alive[j]:
                    out[k, step] = -1
                    continue
                v = cur[j]
                lo = indptr[v]
                deg = indptr[v + 1] - lo
                if deg == 0:
                    alive[j] = False
                    out[k, step] = -1
                    continue
                st = state[j] + _GOLDEN
                state[j] = st
                r = _mix(st)
                e = lo + np.int64(((r >> _S32) * np.uint64(deg)) >> _S32)
                if (r & _LOW32) < table[e, 0]:
                    v = np.int64(table[e, 1])
                else:
                    v = np.int64(table[e, 2])
                cur[j] = v
                out[k, step] = v
    return out


def pick_next(draws: np.ndarray, first_edge: np.ndarray, degree: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The step of :func:`walk_batch` for many walks at once, from their draws (:func:`eges.rng.walk_draws`): the
    column from the high 32 bits, accept or alias with the low 32 bits. ``first_edge`` indexes ``table`` (rows of
    :func:`pack_edges`) at each walk's current node. The Spark engine moves its walks with this."""
    column = ((draws >> np.uint64(32)) * degree.astype(np.uint64)) >> np.uint64(32)
    rows = table[first_edge.astype(np.int64) + column.astype(np.int64)]
    accept = (draws & np.uint64(0xFFFFFFFF)) < rows[:, 0].astype(np.uint64)
    return np.where(accept, rows[:, 1], rows[:, 2]).astype(np.int32)
