"""The evaluation stages: link prediction (the paper's protocol), next item after a cut time, and cold start.

Each protocol makes its split under ``OUT/evaluation/<protocol>/``, runs the pipeline on the training part in a
nested output directory (``.../pipeline``, with its own manifest, so a rerun reuses every fresh stage), scores
every method and baseline on the same held-out pairs, and writes ``metrics.parquet`` and ``summary.json``.
The whole log's sessions and graph, which link prediction and cold start split, are built once in
``OUT/evaluation/full``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from eges.config import Config
from eges.duck import duckdb_batches, duckdb_session
from eges.errors import ConfigError, InputError
from eges.evaluation.score import Pairs, score, summary
from eges.evaluation.scorers import (
    CosineScorer,
    PopularityScorer,
    cooccurrence_matrix,
    item2vec_vectors,
    placed,
)
from eges.evaluation.splits import (
    format_ms,
    holdout_mask,
    parse_cut_time,
    sample_non_edges,
    segments_without,
    undirected_holdout,
)
from eges.layout import EDGES, EVALUATION_FULL, METRICS_SCHEMA, SESSIONS, VOCAB, metrics_path, summary_path
from eges.methods import METHODS, allowed
from eges.pipeline import io
from eges.pipeline.registry import RunInputs, StageContext, StageResult, stage
from eges.sessions.clean import predecessors
from eges.sessions.events import EventsSource, open_events

#: Every section that changes what the nested runs train, plus the protocol settings.
SECTIONS = ("sessions", "graph", "walks", "side_info", "train", "evaluate")
#: The nested runs train every method in evaluate.methods, whatever the main run's method is.
IGNORES = ("train.method",)
#: The event columns of split files: the normalised view of any input format, read back with these settings.
SPLIT_EVENTS = {"format": "generic", "user_col": "user_id", "item_col": "item_id", "time_col": "timestamp",
                "timestamp_unit": "ms", "behaviour_col": "behaviour", "dwell_col": "dwell"}


NOT_REQUESTED = "not requested (eges evaluate, or evaluate.protocols)"


def _inputs(inp: RunInputs, cfg: Any) -> tuple[str, ...]:
    return ("@events", "@items") if inp.items else ("@events",)


def _requested(protocol: str) -> Callable[[RunInputs, Config], bool]:
    return lambda inp, cfg: protocol in cfg["evaluate"].protocols and inp.events is not None


def methods_of(ctx: StageContext) -> list[str]:
    """The methods to score: ``evaluate.methods``, or every method the inputs allow."""
    methods = list(ctx.config.evaluate.methods) or allowed(ctx.inputs.items is not None)
    needs_catalog = [m for m in methods if METHODS[m].side_info]
    if needs_catalog and ctx.inputs.items is None:
        raise InputError(f"evaluate.methods includes {needs_catalog[0]!r}, which needs an item catalog (--items)")
    return methods


# --------------------------------------------------------------------------------------------- nested runs
def nested_config(config: Config, **sections: dict[str, Any]) -> Config:
    """The config of a nested training run: evaluation switched off (no recursion), plus changes by section."""
    out = config.replace("evaluate", protocols=[])
    for name, changes in sections.items():
        out = out.replace(name, **changes)
    return out


def run_nested(ctx: StageContext, sub: str, config: Config, inputs: RunInputs, to_stage: str) -> Path:
    """Run the pipeline up to ``to_stage`` in ``OUT/sub`` (reusing its fresh stages); returns that directory."""
    from eges.pipeline.runner import run

    label = sub.removeprefix("evaluation/")
    run(ctx.out_dir / sub, config, inputs, to_stage=to_stage, progress=ctx.progress,
        echo=lambda line: ctx.echo(f"  [{label}] {line}"))
    return ctx.out_dir / sub


def whole_log(ctx: StageContext) -> Path:
    """The directory holding the whole log's sessions and graph: the run's own when they are fresh (``eges run``
    with ``evaluate.protocols`` builds them just before), else a nested run in ``OUT/evaluation/full``."""
    from eges.pipeline.runner import plan

    config, inputs = nested_config(ctx.config), RunInputs(events=ctx.inputs.events)
    states = {status.name: status.state for status in plan(ctx.out_dir, config, inputs)}
    if states.get("sessions") == states.get("graph") == "fresh":
        ctx.echo("  [full] the run's own sessions and graph are fresh: reused")
        return ctx.out_dir
    return run_nested(ctx, EVALUATION_FULL, config, inputs, "graph")


def method_scorers(ctx: StageContext, sub: str, config: Config, inputs: RunInputs, methods: list[str],
                   universe: pd.Index) -> list[CosineScorer]:
    """Train each method on the split's training part and wrap its vectors over the universe of item ids."""
    scorers = []
    for method in methods:
        out = run_nested(ctx, sub, config.replace("train", method=method), inputs, METHODS[method].stage)
        ids, vectors = io.read_vectors(out / METHODS[method].vectors)
        scorers.append(CosineScorer(method, *placed(universe.get_indexer(ids.to_pandas()), vectors, len(universe))))
    return scorers


