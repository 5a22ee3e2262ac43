"""The trainer of every method: skip-gram with negative sampling over streamed walks, with the item's own row only
(BGE) or with its side-information rows (GES, EGES), on the numba kernel of :mod:`eges.train.kernels`.

The method's row in the method table switches the kernel (``Method.attention``) and sets the cold-start share
(``train.cold_share``); nothing here tests a method's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from numba import get_num_threads, njit, prange

from eges.blas import one_blas_thread
from eges.config import TrainConfig
from eges.methods import cold_share, method_of, resolve, starting_own_weight
from eges.side_info.encode import SideInfo
from eges.train.kernels import OWN_STEPS, Arrays, Hyper, aggregate, item_parts, train_epoch
from eges.train.negatives import keep_probabilities, negative_table, side_rates
from eges.walks.generate import numba_threads


@dataclasses.dataclass
class EgesModel:
    """Trained parameters. Rows 0..n_nodes-1 of ``table`` are item embeddings W^0, the rest side-info
    values (field s, value k at ``n_nodes + field_offset[s] + k``). ``uses_attention``: H_v weighs its parts by
    the softmax of ``attention`` (else their plain mean)."""

    table: np.ndarray
    context: np.ndarray
    attention: np.ndarray
    side: SideInfo
    uses_attention: bool
    losses: list[float]

    @property
    def n_nodes(self) -> int:
        return self.context.shape[0]

    def value_vectors(self) -> np.ndarray:
        return self.table[self.n_nodes:]

    def attention_weights(self) -> np.ndarray:
        """Normalised weight of each part (own, field 1..n) per behaviour item; 0 where a part is missing."""
        return _weights(self.attention, self.side.codes[: self.n_nodes], self.uses_attention)


@dataclasses.dataclass
class StartState:
    """Where training starts instead of small random rows (a warm start from a parent run): ``table`` has the
    kernel's layout (n_nodes item rows, then every side-information value row), ``context`` n_nodes rows,
    ``attention`` (n_nodes, 1 + n_fields) logits. The caller aligns the parent's rows to this run's indices."""

    table: np.ndarray
    context: np.ndarray
    attention: np.ndarray


#: What ``on_epoch`` gets after each pass: (passes done, mean loss of the pass, the model as it stands). It returns
#: True to stop training there (early stopping); the model it sees is live: copy what must outlive the next pass.
EpochCallback = Callable[[int, float, "EgesModel"], "bool | None"]


#: The epochs rule (train.epochs = 0): enough passes that training sees EPOCH_TOKEN_BUDGET walk tokens, at most
#: MAX_AUTO_EPOCHS; a log whose walks already hold that many trains once. The study behind the numbers is in
#: docs/studies/epochs.md.
EPOCH_TOKEN_BUDGET = 400_000_000
MAX_AUTO_EPOCHS = 10


def auto_epochs(tokens_per_epoch: int, budget: int = EPOCH_TOKEN_BUDGET, most: int = MAX_AUTO_EPOCHS) -> int:
    """Passes over walks of ``tokens_per_epoch`` tokens: ceil(budget / tokens), between 1 and ``most``."""
    if tokens_per_epoch <= 0:
        return 1
    return int(min(most, max(1, -(-budget // tokens_per_epoch))))


def resolve_epochs(cfg: TrainConfig, tokens_per_epoch: int) -> TrainConfig:
    """``cfg`` with its epochs decided: as set, or by :func:`auto_epochs` when ``train.epochs`` is 0."""
    return cfg if cfg.epochs else dataclasses.replace(cfg, epochs=auto_epochs(int(tokens_per_epoch)))


def step_scale(rate: float, cfg: TrainConfig) -> np.float32:
    """The factor on a table's steps that starts it at ``rate`` instead of the item rows' ``alpha`` (the kernel has
    one decaying rate): 1 at -1 (the item rows' rate) or when nothing trains (alpha 0)."""
    if rate < 0 or cfg.alpha <= 0:
        return np.float32(1.0)
    return np.float32(rate / cfg.alpha)


def side_step_scale(cfg: TrainConfig) -> np.float32:
    """The factor on every side-information value row's step that starts it at ``train.side_alpha`` (the rows'
    steps are scaled per row, ``Arrays.side_rate``)."""
    return step_scale(cfg.side_alpha, cfg)


def initial_attention(n_nodes: int, n_fields: int, own_weight: float) -> np.ndarray:
    """EGES attention logits before training: uniform (0, the paper's) or the item's own embedding at
    ``own_weight`` of H_v and the fields sharing the rest equally (a_0 = log(own / (1 - own) * n_fields))."""
    attention = np.zeros((n_nodes, n_fields + 1), dtype=np.float32)
    if own_weight > 0 and n_fields:
        attention[:, 0] = np.log(own_weight / (1 - own_weight) * n_fields)
    return attention


def train(walk_values: np.ndarray, walk_offsets: np.ndarray, n_nodes: int, side: SideInfo, cfg: TrainConfig,
          method: str, on_epoch: EpochCallback | None = None, start: StartState | None = None) -> EgesModel:
    """Train ``method`` (a name in the method table) on in-memory walks (flat node indices + offsets) with the
    ``[train]`` settings. ``side.codes`` rows 0..n_nodes-1 are the nodes (no fields: each item its own row only)."""
    counts = np.bincount(walk_values, minlength=n_nodes)
    return train_stream(lambda: iter([(walk_values, walk_offsets)]), counts, n_nodes, side, cfg, method,
                        on_epoch=on_epoch, start=start)


def compile_kernel() -> None:
    """Compile (or load from numba's cache) the training kernel on a toy problem, so a progress bar started after
    this shows a rate and ETA of training, not of compilation."""
    side = SideInfo(["f"], np.zeros((2, 1), dtype=np.int32), [["v"]])
    cfg = TrainConfig(dimension=2, epochs=1, threads=1, sample=0)
    train(np.array([0, 1, 0], dtype=np.int32), np.array([0, 3], dtype=np.int64), 2, side, cfg,
          resolve("auto", has_catalog=True).name)


#: Each batch of an epoch gets its own generator stream: the kernel seeds walk w of a batch by (seed, stream, w).
_STREAMS_PER_EPOCH = 1_000_003


def train_stream(batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], counts: np.ndarray, n_nodes: int,
                 side: SideInfo, cfg: TrainConfig, method: str,
                 on_epoch: EpochCallback | None = None,
                 on_tokens: Callable[[int], None] | None = None, start: StartState | None = None) -> EgesModel:
    """Train on walks streamed batch by batch, every epoch (``batches()`` is called once per epoch): memory is the
    model plus one batch. ``counts`` are the node frequencies in the walks (for negatives and down-sampling).

    The learning rate decays with the tokens done over all batches and epochs; one thread is bit-for-bit
    reproducible for a seed and the same batches. ``start`` replaces the random initial rows (a warm start; with a
    start, ``cfg.epochs`` 0 trains no pass and returns the start, where without one 0 means the epochs rule);
    ``on_epoch`` may stop training after any pass (the learning rate still decays over ``cfg.epochs`` passes, so a
    stopped run has not reached ``min_alpha``).
    """
    row = method_of(method)
    if start is not None and cfg.epochs == 0:  # a warm start with no pass (update.epochs = 0): the start as it is
        n_fields = len(side.fields)
        arrays = _start_arrays(start, (n_nodes + side.n_values, cfg.dimension), (n_nodes, cfg.dimension),
                               (n_nodes, n_fields + 1))
        return EgesModel(*arrays, side, bool(row.attention), [])
    model = None
    # One BLAS thread: the passes alternate with on_epoch's scoring (matrix products), after which OpenBLAS's
    # threads would spin on the cores the passes need; and train.threads numba threads for that scoring too.
    with numba_threads(cfg.threads), one_blas_thread():
        for epoch, loss, model in train_passes(batches, counts, n_nodes, side, cfg, method, on_tokens, start):
            if on_epoch and on_epoch(epoch, loss, model):
                break
    assert model is not None  # the epochs rule gives at least one pass
    return model


