"""The skip-gram kernel itself: gradients against finite differences, shared-negative updates, determinism, the
global learning-rate schedule, where negatives come from, and learning planted structure in BGE (no side fields) and
EGES mode."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from eges.rng import GOLDEN, mix64_array
from eges.train.kernels import (
    OWN_FULL,
    OWN_ITEM,
    OWN_SHARE,
    Arrays,
    Hyper,
    aggregate,
    centre_step,
    item_parts,
    pair_gradients,
    scratch,
    train_epoch,
)


def make_problem(n_fields: int, n_nodes: int = 32, dim: int = 8, seed: int = 0) -> dict:
    """Random parameters for ``n_nodes`` items with ``n_fields`` side fields of 4 values each (some unknown)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, 4, (n_nodes, n_fields)).astype(np.int32)
    field_offset = (np.arange(n_fields) * 4).astype(np.int64)
    table = rng.normal(0, 0.3, (n_nodes + 4 * n_fields, dim)).astype(np.float32)
    return {"table": table, "context": rng.normal(0, 0.3, (n_nodes, dim)).astype(np.float32),
            "attention": rng.normal(0, 0.5, (n_nodes, n_fields + 1)).astype(np.float32),
            "has_own": np.ones(n_nodes, dtype=np.bool_), "codes": codes, "field_offset": field_offset}


def small_problem(seed=0):
    """Five items, two fields of two values each, float64 parameters."""
    rng = np.random.default_rng(seed)
    n_nodes, dim = 5, 4
    codes = np.array([[0, 1], [1, -1], [0, 0], [-1, 1], [1, 1]], dtype=np.int32)
    field_offset = np.array([0, 2], dtype=np.int64)  # two fields with two values each
    table = rng.normal(0, 0.5, (n_nodes + 4, dim))
    context = rng.normal(0, 0.5, (n_nodes, dim))
    attention = rng.normal(0, 0.5, (n_nodes, 3))
    return table, context, attention, np.ones(n_nodes, dtype=np.bool_), codes, field_offset


def loss_only(table, context, attention, has_own, codes, field_offset, v, targets, labels, eges):
    loss, *_ = pair_gradients(table, context, attention, has_own, codes, field_offset, v, targets, labels, eges)
    return loss


@pytest.mark.parametrize("eges", [False, True])
@pytest.mark.parametrize("v", [0, 1, 3])
def test_gradients_match_finite_differences(eges, v):
    table, context, attention, has_own, codes, off = small_problem()
    targets, labels = np.array([2, 4, 1]), np.array([1.0, 0.0, 0.0])
    args = (has_own, codes, off, v, targets, labels, eges)
    _, g_table, g_context, g_att = pair_gradients(table, context, attention, *args)
    eps = 1e-6
    for name, arr, grad in (("table", table, g_table), ("context", context, g_context), ("attention", attention, g_att)):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += eps
            minus[idx] -= eps
            mats = {"table": table, "context": context, "attention": attention}
            lp = loss_only(**{**mats, name: plus}, has_own=has_own, codes=codes, field_offset=off, v=v,
                           targets=targets, labels=labels, eges=eges)
            lm = loss_only(**{**mats, name: minus}, has_own=has_own, codes=codes, field_offset=off, v=v,
                           targets=targets, labels=labels, eges=eges)
            numeric[idx] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, atol=1e-6, err_msg=name)
    if not eges:
        assert not g_att.any()


def planted(n_groups: int = 4, per_group: int = 8, n_walks: int = 400, length: int = 8, seed: int = 0):
    """Walks that stay inside one group of nodes each: flat values, offsets, node count, group of each node."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n_walks)
    values = (g[:, None] * per_group + rng.integers(0, per_group, (n_walks, length))).ravel().astype(np.int32)
    offsets = np.arange(0, n_walks * length + 1, length, dtype=np.int64)
    return values, offsets, n_groups * per_group, np.arange(n_groups * per_group) // per_group


def arrays(p: dict, side_rate: np.ndarray | None = None, neg: np.ndarray | None = None) -> Arrays:
    """The kernel's arrays over problem ``p`` (every side row at full step and every node kept by default)."""
    n = p["context"].shape[0]
    return Arrays(p["table"], p["context"], p["attention"], p["has_own"], p["codes"], p["field_offset"],
                  np.ones(len(p["table"]) - n, np.float32) if side_rate is None else side_rate,
                  np.arange(n, dtype=np.int32).repeat(50) if neg is None else neg, np.ones(n))


