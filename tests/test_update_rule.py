"""The day's rule of a daily update (``update.other_walks = -1``, ``update.alpha = -1``): the share of the other
walks follows the share of items the day touched, the learning rate the share of touched items that are new; an
explicit value wins; the training stage trains with what the rule read from the run's own nodes and its parent."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import eges
from eges.config import TrainConfig, UpdateConfig, build_section, load_config
from eges.errors import ConfigError
from eges.layout import BGE_STATE, EGES_STATE, MANIFEST, NODES, SIDE_VECTORS
from eges.update.rule import Day, alpha_by_rule, other_walks_by_rule, resolve, side_alpha_by_rule
from trust import DATA

TINY = ["walks.walks_per_node=2", "train.dimension=8", "train.epochs=3", "train.threads=1"]  # reproducible


def test_the_rule_focuses_a_day_of_few_items_and_raises_the_rate_for_new_ones():
    taobao_like = Day(items=41_189, touched=7_465, new=5_585)  # a fifth touched, three quarters of them new
    sample_like = Day(items=7_606, touched=6_068, new=9)  # most items touched, almost none new
    assert other_walks_by_rule(taobao_like) == pytest.approx(7_465 / 41_189)
    assert other_walks_by_rule(sample_like) == pytest.approx(6_068 / 7_606)
    assert alpha_by_rule(0.025, taobao_like) == pytest.approx(0.05)  # half or more new: twice the fresh rate
    assert alpha_by_rule(0.025, sample_like) == pytest.approx(0.025 * (1 + 2 * 9 / 6_068))
    assert alpha_by_rule(0.025, Day(100, 40, 10)) == pytest.approx(0.025 * 1.5)  # a quarter new: halfway
    assert alpha_by_rule(0.025, Day(100, 0, 0)) == 0.025  # nothing seen touched (old events again): the fresh
    assert other_walks_by_rule(Day(100, 0, 0)) == 1.0  # rate, and every walk (focusing on nothing trains nothing)
    assert other_walks_by_rule(Day(100, 100, 0)) == 1.0
    assert other_walks_by_rule(Day(100, None, 0)) == 1.0  # no event times (an edge list): nothing to focus on


def test_an_explicit_value_wins_and_a_value_between_minus_one_and_zero_is_refused():
    day = Day(items=100, touched=10, new=10)
    assert resolve(-1, -1, 0.025, day) == pytest.approx((0.1, 0.05))
    assert resolve(0.5, 0.01, 0.025, day) == (0.5, 0.01)
    assert resolve(1.0, 0.0, 0.025, day) == (1.0, 0.0)  # 0: no pass; 1: every walk
    assert UpdateConfig().other_walks == -1 and UpdateConfig().alpha == -1  # the defaults: the day's rule
    with pytest.raises(ConfigError, match="update.alpha"):
        build_section("update", {"alpha": -0.5})
    with pytest.raises(ConfigError, match="update.other_walks"):
        build_section("update", {"other_walks": -0.2})


def test_the_rules_raised_rate_leaves_the_side_rows_at_the_fresh_rate_and_an_explicit_side_alpha_wins():
    from eges.pipeline.parent import warm_train_config
    from eges.pipeline.parent_slice import trial_config

    assert side_alpha_by_rule(-1, 0.025, alpha_by_rule=True) == 0.025
    assert side_alpha_by_rule(-1, 0.025, alpha_by_rule=False) == -1  # an explicit update.alpha: the item rows' rate
    assert side_alpha_by_rule(0.01, 0.025, alpha_by_rule=True) == 0.01
    fresh = TrainConfig(epochs=10)
    resolved = UpdateConfig(alpha=0.05)  # what resolved_update makes of update.alpha = -1 on a day of new items
    by_rule, _ = warm_train_config(fresh, resolved, alpha_by_rule=True)
    assert (by_rule.alpha, by_rule.side_alpha, by_rule.attention_alpha) == (0.05, 0.025, 0.025)
    explicit_rate = warm_train_config(fresh, resolved)[0]
    assert (explicit_rate.side_alpha, explicit_rate.attention_alpha) == (-1, -1)
    explicit = TrainConfig(epochs=10, side_alpha=0.04)
    assert warm_train_config(explicit, resolved, alpha_by_rule=True)[0].side_alpha == 0.04
    config = load_config(None, ["update.alpha=-1"])
    assert trial_config(config, 0.05).train.side_alpha == 0.025  # the warm slice's trial trains as the update
    assert trial_config(config, 0.05).train.attention_alpha == 0.025
    assert trial_config(load_config(None, ["update.alpha=0.05"]), 0.05).train.side_alpha == -1
    with pytest.raises(ConfigError, match="train.side_alpha"):
        build_section("train", {"side_alpha": -0.5})
    with pytest.raises(ConfigError, match="train.attention_alpha"):
        build_section("train", {"attention_alpha": -0.5})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A BGE parent on one day of a small log; the next day with a third of its items renamed (new to the parent)."""
    root = tmp_path_factory.mktemp("update_rule")
    events = pq.read_table(DATA / "events.parquet").slice(0, 3_000)
    ts = events["timestamp"]
    cut = pc.min(ts).as_py() + (pc.max(ts).as_py() - pc.min(ts).as_py()) // 2
    first = events.filter(pc.less(ts, cut))
    later = events.filter(pc.greater_equal(ts, cut))
    ids = later["item_id"].to_numpy()
    renamed = np.where(ids % 3 == 0, ids + 10_000_000, ids)  # a third of the day's items are new ids
    later = later.set_column(later.column_names.index("item_id"), "item_id", pa.array(renamed, pa.int64()))
    pq.write_table(first, root / "first.parquet")
    pq.write_table(pa.concat_tables([first, later]), root / "both.parquet")
    eges.run(root / "parent", events=str(root / "first.parquet"), settings=TINY, until="skipgram")
    return root


