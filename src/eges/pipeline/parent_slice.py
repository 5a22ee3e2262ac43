"""The validation slice of a warm start (``update.epochs = 0``): the new slice decides how many passes an update
trains.

The latest events of this run are held out (``validate.fraction``, as a fresh run's slice); the trial's graph is the
earlier events' transitions plus, with ``update.events = new``, the parent's edges carried over exactly as the update's
graph carries them (:mod:`eges.update.slice`); the trial starts from the parent's rows matched to this run's items
(the :class:`~eges.train.stream.StartState` the training stages start from, :func:`eges.update.warm.warm_start`) at
``update.alpha`` and is scored after every pass with early stopping. The method is the parent's: nothing else is
chosen. No items are hidden: the method (and so the cold-start rule) is not chosen here.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.config import Config
from eges.layout import NODES
from eges.methods import starting_own_weight
from eges.pipeline.registry import RunInputs, StageContext, StageResult


def warm_validates(inputs: RunInputs, config: Config) -> bool:
    """A warm start validates when the slice decides its passes (update.epochs = 0) and it trains at all."""
    return inputs.parent is not None and config.update.epochs == 0 and config.update.alpha != 0


def warm_slice_inputs(inputs: RunInputs, config: Config) -> tuple[str, ...]:
    """What the warm slice reads besides the log: this run's nodes (the trial's items) and the parent's rows."""
    return (NODES, "@parent") if warm_validates(inputs, config) else ()


def trial_config(config: Config, alpha: float) -> Config:
    """The run's config with the update's learning rate ``alpha`` (update.alpha, resolved: by rule when -1),
    decaying to train.min_alpha or lower, and the side-information value rows' and attention logits' rates the
    update trains with (train.alpha when update.alpha is by rule: :func:`eges.update.rule.side_alpha_by_rule`)."""
    from eges.update.rule import attention_alpha_by_rule, side_alpha_by_rule

    alpha = float(alpha)
    by_rule = config.update.alpha < 0
    side = side_alpha_by_rule(config.train.side_alpha, config.train.alpha, by_rule)
    attention = attention_alpha_by_rule(config.train.attention_alpha, config.train.alpha, by_rule)
    return config.replace("train", alpha=alpha, min_alpha=min(float(config.train.min_alpha), alpha), side_alpha=side,
                          attention_alpha=attention)


