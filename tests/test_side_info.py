"""GES/EGES: gradients against finite differences, encoding, training on planted structure, cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eges.config import TrainConfig
from eges.side_info.encode import encode, encode_column
from eges.side_info.kernels import pair_gradients
from eges.side_info.train import (
    behaviour_vectors,
    cold_start_vectors,
    negative_table,
    seen_values,
    train,
)


def small_problem(seed=0):
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


def test_encode_categorical_and_numeric_buckets():
    catalog = pd.DataFrame({"item_id": [10, 11, 12, 13, 14, 15], "cat": ["a", "b", "a", None, "c", "b"],
                            "price": [1.0, 2.0, 3.0, 4.0, np.nan, 6.0]})
    side, how = encode(catalog, [12, 99, 10, 15], "item_id", ["cat", "price"], numeric_buckets=2)
    assert how == {"cat": "categorical", "price": "numeric (2 quantile buckets)"}
    assert side.values[0] == ["a", "b", "c"]
    assert side.codes.tolist() == [[0, 1], [-1, -1], [0, 0], [1, 1]]  # 99 is not in the catalog
    codes, labels, kind = encode_column(pd.Series([5.0, 5.0, 5.0]), 10)
    assert kind.startswith("numeric (one value") and labels == ["5"] and codes.tolist() == [0, 0, 0]


def test_negative_table_follows_unigram_power():
    counts = np.array([1, 0, 8, 27])
    table = negative_table(counts, 0.75, size=100_000)
    freq = np.bincount(table, minlength=4) / len(table)
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(freq, expected, atol=1e-3)


def planted(n_groups=4, per_group=25, seed=0):
    """Walks that stay within groups; each group has its own category value (field 0)."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    walks = []
    for _ in range(4000):
        g = rng.integers(n_groups)
        walks.append(g * per_group + rng.integers(0, per_group, 8))
    values = np.concatenate(walks).astype(np.int32)
    offsets = np.arange(0, len(values) + 1, 8, dtype=np.int64)
    group = np.arange(n) // per_group
    return values, offsets, n, group


@pytest.mark.parametrize("method", ["ges", "eges"])
def test_training_separates_groups_and_is_reproducible(method):
    from eges.side_info.encode import SideInfo

    values, offsets, n, group = planted()
    noise = np.random.default_rng(1).integers(0, 4, n)
    side = SideInfo(["group_cat", "noise"], np.stack([group, noise], axis=1).astype(np.int32),
                    [[f"g{k}" for k in range(4)], [f"n{k}" for k in range(4)]])
    cfg = TrainConfig(dimension=16, epochs=3, sample=0, threads=1, seed=4)
    model = train(values, offsets, n, side, cfg, method)
    assert model.losses[-1] < model.losses[0]
    vecs = behaviour_vectors(model)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -2)
    assert np.mean(group[sims.argmax(axis=1)] == group) > 0.9
    again = train(values, offsets, n, side, cfg, method)
    np.testing.assert_array_equal(model.table, again.table)
    if method == "eges":
        w = model.attention_weights()
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
        # The informative field should earn more weight than the noise field on average.
        assert w[:, 1].mean() > w[:, 2].mean()
    # Cold start: an unseen item with group g's category lands nearest to group g.
    cold_codes = np.array([[g, -1] for g in range(4)], dtype=np.int32)
    cold, ok = cold_start_vectors(model, cold_codes, seen_values(side, n))
    assert ok.all()
    cold /= np.linalg.norm(cold, axis=1, keepdims=True)
    nearest = (cold @ vecs.T).argmax(axis=1)
    assert (group[nearest] == np.arange(4)).all()


def test_in_memory_api_places_cold_items():
    from eges import random_walks, train_side_info
    from eges.config import WalksConfig, load_config
    from eges.graph.csr import from_edges

    # Two chains of items; the catalog gives each chain its own category, plus two cold items.
    src = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    dst = np.array([1, 2, 3, 0, 5, 6, 7, 4])
    walks = random_walks(from_edges(src, dst, None, 8), WalksConfig(walks_per_node=30, seed=1))
    node_ids = [f"i{k}" for k in range(8)]
    catalog = pd.DataFrame({"item_id": node_ids + ["cold_a", "cold_b"],
                            "category": ["a"] * 4 + ["b"] * 4 + ["a", "b"]})
    emb = train_side_info(walks, node_ids, catalog, load_config(None, ["train.dimension=8", "train.threads=1",
                                                                       "train.sample=0"]), method="ges")
    assert emb.item_ids == node_ids + ["cold_a", "cold_b"]
    assert emb.source == ["behaviour"] * 8 + ["cold_start"] * 2
    assert emb.attention.shape == (8, 2) and np.allclose(emb.attention, 0.5)  # GES: uniform weights
    vec = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
    assert np.argmax(vec[8] @ vec[:8].T) < 4 and np.argmax(vec[9] @ vec[:8].T) >= 4