def hyper(eges: bool, own_step: int = OWN_SHARE, alpha: float = 0.025, min_alpha: float = 0.0001,
          total_tokens: int = 0, seed: int = 3) -> Hyper:
    return Hyper(window=3, negative=4, attention=eges, own_step=own_step, cold_share=0.0, alpha=alpha,
                 min_alpha=min_alpha, total_tokens=total_tokens, seed=seed)


def run(values, offsets, p, *, eges=True, epochs=1, alpha=0.025, min_alpha=0.0001, chunk=16, neg=None,
        trace=None, seed=3):
    """Train ``epochs`` passes with train_epoch in place on ``p``; returns the per-epoch losses."""
    a = arrays(p, neg=neg)
    hp = hyper(eges, alpha=alpha, min_alpha=min_alpha, total_tokens=epochs * len(values), seed=seed)
    return [train_epoch(values, offsets, a, hp, e * len(values), e, chunk, trace) for e in range(epochs)]


def step(p: dict, v: int, targets: np.ndarray, n_pos: int, eges: bool, own_step: int, lr: float,
         side_rate: np.ndarray, cold: bool = False, attention_scale: float = 1.0) -> tuple[float, dict, np.ndarray]:
    """``centre_step`` for centre v on a copy of ``p``: its loss, the updated copy and the centre's part slots."""
    q = {**p, "table": p["table"].copy(), "context": p["context"].copy(), "attention": p["attention"].copy()}
    n_fields = p["codes"].shape[1]
    s = scratch(n_fields, p["table"].shape[1], len(targets))
    s.targets[:] = targets
    m = item_parts(v, True, p["codes"], p["field_offset"], len(p["context"]), s.rows, s.slots)
    loss = centre_step(q["table"], q["context"], q["attention"], side_rate, s, v, m, n_pos, len(targets), lr, eges,
                       own_step, cold, attention_scale)
    return loss, q, s.slots[:m].copy()


@pytest.mark.parametrize("n_fields,eges,own_step,own_logit", [
    (0, False, OWN_SHARE, None), (2, False, OWN_SHARE, None), (2, True, OWN_SHARE, None), (2, False, OWN_FULL, None),
    (2, True, OWN_FULL, None), (2, False, OWN_ITEM, None), (2, True, OWN_ITEM, 1.0), (2, True, OWN_ITEM, -2.0)])
def test_centre_step_matches_numpy_reference(n_fields, eges, own_step, own_logit):
    """One update of a centre against 2 window nodes and 3 shared negatives, each negative weighted by the
    window size, equals lr times the reference gradients (which the finite-difference test checks); side rows
    scaled by their rate, and the own row by 1 / its weight w_0 (the whole gradient of H_v) for OWN_FULL and by
    1 / (w_0 max(w_0, 1/m)) for OWN_ITEM (H_v's own part takes the whole step)."""
    p = make_problem(n_fields, n_nodes=8, dim=5)
    v, targets, n_pos = 3, np.array([1, 6, 0, 2, 7]), 2
    p["codes"][v] = np.arange(n_fields) % 4  # the centre has every field, so side rows take steps
    if own_logit is not None:  # w_0 above 1/m, or below it (OWN_ITEM's bound)
        p["attention"][v, 0] = own_logit
    labels = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    pw = np.array([1.0, 1.0, n_pos, n_pos, n_pos])
    ref = {k: a.astype(np.float64) for k, a in p.items() if k in ("table", "context", "attention")}
    loss_ref, g_table, g_context, g_att = pair_gradients(ref["table"], ref["context"], ref["attention"],
                                                         p["has_own"], p["codes"], p["field_offset"], v, targets,
                                                         labels, eges, pw)
    lr = 0.5
    side_rate = np.full(len(p["table"]) - 8, 0.5, dtype=np.float32)  # side-information rows take half steps
    loss, q, slots = step(p, v, targets, n_pos, eges, own_step, lr, side_rate)
    t, z, a = q["table"], q["context"], q["attention"]
    m = len(slots)
    assert loss == pytest.approx(loss_ref, rel=1e-4)
    row_scale = np.concatenate([np.ones(8), side_rate])[:, None]
    if own_step != OWN_SHARE:
        logits = p["attention"][v, slots[:m]].astype(np.float64) if eges else np.zeros(m)
        w0 = np.exp(logits[0]) / np.exp(logits).sum()
        row_scale[v] = 1 / w0 if own_step == OWN_FULL else 1 / (w0 * max(w0, 1 / m))
    np.testing.assert_allclose(t - p["table"], -lr * g_table * row_scale, atol=2e-6)
    np.testing.assert_allclose(z - p["context"], -lr * g_context, atol=2e-6)
    np.testing.assert_allclose(a - p["attention"], -lr * g_att, atol=2e-6)
    assert np.abs(g_context[targets[n_pos:]]).sum() > 0  # the negatives were scored


