"""Typed, validated configuration: one frozen dataclass per stage, one TOML section each.

Every key has a default and help text (kept in the field metadata), so `eges config --defaults`
prints a complete, commented file, and an unknown key or bad value is rejected once, up front,
with its full ``section.key`` name.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from eges.errors import ConfigError
from eges.methods import AUTO_WITH_CATALOG, AUTO_WITHOUT_CATALOG, CHOICES, NAMES, allowed, method_of
from eges.methods import METHODS as METHODS_TABLE


def opt(default: Any, help: str, *, choices: Iterable[Any] | None = None, min: float | None = None,
        max: float | None = None, affects_output: bool = True) -> Any:
    """A config field with help text and optional constraints, checked by :func:`build_section`.

    ``affects_output=False`` marks keys (threads, batch sizes) whose change does not make a stage's
    outputs out of date.
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "min": min, "max": max,
            "affects_output": affects_output}
    if isinstance(default, list):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SessionsConfig:
    """Reading the event log, cleaning it and cutting it into sessions (paper, section 2.1)."""

    format: str = opt("auto", "Event log format: 'generic' uses the column names below; 'taobao' is the "
                      "headerless UserBehavior CSV (user,item,category,behaviour,seconds); 'retailrocket' "
                      "is events.csv; 'auto' picks by file contents.",
                      choices=("auto", "generic", "taobao", "retailrocket"))
    user_col: str = opt("user_id", "Column holding the user id.")
    item_col: str = opt("item_id", "Column holding the item id.")
    time_col: str = opt("timestamp", "Column holding the event time.")
    behaviour_col: str = opt("behaviour", "Column holding the behaviour type; ignored if absent.")
    dwell_col: str = opt("dwell", "Column holding the dwell time in seconds; ignored if absent.")
    timestamp_unit: str = opt("auto", "Unit of numeric timestamps; 'auto' decides from the median magnitude "
                              "(seconds, milliseconds, microseconds or nanoseconds) and rejects a column whose values "
                              "disagree about their unit. Timestamp-typed columns need no unit.",
                              choices=("auto", "s", "ms", "us", "ns", "timestamp"))
    keep_behaviours: list[str] = opt([], "Behaviour types kept for sessions; empty keeps all.")
    click_behaviours: list[str] = opt(["pv", "click", "view"], "Behaviour types counted as clicks for "
                                      "the over-active-user rule (all events count when there is no "
                                      "behaviour column).")
    purchase_behaviours: list[str] = opt(["buy", "purchase", "transaction"], "Behaviour types counted as "
                                         "purchases for the over-active-user rule.")
    max_user_clicks: int = opt(3500, "Drop users with more clicks than this in the log (spam, crawlers).",
                               min=1)
    max_user_purchases: int = opt(1000, "Drop users with more purchases than this in the log.", min=1)
    min_dwell_seconds: float = opt(1.0, "Drop events with dwell time under this many seconds (accidental "
                                   "clicks); only applies when the dwell column is present.", min=0)
    session_gap_seconds: float = opt(3600.0, "Start a new session after this much inactivity between "
                                     "consecutive events of a user.", min=0)
    collapse_repeats: bool = opt(True, "Collapse consecutive repeats of the same item within a session.")
    min_session_length: int = opt(2, "Drop sessions with fewer items than this (after collapsing).", min=1)


@dataclass(frozen=True)
class GraphConfig:
    """Building the weighted item graph from sessions (paper, section 2.2)."""

    min_edge_weight: float = opt(1.0, "Drop edges whose weight is below this.", min=0)
    undirected: bool = opt(False, "Merge i->j and j->i into one undirected edge (weights summed).")
    src_col: str = opt("src", "Source item column of a user-supplied edge list (--edges).")
    dst_col: str = opt("dst", "Destination item column of a user-supplied edge list.")
    weight_col: str = opt("weight", "Weight column of a user-supplied edge list; absent means weight 1.")


@dataclass(frozen=True)
class WalksConfig:
    """Weighted first-order random walks over the item graph."""

    walk_length: int = opt(10, "Nodes per walk (the paper uses 10).", min=2, max=100_000)
    walks_per_node: int = opt(20, "Walks started from every node with out-edges (the paper uses 20). 0 is a rule (not "
                              "the default: on a sparse log it under-trains within the passes the slice tries): a node "
                              "starts ceil(walks_per_transition x max(its out-weight, the mean out-weight)) walks, at "
                              "least 1 and at most 20, weights in transitions (the graph's smallest edge weight); a "
                              "dense log keeps 20 from every node (docs/studies/walk-tokens.md).", min=0, max=100_000)
    walks_per_transition: float = opt(2.0, "With walks_per_node = 0: walks started per transition out of a node "
                                      "(its out-weight, or the mean out-weight if that is more).",
                                      min=0.01, max=100_000)
    seed: int = opt(42, "Random seed; walks are identical for a seed whatever the thread count.", min=0)
    threads: int = opt(0, "Worker threads; 0 uses every core.", min=0, max=1024, affects_output=False)
    batch_walks: int = opt(1_000_000, "Walks generated and written per Parquet row group; bounds memory.",
                           min=1, affects_output=False)