def test_streamed_training_decays_the_rate_over_all_batches_and_epochs(monkeypatch):
    """The driver passes the kernel the tokens done so far over every batch and epoch, against the grand total."""
    import importlib

    driver = importlib.import_module("eges.side_info.train")  # the module (the package exports a function "train")
    from eges.side_info.encode import SideInfo

    values, offsets, n, _ = planted()
    split = len(offsets) // 3
    batches = [(values[offsets[a]:offsets[b]], offsets[a:b + 1] - offsets[a]) for a, b in
               ((0, split), (split, 2 * split), (2 * split, len(offsets) - 1))]
    seen = []
    real = driver.train_epoch

    def spy(walk_values, *args, **kwargs):
        seen.append((args[15], args[16], args[18], len(walk_values)))  # done, total, stream, tokens
        return real(walk_values, *args, **kwargs)

    monkeypatch.setattr(driver, "train_epoch", spy)
    counts = np.bincount(values, minlength=n)
    side = SideInfo([], np.zeros((n, 0), np.int32), [])
    cfg = TrainConfig(dimension=8, epochs=2, sample=0, threads=1, seed=1)
    model = driver.train_stream(lambda: iter(batches), counts, n, side, cfg, "bge")
    done = [d for d, *_ in seen]
    assert len(seen) == 6 and done[0] == 0 and done == sorted(done)
    assert all(total == len(values) * 2 for _, total, _, _ in seen)
    assert done[-1] + seen[-1][3] == len(values) * 2
    assert len({stream for *_, stream, _ in seen}) == 6  # every batch of every epoch draws its own random numbers
    assert len(model.losses) == 2


def test_negatives_follow_counts_to_the_three_quarters():
    """A uniform (or raw-count) negative table would fail: the draw frequencies follow counts ** 0.75."""
    from eges.side_info.train import negative_table

    counts = np.array([1, 10, 100, 1000, 0])
    table = negative_table(counts, 0.75, size=1_000_000)
    freq = np.bincount(table, minlength=5) / len(table)
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(freq, expected, atol=2e-3)
    assert freq[4] == 0  # a node no walk visits is never a negative


def test_down_sampling_keeps_rare_nodes_and_thins_frequent_ones():
    """word2vec's rule: keep probability 1 for rare nodes, falling with frequency (inverted, it would fail)."""
    from eges.side_info.train import keep_probabilities

    counts = np.array([1, 10, 100, 10_000, 1_000_000])
    keep = keep_probabilities(counts, 1e-3)
    assert keep[0] == keep[1] == 1.0 and np.all(np.diff(keep) <= 0) and keep[-1] < 0.1
    threshold = 1e-3 * counts.sum()
    assert keep[-1] == pytest.approx((np.sqrt(counts[-1] / threshold) + 1) * threshold / counts[-1])
    np.testing.assert_array_equal(keep_probabilities(counts, 0), np.ones(5))


def test_eges_output_vectors_are_the_attention_weighted_parts():
    """H_v = sum softmax(a_v)_j W_j: changing an item's attention changes its output vector, as the paper says."""
    from eges.side_info.encode import SideInfo
    from eges.side_info.train import EgesModel, behaviour_vectors

    rng = np.random.default_rng(0)
    n, dim = 3, 4
    side = SideInfo(["cat"], np.array([[0], [1], [0]], dtype=np.int32), [["a", "b"]])
    table = rng.normal(size=(n + 2, dim)).astype(np.float32)
    attention = np.array([[2.0, -1.0], [0.0, 0.0], [-3.0, 1.0]], dtype=np.float32)
    model = EgesModel(table, np.zeros((n, dim), np.float32), attention, side, True, [])
    out = behaviour_vectors(model)
    for v in range(n):
        w = np.exp(attention[v]) / np.exp(attention[v]).sum()
        expected = w[0] * table[v] + w[1] * table[n + side.codes[v, 0]]
        np.testing.assert_allclose(out[v], expected, rtol=1e-5, atol=1e-6)
    ges = behaviour_vectors(EgesModel(table, model.context, attention, side, False, []))
    np.testing.assert_allclose(ges[0], (table[0] + table[n]) / 2, rtol=1e-5)  # GES: the plain mean