def test_the_attention_scale_scales_the_logits_step_only():
    """train.attention_alpha's factor (Hyper.attention_scale): the attention logits move by that share of their
    step; the item, side and context rows move as at 1."""
    p = make_problem(2, n_nodes=8, dim=5)
    v, targets, n_pos = 3, np.array([1, 6, 0, 2, 7]), 2
    p["codes"][v] = [1, 2]
    side_rate = np.ones(8, dtype=np.float32)
    _, full, _ = step(p, v, targets, n_pos, True, OWN_SHARE, 0.5, side_rate)
    _, quarter, _ = step(p, v, targets, n_pos, True, OWN_SHARE, 0.5, side_rate, attention_scale=0.25)
    moved = full["attention"] - p["attention"]
    assert np.abs(moved).sum() > 0
    np.testing.assert_allclose(quarter["attention"] - p["attention"], 0.25 * moved, atol=1e-6)
    np.testing.assert_array_equal(quarter["table"], full["table"])
    np.testing.assert_array_equal(quarter["context"], full["context"])


@pytest.mark.parametrize("eges", [False, True])
def test_cold_step_adds_the_side_mean_gradient_to_the_side_rows_only(eges):
    """train.cold_share's step for a centre: besides H_v, the plain mean of its side rows (an item without its own
    row) is scored against the same targets, and the side rows move by lr times that mean's gradient as well, taken
    at the same parameters; the context rows and the attention follow H_v only."""
    p = make_problem(2, n_nodes=8, dim=5)
    v, targets, n_pos = 3, np.array([1, 6, 0, 2, 7]), 2
    p["codes"][v] = [1, 2]
    labels = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    pw = np.array([1.0, 1.0, n_pos, n_pos, n_pos])
    ref = {k: p[k].astype(np.float64) for k in ("table", "context", "attention")}
    no_own = p["has_own"].copy()
    no_own[v] = False
    grads = {own: pair_gradients(ref["table"], ref["context"], ref["attention"], has, p["codes"], p["field_offset"],
                                 v, targets, labels, eges and own, pw) for own, has in ((True, p["has_own"]),
                                                                                         (False, no_own))}
    lr, side_rate = 0.5, np.full(8, 0.5, dtype=np.float32)
    loss, q, _ = step(p, v, targets, n_pos, eges, OWN_SHARE, lr, side_rate, cold=True)
    t, z, a = q["table"], q["context"], q["attention"]
    (loss_h, g_h, gz_h, ga_h), (_, g_cold, _, _) = grads[True], grads[False]
    assert loss == pytest.approx(loss_h, rel=1e-4)  # the loss reported is H_v's
    assert np.abs(g_cold[8:]).sum() > 0 and not np.abs(g_cold[:8]).any()  # side rows only
    row_scale = np.concatenate([np.ones(8), side_rate])[:, None]
    np.testing.assert_allclose(t - p["table"], -lr * (g_h + g_cold) * row_scale, atol=2e-6)
    np.testing.assert_allclose(z - p["context"], -lr * gz_h, atol=2e-6)
    np.testing.assert_allclose(a - p["attention"], -lr * ga_h, atol=2e-6)


@pytest.mark.parametrize("n_fields,eges", [(0, False), (2, True)])
def test_one_thread_is_deterministic(n_fields, eges):
    values, offsets, n, _ = planted()
    results = []
    with _threads(1):
        for _ in range(2):
            p = make_problem(n_fields, n_nodes=n)
            run(values, offsets, p, eges=eges, epochs=2)
            results.append(p)
    for key in ("table", "context", "attention"):
        np.testing.assert_array_equal(results[0][key], results[1][key])
    p = make_problem(n_fields, n_nodes=n)
    with _threads(1):
        run(values, offsets, p, eges=eges, epochs=2, seed=4)
    assert not np.array_equal(p["context"], results[0]["context"])  # the seed matters