@dataclass(frozen=True)
class SideInfoConfig:
    """Reading the item catalog's side information (paper, section 2.3)."""

    id_col: str = opt("item_id", "Catalog column holding the item id (same ids as the event log).")
    fields: list[str] = opt([], "Side-information columns to use; empty uses every column but the id.")
    numeric_buckets: int = opt(10, "Numeric columns (price, ...) are cut into this many quantile buckets.",
                               min=1, max=100_000)
    numeric: list[str] = opt([], "Integer columns to cut into quantile buckets like float ones (an integer price "
                             "in cents, a year). Every other integer column is a code (category_id, brand_id: the "
                             "form most logs ship them in), one value per code: bucketed by the code's number, "
                             "Taobao's 2,911 categories fell into 10 meaningless ranges (cold AUC 0.75 -> 0.87; "
                             "docs/pipeline.md, side information).")
    duplicates: str = opt("first", "Duplicate item ids in the catalog: keep the first row (with a warning "
                          "and a count) or fail.", choices=("first", "error"))


@dataclass(frozen=True)
class TrainConfig:
    """Skip-gram training of every method: BGE (the item's own vector), GES and EGES (with side information)."""

    method: str = opt("auto", "; ".join(f"{m.name}: {m.summary}" for m in METHODS_TABLE.values())
                      + f". auto with a catalog is the method that scores best on a held-out slice of the log (the "
                      f"validate stage; trained by the {AUTO_WITH_CATALOG} stage, which places cold items whichever "
                      f"wins), else {AUTO_WITHOUT_CATALOG}.",
                      choices=CHOICES)
    backend: str = opt("auto", "Who trains: 'native' is eges' own trainer (every method); 'gensim' is gensim's "
                       "Word2Vec (bge only; the reference). auto is native (faster at equal quality: docs/results.md).",
                       choices=("auto", "native", "gensim"))
    dimension: int = opt(64, "Vector dimension (64: on seven real and generated logs at or within 3% of 128's "
                         "quality at two thirds of its cost; docs/studies/dimension.md).", min=1, max=4096)
    window: int = opt(5, "Context window on each side of the centre node.", min=1, max=1000)
    negative: int = opt(5, "Negative samples per positive pair.", min=1, max=1000)
    epochs: int = opt(0, "Passes over the walks; 0 lets the log decide: early stopping on a held-out slice of the "
                      "log ([validate], docs/studies/validation.md), at most the passes that see 400 million walk "
                      "tokens (docs/studies/epochs.md; that rule alone for an edge list). An explicit number wins.",
                      min=0, max=1000)
    alpha: float = opt(0.025, "Initial learning rate (decays linearly to min_alpha).", min=0, max=10)
    min_alpha: float = opt(0.0001, "Final learning rate (at most alpha).", min=0, max=10)
    sample: float = opt(0.001, "Down-sampling threshold for frequent nodes, as in word2vec; 0 turns it off.",
                        min=0, max=1)
    ns_exponent: float = opt(0.75, "Exponent of the unigram distribution negatives are drawn from.", min=-10,
                             max=10)
    threads: int = opt(0, "Worker threads; 0 uses every core. Multi-threaded training (lock-free updates) is not "
                       "bit-for-bit reproducible; use 1 for that.", min=0, max=1024, affects_output=False)
    seed: int = opt(42, "Random seed.", min=0)
    own_weight: float = opt(0.5, "EGES: the weight of the item's own embedding in H_v when training starts (the "
                            "fields share the rest); the attention learns from there. 0 is uniform over the item "
                            "and its fields (the paper's), which on logs whose catalogue says little about "
                            "behaviour left EGES far below BGE (docs/studies/own-weight.md).",
                            min=0, max=0.99)
    side_rate_power: float = opt(0.5, "GES/EGES: each step into a side-information value's row is scaled by (mean "
                                 "item frequency / the value's frequency)^p, at most 1: a value shared by many items "
                                 "gets every one of their gradients, and with plain steps (p = 0, the paper's) its "
                                 "row outgrows the items' own rows until an item's vector is mostly its category's "
                                 "(docs/studies/shared-rows.md).", min=0, max=1)
    side_alpha: float = opt(-1.0, "GES/EGES: initial learning rate of the side-information value rows, decaying in "
                            "step with the item rows' rate (by the same factor). -1: the item rows' rate "
                            "(train.alpha; update.alpha in a warm start), except when update.alpha is by rule (-1): "
                            "then train.alpha, so the rule raises the item rows' rate only. On Taobao's updates that "
                            "raised the rule's cold AUC by 0.003-0.006 at an HR@50 within the seeds' spread; lower "
                            "rates trade HR@50 for cold AUC (0.005: cold AUC 0.674-0.681, HR@50 6.5-9.9% below a retrain; "
                            "docs/studies/warm-start.md, 2026-12-03 evening). An explicit value wins.",
                            min=-1, max=10)
    attention_alpha: float = opt(-1.0, "EGES: initial learning rate of the attention logits, decaying in step with "
                                 "the item rows' rate (by the same factor). -1: the item rows' rate (train.alpha; "
                                 "update.alpha in a warm start), except when update.alpha is by rule (-1): then "
                                 "train.alpha, so the rule raises the item rows' rate only. The doubled rate on the "
                                 "logits moved the vectors of items a Taobao day did not touch away from the cold "
                                 "items (docs/studies/warm-start.md, 2026-12-03 late evening). An explicit value wins.",
                                 min=-1, max=10)
    own_step: str = opt("item", "GES/EGES: how far the item's own row steps: 'item' moves the item's part of H_v "
                        "(w_0 times the row) by BGE's step, dL/dH_v / max(w_0, 1/m); 'full' by the whole dL/dH_v; "
                        "'share' by its attention share w_0 dL/dH_v, the paper's plain gradient, under which an own "
                        "row trains at a fraction of BGE's rate and an item's vector is mostly its catalogue's "
                        "(docs/studies/own-step.md).", choices=("item", "full", "share"))
    cold_share: float = opt(-1.0, "GES/EGES: the share of centres whose side-information mean, the vector the item "
                            "would get without behaviour, is also scored against the centre's window and negatives, "
                            "its gradient going into the side rows (the context rows follow H_v only). -1 is the "
                            "method's default: 1 for GES, whose cold-start items otherwise rank below popularity; 0 "
                            "(the paper's training) for EGES, whose attention would shift to side rows trained that "
                            "way and rank worse (docs/studies/cold-share.md).",
                            min=-1, max=1)
    cold_start: str = opt("mean", "GES/EGES: vectors of items without behaviour are the mean of their side-info "
                          "value vectors (the paper's rule) or weighted by the mean EGES attention per field.",
                          choices=("mean", "attention"))

    def check(self) -> None:
        if self.min_alpha > self.alpha:
            raise ConfigError(f"train.min_alpha ({self.min_alpha}) must not exceed train.alpha ({self.alpha})")
        for key in ("side_alpha", "attention_alpha"):
            if -1 < getattr(self, key) < 0:
                raise ConfigError(f"train.{key} ({getattr(self, key):g}) must be -1 (the item rows' rate) or at least 0")
        if -1 < self.cold_share < 0:
            raise ConfigError(f"train.cold_share ({self.cold_share}) must be between 0 and 1, or -1 for the method's "
                              "default")
        if self.backend == "gensim" and self.method != "auto" and method_of(self.method).side_info:
            raise ConfigError(f"train.backend 'gensim' trains {' and '.join(allowed(False))} only; {self.method} "
                              "needs 'native' (or 'auto')")