def test_own_weight_sets_the_item_share_of_h_v_at_the_start():
    from eges.side_info.train import initial_attention

    np.testing.assert_array_equal(initial_attention(3, 4, 0.0), np.zeros((3, 5)))  # the paper's uniform start
    logits = initial_attention(3, 4, 0.8)
    w = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(w[:, 0], 0.8, rtol=1e-6)
    np.testing.assert_allclose(w[:, 1:], 0.05, rtol=1e-5)


def test_auto_epochs_reaches_the_token_budget_within_bounds():
    from eges.config import TrainConfig
    from eges.side_info.train import auto_epochs, resolve_epochs

    assert auto_epochs(100, budget=1000, most=10) == 10
    assert auto_epochs(300, budget=1000, most=10) == 4  # ceil(1000 / 300)
    assert auto_epochs(5000, budget=1000, most=10) == 1
    assert auto_epochs(50, budget=1000, most=10) == 10  # clamped
    assert resolve_epochs(TrainConfig(epochs=2), 10**9).epochs == 2  # an explicit value wins
    assert resolve_epochs(TrainConfig(epochs=0), 10**12).epochs == 1


def _group_walks(n: int = 400, groups: int = 4):  # noqa: ANN202
    """Walks that stay within one of ``groups`` item groups, and a field naming each item's group."""
    from eges.side_info.encode import SideInfo

    rng = np.random.default_rng(0)
    group = np.arange(n) % groups
    walks = [rng.choice(np.flatnonzero(group == rng.integers(groups)), 10) for _ in range(4000)]
    values = np.concatenate(walks).astype(np.int32)
    offsets = np.arange(0, len(values) + 1, 10, dtype=np.int64)
    return values, offsets, SideInfo(["group"], group[:, None].astype(np.int32), [[f"g{i}" for i in range(groups)]])


def _side_to_own_length(model, n: int) -> float:  # noqa: ANN001
    return float(np.linalg.norm(model.table[n:], axis=1).mean() / np.linalg.norm(model.table[:n], axis=1).mean())


def test_shared_rows_are_kept_on_the_scale_of_the_item_rows():
    """A value every item of a group shares gets all their gradients: with plain steps (power 0, the paper's) its
    row ends tens of times longer than the items' own rows, so H_v is mostly the group's; side_rate_power scales
    that down (1: the same scale). Fails if the kernel ignores the per-row rate."""
    n = 400
    values, offsets, side = _group_walks(n)
    ratio = {}
    for power in (0.0, 0.5, 1.0):
        model = train(values, offsets, n, side, TrainConfig(dimension=16, epochs=3, threads=1, side_rate_power=power,
                                                            own_step="share"), "eges")
        ratio[power] = _side_to_own_length(model, n)
    assert ratio[0.0] > 10 and ratio[1.0] < 3, ratio
    assert ratio[0.0] > 2 * ratio[0.5] > 2 * ratio[1.0], ratio


def test_own_rows_take_larger_steps():
    """An item's own row steps by its attention share (about half) of dL/dH_v with own_step 'share', by the whole of
    it with 'full', and by about twice that with 'item' (H_v's own part takes BGE's step), so after a pass the own
    rows are longer against the shared rows in that order. Fails if the kernel ignores the setting."""
    n = 400
    values, offsets, side = _group_walks(n)
    ratio = {step: _side_to_own_length(train(values, offsets, n, side, TrainConfig(
        dimension=16, epochs=1, threads=1, own_step=step), "eges"), n) for step in ("share", "full", "item")}
    assert ratio["item"] < 0.6 * ratio["full"] and ratio["full"] < 0.6 * ratio["share"], ratio


def test_cold_share_defaults_by_method():
    """train.cold_share = -1 (the default) is 1 for GES and 0 for EGES; an explicit value wins. One thread: the default
    GES run differs from one without the cold-start step, the default EGES run is that run bit for bit."""
    from eges.methods import cold_share

    assert (cold_share("ges", -1), cold_share("eges", -1), cold_share("eges", 0.5)) == (1.0, 0.0, 0.5)
    n = 200
    values, offsets, side = _group_walks(n)
    runs = {(method, share): train(values, offsets, n, side, TrainConfig(dimension=8, epochs=1, threads=1,
                                                                         cold_share=share), method).table
            for method in ("ges", "eges") for share in (-1.0, 0.0)}
    assert not np.array_equal(runs["ges", -1.0], runs["ges", 0.0])
    np.testing.assert_array_equal(runs["eges", -1.0], runs["eges", 0.0])
