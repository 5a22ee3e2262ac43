"""The sequential part of sessionisation as one compiled pass (numba): gaps, repeats, lengths, positions.

NumPy needs some twenty whole-array passes for the same logic; this loop reads the arrays twice.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def cut_sessions(new_user: np.ndarray, item_changed: np.ndarray, ts: np.ndarray, gap: int, collapse: bool,
                 min_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Session cuts for events sorted by (user, ts).

    Args:
        new_user: True where a row's user differs from the previous row's.
        item_changed: True where a row's item differs from the previous row's.
        ts: times (any unit, the same as ``gap``); a new session starts where the gap exceeds ``gap``.
        collapse: drop a repeat of the previous item within a session.
        min_length: drop sessions with fewer kept rows.

    Returns:
        ``keep`` (bool per row); ``session`` (number within the user) and ``position`` (within the session),
        one per kept row; and counters ``[repeats, short sessions, their rows, sessions kept, users kept]``.
    """
    n = len(ts)
    gid = np.empty(n, dtype=np.int64)
    session = np.empty(n, dtype=np.int32)
    keep = np.empty(n, dtype=np.bool_)
    lengths = np.zeros(n, dtype=np.int64)
    g = -1
    s = -1
    repeats = 0
    for i in range(n):
        new = new_user[i] or i == 0 or ts[i] - ts[i - 1] > gap
        if new_user[i] or i == 0:
            s = -1
        if new:
            g += 1
            s += 1
        gid[i] = g
        session[i] = s
        k = not (collapse and not new and not item_changed[i])
        keep[i] = k
        if k:
            lengths[g] += 1
        else:
            repeats += 1
    short = 0
    short_rows = 0
    kept_sessions = 0
    for j in range(g + 1):
        if lengths[j] >= min_length:
            kept_sessions += 1
        elif lengths[j] > 0:
            short += 1
            short_rows += lengths[j]
    # Compacted outputs for the kept rows, so the caller selects only its own columns.
    kept_session = np.empty(n, dtype=np.int32)
    position = np.empty(n, dtype=np.int32)
    out = 0
    last = -1
    p = 0
    user = -1
    last_user = -1
    kept_users = 0
    for i in range(n):
        if new_user[i] or i == 0:
            user += 1
        if keep[i] and lengths[gid[i]] >= min_length:
            if gid[i] != last:
                last = gid[i]
                p = 0
            kept_session[out] = session[i]
            position[out] = p
            p += 1
            out += 1
            if user != last_user:
                last_user = user
                kept_users += 1
        else:
            keep[i] = False
    counts = np.array([repeats, short, short_rows, kept_sessions, kept_users], dtype=np.int64)
    return keep, kept_session[:out], position[:out], counts