@dataclass(frozen=True)
class NeighboursConfig:
    """The item-to-item table a recall service loads: each item's most similar items."""

    k: int = opt(50, "Neighbours per item.", min=1, max=100_000)
    metric: str = opt("cosine", "Similarity: cosine, or dot product of the raw vectors.", choices=("cosine", "dot"))
    block: int = opt(1024, "Rows of items per block of the exact search; with 8,192 columns a product, memory is "
                     "block x 8,192 scores plus every item's list so far (items x k).", min=1,
                     affects_output=False)
    index: str = opt("auto", "exact: blocked matrix products over every item; faiss: an approximate HNSW index "
                     "(faiss-cpu, installed with eges); auto: exact up to neighbours.approximate_above items, faiss above.",
                     choices=("auto", "exact", "faiss"))
    approximate_above: int = opt(250_000, "With index = auto, use the approximate index above this many items "
                                 "(exact search grows with the square of the items).", min=1)
    hnsw_m: int = opt(32, "HNSW graph degree of the approximate index (more: better recall, more memory).", min=4,
                      max=1024)
    ef_search: int = opt(128, "HNSW candidates searched per query (more: better recall, slower).", min=1)


@dataclass(frozen=True)
class UsersConfig:
    """User vectors from each user's most recent items, in the item vectors' space."""

    recent_items: int = opt(20, "How many of the user's most recent session events to average.", min=1,
                            max=1_000_000)
    half_life: float = opt(0.0, "Time decay: an event this many events older than the latest weighs half; "
                           "0 is a plain mean.", min=0)