def _update(root, name: str, *settings: str) -> tuple[dict, np.ndarray]:
    out = root / name
    eges.run(out, events=str(root / "both.parquet"), warm_start=str(root / "parent"), until="skipgram",
             settings=[*TINY, "update.events=window", *settings])
    details = json.loads((out / MANIFEST).read_text())["stages"]["skipgram"]["details"]
    rows = np.stack(pq.read_table(out / BGE_STATE)["row"].to_numpy(zero_copy_only=False))
    return details, rows


def test_the_training_stage_reads_the_day_and_trains_at_the_rules_settings(runs):
    details, rows = _update(runs, "rule", "update.other_walks=-1", "update.alpha=-1")
    rule = details["focus"]["rule"]
    nodes = pq.read_table(runs / "rule" / NODES)
    parent_ids = set(pq.read_table(runs / "parent" / NODES)["item_id"].to_pylist())
    newest = pq.read_table(runs / "parent" / NODES)["last_seen"].to_numpy().max()
    touched = nodes["last_seen"].to_numpy() > newest
    new = np.array([i not in parent_ids for i in nodes["item_id"].to_pylist()])
    assert rule["items"] == nodes.num_rows and rule["touched_items"] == touched.sum() > 0
    assert rule["new_touched_items"] == (touched & new).sum() > 0
    assert rule["other_walks"] == pytest.approx(touched.mean(), abs=1e-4) and touched.mean() < 1
    assert rule["alpha"] == pytest.approx(0.025 * (1 + min(1, 2 * (touched & new).sum() / touched.sum())), abs=1e-6)
    assert details["focus"]["other_walks"] == pytest.approx(rule["other_walks"], abs=1e-4)
    assert 0 < details["focus"]["tokens_kept"] < 1
    # the same settings given explicitly train the same rows; the old defaults (every walk, 0.025) do not
    _, explicit = _update(runs, "explicit", f"update.other_walks={float(touched.mean())!r}", f"update.alpha={rule['alpha']!r}")
    np.testing.assert_allclose(rows, explicit, atol=1e-4)
    old, fixed = _update(runs, "fixed", "update.other_walks=1", "update.alpha=0.025")
    assert "focus" not in old and not np.allclose(rows, fixed, atol=1e-3)
    default, by_default = _update(runs, "default")  # the rule is the default: no setting trains the same rows
    assert default["focus"]["rule"] == rule
    np.testing.assert_allclose(rows, by_default, atol=1e-4)


def test_an_eges_update_by_rule_trains_its_value_rows_and_attention_at_train_alpha(runs):
    """EGES with a catalog: the update at the rule's rate trains the item rows at it and the value rows and the
    attention logits at train.alpha, as the same rate given explicitly with train.side_alpha and
    train.attention_alpha = train.alpha does; the explicit rate alone moves the value rows and the logits at it."""
    items = str(DATA / "items.parquet")
    eges_tiny = [*TINY, "train.method=eges"]
    eges.run(runs / "eges_parent", events=str(runs / "first.parquet"), items=items, settings=eges_tiny, until="eges")

    def update(name: str, *settings: str) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
        out = runs / name
        eges.run(out, events=str(runs / "both.parquet"), warm_start=str(runs / "eges_parent"), items=items,
                 until="eges", settings=[*eges_tiny, "update.events=window", *settings])
        details = json.loads((out / MANIFEST).read_text())["stages"]["eges"]["details"]
        state = pq.read_table(out / EGES_STATE)
        rows = np.stack(state["row"].to_numpy(zero_copy_only=False))
        logits = np.stack(state["attention"].to_numpy(zero_copy_only=False))
        side = np.stack(pq.read_table(out / SIDE_VECTORS)["vector"].to_numpy(zero_copy_only=False))
        return details, rows, side, logits

    details, rows, side, logits = update("eges_rule", "update.alpha=-1")
    rule = details["focus"]["rule"]
    assert rule["alpha"] > 0.03 and rule["side_alpha"] == 0.025 and rule["attention_alpha"] == 0.025
    _, same_rows, same_side, same_logits = update("eges_explicit", f"update.alpha={rule['alpha']!r}",
                                                  "train.side_alpha=0.025", "train.attention_alpha=0.025")
    np.testing.assert_allclose(rows, same_rows, atol=1e-5)
    np.testing.assert_allclose(side, same_side, atol=1e-5)
    np.testing.assert_allclose(logits, same_logits, atol=1e-5)
    _, _, raised_side, raised_logits = update("eges_raised", f"update.alpha={rule['alpha']!r}")
    assert not np.allclose(side, raised_side, atol=1e-3)
    assert not np.allclose(logits, raised_logits, atol=1e-3)
    _, _, _, side_only_logits = update("eges_side_only", f"update.alpha={rule['alpha']!r}", "train.side_alpha=0.025")
    assert not np.allclose(logits, side_only_logits, atol=1e-3)  # the logits' own rate, not the value rows'
