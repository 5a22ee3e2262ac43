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
    for chunk, ids in _kernel_calls(start_nodes(graph), cfg, graph.n_nodes):
        yield walk_batch(graph.indptr, table, chunk, ids, cfg.seed, cfg.walk_length)


def _kernel_calls(starts: np.ndarray, cfg: WalksConfig, n_nodes: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(start nodes, walk ids) of each kernel call, rounds in order: consecutive rounds share a call up to
    ``cfg.batch_walks`` walks, since on a graph with few start nodes one parallel launch per round costs far more
    than its walks (the walks do not depend on how they are batched)."""
    batch = min(cfg.batch_walks, (2**31 - 1) // cfg.walk_length)  # Arrow list offsets are int32
    if len(starts) == 0:
        return
    per_call = max(1, batch // len(starts))
    for first in range(0, cfg.walks_per_node, per_call):
        rounds = np.arange(first, min(first + per_call, cfg.walks_per_node), dtype=np.int64)
        order = round_order(cfg.seed, rounds, starts)
        ids = walk_ids(rounds[:, None], order, n_nodes).reshape(-1)
        order = order.reshape(-1)
        for lo in range(0, len(order), batch):
            yield order[lo:lo + batch], ids[lo:lo + batch]


def total_walks(graph: CSRGraph, cfg: WalksConfig) -> int:
    return int(len(start_nodes(graph)) * cfg.walks_per_node)


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