@dataclass(frozen=True)
class ValidateConfig:
    """The validation slice of the log (the validate stage): the latest events held out by time, on which the
    number of passes (train.epochs = 0) and the method (train.method = auto with a catalog) are chosen, before the
    training stages refit on the whole log. Defaults: docs/studies/validation.md."""

    fraction: float = opt(0.1, "Share of the events, the latest by time, held out to score every pass on "
                          "(docs/studies/validation.md).", min=0.01, max=0.5)
    cold_fraction: float = opt(0.1, "With a catalog: share of the items hidden from training entirely, so "
                               "selection sees cold-start quality too.", min=0.0, max=0.5)
    max_pairs: int = opt(20_000, "Score at most this many held-out pairs per figure (a seeded sample).", min=100)
    max_queries: int = opt(1000, "Next-item pairs come from at most this many distinct query items: HitRate@K "
                           "ranks every item for each, which bounds scoring at a few percent of a pass.", min=10)
    k: int = opt(50, "K of the next-item HitRate@K.", min=1, max=100_000)
    metric: str = opt("hitrate", "What selection maximises: hitrate (next-item HitRate@K, for recall) or auc "
                      "(link AUC of the held-out new edges).", choices=("hitrate", "auc"))
    cold_tolerance: float = opt(0.05, "With a catalog: a method whose cold-start AUC on the slice is more than this "
                                "below the best method's cannot be chosen, whatever its metric (on seven logs BGE's "
                                "value-mean cold items were 0.13-0.24 below, side-information methods within 0.04 of "
                                "each other; docs/evaluation.md).", min=0, max=1)
    race_margin: float = opt(0.1, "With several methods to choose from (they train in turns, a pass each): from "
                             "the second pass on, a method whose best metric so far is more than this share below "
                             "the best another reached within as many passes (or whose cold-start AUC is more than twice "
                             "cold_tolerance below) stops there: it cannot win. The first method in race order (the one "
                             "auto resolves to) is stopped by race_reach only. 0 trains every method to its own early stop. "
                             "On the study's 24 choices among methods 0.1 changed none and cut 28% of the passes "
                             "(docs/evaluation.md).", min=0, max=1)
    race_reach: int = opt(3, "With the race on (validate.race_margin > 0): a method or later trial also stops when its "
                          "best so far, gaining for every pass it may still train what it gained a pass over its "
                          "last race_reach passes, would stay below the score it must beat: a learning curve gains "
                          "less pass after pass, so it cannot catch up. Replayed on 51 recorded selections of seven "
                          "logs (benchmarks/replay_budget.py --vary race_reach=0,2,3,4), 3 changes one choice (a tie "
                          "on the slice, now the cheaper method) and saves up to 34% of a run's walk tokens; 2 "
                          "changes three (up to 0.7% of the slice's metric): a slice's curve is noisy pass to pass "
                          "(docs/evaluation.md, 'Turns, the reach and a bound per event'). 0: off.", min=0, max=1000)
    trial_margin: float = opt(0.05, "The later trials of the chosen recipe (short schedule, graph direction, "
                              "window) race the curve they are compared with by race_margin's rule at this margin "
                              "(a narrower window at as many pairs, not passes). They try one change to a recipe "
                              "already chosen, so they trail or lead by less than methods do: replayed on 130 "
                              "recorded selections (187 later trials, 67 that won), 0.05 stops no winner and saves "
                              "108 of 752 passes, 0.1 saves 67, 0.03 stops one winner (docs/evaluation.md, "
                              "benchmarks/replay_trials.py). 0 races no trial (patience still stops it).", min=0, max=1)
    budget: float = opt(3.0, "The walk tokens the selection may spend, its slice passes plus the refit's, as a "
                        "multiple of the training without validation (the epochs rule's passes x the whole log's "
                        "walk tokens). Spent in order: the methods' race (in turns), then the later trials by how "
                        "often they won on recorded selections (direction, window, short schedule); a method stops "
                        "where one more round of the race's passes and a refit one pass longer would not fit, "
                        "and a later trial that does not fit is not tried. selection.json's token_budget.stopped "
                        "says what it stopped and why. Replayed on 132 recorded selections (benchmarks/replay_budget.py, "
                        "docs/evaluation.md), 3 changes 5 choices, no method: three taobao selections lose 1.0-1.5% "
                        "of the slice's HitRate for 22-41% fewer walk tokens (the direction or short-schedule trial "
                        "cut), two constructed or generated logs more; 4 changes only those two. With train.epochs "
                        "set the multiple is at least the methods + 1, so every method is still compared. 0: no "
                        "multiple (validate.bound_above alone). A warm start's slice (update.epochs = 0: one "
                        "method, at most a fresh run's passes) has no budget.",
                        min=0)
    bound_above: int = opt(200_000_000, "At most this many walk tokens for the selection plus the refit (below "
                           "validate.budget's multiple), unless the training without validation alone exceeds "
                           "it: such a large log selects within that training's tokens, so validation never makes "
                           "its run longer (the 10 M-event log trains 380 M); methods, passes and trials that would "
                           "not fit are not tried.", min=0)
    bound_per_event: float = opt(1500.0, "At most this many walk tokens per event of the log (the sessions' "
                                 "events; an edge list's edges) for the selection plus the refit, below "
                                 "validate.bound_above, with the same exception: a log whose training alone exceeds "
                                 "it selects within that training. Binds where the catalog is large beside the "
                                 "behaviour: twenty walks from every node come to about 100 walk tokens per event a "
                                 "pass on taobao and diginetica, 1-13 on the other logs, so three trainings are "
                                 "2,300-2,500 per event there and at most 370 elsewhere. At 1,500 taobao's default "
                                 "run takes 49 against 66 s, its held-out HitRate@50 99% of the grid's best, "
                                 "diginetica's 97-107% (docs/evaluation.md, 'Turns, the reach and a bound per "
                                 "event'). 0: none.", min=0)
    patience: int = opt(2, "Stop after this many passes without improvement, keeping the best pass "
                        "(docs/studies/validation.md).", min=1, max=1000)
    min_delta: float = opt(0.0, "An improvement smaller than this does not count.", min=0, max=1)
    max_epochs: int = opt(10, "Most passes tried; also capped by the token budget of docs/studies/epochs.md "
                          "(400 million walk tokens), so a large log's selection costs no more than its training "
                          "did.", min=1, max=1000)
    seed: int = opt(0, "Seed of the hidden items and of the sampled pairs.", min=0)
    windows: list[int] = opt([5, 2], "Skip-gram windows the slice chooses from, the first the default: when "
                             "train.window is the first, the chosen method, passes and schedule are trained once "
                             "more per other window, and the training stages take one that scores higher on "
                             "validate.metric without losing more than validate.cold_tolerance of cold AUC (a "
                             "167-item basket log wants 2, a rating log keeps 5; docs/evaluation.md, 'The window, "
                             "chosen on the slice'). A train.window other than the first is the user's and wins; "
                             "[] or one value: no trial.", min=1, max=1000)
    try_undirected: bool = opt(True, "With a directed graph (graph.undirected = false) and a fresh run: the chosen "
                               "method, passes and schedule are trained once more on the slice's graph made "
                               "undirected (before the window trial), and when that scores higher on "
                               "validate.metric without losing more than validate.cold_tolerance of cold AUC the "
                               "training stages read walks of the whole graph made undirected, written by the "
                               "validate stage (baskets and reviews have no order; docs/evaluation.md, 'The walks' "
                               "graph direction'). Within a large log's token bound only; a warm start keeps its "
                               "parent's walks.")
    try_centred: bool = opt(True, "With validate.metric = auc and a fresh run: every pass on the slice is scored "
                            "twice, as trained and centred (the mean of the items' vectors subtracted), and counts "
                            "with whichever scores the higher AUC; when the chosen pass scored higher centred, the "
                            "training stages write centred vectors. Why: skip-gram vectors share a direction whose "
                            "weight follows how often an item was trained, and on a sparse log whose new links are "
                            "mostly between popular items it decides link AUC more than the links do "
                            "(docs/studies/amazon-beauty-link.md). Scoring only: nothing is trained twice.")