def test_threads_work_on_interleaved_chunks_in_corpus_order():
    """With 2 threads, thread t runs chunks t, t+2, t+4, ... in that order, so the first chunks processed start
    at lr ~ alpha and both threads' learning rates follow the global position."""
    values, offsets, n, _ = planted(n_walks=160)
    chunk = 16  # 10 chunks, 5 per thread
    trace = np.full((10, 2), -1.0)
    with _threads(2) as threads:
        run(values, offsets, make_problem(0, n_nodes=n), eges=False, alpha=0.1, min_alpha=0.0, chunk=chunk,
            trace=trace)
    np.testing.assert_array_equal(trace[:, 0], np.arange(10) // threads)
    expected = 0.1 * (1 - np.arange(10) * chunk * 8 / len(values))
    np.testing.assert_allclose(trace[:, 1], expected, rtol=1e-9)
    assert trace[trace[:, 0] == 0, 1].min() >= 0.09


def test_late_updates_are_smaller_learning_rate_decays():
    """Two halves of the corpus on disjoint nodes: the second half is trained at a lower rate, so its
    context rows (zero at the start) move less."""
    values, offsets, n, _ = planted(n_groups=2, n_walks=400)
    order = np.argsort(values.reshape(400, 8)[:, 0] >= 8, kind="stable")  # group 0's walks first
    values = values.reshape(400, 8)[order].ravel()
    p = make_problem(0, n_nodes=n + 1)
    p["context"][:] = 0
    with _threads(1):  # negatives only from an extra node, so a half's rows move only in its own half
        run(values, offsets, p, eges=False, alpha=0.002, min_alpha=0.0, neg=np.full(100, n, dtype=np.int32))
    first, second = np.linalg.norm(p["context"][:8], axis=1), np.linalg.norm(p["context"][8:n], axis=1)
    assert first.mean() > 2 * second.mean()  # mean lr 0.75 alpha against 0.25 alpha


def test_negatives_are_drawn_from_the_negative_table():
    """A node in no walk but filling the negative table is pushed away; nodes in neither stay untouched."""
    values, offsets, n, _ = planted(n_groups=2)
    p = make_problem(0, n_nodes=n + 3)
    p["context"][:] = 0
    with _threads(1):
        run(values, offsets, p, eges=False, neg=np.full(100, n + 1, dtype=np.int32))
    assert np.abs(p["context"][n + 1]).sum() > 0
    assert not p["context"][[n, n + 2]].any()


@pytest.mark.parametrize("n_fields,eges", [(0, False), (2, True)])
def test_learns_planted_groups_and_loss_falls(n_fields, eges):
    values, offsets, n, group = planted(n_walks=800)
    p = make_problem(n_fields, n_nodes=n, dim=16)
    p["table"] = (p["table"] * 0.1).astype(np.float32)
    p["context"][:] = 0
    if n_fields:
        p["attention"][:] = 0
    with _threads(2):
        losses = run(values, offsets, p, eges=eges, epochs=4, alpha=0.05)
    assert losses[-1] < losses[0] - 0.05
    vecs = p["table"][:n].copy() if not n_fields else _aggregate(p, n, eges)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -2)
    assert np.mean(group[sims.argmax(axis=1)] == group) > 0.9


def _aggregate(p: dict, n: int, eges: bool) -> np.ndarray:
    k = p["codes"].shape[1] + 1
    out = np.zeros((n, p["table"].shape[1]), np.float32)
    rows, slots, weights = np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k)
    for v in range(n):
        m = item_parts(v, True, p["codes"], p["field_offset"], n, rows, slots)
        aggregate(p["table"], p["attention"], v, rows, slots, m, eges, weights, out[v])
    return out


