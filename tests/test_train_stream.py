"""The training driver: streamed batches and the global learning-rate schedule, H_v from the parts, the starting
attention, the epochs rule, and the settings that scale steps (side rows, own rows, the cold-start share)."""

from __future__ import annotations

import numpy as np

from eges.config import TrainConfig
from eges.methods import resolve
from eges.side_info.encode import SideInfo
from eges.train import stream
from eges.train.stream import (
    EgesModel,
    auto_epochs,
    behaviour_vectors,
    initial_attention,
    resolve_epochs,
    train,
)


def planted(n_groups=4, per_group=25, seed=0):
    """Walks that stay within groups: flat values, offsets, node count, group of each node."""
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


def test_streamed_training_decays_the_rate_over_all_batches_and_epochs(monkeypatch):
    """The driver passes the kernel the tokens done so far over every batch and epoch, against the grand total."""
    values, offsets, n, _ = planted()
    split = len(offsets) // 3
    batches = [(values[offsets[a]:offsets[b]], offsets[a:b + 1] - offsets[a]) for a, b in
               ((0, split), (split, 2 * split), (2 * split, len(offsets) - 1))]
    seen = []
    real = stream.train_epoch

    def spy(walk_values, offsets, arrays, hyper, done, stream_id, chunk):
        seen.append((done, hyper.total_tokens, stream_id, len(walk_values)))
        return real(walk_values, offsets, arrays, hyper, done, stream_id, chunk)

    monkeypatch.setattr(stream, "train_epoch", spy)
    counts = np.bincount(values, minlength=n)
    side = SideInfo([], np.zeros((n, 0), np.int32), [])
    cfg = TrainConfig(dimension=8, epochs=2, sample=0, threads=1, seed=1)
    model = stream.train_stream(lambda: iter(batches), counts, n, side, cfg, resolve("auto", has_catalog=False).name)
    done = [d for d, *_ in seen]
    assert len(seen) == 6 and done[0] == 0 and done == sorted(done)
    assert all(total == len(values) * 2 for _, total, _, _ in seen)
    assert done[-1] + seen[-1][3] == len(values) * 2
    assert len({sid for *_, sid, _ in seen}) == 6  # every batch of every epoch draws its own random numbers
    assert len(model.losses) == 2


def test_eges_output_vectors_are_the_attention_weighted_parts():
    """H_v = sum softmax(a_v)_j W_j: changing an item's attention changes its output vector, as the paper says."""
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
    np.testing.assert_array_equal(initial_attention(3, 4, 0.0), np.zeros((3, 5)))  # the paper's uniform start
    logits = initial_attention(3, 4, 0.8)
    w = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(w[:, 0], 0.8, rtol=1e-6)
    np.testing.assert_allclose(w[:, 1:], 0.05, rtol=1e-5)


def test_ges_state_does_not_depend_on_own_weight_which_it_ignores():
    """GES never reads its attention logits, and its fingerprint leaves train.own_weight out: the logits it writes
    must not follow that key, or a folder's state would differ from a rerun of its recorded settings."""
    values, offsets, n, group = planted(per_group=10)
    side = SideInfo(["group"], group[:, None].astype(np.int32), [[str(g) for g in range(4)]])
    models = {w: train(values, offsets, n, side, TrainConfig(dimension=8, epochs=1, threads=1, own_weight=w), "ges")
              for w in (0.25, 0.5)}
    np.testing.assert_array_equal(models[0.25].attention, models[0.5].attention)
    np.testing.assert_array_equal(models[0.25].table, models[0.5].table)
    eges = train(values, offsets, n, side, TrainConfig(dimension=8, epochs=1, threads=1, own_weight=0.5), "eges")
    assert not np.array_equal(eges.attention, models[0.5].attention)  # EGES starts from (and trains) its own


def test_auto_epochs_reaches_the_token_budget_within_bounds():
    assert auto_epochs(100, budget=1000, most=10) == 10
    assert auto_epochs(300, budget=1000, most=10) == 4  # ceil(1000 / 300)
    assert auto_epochs(5000, budget=1000, most=10) == 1
    assert auto_epochs(50, budget=1000, most=10) == 10  # clamped
    assert resolve_epochs(TrainConfig(epochs=2), 10**9).epochs == 2  # an explicit value wins
    assert resolve_epochs(TrainConfig(epochs=0), 10**12).epochs == 1


def _group_walks(n: int = 400, groups: int = 4):  # noqa: ANN202
    """Walks that stay within one of ``groups`` item groups, and a field naming each item's group."""

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