def carried(ctx: StageContext, nodes: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The parent's edges as this update's graph carries them (child indices), or None in window mode."""
    from eges.ids import align_ids
    from eges.pipeline.parent_graph import parent_graph
    from eges.update.slice import carried_edges, parent_to_child

    found = parent_graph(ctx)
    if found is None:
        return None
    child_ids = nodes["item_id"]
    parent_ids = align_ids(found.nodes["item_id"], child_ids.type, found.where, "item_id")
    to_child = parent_to_child(found.nodes["item_index"].to_numpy(), parent_ids.to_pylist(), child_ids.to_pylist())
    edges = pq.read_table(found.edges, columns=["src", "dst", "weight"])
    return carried_edges(edges["src"].to_numpy(), edges["dst"].to_numpy(), edges["weight"].to_numpy(), to_child,
                         found.rule.factor, found.rule.floor)


def warm_holdout(ctx: StageContext, config: Config, nodes: pa.Table,
                 share: float = 1.0) -> tuple[Any, Config, int, str]:
    """(slice, config it is scored with, rows cut, how the sentence names it) over this run's nodes: the fresh
    run's slice (:func:`eges.pipeline.validate_stage._slice`) with the carried edges and no hidden items;
    ``share``: update.other_walks, resolved (below 1 the trial's walks are focused on the touched items).

    Raises:
        ValueError: too small a log to hold anything out.
    """
    from eges.pipeline.validate_stage import _slice

    edge_list = ctx.inputs.edges is not None
    cut = _slice(ctx, False, config, items=nodes, carried=None if edge_list else carried(ctx, nodes))
    if edge_list:
        return cut.holdout, cut.config, cut.rows_in, "held-out edges of this run"
    cut.holdout.stats["touched"] = touched_before_cut(ctx, cut.sessions, nodes.num_rows, cut.holdout.cut_ms, share)
    return cut.holdout, cut.config, cut.rows_in, "this run's latest events held out"


def touched_before_cut(ctx: StageContext, sessions: pa.Table, n: int, cut_ms: int, share: float) -> Any:
    """Items the new events touched before the cut (update.other_walks focuses the trial's walks on them, as the
    training stage focuses on the items touched by all new events), or None (no focus)."""
    from eges.pipeline.parent import parent_newest
    from eges.update.focus import touched_items

    since = parent_newest(ctx.inputs.parent) if share < 1 else None
    if since is None:
        return None
    return touched_items(sessions["item_index"].to_numpy(), sessions["ts"].to_numpy(), n, since, cut_ms)


def focused(walks: tuple[np.ndarray, np.ndarray], touched: Any, share: float,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The trial's walks with update.other_walks applied; every item the dropped walks alone visit gets a walk of
    itself (no pair to train, a count of one), as the training stage keeps its row (training_counts)."""
    from eges.update.focus import filter_walks, kept_walks

    if touched is None:
        return walks
    values, offsets = walks
    kept_values, kept_offsets = filter_walks(values, offsets, kept_walks(values[offsets[:-1]], touched, share, seed))
    alone = np.flatnonzero((np.bincount(values, minlength=len(touched)) > 0) &
                           (np.bincount(kept_values, minlength=len(touched)) == 0))
    return (np.concatenate([kept_values, alone.astype(kept_values.dtype)]),
            np.concatenate([kept_offsets, kept_offsets[-1] + np.arange(1, len(alone) + 1)]))


def start_state(ctx: StageContext, node_ids: list[Any], side: Any, method: Any) -> Any:
    """The parent's rows matched to the slice's items (and value rows, for a side-information method)."""
    from eges.pipeline.parent import read_parent_state
    from eges.side_info.encode import SideInfo
    from eges.update.warm import warm_start

    tcfg = ctx.config.train
    train_side = side if (method.side_info and side is not None) else \
        SideInfo([], np.zeros((len(node_ids), 0), dtype=np.int32), [])
    start, _ = warm_start(read_parent_state(ctx.inputs.parent, list(train_side.fields)), node_ids, train_side,
                          tcfg.seed, starting_own_weight(method.name, tcfg.own_weight))
    return start


def warm_validate(ctx: StageContext) -> StageResult:
    """The validate stage of a warm start: the passes of the parent's method, chosen on this run's latest events."""
    from eges.methods import METHODS
    from eges.pipeline.parent import resolved_update, warm_method
    from eges.pipeline.validate_stage import _log_rows, _side_info, _write
    from eges.train.stream import auto_epochs, compile_kernel
    from eges.validation import choose, fit_and_score, training_walks

    started = time.perf_counter()
    method = METHODS[warm_method(ctx.inputs, ctx.config)]
    nodes = pq.read_table(ctx.input_path(NODES), columns=["item_id", "item_index"]).sort_by("item_index")
    ucfg, rule, _ = resolved_update(ctx)  # update.other_walks and update.alpha, by rule when -1
    config = trial_config(ctx.config, ucfg.alpha)
    alpha = config.train.alpha
    try:
        holdout, config, rows_in, held_out = warm_holdout(ctx, config, nodes, ucfg.other_walks)
    except ValueError as exc:  # too small a log: the update trains the -1 rule's passes
        why = f"no validation slice ({exc}): the update trains update.epochs = -1's passes"
        doc = {"method": method.name, "epochs": 0, "metric": config.validate.metric, "why": why,
               "candidates": [method.name], "epochs_fixed": False, "max_epochs": 0, "holdout": {}, "trials": [],
               "seconds": 0.0, "warm_start": True, "alpha": alpha}
        _write(ctx, doc, [])
        rows = pq.read_metadata(ctx.input_path(_log_rows(ctx))).num_rows
        return StageResult(rows, 0, why, {k: doc[k] for k in ("method", "epochs", "metric", "why")})
    vcfg = config.validate
    side = _side_info(ctx, nodes) if ctx.inputs.items is not None and method.side_info else None
    walks = training_walks(holdout, config)
    fresh = int(ctx.config.train.epochs) or auto_epochs(int(len(walks[0]) / (1 - vcfg.fraction)))
    touched = holdout.stats.pop("touched", None)
    walks = focused(walks, touched, float(ucfg.other_walks), int(ctx.config.train.seed))
    cap = min(vcfg.max_epochs, fresh)  # at most a fresh run's passes
    compile_kernel()
    start = start_state(ctx, nodes["item_id"].to_pylist(), side, method)
    trial = fit_and_score(holdout, config, method.name, side, max_epochs=cap, walks=walks, start=start)
    ctx.echo(f"  [validate] {method.name} from the parent: best {trial.metric} {trial.score:.4f} at pass "
             f"{trial.best_epochs} of {len(trial.curve)}")
    _, why = choose([trial], held_out)
    why = f"from the parent's rows at update.alpha {alpha:g}: " + why
    seconds = time.perf_counter() - started
    doc = {"method": method.name, "epochs": trial.best_epochs, "metric": vcfg.metric, "why": why,
           "candidates": [method.name], "epochs_fixed": False, "max_epochs": cap, "schedule_epochs": cap,
           "short_schedule": None, "holdout": holdout.stats, "trials": [trial.to_dict()],
           "seconds": round(seconds, 3), "warm_start": True, "alpha": alpha}
    _write(ctx, doc, [trial])
    key = "hitrate" if vcfg.metric == "hitrate" else "link_auc"
    details = {k: doc[k] for k in ("method", "epochs", "metric", "why", "candidates", "max_epochs", "seconds",
                                   "holdout", "warm_start", "alpha")}
    details["curve"] = {method.name: [row[key] for row in trial.to_dict()["curve"]]}
    details.update({"rule": rule} if rule else {})
    return StageResult(rows_in, len(trial.curve), why, details)