def _reference_pass(values, offsets, a: Arrays, hp: Hyper, done_tokens: int, stream: int) -> float:
    """One pass as the kernel's docstring states it, one centre at a time with each centre's draws made at that
    centre: every walk's own generator, the keep draws of its nodes, then per centre the window's shrink, the
    shared negatives (those equal to a window node left out) and the cold-start draw. The reference for the
    compiled pass, which draws a centre's numbers two centres early so it can prefetch their rows. Returns the mean
    loss per scored pair, as the pass does."""
    mix = lambda z: mix64_array(np.array([z], dtype=np.uint64))[0]  # noqa: E731
    golden, s32, inv32 = np.uint64(GOLDEN), np.uint64(32), 1.0 / 4294967296.0
    n_items = a.context.shape[0]
    window, negative = hp.window, hp.negative
    s = scratch(a.codes.shape[1], a.table.shape[1], 2 * window + negative)
    loss, pairs = 0.0, 0.0
    with np.errstate(over="ignore"):
        base = mix(np.uint64(hp.seed) * golden + np.uint64(stream + 7))
        for w in range(len(offsets) - 1):
            lo, hi = offsets[w], offsets[w + 1]
            state = base ^ mix(np.uint64(w) * golden)
            lr = hp.alpha - (hp.alpha - hp.min_alpha) * min((done_tokens + lo) / max(hp.total_tokens, 1), 1.0)

            def draw():
                nonlocal state
                state = state + golden
                return mix(state) >> s32

            kept = [node for node in values[lo:hi] if (r := draw()) is not None
                    and (a.keep_prob[node] >= 1.0 or r * inv32 < a.keep_prob[node])]
            for i, v in enumerate(kept):
                m = item_parts(v, a.has_own[v], a.codes, a.field_offset, n_items, s.rows, s.slots)
                b = int((draw() * np.uint64(window)) >> s32)
                if m == 0:
                    continue
                window_nodes = [kept[j] for j in range(max(0, i - window + b), min(len(kept), i + window - b + 1))
                                if j != i]
                if not window_nodes:
                    continue
                negatives = [a.neg_table[int((draw() * np.uint64(len(a.neg_table))) >> s32)] for _ in range(negative)]
                targets = window_nodes + [x for x in negatives if x not in window_nodes]
                cold = hp.cold_share > 0 and m > 1 and s.slots[0] == 0 and draw() * inv32 < hp.cold_share
                s.targets[:len(targets)] = targets
                loss += centre_step(a.table, a.context, a.attention, a.side_rate, s, v, m, len(window_nodes),
                                    len(targets), lr, hp.attention, hp.own_step, cold, np.float32(hp.attention_scale))
                pairs += len(window_nodes) * (1 + len(targets) - len(window_nodes))
    return loss / max(pairs, 1.0)


@pytest.mark.parametrize("n_fields,eges,window,negative,own_step", [
    (0, False, 3, 4, OWN_SHARE), (2, False, 3, 4, OWN_SHARE), (2, True, 3, 4, OWN_SHARE), (2, False, 1, 0, OWN_ITEM),
    (2, True, 5, 2, OWN_FULL), (1, False, 2, 7, OWN_SHARE)])
def test_a_pass_is_its_centres_in_order_with_their_own_draws(n_fields, eges, window, negative, own_step):
    """The compiled pass (one thread) equals the reference bit for bit, on walks with every case of a centre:
    dropped by down-sampling, without any part (no own row, no known value), alone in its walk, with repeated
    nodes in its window and with negatives that clash with it; GES/EGES with the cold-start draw."""
    rng = np.random.default_rng(5)
    n = 24
    lengths = rng.integers(1, 12, 60)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = rng.integers(0, n, offsets[-1]).astype(np.int32)
    p = make_problem(n_fields, n_nodes=n, seed=2)
    p["has_own"][[3, 7]] = False
    p["codes"][3] = -1  # item 3: no part at all
    p["codes"][7] = np.arange(n_fields)  # item 7: side rows only, every value known
    keep = np.where(np.arange(n) % 4 == 0, 0.5, 1.0)
    neg = rng.integers(0, n, 200).astype(np.int32)
    results = []
    for compiled in (True, False):
        q = {**p, "table": p["table"].copy(), "context": p["context"].copy(), "attention": p["attention"].copy()}
        side_rate = np.full(len(q["table"]) - n, 0.5, np.float32)
        a = Arrays(q["table"], q["context"], q["attention"], q["has_own"], q["codes"], q["field_offset"], side_rate,
                   neg, keep)
        hp = Hyper(window=window, negative=negative, attention=eges, own_step=own_step,
                   cold_share=0.5 if n_fields else 0.0,
                   alpha=0.05, min_alpha=0.001, total_tokens=2 * len(values), seed=9)
        losses = []
        for e in range(2):
            if compiled:
                with _threads(1):
                    losses.append(train_epoch(values, offsets, a, hp, e * len(values), e, 8))
            else:
                losses.append(_reference_pass(values, offsets, a, hp, e * len(values), e))
        results.append((q, losses))
    for key in ("table", "context", "attention"):
        np.testing.assert_array_equal(results[0][0][key], results[1][0][key], err_msg=key)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
    assert not np.array_equal(results[0][0]["context"], p["context"])


class _threads:
    """numba's thread count for a block (at most what the machine allows)."""

    def __init__(self, n: int) -> None:
        self.n = min(n, numba.config.NUMBA_NUM_THREADS)

    def __enter__(self) -> int:
        self.old = numba.get_num_threads()
        numba.set_num_threads(self.n)
        return self.n

    def __exit__(self, *exc: object) -> None:
        numba.set_num_threads(self.old)
