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