def test_a_start_state_replaces_the_random_rows_and_on_epoch_can_stop_training():
    """Training from a start state begins at its rows (a warm start continues the parent, not a fresh model), and an
    epoch callback returning True ends training after that pass."""
    values, offsets, n, _ = planted()
    side = SideInfo([], np.zeros((n, 0), np.int32), [])
    cfg = TrainConfig(dimension=8, epochs=4, sample=0, threads=1, seed=1)
    method = resolve("auto", has_catalog=False).name
    parent = train(values, offsets, n, side, cfg, method)
    start = stream.StartState(parent.table, parent.context, parent.attention)
    seen = []

    def stop_after_one(epoch, loss, model):
        seen.append((epoch, loss, model.table.copy()))
        return True

    child = train(values, offsets, n, side, cfg, method, on_epoch=stop_after_one, start=start)
    assert len(child.losses) == 1 and [e for e, *_ in seen] == [1]
    assert np.array_equal(seen[0][2], child.table)
    fresh = train(values, offsets, n, side, cfg, method, on_epoch=stop_after_one)
    # The parent has learned the groups, so a warm pass starts at a lower loss than a fresh one.
    assert child.losses[0] < fresh.losses[0]
    assert not np.shares_memory(child.table, parent.table)  # the parent's arrays are copied, not trained in place


def test_side_alpha_sets_the_value_rows_rate_apart_from_the_item_rows(monkeypatch):
    """train.side_alpha: the side-information value rows step from their own initial rate, the item rows from alpha.
    From the same start at alpha 0.05 (one thread): -1 and 0.05 are the same run bit for bit; 0 leaves every value
    row at the start while the item rows move; 0.025 hands the kernel half of each value row's step scale and moves
    the value rows less. Fails if the scale does not reach the kernel."""
    n = 200
    values, offsets, side = _group_walks(n)
    parent = train(values, offsets, n, side, TrainConfig(dimension=8, epochs=1, threads=1), "eges")
    start = stream.StartState(parent.table, parent.context, parent.attention)
    scales = {}
    real = stream.train_epoch

    def spy(walk_values, offs, arrays, hyper, done, stream_id, chunk):
        scales.setdefault(key, arrays.side_rate.copy())
        return real(walk_values, offs, arrays, hyper, done, stream_id, chunk)

    monkeypatch.setattr(stream, "train_epoch", spy)
    runs = {}
    for key in (-1.0, 0.05, 0.0, 0.025):
        cfg = TrainConfig(dimension=8, epochs=2, threads=1, alpha=0.05, side_alpha=key)
        runs[key] = train(values, offsets, n, side, cfg, "eges", start=start).table
    np.testing.assert_array_equal(runs[-1.0], runs[0.05])
    np.testing.assert_array_equal(runs[0.0][n:], parent.table[n:])  # value rows: not one step
    assert not np.allclose(runs[0.0][:n], parent.table[:n])  # item rows: trained at 0.05
    np.testing.assert_allclose(scales[0.025], scales[-1.0] * 0.5, rtol=1e-6)
    moved = {key: float(np.linalg.norm(runs[key][n:] - parent.table[n:])) for key in (-1.0, 0.025)}
    assert 0 < moved[0.025] < moved[-1.0], moved
    assert stream.side_step_scale(TrainConfig(alpha=0.0, min_alpha=0.0, side_alpha=0.025)) == 1.0  # nothing trains


def test_passes_taken_in_turns_train_each_model_as_it_trains_alone():
    """train_passes' steps are independent models: two of them stepped in turns (the validation slice's race)
    end where each ends trained alone by train (one thread: the same bits), and no pass is shared."""
    values, offsets, n, group = planted(per_group=10)
    side = SideInfo(["group"], group[:, None].astype(np.int32), [[str(g) for g in range(4)]])
    counts = np.bincount(values, minlength=n)
    cfgs = {"eges": TrainConfig(dimension=8, epochs=3, threads=1, seed=1),
            "bge": TrainConfig(dimension=8, epochs=3, threads=1, seed=2)}
    steps = {m: stream.train_passes(lambda: iter([(values, offsets)]), counts, n, side if m == "eges" else
                                    SideInfo([], np.zeros((n, 0), np.int32), []), cfg, m)
             for m, cfg in cfgs.items()}
    last: dict[str, EgesModel] = {}
    for _ in range(3):
        for m, s in steps.items():
            epoch, _loss, last[m] = next(s)
    assert epoch == 3 and all(next(s, None) is None for s in steps.values())
    alone = {"eges": train(values, offsets, n, side, cfgs["eges"], "eges"),
             "bge": train(values, offsets, n, SideInfo([], np.zeros((n, 0), np.int32), []), cfgs["bge"], "bge")}
    for m in cfgs:
        np.testing.assert_array_equal(last[m].table, alone[m].table)
        np.testing.assert_array_equal(last[m].attention, alone[m].attention)
        assert last[m].losses == alone[m].losses
