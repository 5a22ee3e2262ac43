"""Train/test splits for the evaluation protocols, on arrays (no files)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np

from eges.errors import ConfigError


def holdout_mask(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random ``fraction`` of n rows (rounded), as a boolean mask."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=int(round(n * fraction)), replace=False)] = True
    return mask


def undirected_holdout(src: np.ndarray, dst: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Hold out a fraction of *pairs* of a symmetric edge list: i->j and j->i go together."""
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    n = int(max(hi.max(initial=-1), 0)) + 1
    keys = lo.astype(np.int64) * n + hi
    distinct = np.unique(keys)
    chosen = distinct[holdout_mask(len(distinct), fraction, rng)]
    return np.isin(keys, chosen)


def held_out_edges(src: np.ndarray, dst: np.ndarray, fraction: float, undirected: bool,
                   rng: np.random.Generator) -> np.ndarray:
    """The link rule: a random ``fraction`` of the edges held out (of the pairs, when the graph is symmetric)."""
    return undirected_holdout(src, dst, fraction, rng) if undirected else holdout_mask(len(src), fraction, rng)


def sample_non_edges(src: np.ndarray, dst: np.ndarray, nodes: np.ndarray, count: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random pairs of distinct ``nodes`` joined by no edge in either direction.

    Raises:
        ValueError: the graph is too dense to find that many pairs without an edge.
    """
    n = int(max(src.max(initial=-1), dst.max(initial=-1), nodes.max(initial=-1))) + 1
    existing = np.unique(np.concatenate([src.astype(np.int64) * n + dst, dst.astype(np.int64) * n + src]))
    got_a, got_b, seen = [], [], np.empty(0, dtype=np.int64)
    have = 0
    for _ in range(50):
        need = count - have
        if need <= 0:
            break
        a = rng.choice(nodes, size=2 * need + 16)
        b = rng.choice(nodes, size=2 * need + 16)
        keys = a.astype(np.int64) * n + b
        ok = (a != b) & ~np.isin(keys, existing) & ~np.isin(keys, seen)
        keys, first = np.unique(keys[ok], return_index=True)
        take = np.sort(first)[:need]
        a, b = a[ok][take], b[ok][take]
        got_a.append(a)
        got_b.append(b)
        seen = np.concatenate([seen, a.astype(np.int64) * n + b])
        have += len(a)
    if have < count:
        raise ValueError(f"found only {have} of {count} node pairs without an edge; the graph is too dense")
    return np.concatenate(got_a)[:count], np.concatenate(got_b)[:count]


def segments_without(session_start: np.ndarray, prev: np.ndarray, item: np.ndarray,
                     held_out_keys: np.ndarray, n: int) -> np.ndarray:
    """Session numbers after cutting every session at each held-out transition prev -> item.

    Baselines trained on sessions must not see a held-out edge as a transition; cutting there removes
    exactly those transitions and keeps everything else.
    """
    keys = prev.astype(np.int64) * n + item
    cut = np.zeros(len(item), dtype=bool)
    has_prev = prev >= 0
    cut[has_prev] = np.isin(keys[has_prev], held_out_keys)
    return np.cumsum(session_start | cut) - 1


def parse_cut_time(text: str) -> int | None:
    """``evaluate.cut_time`` as epoch milliseconds: '' (automatic) is None; a number is unix seconds; else an
    ISO date or date-time (UTC unless it names a zone).

    Raises:
        ConfigError: neither a number nor an ISO date.
    """
    text = text.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or abs(seconds) > 1e15:
            raise ConfigError(f"evaluate.cut_time must be a finite time, got {text!r}")
        return int(round(seconds * 1000))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"evaluate.cut_time must be unix seconds or an ISO date such as 2017-12-02, "
                          f"got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def format_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
