"""The evaluation protocols: link prediction (the paper's), next item after a cut time, and cold start.

Each makes its split under ``OUT/evaluation/<protocol>/``, trains every method on the training part in a nested
run (:mod:`eges.evaluation.nested`), scores methods and baselines on the same held-out pairs, and writes
``metrics.parquet`` and ``summary.json``. The stages in :mod:`eges.pipeline.evaluate_stage` register them.

The evaluation folder is shared by the three protocols and their nested runs, so it is not swapped in whole like
a stage's own folder (``pipeline.staging``): each file is written atomically, and a protocol that fails midway
can leave a new split file beside the old metrics (the manifest does not vouch for them until the stage ends).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.config import Config
from eges.duck import duckdb_session
from eges.errors import ConfigError, InputError
from eges.evaluation.nested import (
    SPLIT_EVENTS,
    method_row,
    method_scorers,
    methods_of,
    nested_config,
    read_sessions,
    run_nested,
    whole_log,
    write_events_split,
)
from eges.evaluation.score import Pairs, score, summary
from eges.evaluation.scorers import (
    CosineScorer,
    PopularityScorer,
    cooccurrence_matrix,
    deepwalk_vectors,
    item2vec_vectors,
    side_mean_matrix,
)
from eges.evaluation.splits import (
    format_ms,
    held_out_edges,
    holdout_mask,
    parse_cut_time,
    sample_non_edges,
    segments_without,
)
from eges.layout import EDGES, METRICS_SCHEMA, VOCAB, evaluation_dir, metrics_path, summary_path
from eges.pipeline import io
from eges.pipeline.registry import RunInputs, StageContext, StageResult
from eges.sessions.events import open_events


def split_file(protocol: str, name: str) -> str:
    """A split file of ``protocol``, relative to the run folder."""
    return f"{evaluation_dir(protocol)}/{name}"


def baseline_scorers(names: tuple[str, ...], item: np.ndarray, segment: np.ndarray, n: int,
                     config: Config) -> list[Any]:
    """The baselines from training sessions: ``item`` holds universe indices, ``segment`` session numbers
    (non-decreasing). ``side_mean`` is the cold protocol's own (:func:`side_mean_scorer`)."""
    counts = np.bincount(item, minlength=n)
    out: list[Any] = []
    if "popularity" in names:
        out.append(PopularityScorer(counts))
    if "cooccurrence" in names:
        out.append(CosineScorer("cooccurrence", cooccurrence_matrix(segment, item, n), counts > 0))
    if "item2vec" in names:
        out.append(CosineScorer("item2vec", *_item2vec(item, segment, n, config)))
    if "deepwalk" in names:
        follows = np.r_[False, segment[1:] == segment[:-1]] if len(segment) else np.zeros(0, bool)
        cfg = config.replace("train", epochs=config.evaluate.deepwalk_epochs).train
        out.append(CosineScorer("deepwalk", *deepwalk_vectors(item, follows, n, cfg, config.walks.seed,
                                                               config.graph.min_edge_weight)))
    return out


def _item2vec(item: np.ndarray, segment: np.ndarray, n: int, config: Config) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]]) if len(segment) else np.zeros(0, int)
    cfg = config.replace("train", epochs=config.evaluate.item2vec_epochs).train
    return item2vec_vectors(item, np.r_[starts, len(item)], n, cfg)


def side_mean_scorer(ctx: StageContext, universe: Any, id_type: pa.DataType, item: np.ndarray,
                     segment: np.ndarray) -> CosineScorer:
    """The cold protocol's side-information mean: item2vec on the training sessions (which hold no hidden item),
    and every item without a vector placed at the mean of its catalogue values' item2vec means."""
    from eges.pipeline.side_info_stage import read_catalog
    from eges.side_info.encode import encode

    scfg = ctx.config.side_info
    catalog, fields, _ = read_catalog(ctx.input_path("@items"), scfg, id_type)
    side, _ = encode(catalog, universe, scfg.id_col, fields, scfg.numeric_buckets, scfg.numeric)
    return CosineScorer("side_mean", *side_mean_matrix(*_item2vec(item, segment, len(universe), ctx.config),
                                                       side.codes))