def train_passes(batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], counts: np.ndarray, n_nodes: int,
                 side: SideInfo, cfg: TrainConfig, method: str, on_tokens: Callable[[int], None] | None = None,
                 start: StartState | None = None) -> Iterator[tuple[int, float, EgesModel]]:
    """:func:`train_stream`'s passes one at a time: (the pass, its loss, the model so far) after each, so a caller
    can train several models in turns, a pass each (the validation slice's race). Nothing is held between passes:
    numba's thread count and the BLAS limit are set for each pass's kernels only. ``cfg.epochs`` 0 resolves by the
    epochs rule on ``counts`` (a warm ``start`` too); the validation slice passes its most passes instead."""
    row = method_of(method)
    cfg = resolve_epochs(cfg, int(np.sum(counts[:n_nodes])))
    rng = np.random.default_rng(cfg.seed)
    dim = cfg.dimension
    table = ((rng.random((n_nodes + side.n_values, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    context = np.zeros((n_nodes, dim), dtype=np.float32)
    attention = initial_attention(n_nodes, len(side.fields), starting_own_weight(method, cfg.own_weight))
    if start is not None:
        table, context, attention = _start_arrays(start, table.shape, context.shape, attention.shape)
    counts = np.asarray(counts[:n_nodes], dtype=np.int64)
    arrays = Arrays(table=table, context=context, attention=attention, has_own=counts > 0,
                    codes=np.ascontiguousarray(side.codes[:n_nodes]),
                    field_offset=np.asarray(side.field_offset, dtype=np.int64),
                    side_rate=side_rates(counts, side, cfg.side_rate_power) * side_step_scale(cfg),
                    neg_table=negative_table(np.maximum(counts, 0), cfg.ns_exponent),
                    keep_prob=keep_probabilities(counts, cfg.sample))
    hyper = Hyper(window=int(cfg.window), negative=int(cfg.negative), attention=bool(row.attention),
                  own_step=OWN_STEPS[cfg.own_step],
                  cold_share=float(cold_share(method, cfg.cold_share) if side.fields else 0.0),
                  alpha=float(cfg.alpha), min_alpha=float(cfg.min_alpha),
                  total_tokens=int(counts.sum()) * cfg.epochs, seed=int(cfg.seed),
                  attention_scale=float(step_scale(cfg.attention_alpha, cfg)))
    losses: list[float] = []
    done = 0
    for epoch in range(cfg.epochs):
        loss_sum, tokens = 0.0, 0
        with numba_threads(cfg.threads), one_blas_thread():
            threads = get_num_threads()
            for b, (values, offsets) in enumerate(batches()):
                values = np.ascontiguousarray(values, dtype=np.int32)
                offsets = np.ascontiguousarray(offsets, dtype=np.int64) - offsets[0]
                n_walks = len(offsets) - 1
                if n_walks <= 0:
                    continue
                # Enough chunks that every thread has work in this batch (the kernel interleaves them).
                chunk = max(1, min(4096, n_walks // (16 * max(threads, 1)) or 1))
                loss = train_epoch(values, offsets, arrays, hyper, done, epoch * _STREAMS_PER_EPOCH + b, chunk)
                loss_sum += float(loss) * len(values)
                tokens += len(values)
                done += len(values)
                if on_tokens:
                    on_tokens(len(values))
        losses.append(loss_sum / max(tokens, 1))
        yield epoch + 1, losses[-1], EgesModel(arrays.table, arrays.context, arrays.attention, side,
                                               bool(row.attention), list(losses))


def _start_arrays(start: StartState, table: tuple[int, ...], context: tuple[int, ...],
                  attention: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of the start state's arrays in the kernel's dtypes, checked against the shapes this run trains."""
    out = []
    for name, given, shape in (("table", start.table, table), ("context", start.context, context),
                               ("attention", start.attention, attention)):
        if given.shape != shape:
            raise ValueError(f"the start state's {name} has shape {given.shape}, this run trains {shape}")
        out.append(np.array(given, dtype=np.float32, order="C", copy=True))
    return out[0], out[1], out[2]


def native_skipgram(batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], counts: np.ndarray,
                    n_nodes: int, cfg: TrainConfig, method: str | None = None,
                    on_tokens: Callable[[int], None] | None = None,
                    on_epoch: EpochCallback | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Skip-gram without side information (BGE, and the item2vec baseline on sessions) on the native trainer:
    (node indices that have a vector, their float32 vectors) ordered by node index, like the gensim reference.

    ``method`` is a method without side information (default: the one the table picks without a catalog). Walks
    are streamed (``batches()`` once per epoch); nodes no walk visits get no vector (gensim's vocabulary leaves them
    out too).
    """
    model = native_skipgram_model(batches, counts, n_nodes, cfg, method, on_tokens, on_epoch=on_epoch)
    visited = np.flatnonzero(np.asarray(counts[:n_nodes]) > 0)
    return visited.astype(np.int64), np.ascontiguousarray(behaviour_vectors(model)[visited])


def native_skipgram_model(batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], counts: np.ndarray,
                          n_nodes: int, cfg: TrainConfig, method: str | None = None,
                          on_tokens: Callable[[int], None] | None = None,
                          start: StartState | None = None, on_epoch: EpochCallback | None = None) -> EgesModel:
    """The whole model of :func:`native_skipgram` (every node's rows, for a child run's warm start)."""
    method = method or resolve("auto", has_catalog=False).name
    no_fields = SideInfo([], np.zeros((n_nodes, 0), dtype=np.int32), [])
    return train_stream(batches, counts, n_nodes, no_fields, cfg, method, on_tokens=on_tokens, start=start,
                        on_epoch=on_epoch)


@njit(cache=True, parallel=True)
def _aggregate_all(table, attention, has_own, codes, field_offset, n_nodes, uses_attention):  # noqa: ANN001, ANN202
    n = codes.shape[0]
    out = np.zeros((n, table.shape[1]), dtype=np.float32)
    ok = np.zeros(n, dtype=np.bool_)
    for v in prange(n):
        rows = np.empty(codes.shape[1] + 1, dtype=np.int64)
        slots = np.empty(codes.shape[1] + 1, dtype=np.int64)
        weights = np.empty(codes.shape[1] + 1, dtype=np.float64)
        m = item_parts(v, has_own[v], codes, field_offset, n_nodes, rows, slots)
        if m > 0:
            aggregate(table, attention, v, rows, slots, m, uses_attention, weights, out[v])
            ok[v] = True
    return out, ok


def _weights(attention: np.ndarray, codes: np.ndarray, uses_attention: bool) -> np.ndarray:
    present = np.concatenate([np.ones((len(codes), 1), bool), codes >= 0], axis=1)
    logits = np.where(present, attention if uses_attention else 0.0, -np.inf)
    logits = logits - logits.max(axis=1, keepdims=True)
    w = np.exp(logits) * present
    return w / w.sum(axis=1, keepdims=True)


def behaviour_vectors(model: EgesModel) -> np.ndarray:
    """H_v of every behaviour item (the paper's item embedding)."""
    has_own = np.ones(model.n_nodes, dtype=np.bool_)
    out, _ = _aggregate_all(model.table, model.attention, has_own,
                            np.ascontiguousarray(model.side.codes[: model.n_nodes]), model.side.field_offset,
                            model.n_nodes, model.uses_attention)
    return out