@dataclass(frozen=True)
class UpdateConfig:
    """A run with a parent (``--warm-start PARENT``, a daily update): how it continues from the parent run."""

    # ---- the graph's carry-over (read by the graph stage only; GRAPH_UPDATE_KEYS lists these keys)
    events: str = opt("new", "What the events of a run with a parent are: 'new' (only the events since the parent: "
                      "the graph is their transition counts plus the parent's edges carried over, decayed by "
                      "update.carry_over) or 'window' (a window of the log: its graph alone counts and the parent's "
                      "graph is not read). Ignored without a parent.", choices=("new", "window"))
    carry_over: float = opt(0.8, "Factor applied to the parent's edge weights at each update with events = 'new' "
                            "(a weight seen n updates ago counts carry_over^n; 0.8 is a half-life of about three "
                            "daily updates). docs/studies/updates.md chose it.", min=0, max=1)
    min_carried_weight: float = opt(0.2, "A carried edge whose decayed weight falls below this is dropped (the "
                                    "floor of carried weights; graph.min_edge_weight applies to the new counts "
                                    "only). At the defaults an edge seen once lasts seven updates.", min=0)
    forget_days: float = opt(30.0, "Items no update has seen for this many days (by event time, against the newest "
                             "event of the update) fall out of the graph with their edges; 0 never forgets.",
                             min=0)

    # ---- training from the parent's rows (read by the skipgram and eges stages; UPDATE_TRAIN_KEYS lists these)
    epochs: int = opt(-1, "Passes over the walks when the run starts from a parent's vectors (--warm-start): 0 lets "
                      "the new slice decide (the validate stage holds out this run's latest events, trains the "
                      "parent's method from the parent's rows at update.alpha, scores every pass and stops early; "
                      "at most a fresh run's passes); -1 spends a third of a fresh run's walk tokens: a third of its "
                      "passes (at least 1), more when update.other_walks keeps a share of each pass (never more "
                      "than a fresh run's passes); N trains N. Without a parent train.epochs counts (docs/studies/warm-start.md).",
                      min=-1, max=1000)
    alpha: float = opt(-1.0, "Initial learning rate of a warm start, decaying linearly to train.min_alpha over "
                       "the update's passes: lower keeps closer to the parent, higher learns new items faster. 0 "
                       "trains no pass: the parent's rows, aligned to this run's items, new items placed from side "
                       "information. -1 (the default): by rule, train.alpha raised linearly with the share of the "
                       "items the new events touched that the parent never had, to twice it from half new (Taobao, "
                       "75% new: 0.05; the generated sample: 0.025). With update.other_walks = -1 the rule scored "
                       "2.3% below a retrain's HitRate@50 over three Taobao update days (nine runs; 0.025 with every "
                       "walk, the old default: 11.9%, before integer codes) near the retrain's cold AUC (0.770 "
                       "against 0.777), as 0.025 on the generated sample, and above it over a generated week "
                       "(docs/studies/warm-start.md, 2026-12-03 late evening and night).",
                       min=-1, max=10)
    other_walks: float = opt(-1.0, "Share of the walks that start at an item the new events did not touch which "
                             "an update trains on (every walk from a touched item is kept; seeded): below 1 an "
                             "update spends its tokens where the day changed the graph, so each pass costs less and "
                             "update.epochs = -1 affords more passes. 1 keeps every walk. -1 (the default): by rule, "
                             "the share of the run's items the new events touched (Taobao's day: 0.18; a day touching "
                             "every item, or none seen, or an edge list: every walk); with update.alpha = -1 the "
                             "day's rule (docs/studies/warm-start.md, 2026-12-03 afternoon and late evening).",
                             min=-1, max=1)

    def check(self) -> None:
        for key in ("alpha", "other_walks"):
            value = getattr(self, key)
            if -1 < value < 0:
                raise ConfigError(f"update.{key} ({value:g}) must be -1 (by rule) or at least 0")