def write_result(ctx: StageContext, protocol: str, rows: list[dict[str, Any]], split: dict[str, Any]) -> StageResult:
    table = pa.Table.from_pylist(rows, schema=METRICS_SCHEMA)
    io.write_table(table, ctx.path(metrics_path(protocol)))
    metrics = summary(rows)
    doc = {"protocol": protocol, "split": split, "metrics": metrics,
           "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(ctx.config.evaluate).items()
                        if k != "protocols"}}
    with io.atomic_path(ctx.path(summary_path(protocol))) as tmp:
        tmp.write_text(json.dumps(doc, indent=2))
    auc = ", ".join(f"{m} {v['auc']:.4f}" if v.get("auc") is not None else f"{m} n/a" for m, v in metrics.items())
    return StageResult(split.get("test_pairs", 0), table.num_rows, f"AUC: {auc}", {"split": split, "metrics": metrics})


def _subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=limit, replace=False)) if n > limit else np.arange(n)


def _check_ks(ks: tuple[int, ...], n_items: int) -> None:
    if ks and max(ks) >= n_items:
        raise ConfigError(f"evaluate.ks includes {max(ks)} but only {n_items} items can be neighbours; "
                          f"use K below {n_items}")


def _check_test(protocol: str, n: int, why: str) -> None:
    if n == 0:
        raise InputError(f"evaluate {protocol}: no held-out pairs to score ({why})")


# --------------------------------------------------------------------------------------------- link
def link(ctx: StageContext) -> StageResult:
    """Link prediction as in the paper: hold out a share of the graph's edges before walks; AUC of held-out
    edges against as many node pairs with no edge."""
    cfg, graph_cfg = ctx.config.evaluate, ctx.config.graph
    methods = methods_of(ctx)
    full = whole_log(ctx)
    universe, start, item, prev = read_sessions(full)
    n = len(universe)
    edges = pq.read_table(full / EDGES)
    src, dst, weight = (edges[c].to_numpy() for c in ("src", "dst", "weight"))
    rng = np.random.default_rng(cfg.seed)
    held = held_out_edges(src, dst, cfg.link_holdout, bool(graph_cfg.undirected), rng)
    train_nodes = np.unique(np.concatenate([src[~held], dst[~held]]))
    in_train = np.zeros(n, dtype=bool)
    in_train[train_nodes] = True
    # Score held-out edges whose two ends are still in the training graph (others get no vector by design).
    test = held & in_train[src] & in_train[dst] & (src != dst)
    if graph_cfg.undirected:  # i->j and j->i are one edge: score it once
        test &= src < dst
    test = np.flatnonzero(test)
    _check_test("link", len(test), "the graph has too few edges whose ends stay in the training graph")
    test = test[_subsample(len(test), cfg.max_test_pairs, rng)]
    try:
        neg_a, neg_b = sample_non_edges(src, dst, train_nodes, len(test), rng)
    except ValueError as exc:
        raise InputError(f"evaluate link: {exc}") from None
    pairs = Pairs(src[test], dst[test], neg_a, neg_b)

    ids = pa.array(universe)
    train = pa.table({"src": ids.take(pa.array(src[~held])), "dst": ids.take(pa.array(dst[~held])),
                      "weight": weight[~held]})
    io.write_table(train, ctx.path(split_file("link", "train_edges.parquet")))
    config = nested_config(ctx.config, graph={"undirected": False, "min_edge_weight": 0.0, "src_col": "src",
                                              "dst_col": "dst", "weight_col": "weight"})
    inputs = RunInputs(edges=str(ctx.path(split_file("link", "train_edges.parquet"))), items=ctx.inputs.items)
    scorers = method_scorers(ctx, split_file("link", "pipeline"), config, inputs, methods, universe)
    held_keys = src[held].astype(np.int64) * n + dst[held]
    segment = segments_without(start, prev, item, held_keys, n)
    baselines = baseline_scorers(cfg.baselines, item, segment, n, ctx.config)
    rows = [r for s in scorers for r in score("link", s, "method", pairs)]
    rows += [r for s in baselines for r in score("link", s, "baseline", pairs)]
    split = {"edges": len(src), "held_out_edges": int(held.sum()), "train_edges": int((~held).sum()),
             "train_nodes": len(train_nodes), "test_pairs": len(test), "negative_pairs": len(neg_a)}
    return write_result(ctx, "link", rows, split)


