"""The counter-based generator every compiled kernel draws from: splitmix64.

A kernel seeds one state per unit of work (a walk) from (seed, unit id) and advances it by GOLDEN per
draw, so results depend on the seed only, never on how work is split across threads, and a draw costs a
few integer operations with no shared state.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
SHIFT32 = np.uint64(32)
LOW32 = np.uint64(0xFFFFFFFF)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


@njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """splitmix64's output function: a well-mixed 64-bit value from a counter."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def mix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`mix64` over a uint64 array (numpy wraps uint64 arithmetic as the compiled kernels do)."""
    z = z.astype(np.uint64, copy=True)
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def walk_base(seed: int) -> np.uint64:
    """The state every walk's generator derives from for ``seed``."""
    return mix64_array(np.array([seed], dtype=np.uint64) * GOLDEN + np.uint64(1))[0]


def walk_draws(seed: int, walk_ids: np.ndarray, step: int) -> np.ndarray:
    """The draw walk ``walk_ids[i]`` makes at ``step`` (1 = the first move): the walk kernel's generator, stateless,
    so an engine that advances walks one step at a time over many machines (Spark) draws the same numbers."""
    with np.errstate(over="ignore"):
        state = walk_base(seed) ^ mix64_array(walk_ids.astype(np.uint64) * GOLDEN)
        return mix64_array(state + np.uint64(step) * GOLDEN)


def start_order_keys(seed: int, walk_round: int | np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Sort keys (non-negative int64) putting the start nodes of ``walk_round`` in a seeded random order: sorting by
    (key, node) is the order walks are numbered in, the same in every engine. An array of rounds gives one row of
    keys per round."""
    rounds = np.atleast_1d(np.asarray(walk_round)).astype(np.uint64)
    with np.errstate(over="ignore"):
        salt_seed = mix64_array(np.array([seed], dtype=np.uint64) * GOLDEN + np.uint64(7))[0]
        salt_round = mix64_array(rounds * GOLDEN + np.uint64(7))
        keys = mix64_array((nodes.astype(np.uint64) * GOLDEN)[None, :] ^ salt_seed
                           ^ (salt_round[:, None] << np.uint64(1)))
    keys = (keys >> np.uint64(1)).astype(np.int64)
    return keys if np.ndim(walk_round) else keys[0]