#: The [update] keys the training stages read; the section's other keys are the graph stage's.
UPDATE_TRAIN_KEYS = ("epochs", "alpha", "other_walks")
#: The [update] keys the graph stage reads (the others are training keys, ignored by the graph stage).
GRAPH_UPDATE_KEYS = ("events", "carry_over", "min_carried_weight", "forget_days")


@dataclass(frozen=True)
class DriftConfig:
    """How far the vectors moved from the reference run (--align-to, else the --warm-start parent): the drift stage."""

    k: int = opt(10, "Neighbours per item compared between the two runs (top-k overlap).", min=1, max=1000)
    queries: int = opt(2_000, "At most this many shared items (a seeded sample) have their neighbours compared; "
                       "each costs one pass over the shared items (2,000 put the mean overlap within about 0.01).",
                       min=1)
    seed: int = opt(0, "Seed of that sample.", min=0)


PROTOCOLS = ("link", "temporal", "cold")
BASELINES = ("popularity", "cooccurrence", "item2vec", "deepwalk", "side_mean")


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluation protocols (`eges evaluate`): splits, methods and baselines compared on the same pairs."""

    protocols: list[str] = opt([], "Protocols `eges run` evaluates too; `eges evaluate --protocol` sets this.",
                               choices=PROTOCOLS, affects_output=False)
    methods: list[str] = opt([], f"Methods to train and score; empty is every method the inputs allow "
                             f"({', '.join(allowed(False))}, and {', '.join(n for n in NAMES if n not in allowed(False))} "
                             "with --items). auto scores what a run with no method set trains on these inputs.",
                             choices=CHOICES)
    baselines: list[str] = opt(list(BASELINES), "Baselines scored on the same split: popularity, item "
                               "co-occurrence (cosine over sessions), item2vec (skip-gram on sessions, no graph), "
                               "deepwalk (uniform walks on the undirected training graph, then skip-gram), "
                               "side_mean (cold start only, with a catalog: a hidden item is the mean of its "
                               "side-information values' item2vec means).", choices=BASELINES)
    seed: int = opt(0, "Seed of the splits and of the negative samples.", min=0)
    link_holdout: float = opt(1 / 3, "Link prediction: share of the graph's edges held out before walks (the "
                              "paper holds out a third).", min=0.01, max=0.9)
    cut_time: str = opt("", "Next-item protocol: train on events before this time (unix seconds or an ISO date "
                        "such as 2017-12-02, UTC); empty cuts at evaluate.train_share of the events.")
    train_share: float = opt(0.8, "Next-item protocol without cut_time: share of the events (by time) to train on.",
                             min=0.05, max=0.99)
    cold_fraction: float = opt(0.1, "Cold-start protocol: share of the log's items whose behaviour is hidden.",
                               min=0.01, max=0.9)
    item2vec_epochs: int = opt(5, "Epochs of the item2vec baseline: sessions hold far fewer tokens than the walks, "
                               "so one pass would leave it under-trained (item2vec's authors use several).", min=1)
    deepwalk_epochs: int = opt(5, "Passes of the DeepWalk baseline over its walks (10 walks of 40 nodes per node, "
                               "window 10; the authors' code trains gensim's default five passes).", min=1)
    ks: list[int] = opt([10, 50], "Cut-offs K of HitRate@K and Recall@K.", min=1)
    max_test_pairs: int = opt(200_000, "Score at most this many held-out pairs per protocol (a seeded sample).",
                              min=100)

    def check(self) -> None:
        from eges.evaluation.splits import parse_cut_time

        parse_cut_time(self.cut_time)


@dataclass(frozen=True)
class EngineConfig:
    """The engine of the sessions, graph and walks stages, and its resources."""

    memory_limit: str = opt("4GB", "Memory cap for the relational engine, a number and a unit (500MB, 4GB, 1.5GiB); "
                            "it spills to disk beyond this.")
    threads: int = opt(0, "Threads for the relational engine; 0 uses every core.", min=0, max=1024)
    temp_directory: str = opt("", "Scratch folder: where DuckDB spills, and where Spark writes each output's parts "
                              "before the driver copies them into the run folder (also spark.local.dir for a local "
                              "master). Empty uses OUT/.spill. On a cluster it must be a path the driver and every "
                              "executor see (a shared mount), like --out.")
    backend: str = opt("duckdb", "Engine of the sessions, graph and walks stages: duckdb (this machine) or spark "
                       "(a Spark cluster; pip install 'eges[spark]', docs/scale-out.md).",
                       choices=("duckdb", "spark"))
    spark_master: str = opt("local[*]", "Spark master when no SparkSession is active (local[*], yarn, "
                            "k8s://..., spark://host:7077); spark-submit's --master wins.")
    spark_conf: list[str] = opt([], "Extra Spark settings as key=value, e.g. spark.executor.memory=8g.")
    spark_log_level: str = opt("FATAL", "Spark's own log on the terminal (log4j's root level), set before Spark "
                               "starts; eges reports every Spark failure in one line, so FATAL keeps the terminal "
                               "quiet. WARN or INFO show Spark's log.",
                               choices=("OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG"))

    def check(self) -> None:
        if not MEMORY_SIZE.fullmatch(self.memory_limit.strip()):
            raise ConfigError(f"engine.memory_limit must be a size such as 500MB, 4GB or 1.5GiB, got "
                              f"{self.memory_limit!r}")
        for item in self.spark_conf:
            if "=" not in item or not item.split("=", 1)[0].strip().startswith("spark."):
                raise ConfigError(f"engine.spark_conf entries must be spark.KEY=VALUE, got {item!r}")


MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


#: Section name -> dataclass: the TOML sections, in the order `eges config --defaults` prints them.
SECTIONS: dict[str, type] = {
    "engine": EngineConfig,
    "sessions": SessionsConfig,
    "graph": GraphConfig,
    "walks": WalksConfig,
    "side_info": SideInfoConfig,
    "train": TrainConfig,
    "validate": ValidateConfig,
    "neighbours": NeighboursConfig,
    "users": UsersConfig,
    "drift": DriftConfig,
    "evaluate": EvaluateConfig,
    "update": UpdateConfig,
}


class Config(Mapping[str, Any]):
    """The whole configuration: an immutable mapping of section name -> frozen section dataclass."""

    def __init__(self, sections: Mapping[str, Any]):
        self._sections = dict(sections)

    def __getitem__(self, key: str) -> Any:
        return self._sections[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._sections[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self):
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: section_to_dict(sec) for name, sec in self._sections.items()}

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some keys of one section changed (validated)."""
        merged = {**section_to_dict(self[section]), **changes}
        new = dict(self._sections)
        new[section] = build_section(section, merged)
        return Config(new)