def baseline_scorers(names: tuple[str, ...], item: np.ndarray, segment: np.ndarray, n: int,
                     config: Config) -> list[Any]:
    """The baselines from training sessions: ``item`` holds universe indices, ``segment`` session numbers
    (non-decreasing)."""
    counts = np.bincount(item, minlength=n)
    out: list[Any] = []
    if "popularity" in names:
        out.append(PopularityScorer(counts))
    if "cooccurrence" in names:
        out.append(CosineScorer("cooccurrence", cooccurrence_matrix(segment, item, n), counts > 0))
    if "item2vec" in names:
        starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]]) if len(segment) else np.zeros(0, int)
        cfg = config.replace("train", epochs=config.evaluate.item2vec_epochs).train
        out.append(CosineScorer("item2vec", *item2vec_vectors(item, np.r_[starts, len(item)], n, cfg)))
    return out


def read_sessions(directory: Path) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
    """(vocabulary ids by item index, session-start flags, item indices, predecessor indices or -1)."""
    vocab = pq.read_table(directory / VOCAB, columns=["item_id", "item_index"]).sort_by("item_index")
    table = pq.read_table(directory / SESSIONS, columns=["position", "item_index"])
    item, position = table["item_index"].to_numpy(), table["position"].to_numpy()
    return pd.Index(vocab["item_id"].to_pandas()), position == 0, item, predecessors(item, position)


# --------------------------------------------------------------------------------------------- split files
def split_query(source: EventsSource, where: str) -> str:
    """SQL for the events matching ``where`` (over user_id, item_id, ts in ms) in the split schema: the optional
    columns only when the log has them, so the split is cleaned exactly like the log; sorted by user and time."""
    cols = ["user_id", "item_id", "ts AS timestamp"] + (["behaviour"] if source.has_behaviour else []) \
        + (["dwell"] if source.has_dwell else [])
    # The split keeps the log's order of events at equal times (seq), so its sessions are the log's.
    return f"SELECT {', '.join(cols)} FROM {source.view} WHERE {where} ORDER BY user_id, ts, seq"


def write_events_split(ctx: StageContext, relative: str, where: str, tables: dict[str, pa.Table] | None = None) -> int:
    """Write the events matching ``where`` in the split schema, sorted so the file is identical whenever the
    split is (its digest keeps the nested stages fresh)."""
    with duckdb_session(ctx.config.engine, ctx.spill_dir) as con:
        source = open_events(con, ctx.input_path("@events"), ctx.config.sessions)
        for name, table in (tables or {}).items():
            con.register(name, table)
        query = split_query(source, where)
        with io.AtomicParquetWriter(ctx.path(relative)) as out:
            for batch in duckdb_batches(con, query):
                out.write(batch)
        return out.rows


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
@stage("evaluate_link", sections=SECTIONS, outputs=(metrics_path("link"), summary_path("link")), inputs=_inputs,
       enabled=_requested("link"), skipped_because=NOT_REQUESTED,
       ignores=IGNORES)
def evaluate_link(ctx: StageContext) -> StageResult:
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
    held = (undirected_holdout(src, dst, cfg.link_holdout, rng) if graph_cfg.undirected
            else holdout_mask(len(src), cfg.link_holdout, rng))
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
    io.write_table(train, ctx.path("evaluation/link/train_edges.parquet"))
    config = nested_config(ctx.config, graph={"undirected": False, "min_edge_weight": 0.0, "src_col": "src",
                                              "dst_col": "dst", "weight_col": "weight"})
    inputs = RunInputs(edges=str(ctx.path("evaluation/link/train_edges.parquet")), items=ctx.inputs.items)
    scorers = method_scorers(ctx, "evaluation/link/pipeline", config, inputs, methods, universe)
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


@stage("evaluate_temporal", sections=SECTIONS, outputs=(metrics_path("temporal"), summary_path("temporal")),
       inputs=_inputs, enabled=_requested("temporal"), skipped_because=NOT_REQUESTED,
       ignores=IGNORES)