# --------------------------------------------------------------------------------------------- temporal
def choose_cut(ctx: StageContext) -> tuple[int, int, int]:
    """(cut, first, last event time) in epoch ms; a configured cut outside the log is an error."""
    cfg = ctx.config.evaluate
    with duckdb_session(ctx.config.engine, ctx.spill_dir) as con:
        view = open_events(con, ctx.input_path("@events"), ctx.config.sessions).view
        first, last, auto = con.execute(f"SELECT min(ts), max(ts), quantile_disc(ts, {cfg.train_share!r}) "
                                        f"FROM {view}").fetchall()[0]
    cut = parse_cut_time(cfg.cut_time)
    if cut is None:
        cut = int(auto)
    if not first < cut <= last:
        raise ConfigError(f"evaluate.cut_time = {cfg.cut_time or cut!r} ({format_ms(cut)}) is outside the log, "
                          f"which runs from {format_ms(first)} to {format_ms(last)}")
    return cut, int(first), int(last)



def temporal(ctx: StageContext) -> StageResult:
    """Next item: train on events before a cut time; score each later transition i->j by AUC against random
    items and by HitRate@K / Recall@K of j among i's K nearest neighbours."""
    cfg = ctx.config.evaluate
    methods = methods_of(ctx)
    cut, first, last = choose_cut(ctx)
    n_train_events = write_events_split(ctx, split_file("temporal", "train_events.parquet"), f"ts < {cut}")
    write_events_split(ctx, split_file("temporal", "test_events.parquet"), f"ts >= {cut}")
    config = nested_config(ctx.config, sessions=SPLIT_EVENTS)
    inputs = RunInputs(events=str(ctx.path(split_file("temporal", "train_events.parquet"))), items=ctx.inputs.items)
    train_dir = run_nested(ctx, split_file("temporal", "pipeline"), config, inputs, "graph")
    train_ids, start, item, _ = read_sessions(train_dir)
    # The later events are cleaned and cut like the log, by the sessions stage (streamed, bounded memory).
    try:
        test_dir = run_nested(ctx, split_file("temporal", "test"), config,
                              RunInputs(events=str(ctx.path(split_file("temporal", "test_events.parquet")))), "sessions")
    except InputError as exc:
        raise InputError(f"evaluate temporal: the events after {format_ms(cut)} leave no sessions ({exc})") from None
    test_ids, _, cur, prev = read_sessions(test_dir)
    universe = train_ids.append(test_ids).unique()
    to_universe = universe.get_indexer(test_ids)
    has_prev = prev >= 0
    a, b = to_universe[prev[has_prev]], to_universe[cur[has_prev]]
    n_warm = len(train_ids)  # train items come first in the universe
    _check_ks(cfg.ks, n_warm)
    warm = (a < n_warm) & (b < n_warm)
    rng = np.random.default_rng(cfg.seed)
    a, b = a[warm], b[warm]
    _check_test("temporal", len(a), "no transition after the cut joins two items seen before it")
    keep = _subsample(len(a), cfg.max_test_pairs, rng)
    a, b = a[keep], b[keep]
    pairs = Pairs(a, b, a, rng.integers(0, n_warm, size=len(a)))
    scorers = method_scorers(ctx, split_file("temporal", "pipeline"), config, inputs, methods, universe)
    baselines = baseline_scorers(cfg.baselines, item, np.cumsum(start), len(universe), ctx.config)
    rows = [r for s in scorers for r in score("temporal", s, "method", pairs, cfg.ks)]
    rows += [r for s in baselines for r in score("temporal", s, "baseline", pairs, cfg.ks)]
    split = {"cut_time": format_ms(cut), "log_start": format_ms(first), "log_end": format_ms(last),
             "train_events": n_train_events, "test_transitions": int(has_prev.sum()),
             "test_transitions_between_known_items": int(warm.sum()), "test_pairs": len(a)}
    return write_result(ctx, "temporal", rows, split)



