"""Skip-gram training of every method as compiled, lock-free (Hogwild) numba loops: BGE (each item its own row
only), GES and EGES (paper, section 2.3). The passes take the model arrays and the hyper-parameters as two named
tuples (``Arrays``, ``Hyper``); the method table's flags set the switches (``Hyper.attention``: EGES' softmax
attention, else the plain mean).

An item v has embeddings W_v^0 (its own, a row of ``W``) and W_v^s for each side-information field s (a
row of ``S`` shared by every item with the same value). Its aggregated vector is

    GES:  H_v = mean_j W_v^j
    EGES: H_v = sum_j exp(a_v^j) W_v^j / sum_j exp(a_v^j)

over the embeddings the item has (unknown values are left out). Skip-gram with negative sampling scores
H_v of the centre item against a context embedding Z_u. H_v is computed once per centre and scored
against the window's nodes and a set of negatives shared by the window (``centre_step``); the
accumulated gradient dH is then pushed back into the parts:

    dL/dW_v^j = w_j dL/dH_v            (w_j = 1/m for GES, softmax(a_v)_j for EGES)
    dL/da_v^j = w_j <dL/dH_v, W_v^j - H_v>

``pair_gradients`` exposes exactly these formulas for the finite-difference test.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange

from eges.rng import GOLDEN as _GOLDEN
from eges.rng import SHIFT32 as _S32
from eges.rng import mix64 as _mix
from eges.train.prefetch import prefetch_row

_INV32 = 1.0 / 4294967296.0

# How far the item's own row steps (``backprop``), by ``train.own_step``'s name.
OWN_SHARE, OWN_FULL, OWN_ITEM = 0, 1, 2
OWN_STEPS = {"share": OWN_SHARE, "full": OWN_FULL, "item": OWN_ITEM}


@njit(cache=True, inline="always")
def _next(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    state = state + _GOLDEN
    return state, _mix(state)


@njit(cache=True)
def item_parts(v: int, has_own: bool, codes: np.ndarray, field_offset: np.ndarray, n_items: int,
               out_rows: np.ndarray, out_slot: np.ndarray) -> int:
    """Fill ``out_rows`` with rows of the stacked table [W; S] for item v and ``out_slot`` with the
    attention slot of each (0 = the item's own embedding, 1 + s = field s). Returns how many."""
    m = 0
    if has_own:
        out_rows[m] = v
        out_slot[m] = 0
        m += 1
    for s in range(codes.shape[1]):
        c = codes[v, s]
        if c >= 0:
            out_rows[m] = n_items + field_offset[s] + c
            out_slot[m] = 1 + s
            m += 1
    return m


@njit(cache=True)
def aggregate(table: np.ndarray, attention: np.ndarray, v: int, rows: np.ndarray, slots: np.ndarray, m: int,
              use_attention: bool, weights: np.ndarray, h: np.ndarray) -> None:
    """H_v into ``h`` and the part weights into ``weights`` (mean for GES, softmax of a_v for EGES)."""
    if use_attention:
        top = -1e30
        for j in range(m):
            top = max(top, attention[v, slots[j]])
        total = 0.0
        for j in range(m):
            weights[j] = np.exp(attention[v, slots[j]] - top)
            total += weights[j]
        for j in range(m):
            weights[j] /= total
    else:
        for j in range(m):
            weights[j] = 1.0 / m
    h[:] = 0.0
    for j in range(m):
        row = table[rows[j]]
        wj = h.dtype.type(weights[j])
        for d in range(h.shape[0]):
            h[d] += wj * row[d]


@njit(cache=True)
def backprop(table: np.ndarray, attention: np.ndarray, v: int, rows: np.ndarray, slots: np.ndarray, m: int,
             use_attention: bool, weights: np.ndarray, h: np.ndarray, dh: np.ndarray, side_rate: np.ndarray,
             own_step: int, attention_scale: float = 1.0) -> None:
    """Push the (already learning-rate-scaled) ascent direction ``dh`` for H_v into the parts and a_v.

    One pass per part: a_v's gradient reads the part before its own update. A side-information row's step is
    further scaled by ``side_rate`` (indexed by the row minus the item rows; see ``side_rates``). The item's own
    row steps by ``own_step`` (``OWN_STEPS``): its share w_0 dh (the plain gradient), the whole dh, or
    dh / max(w_0, 1/m), which moves the item's part of H_v, w_0 W_v^0, by BGE's step dh; the bound keeps
    the step at most m dh where the attention has turned the own row down."""
    n_items = table.shape[0] - side_rate.shape[0]
    for j in range(m):
        row = table[rows[j]]
        wj = h.dtype.type(weights[j])
        if use_attention:
            dot = h.dtype.type(0.0)
            for d in range(h.shape[0]):
                dot += dh[d] * (row[d] - h[d])
            attention[v, slots[j]] += wj * dot * attention_scale
        if slots[j] > 0:
            wj = wj * side_rate[rows[j] - n_items]
        elif own_step == OWN_FULL:
            wj = h.dtype.type(1.0)
        elif own_step == OWN_ITEM:
            wj = h.dtype.type(1.0 / max(weights[j], 1.0 / m))
        for d in range(h.shape[0]):
            row[d] += wj * dh[d]


class Arrays(NamedTuple):
    """The arrays a training pass reads and updates: the model and the per-node tables it samples from.

    ``table`` is [W; S] (item rows, then side-information value rows), ``context`` the context rows Z,
    ``attention`` the logits a_v; ``has_own``, ``codes`` and ``field_offset`` say which rows make up an item
    (``item_parts``); ``side_rate`` scales each side row's step; ``neg_table`` is the unigram table negatives are
    drawn from and ``keep_prob`` each node's down-sampling keep probability."""

    table: np.ndarray
    context: np.ndarray
    attention: np.ndarray
    has_own: np.ndarray
    codes: np.ndarray
    field_offset: np.ndarray
    side_rate: np.ndarray
    neg_table: np.ndarray
    keep_prob: np.ndarray


class Hyper(NamedTuple):
    """The hyper-parameters of a pass (gensim passes its config struct the same way).

    ``attention`` is the method table's switch (``Method.attention``): softmax attention over the parts, else their
    plain mean. The learning rate falls linearly from ``alpha`` to ``min_alpha`` over ``total_tokens``; ``seed``
    and the pass's ``stream`` seed each walk's generator. ``attention_scale`` multiplies the attention logits'
    steps (``train.attention_alpha`` / ``alpha``; 1: the item rows' rate)."""

    window: int
    negative: int
    attention: bool
    own_step: int
    cold_share: float
    alpha: float
    min_alpha: float
    total_tokens: int
    seed: int
    attention_scale: float = 1.0


class Scratch(NamedTuple):
    """One thread's work buffers for ``centre_step``: the centre's parts and weights, H_v and its ascent direction,
    the targets, and the same for the cold-start mean of its side rows."""

    rows: np.ndarray
    slots: np.ndarray
    weights: np.ndarray
    h: np.ndarray
    dh: np.ndarray
    targets: np.ndarray
    cold_weights: np.ndarray
    hc: np.ndarray
    dhc: np.ndarray


@njit(cache=True)
def scratch(n_fields: int, dim: int, n_targets: int) -> Scratch:
    """Buffers for a centre with up to ``n_fields`` side fields and ``n_targets`` targets."""
    return Scratch(np.empty(n_fields + 1, dtype=np.int64), np.empty(n_fields + 1, dtype=np.int64),
                   np.empty(n_fields + 1, dtype=np.float64), np.empty(dim, dtype=np.float32),
                   np.empty(dim, dtype=np.float32), np.empty(n_targets, dtype=np.int64),
                   np.empty(n_fields + 1, dtype=np.float64), np.empty(dim, dtype=np.float32),
                   np.empty(dim, dtype=np.float32))


@njit(cache=True, fastmath=True)
def centre_step(table: np.ndarray, context: np.ndarray, attention: np.ndarray, side_rate: np.ndarray, s: Scratch,
                v: int, m: int, n_pos: int, n_targets: int, lr: float, use_attention: bool, own_step: int,
                cold: bool, attention_scale: float = 1.0) -> float:
    """One shared-negative update for centre v (its m parts in ``s.rows``/``s.slots``); returns its loss.

    Takes the four arrays it updates or reads, not the whole :class:`Arrays` and :class:`Hyper`: numba passes a named
    tuple as all its fields, and this is called once per centre (151 words per call against 107 before the named
    tuples; passing only these is as many as before).

    ``s.targets[:n_pos]`` are the window's nodes (label 1), ``s.targets[n_pos:n_targets]`` the negatives shared
    by the whole window (label 0). Scoring every window node against the same K negatives means each
    negative term appears ``n_pos`` times with the same H_v, so it is scored once with weight ``n_pos``:
    the expected gradient of word2vec's K negatives per pair at K per centre. The context rows are updated
    in place, then the accumulated ascent direction for H_v goes into its parts.

    With ``cold`` (and the item's own row first among m > 1 parts), the plain mean of the side rows, the
    vector the item would get without behaviour, is scored against the same targets from the same context
    rows, and its gradient goes into the side rows too (``train.cold_share``); the context rows follow H_v only.
    Both are scored while a context row is loaded, so the targets are read once (GES's training rate with it:
    docs/studies/trainer-kernel.md).
    """
    rows, slots, weights, h, dh, targets = s.rows, s.slots, s.weights, s.h, s.dh, s.targets
    cold_weights, hc, dhc = s.cold_weights, s.hc, s.dhc
    aggregate(table, attention, v, rows, slots, m, use_attention, weights, h)
    n_side = m - 1 if cold and m > 1 and slots[0] == 0 else 0
    if n_side > 0:
        aggregate(table, attention, v, rows[1:], slots[1:], n_side, False, cold_weights, hc)
        dhc[:] = 0.0
    dim = h.shape[0]
    dh[:] = 0.0
    # -log sigmoid(f) = log(1 + e) and -log(1 - sigmoid(f)) = log(1 + e) + f with e = exp(-f): the loss
    # multiplies the (1 + e) factors and takes one log per centre instead of one per target.
    scale = np.float32(n_pos)
    pos_prod = 1.0
    neg_prod = 1.0
    neg_f = 0.0
    loss = 0.0
    for k in range(n_targets):
        z = context[targets[k]]
        f = np.float32(0.0)
        for d in range(dim):
            f += h[d] * z[d]
        f = min(max(f, np.float32(-30.0)), np.float32(30.0))
        e = np.exp(-f)
        q = np.float32(1.0) + e
        if k < n_pos:
            pos_prod *= q
            g = np.float32(e / q * lr)
        else:
            neg_prod *= q
            neg_f += f
            g = np.float32(-lr * scale / q)
        if pos_prod > 1e280 or neg_prod > 1e280:  # each factor is below 1.1e13
            loss += np.log(pos_prod) + scale * np.log(neg_prod)
            pos_prod = 1.0
            neg_prod = 1.0
        if n_side > 0:
            fc = np.float32(0.0)
            for d in range(dim):
                fc += hc[d] * z[d]
            fc = min(max(fc, np.float32(-30.0)), np.float32(30.0))
            ec = np.exp(-fc)
            gc = np.float32(ec / (1.0 + ec) * lr) if k < n_pos else np.float32(-lr * scale / (1.0 + ec))
            for d in range(dim):
                dhc[d] += gc * z[d]
        for d in range(dim):
            dh[d] += g * z[d]
            z[d] += g * h[d]
    backprop(table, attention, v, rows, slots, m, use_attention, weights, h, dh, side_rate, own_step, attention_scale)
    if n_side > 0:
        backprop(table, attention, v, rows[1:], slots[1:], n_side, False, cold_weights, hc, dhc, side_rate, own_step)
    return loss + np.log(pos_prod) + scale * (np.log(neg_prod) + neg_f)


#: How many centres ahead the trainer draws and prefetches (docs/studies/trainer-kernel.md).
PREFETCH_AHEAD = 2
_RING = PREFETCH_AHEAD + 1  # slots of drawn centres: this one and the PREFETCH_AHEAD after it


@njit(cache=True, inline="always")
def _draw_centre(state, buf, n_kept, i, has_own, codes, window, negative, neg_table, cold_share, shrink, negs,  # noqa: ANN001, ANN202
                 colds):
    """Make centre ``i``'s random draws, in the order a centre makes them (the window's shrink, then, when the centre
    has a part and another node in its window, its negatives and its cold-start draw), into ring slot
    ``i % _RING`` (``shrink`` -1: the centre is skipped). Returns the generator's state."""
    k = i % _RING
    v = buf[i]
    m = np.int64(has_own[v])
    for f in range(codes.shape[1]):
        if codes[v, f] >= 0:
            m += 1
    state, r = _next(state)
    shrink[k] = -1
    if m == 0:
        return state
    b = np.int64(((r >> _S32) * np.uint64(window)) >> _S32)
    if min(n_kept, i + window - b + 1) - max(0, i - window + b) <= 1:  # no other node in its window
        return state
    shrink[k] = b
    for q in range(negative):
        state, r = _next(state)
        negs[k, q] = neg_table[np.int64(((r >> _S32) * np.uint64(len(neg_table))) >> _S32)]
    colds[k] = False
    if cold_share > 0.0 and m > 1 and has_own[v]:
        state, r = _next(state)
        colds[k] = (r >> _S32) * _INV32 < cold_share
    return state


@njit(cache=True, inline="always")
def _prefetch_centre(table, context, codes, field_offset, n_items, buf, negs, shrink, n_kept, window, i):  # noqa: ANN001, ANN202
    """Start loading what centre ``i`` (drawn) reads that no centre before it read: its own and side rows, its
    negatives' context rows and the context row at the far end of its window (the walk's first rows: ``_train_epoch``
    prefetches them at the walk's start)."""
    v = buf[i]
    prefetch_row(table, v)
    for f in range(codes.shape[1]):
        c = codes[v, f]
        if c >= 0:
            prefetch_row(table, n_items + field_offset[f] + c)
    k = i % _RING
    if shrink[k] >= 0:
        for q in range(negs.shape[1]):
            prefetch_row(context, negs[k, q])
    if i + window < n_kept:
        prefetch_row(context, buf[i + window])


def train_epoch(walk_values: np.ndarray, walk_offsets: np.ndarray, a: Arrays, hp: Hyper, done_tokens: int,
                stream: int, chunk: int, trace: np.ndarray | None = None) -> float:
    """One pass over the walks; returns the mean negative log-likelihood per scored pair.

    Frequent nodes are down-sampled as in word2vec: node v stays in a walk with probability
    ``a.keep_prob[v]`` (drawn per occurrence), before windows are taken. Each centre is scored against its
    window's nodes and ``hp.negative`` negatives shared by the window (``centre_step``); a share ``hp.cold_share``
    of the centres that have both their own row and side rows also train the mean of their side rows on it.

    Walks are split into chunks of ``chunk`` walks, handled without locks (Hogwild) and interleaved: thread
    t of T takes chunks t, t+T, t+2T, ..., so the threads work near the same corpus position and the
    learning rate, set by that position (``done_tokens`` before this pass), follows global progress, with no
    barrier between chunks. Each walk's random numbers come from its own generator seeded by (seed, stream, walk),
    so one thread gives bit-for-bit the same result every time. ``trace`` (tests only), an array of shape
    (n_chunks, 2), if given receives per chunk its rank among its thread's chunks and the learning rate of its
    first walk.
    """
    if trace is None:
        trace = np.empty((0, 2))
    max_len = int(np.diff(walk_offsets).max()) if len(walk_offsets) > 1 else 0
    return _train_epoch(walk_values, walk_offsets, a, hp, done_tokens, stream, chunk, max_len, get_num_threads(),
                        trace)


@njit(cache=True, parallel=True, fastmath=True)
def _train_epoch(walk_values, walk_offsets, a, hp, done_tokens, stream, chunk, max_len, n_threads,  # noqa: ANN001
                 trace):  # noqa: ANN001, ANN202
    n_walks = len(walk_offsets) - 1
    n_items = a.context.shape[0]
    dim = a.table.shape[1]
    table, context, attention, side_rate = a.table, a.context, a.attention, a.side_rate
    codes, field_offset, has_own, keep_prob, neg_table = a.codes, a.field_offset, a.has_own, a.keep_prob, a.neg_table
    window, negative, cold_share = hp.window, hp.negative, hp.cold_share
    use_attention, own_step = hp.attention, hp.own_step
    attention_scale = np.float32(hp.attention_scale)
    alpha, min_alpha = hp.alpha, hp.min_alpha
    n_fields = codes.shape[1]
    n_chunks = (n_walks + chunk - 1) // chunk
    losses = np.zeros(n_chunks)
    pairs = np.zeros(n_chunks)
    base = _mix(np.uint64(hp.seed) * _GOLDEN + np.uint64(stream + 7))
    span = max(hp.total_tokens, 1)
    for t in prange(n_threads):
        s = scratch(n_fields, dim, 2 * window + negative)
        rows, slots, targets = s.rows, s.slots, s.targets
        buf = np.empty(max_len, dtype=np.int32)
        shrink = np.empty(_RING, dtype=np.int64)  # drawn centres (slot i % _RING): the window's shrink; -1: skipped
        negs = np.empty((_RING, negative), dtype=np.int32)
        colds = np.zeros(_RING, dtype=np.bool_)
        k = 0
        for c in range(t, n_chunks, n_threads):
            loss = 0.0
            count = 0.0
            for w in range(c * chunk, min((c + 1) * chunk, n_walks)):
                lo = walk_offsets[w]
                hi = walk_offsets[w + 1]
                state = base ^ _mix(np.uint64(w) * _GOLDEN)
                lr = alpha - (alpha - min_alpha) * min((done_tokens + lo) / span, 1.0)
                if trace.shape[0] > 0 and w == c * chunk:
                    trace[c, 0] = k
                    trace[c, 1] = lr
                n_kept = 0
                for i in range(lo, hi):
                    node = walk_values[i]
                    state, r = _next(state)
                    if keep_prob[node] >= 1.0 or (r >> _S32) * _INV32 < keep_prob[node]:
                        buf[n_kept] = node
                        n_kept += 1
                # Centre i + PREFETCH_AHEAD makes its draws (centres draw nothing else, so the order is the same
                # as drawing at each centre) and prefetches its rows while centre i trains.
                for j in range(min(window, n_kept)):
                    prefetch_row(context, buf[j])
                for i in range(min(PREFETCH_AHEAD, n_kept)):
                    state = _draw_centre(state, buf, n_kept, i, has_own, codes, window, negative, neg_table,
                                         cold_share, shrink, negs, colds)
                    _prefetch_centre(table, context, codes, field_offset, n_items, buf, negs, shrink, n_kept,
                                     window, i)
                for i in range(n_kept):
                    ahead = i + PREFETCH_AHEAD
                    if ahead < n_kept:
                        state = _draw_centre(state, buf, n_kept, ahead, has_own, codes, window, negative, neg_table,
                                             cold_share, shrink, negs, colds)
                        _prefetch_centre(table, context, codes, field_offset, n_items, buf, negs, shrink, n_kept,
                                         window, ahead)
                    slot = i % _RING
                    b = shrink[slot]
                    if b < 0:
                        continue
                    v = buf[i]
                    m = item_parts(v, has_own[v], codes, field_offset, n_items, rows, slots)
                    n_pos = 0
                    for j in range(max(0, i - window + b), min(n_kept, i + window - b + 1)):
                        if j != i:
                            targets[n_pos] = buf[j]
                            n_pos += 1
                    n_targets = n_pos
                    for q in range(negative):
                        neg = negs[slot, q]
                        clash = False
                        for j in range(n_pos):
                            if targets[j] == neg:
                                clash = True
                        if not clash:
                            targets[n_targets] = neg
                            n_targets += 1
                    loss += centre_step(table, context, attention, side_rate, s, v, m, n_pos, n_targets, lr,
                                        use_attention, own_step, colds[slot], attention_scale)
                    count += n_pos * (1 + n_targets - n_pos)
            losses[c] = loss
            pairs[c] = count
            k += 1
    return losses.sum() / max(pairs.sum(), 1.0)


def pair_gradients(table: np.ndarray, context: np.ndarray, attention: np.ndarray, has_own: np.ndarray,
                   codes: np.ndarray, field_offset: np.ndarray, v: int, targets: np.ndarray,
                   labels: np.ndarray, use_attention: bool, pair_weights: np.ndarray | None = None,
                   ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Loss of centre ``v`` against ``targets`` (each term times ``pair_weights``, default 1) and its
    gradients w.r.t. table, context and attention.

    Plain numpy around the trainer's ``aggregate``/``backprop`` with a learning rate of -1, so the updates
    they would apply are exactly the gradients: the reference for the finite-difference test and for
    ``centre_step``.
    """
    t, z, a = table.copy(), context.copy(), attention.copy()
    n = codes.shape[1] + 1
    rows, slots = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    weights = np.empty(n)
    m = item_parts(v, has_own[v], codes, field_offset, context.shape[0], rows, slots)
    h = np.empty(table.shape[1], dtype=table.dtype)
    aggregate(t, a, v, rows, slots, m, use_attention, weights, h)
    dh = np.zeros_like(h)
    loss = 0.0
    pw = np.ones(len(targets)) if pair_weights is None else pair_weights
    for target, label, weight in zip(targets, labels, pw):
        sig = 1.0 / (1.0 + np.exp(-float(h @ z[target])))
        loss -= weight * (np.log(sig) if label > 0 else np.log(1.0 - sig))
        g = -(label - sig) * weight  # learning rate -1: the update is the gradient of the loss
        dh += g * z[target]
        z[target] = z[target] + g * h
    backprop(t, a, v, rows, slots, m, use_attention, weights, h, dh,
             np.ones(len(table) - len(context), dtype=np.float32), OWN_SHARE)  # the plain gradient
    return loss, t - table, z - context, a - attention