def evaluate_temporal(ctx: StageContext) -> StageResult:
    """Next item: train on events before a cut time; score each later transition i->j by AUC against random
    items and by HitRate@K / Recall@K of j among i's K nearest neighbours."""
    cfg = ctx.config.evaluate
    methods = methods_of(ctx)
    cut, first, last = choose_cut(ctx)
    n_train_events = write_events_split(ctx, "evaluation/temporal/train_events.parquet", f"ts < {cut}")
    write_events_split(ctx, "evaluation/temporal/test_events.parquet", f"ts >= {cut}")
    config = nested_config(ctx.config, sessions=SPLIT_EVENTS)
    inputs = RunInputs(events=str(ctx.path("evaluation/temporal/train_events.parquet")), items=ctx.inputs.items)
    train_dir = run_nested(ctx, "evaluation/temporal/pipeline", config, inputs, "graph")
    train_ids, start, item, _ = read_sessions(train_dir)
    # The later events are cleaned and cut like the log, by the sessions stage (streamed, bounded memory).
    try:
        test_dir = run_nested(ctx, "evaluation/temporal/test", config,
                              RunInputs(events=str(ctx.path("evaluation/temporal/test_events.parquet"))), "sessions")
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
    scorers = method_scorers(ctx, "evaluation/temporal/pipeline", config, inputs, methods, universe)
    baselines = baseline_scorers(cfg.baselines, item, np.cumsum(start), len(universe), ctx.config)
    rows = [r for s in scorers for r in score("temporal", s, "method", pairs, cfg.ks)]
    rows += [r for s in baselines for r in score("temporal", s, "baseline", pairs, cfg.ks)]
    split = {"cut_time": format_ms(cut), "log_start": format_ms(first), "log_end": format_ms(last),
             "train_events": n_train_events, "test_transitions": int(has_prev.sum()),
             "test_transitions_between_known_items": int(warm.sum()), "test_pairs": len(a)}
    return write_result(ctx, "temporal", rows, split)


# --------------------------------------------------------------------------------------------- cold start
@stage("evaluate_cold", sections=SECTIONS, outputs=(metrics_path("cold"), summary_path("cold")), inputs=_inputs,
       enabled=_requested("cold"), skipped_because=NOT_REQUESTED,
       ignores=IGNORES)
def evaluate_cold(ctx: StageContext) -> StageResult:
    """Cold start: hide all behaviour of a random share of items, train on the rest, and score the transitions
    that involve a hidden item from its side-information vector."""
    if ctx.inputs.items is None:
        raise InputError("evaluate cold: the cold-start protocol needs an item catalog (--items)")
    cfg = ctx.config.evaluate
    methods = [m for m in methods_of(ctx) if METHODS[m].cold_start]  # the others give a hidden item no vector
    full = whole_log(ctx)
    universe, _, item, prev = read_sessions(full)
    n = len(universe)
    _check_ks(cfg.ks, n)
    rng = np.random.default_rng(cfg.seed)
    is_cold = holdout_mask(n, cfg.cold_fraction, rng)
    cold_ids = pa.table({"item_id": pa.array(universe[is_cold])})
    io.write_table(cold_ids, ctx.path("evaluation/cold/cold_items.parquet"))
    n_train_events = write_events_split(ctx, "evaluation/cold/train_events.parquet",
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
    inputs = RunInputs(events=str(ctx.path("evaluation/cold/train_events.parquet")), items=ctx.inputs.items)
    scorers = method_scorers(ctx, "evaluation/cold/pipeline", config, inputs, methods, universe)
    train_ids, start, train_item, _ = read_sessions(ctx.out_dir / "evaluation/cold/pipeline")
    # Of the baselines only popularity can score an item without behaviour; the others know nothing of it.
    # (An item can be in the training sessions but not the full log's: the spam rule sees fewer events.)
    train_universe = universe.get_indexer(train_ids)[train_item]
    known = train_universe >= 0
    popularity = baseline_scorers(tuple(b for b in cfg.baselines if b == "popularity"), train_universe[known],
                                  np.cumsum(start)[known], n, ctx.config)
    rows = [r for s in scorers for r in score("cold", s, "method", pairs, cfg.ks)]
    rows += [r for s in popularity for r in score("cold", s, "baseline", pairs, cfg.ks)]
    split = {"items": n, "hidden_items": int(is_cold.sum()), "train_events": n_train_events,
             "test_transitions": int(involved.sum()), "test_pairs": len(query)}
    return write_result(ctx, "cold", rows, split)
