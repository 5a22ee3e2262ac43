"""Walk generation in bounded batches on top of the compiled kernels."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba
import numpy as np
import pyarrow as pa

from eges.config import WalksConfig
from eges.graph.csr import CSRGraph
from eges.rng import start_order_keys
from eges.walks.kernels import build_alias, pack_edges, walk_batch


@contextlib.contextmanager
def numba_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` numba threads (0 keeps the default: every core)."""
    before = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def start_nodes(graph: CSRGraph) -> np.ndarray:
    """Nodes walks start from: those with out-edges (a walk from a dangling node has no pairs)."""
    return np.flatnonzero(graph.out_degree() > 0).astype(np.int32)


#: The most walks ``walks_per_node = 0`` starts from a node: the paper's 20, which every start node got before.
RULE_MAX_WALKS = 20


def walks_per_start(indptr: np.ndarray, weights: np.ndarray, cfg: WalksConfig,
                    unit: float | None = None, mean: float | None = None) -> np.ndarray:
    """Walks started from each node with out-edges (CSR rows with an edge, in node order).

    An explicit ``cfg.walks_per_node`` gives every start node that many. ``0`` is the rule: walks follow how much
    the log holds, ``ceil(walks_per_transition * max(out-weight, mean out-weight))``, at least 1 and at most
    :data:`RULE_MAX_WALKS`, weights counted in ``unit`` (default: the graph's smallest positive edge weight, one
    transition on an event log). Why: on a sparse click log most items are left once, and twenty walks from such a
    node repeat the same few steps; a log whose nodes average more than ``20 / walks_per_transition`` transitions
    (every dense log of the study) keeps twenty from every node, the same walks as before the rule. Nodes below
    the mean get the mean's walks, so a sparse log's rare items are walked alike, and its busy ones up to twenty
    (docs/studies/walk-tokens.md). ``unit`` and ``mean`` are passed by an engine that sees the edges piecewise
    (Spark), so every piece counts alike.
    """
    has = np.diff(indptr) > 0
    n_starts = int(has.sum())
    if cfg.walks_per_node:
        return np.full(n_starts, cfg.walks_per_node, dtype=np.int64)
    if n_starts == 0:
        return np.zeros(0, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    out = np.add.reduceat(weights, indptr[:-1][has])
    unit = smallest_weight(weights) if unit is None else unit
    mean = float(weights.sum()) / n_starts if mean is None else mean
    walks = np.ceil(cfg.walks_per_transition * (np.maximum(out, mean) / unit) - 1e-9)
    return np.clip(walks, 1, RULE_MAX_WALKS).astype(np.int64)


def smallest_weight(weights: np.ndarray) -> float:
    """The unit the rule counts out-weight in: the smallest positive edge weight (1 for transition counts)."""
    positive = weights[weights > 0]
    return float(positive.min()) if len(positive) else 1.0


def node_walks(graph: CSRGraph, cfg: WalksConfig) -> np.ndarray:
    """Walks started from every node (0 for a node without out-edges), by :func:`walks_per_start`."""
    counts = np.zeros(graph.n_nodes, dtype=np.int64)
    counts[start_nodes(graph)] = walks_per_start(graph.indptr, graph.weights, cfg)
    return counts


def round_order(seed: int, walk_round: int | np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The start nodes of one round in the seeded order walks are numbered in (:func:`eges.rng.start_order_keys`,
    shared with the Spark engine); an array of rounds gives one row per round."""
    keys = start_order_keys(seed, walk_round, starts)
    return starts[np.argsort(keys, axis=-1, kind="stable")]  # ``starts`` ascend, so ties go by node as in (key, node)


def walk_ids(walk_round: int | np.ndarray, starts: np.ndarray, n_nodes: int) -> np.ndarray:
    """Each walk's generator id: its round and start node (``round * n_nodes + node``), known without numbering the
    walks, so an engine that starts them all at once on many machines (Spark) seeds each walk the same."""
    return np.int64(walk_round) * np.int64(n_nodes) + starts.astype(np.int64)


def iter_walk_batches(graph: CSRGraph, cfg: WalksConfig) -> Iterator[np.ndarray]:
    """Yield padded int32 walk matrices of at most ``cfg.batch_walks`` rows.

    Each round visits every start node once in a seeded random order (as DeepWalk does), so a
    streaming consumer such as skip-gram with a decaying learning rate sees no node-ordered bias.
    """
    prob, alias = build_alias(graph.indptr, graph.weights)
    table = pack_edges(graph.indptr, graph.indices, prob, alias)
    del prob, alias
    for chunk, ids in _kernel_calls(node_walks(graph, cfg), cfg, graph.n_nodes):
        yield walk_batch(graph.indptr, table, chunk, ids, cfg.seed, cfg.walk_length)


def _kernel_calls(walks: np.ndarray, cfg: WalksConfig, n_nodes: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(start nodes, walk ids) of each kernel call, rounds in order: consecutive rounds share a call up to
    ``cfg.batch_walks`` walks, since on a graph with few start nodes one parallel launch per round costs far more
    than its walks (the walks do not depend on how they are batched).

    ``walks``: walks per node (:func:`node_walks`). Round ``r`` starts from the nodes with more than ``r`` walks,
    in the seeded order of all start nodes, so a node's walk ``r`` is the same walk whatever the others' counts."""
    batch = min(cfg.batch_walks, (2**31 - 1) // cfg.walk_length)  # Arrow list offsets are int32
    starts = np.flatnonzero(walks > 0).astype(np.int32)
    if len(starts) == 0:
        return
    per_call = max(1, batch // len(starts))
    n_rounds = int(walks.max())
    for first in range(0, n_rounds, per_call):
        rounds = np.arange(first, min(first + per_call, n_rounds), dtype=np.int64)
        order = round_order(cfg.seed, rounds, starts)
        ids = walk_ids(rounds[:, None], order, n_nodes)
        keep = walks[order] > rounds[:, None]
        order, ids = order[keep], ids[keep]  # row-major: round by round, each in its seeded order
        for lo in range(0, len(order), batch):
            yield order[lo:lo + batch], ids[lo:lo + batch]


def total_walks(graph: CSRGraph, cfg: WalksConfig) -> int:
    return int(node_walks(graph, cfg).sum())


def random_walks_array(graph: CSRGraph, cfg: WalksConfig) -> np.ndarray:
    """All walks as one padded int32 matrix (for in-memory use; the stage streams instead)."""
    with numba_threads(cfg.threads):
        batches = list(iter_walk_batches(graph, cfg))
    if not batches:
        return np.empty((0, cfg.walk_length), dtype=np.int32)
    return np.concatenate(batches)


def flatten_walks(walks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A padded walk matrix (-1 after a walk's end) as flat int32 node indices and int64 offsets."""
    valid = walks >= 0
    offsets = np.zeros(len(walks) + 1, dtype=np.int64)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    values = walks.reshape(-1) if valid.all() else walks[valid]
    return values.astype(np.int32, copy=False), offsets


def batch_to_arrow(walks: np.ndarray) -> pa.ListArray:
    """A padded walk matrix as an Arrow list<int32> array with the -1 padding removed."""
    values, offsets = flatten_walks(walks)  # a batch holds < 2**31 steps (see iter_walk_batches)
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, type=pa.int32()))