def section_to_dict(section: Any, output_keys_only: bool = False) -> dict[str, Any]:
    """A section as a plain dict; ``output_keys_only`` leaves out keys that do not change outputs."""
    out = {}
    for f in dataclasses.fields(section):
        if output_keys_only and not f.metadata.get("affects_output", True):
            continue
        value = getattr(section, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _check_value(name: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        kind = "integers" if item is int else "strings"
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, item) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{name} must be a list of {kind}, got {value!r}")
        for v in value:
            _check_bounds(f"{name} entry", v, meta)
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        if not INT_MIN <= value <= INT_MAX:  # the kernels hold every integer setting in 64 bits
            raise ConfigError(f"{name} must be at most {INT_MAX} (64 bits), got {value}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
    elif hint is str and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    _check_bounds(name, value, meta)
    return value


INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def _check_bounds(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    if meta.get("choices") and value not in meta["choices"]:
        allowed = ", ".join(repr(c) for c in meta["choices"])
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
    if meta.get("min") is not None and value < meta["min"]:
        raise ConfigError(f"{name} must be at least {meta['min']}, got {value!r}")
    if meta.get("max") is not None and value > meta["max"]:
        raise ConfigError(f"{name} must be at most {meta['max']}, got {value!r}")


#: Sections that were folded into others (old name -> new): ``--set skipgram.x`` is an error naming train.x, and a
#: config recorded by an older release is carried over by :func:`carry_moved` (a test rebuilds such a manifest).
MOVED = {"skipgram": "train"}


def carry_moved(recorded: Mapping[str, Any], has_catalog: bool) -> tuple[dict[str, Any], list[str]]:
    """A recorded config with its moved sections' keys in their new place, and one note per key whose value that
    changes (so the user reads what happened; nothing is dropped).

    Before [train] held every method, [skipgram] held BGE's settings and [train] those of GES/EGES, and an old
    manifest records both. The old section's value is the one that trained the run when the run's method (its
    recorded ``train.method``, auto resolved by the catalog) has no side information; otherwise [train]'s was, and
    the unused old value is named in a note. A key with no place in the new section is a named error.
    """
    from eges.methods import resolve

    out = {name: dict(values) for name, values in recorded.items() if name not in MOVED}
    notes: list[str] = []
    for old, new in MOVED.items():
        values = recorded.get(old)
        if not isinstance(values, Mapping):
            continue
        target = out.setdefault(new, {})
        method_name = target.get("method", "auto")
        method = resolve(method_name if method_name in NAMES else "auto", has_catalog)
        old_in_force = not method.side_info
        known = {f.name for f in dataclasses.fields(SECTIONS[new])}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"this run's recorded config has {old}.{key} = {value!r}, which [{new}] no longer "
                                  f"has; give a --config without it to rerun, or a new --out")
            if key not in target:
                target[key] = value
                notes.append(f"config {old}.{key} is now {new}.{key}: carried over ({value!r})")
            elif target[key] != value and old_in_force:
                notes.append(f"config {old}.{key} is now {new}.{key}: carried over ({value!r}, which trained this "
                             f"{method.name} run, not {new}.{key} = {target[key]!r})")
                target[key] = value
            elif target[key] != value:
                notes.append(f"config {old}.{key} ({value!r}) is now {new}.{key}, which trained this {method.name} "
                             f"run as {target[key]!r}: kept {target[key]!r}")
    return out, notes


def build_section(name: str, values: Mapping[str, Any]) -> Any:
    """Validate ``values`` against section ``name`` and build its dataclass."""
    if name in MOVED:
        key = next(iter(values), "KEY")
        raise ConfigError(f"the [{name}] section is now part of [{MOVED[name]}]: use {MOVED[name]}.{key} instead of "
                          f"{name}.{key}")
    if name not in SECTIONS:
        raise ConfigError(f"unknown config section [{name}]; known sections: {', '.join(SECTIONS)}")
    cls = SECTIONS[name]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {name}.{unknown[0]}; known keys in [{name}]: {', '.join(fields)}")
    checked = {k: _check_value(f"{name}.{k}", v, hints[k], fields[k].metadata) for k, v in values.items()}
    section = cls(**checked)
    check = getattr(section, "check", None)
    if check is not None:
        check()  # the section's cross-field rules
    return section


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value``; the value is read as TOML, falling back to a bare string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                base: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Build a validated :class:`Config` from defaults, an optional base dict, a TOML file and ``--set``s."""
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    if base:  # a config recorded by an earlier run (moved sections carried over first: carry_moved)
        moved = sorted(set(base) & set(MOVED))
        if moved:
            raise ConfigError(f"a recorded config with a [{moved[0]}] section must be carried over (carry_moved)")
        for name, values in base.items():
            if name in SECTIONS and isinstance(values, dict):
                known = {f.name for f in dataclasses.fields(SECTIONS[name])}
                raw.setdefault(name, {}).update({k: v for k, v in values.items() if k in known})
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory") from None
        except PermissionError:
            raise ConfigError(f"config file {path} is not readable") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for name, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"config file {path}: top-level key {name!r} must be a [section]")
            raw.setdefault(name, {}).update(values)
    for text in overrides:
        section, key, value = parse_override(text)
        raw.setdefault(section, {})[key] = value
    return Config({name: build_section(name, values) for name, values in raw.items()})


def default_config() -> Config:
    return load_config()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def to_toml(config: Config, with_help: bool = True) -> str:
    """Render a config as TOML, each key preceded by its help text."""
    lines: list[str] = []
    for name, section in config.items():
        if with_help and section.__doc__:
            lines.append(f"# {section.__doc__.strip().splitlines()[0]}")
        lines.append(f"[{name}]")
        for f in dataclasses.fields(section):
            if with_help:
                help_text = f.metadata.get("help", "")
                choices = f.metadata.get("choices")
                if choices:
                    help_text += f" One of: {', '.join(map(str, choices))}."
                lines.extend(f"# {chunk}" for chunk in _wrap(help_text))
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)


def _wrap(text: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]