# --------------------------------------------------------------------------------------------- cold start
def cold(ctx: StageContext) -> StageResult:
    """Cold start: hide all behaviour of a random share of items, train on the rest, and score the transitions
    that involve a hidden item from its side-information vector."""
    if ctx.inputs.items is None:
        raise InputError("evaluate cold: the cold-start protocol needs an item catalog (--items)")
    cfg = ctx.config.evaluate
    methods = [m for m in methods_of(ctx) if method_row(m, ctx.inputs).cold_start]  # others give hidden items none
    full = whole_log(ctx)
    universe, _, item, prev = read_sessions(full)
    n = len(universe)
    _check_ks(cfg.ks, n)
    rng = np.random.default_rng(cfg.seed)
    is_cold = holdout_mask(n, cfg.cold_fraction, rng)
    cold_ids = pa.table({"item_id": pa.array(universe[is_cold])})
    io.write_table(cold_ids, ctx.path(split_file("cold", "cold_items.parquet")))
    n_train_events = write_events_split(ctx, split_file("cold", "train_events.parquet"),
                                        "item_id NOT IN (SELECT item_id FROM eges_cold_items)",
                                        {"eges_cold_items": cold_ids})
    has_prev = prev >= 0
    a, b = prev[has_prev], item[has_prev]
    involved = is_cold[a] | is_cold[b]
    a, b = a[involved], b[involved]
    query = np.where(is_cold[a], a, b)  # scored from the cold item's side
    target = np.where(is_cold[a], b, a)
    _check_test("cold", len(query), "no transition involves a hidden item; raise evaluate.cold_fraction")
    keep = _subsample(len(query), cfg.max_test_pairs, rng)
    query, target = query[keep], target[keep]
    warm_items = np.flatnonzero(~is_cold)
    pairs = Pairs(query, target, query, rng.choice(warm_items, size=len(query)))
    config = nested_config(ctx.config, sessions=SPLIT_EVENTS)
    inputs = RunInputs(events=str(ctx.path(split_file("cold", "train_events.parquet"))), items=ctx.inputs.items)
    scorers = method_scorers(ctx, split_file("cold", "pipeline"), config, inputs, methods, universe)
    train_ids, start, train_item, _ = read_sessions(ctx.out_dir / split_file("cold", "pipeline"))
    # Of the session baselines only popularity can score an item without behaviour; side_mean places it from the
    # catalogue. (An item can be in the training sessions but not the full log's: the spam rule sees fewer events.)
    train_universe = universe.get_indexer(train_ids)[train_item]
    known = train_universe >= 0
    train_events, train_segment = train_universe[known], np.cumsum(start)[known]
    baselines = baseline_scorers(tuple(b for b in cfg.baselines if b == "popularity"), train_events, train_segment,
                                 n, ctx.config)
    if "side_mean" in cfg.baselines:
        id_type = pq.read_schema(full / VOCAB).field("item_id").type
        baselines.append(side_mean_scorer(ctx, universe, id_type, train_events, train_segment))
    rows = [r for s in scorers for r in score("cold", s, "method", pairs, cfg.ks)]
    rows += [r for s in baselines for r in score("cold", s, "baseline", pairs, cfg.ks)]
    split = {"items": n, "hidden_items": int(is_cold.sum()), "train_events": n_train_events,
             "test_transitions": int(involved.sum()), "test_pairs": len(query)}
    return write_result(ctx, "cold", rows, split)
