"""Training GES/EGES on walks and placing cold-start items from their side information."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, njit, prange

from eges.config import TrainConfig
from eges.methods import cold_share
from eges.side_info.encode import SideInfo
from eges.side_info.kernels import OWN_STEPS, aggregate, item_parts, train_epoch
from eges.walks.generate import numba_threads


@dataclass
class EgesModel:
    """Trained parameters. Rows 0..n_nodes-1 of ``table`` are item embeddings W^0, the rest side-info
    values (field s, value k at ``n_nodes + field_offset[s] + k``)."""

    table: np.ndarray
    context: np.ndarray
    attention: np.ndarray
    side: SideInfo
    eges: bool
    losses: list[float]

    @property
    def n_nodes(self) -> int:
        return self.context.shape[0]

    def value_vectors(self) -> np.ndarray:
        return self.table[self.n_nodes:]

    def attention_weights(self) -> np.ndarray:
        """Normalised weight of each part (own, field 1..n) per behaviour item; 0 where a part is missing."""
        return _weights(self.attention, self.side.codes[: self.n_nodes], self.eges)


def negative_table(counts: np.ndarray, exponent: float, size: int | None = None) -> np.ndarray:
    """Node indices laid out so a uniform draw follows counts**exponent (word2vec's unigram table)."""
    p = counts.astype(np.float64) ** exponent
    p /= p.sum()
    size = size or int(min(max(10 * len(counts), 1_000_000), 50_000_000))
    return np.searchsorted(np.cumsum(p), (np.arange(size) + 0.5) / size).astype(np.int32).clip(0, len(counts) - 1)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's down-sampling: the chance each occurrence of a node is kept (1 for rare nodes)."""
    if sample <= 0:
        return np.ones(len(counts), dtype=np.float64)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.sqrt(counts / threshold) + 1) * threshold / counts
    return np.where(counts > 0, np.minimum(p, 1.0), 1.0)


def train(walk_values: np.ndarray, walk_offsets: np.ndarray, n_nodes: int, side: SideInfo, cfg: TrainConfig,
          method: str = "eges", on_epoch: Callable[[int, float], None] | None = None) -> EgesModel:
    """Train ``method`` (bge: no side fields; ges; eges) on in-memory walks (flat node indices + offsets) with the
    ``[train]`` settings. ``side.codes`` rows 0..n_nodes-1 are the nodes."""
    counts = np.bincount(walk_values, minlength=n_nodes)
    return train_stream(lambda: iter([(walk_values, walk_offsets)]), counts, n_nodes, side, cfg, method,
                        on_epoch=on_epoch)


#: The epochs rule (train.epochs = 0): enough passes that training sees EPOCH_TOKEN_BUDGET walk tokens, at most
#: MAX_AUTO_EPOCHS; a log whose walks already hold that many trains once. The study behind the numbers is in
#: docs/evaluation.md ("How many epochs").
EPOCH_TOKEN_BUDGET = 400_000_000
MAX_AUTO_EPOCHS = 10


def auto_epochs(tokens_per_epoch: int, budget: int = EPOCH_TOKEN_BUDGET, most: int = MAX_AUTO_EPOCHS) -> int:
    """Passes over walks of ``tokens_per_epoch`` tokens: ceil(budget / tokens), between 1 and ``most``."""
    if tokens_per_epoch <= 0:
        return 1
    return int(min(most, max(1, -(-budget // tokens_per_epoch))))


def resolve_epochs(cfg: TrainConfig, tokens_per_epoch: int) -> TrainConfig:
    """``cfg`` with its epochs decided: as set, or by :func:`auto_epochs` when ``train.epochs`` is 0."""
    import dataclasses

    return cfg if cfg.epochs else dataclasses.replace(cfg, epochs=auto_epochs(int(tokens_per_epoch)))


def initial_attention(n_nodes: int, n_fields: int, own_weight: float) -> np.ndarray:
    """EGES attention logits before training: uniform (0, the paper's) or the item's own embedding at
    ``own_weight`` of H_v and the fields sharing the rest equally (a_0 = log(own / (1 - own) * n_fields))."""
    attention = np.zeros((n_nodes, n_fields + 1), dtype=np.float32)
    if own_weight > 0 and n_fields:
        attention[:, 0] = np.log(own_weight / (1 - own_weight) * n_fields)
    return attention


def side_rates(counts: np.ndarray, side: SideInfo, power: float) -> np.ndarray:
    """Step scale of each side-information value's row: (mean item frequency / the value's frequency)^power, at most
    1, where a value's frequency is its items' occurrences in the walks.

    Why: the row of a value receives the gradient of every item that has it, so with plain steps its norm grows with
    its items' total frequency (on the sample, category rows end three times as long as the items' own rows) and an
    item's H_v points mostly along its category. Scaling each row's step by its frequency, as per-row adaptive
    optimisers do, keeps shared rows on the scale of the item rows (docs/evaluation.md, "Shared rows")."""
    n_nodes = len(counts)
    freq = np.zeros(side.n_values, dtype=np.float64)
    codes = side.codes[:n_nodes]
    for s, off in enumerate(side.field_offset):
        known = codes[:, s] >= 0
        np.add.at(freq, off + codes[known, s], counts[known])
    seen = counts[counts > 0]
    mean_item = float(seen.mean()) if len(seen) else 1.0
    rate = np.ones(side.n_values, dtype=np.float64)
    used = freq > 0
    rate[used] = np.minimum(1.0, mean_item / freq[used]) ** power
    return rate.astype(np.float32)


def compile_kernel() -> None:
    """Compile (or load from numba's cache) the training kernel on a toy problem, so a progress bar started after
    this shows a rate and ETA of training, not of compilation."""
    side = SideInfo(["f"], np.zeros((2, 1), dtype=np.int32), [["v"]])
    cfg = TrainConfig(dimension=2, epochs=1, threads=1, sample=0)
    train(np.array([0, 1, 0], dtype=np.int32), np.array([0, 3], dtype=np.int64), 2, side, cfg, "eges")


#: Each batch of an epoch gets its own generator stream: the kernel seeds walk w of a batch by (seed, stream, w).
_STREAMS_PER_EPOCH = 1_000_003


def train_stream(batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], counts: np.ndarray, n_nodes: int,
                 side: SideInfo, cfg: TrainConfig, method: str = "eges",
                 on_epoch: Callable[[int, float], None] | None = None,
                 on_tokens: Callable[[int], None] | None = None) -> EgesModel:
    """Train on walks streamed batch by batch, every epoch (``batches()`` is called once per epoch): memory is the
    model plus one batch. ``counts`` are the node frequencies in the walks (for negatives and down-sampling).

    The learning rate decays with the tokens done over all batches and epochs; one thread is bit-for-bit
    reproducible for a seed and the same batches.
    """
    cfg = resolve_epochs(cfg, int(np.sum(counts[:n_nodes])))
    rng = np.random.default_rng(cfg.seed)
    dim = cfg.dimension
    table = ((rng.random((n_nodes + side.n_values, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    context = np.zeros((n_nodes, dim), dtype=np.float32)
    attention = initial_attention(n_nodes, len(side.fields), cfg.own_weight)
    counts = np.asarray(counts[:n_nodes], dtype=np.int64)
    has_own = counts > 0
    neg = negative_table(np.maximum(counts, 0), cfg.ns_exponent)
    codes = np.ascontiguousarray(side.codes[:n_nodes])
    total = int(counts.sum()) * cfg.epochs
    keep = keep_probabilities(counts, cfg.sample)
    rates = side_rates(counts, side, cfg.side_rate_power)
    share = cold_share(method, cfg.cold_share) if side.fields else 0.0
    losses = []
    done = 0
    with numba_threads(cfg.threads):
        threads = get_num_threads()
        for epoch in range(cfg.epochs):
            loss_sum, tokens = 0.0, 0
            for b, (values, offsets) in enumerate(batches()):
                values = np.ascontiguousarray(values, dtype=np.int32)
                offsets = np.ascontiguousarray(offsets, dtype=np.int64) - offsets[0]
                n_walks = len(offsets) - 1
                if n_walks <= 0:
                    continue
                max_len = int(np.diff(offsets).max())
                # Enough chunks that every thread has work in this batch (the kernel interleaves them).
                chunk = max(1, min(4096, n_walks // (16 * max(threads, 1)) or 1))
                loss = train_epoch(values, offsets, table, context, attention, has_own, codes, side.field_offset,
                                   neg, keep, max_len, cfg.window, cfg.negative, method == "eges", cfg.alpha,
                                   cfg.min_alpha, done, total, cfg.seed, epoch * _STREAMS_PER_EPOCH + b, chunk,
                                   side_rate=rates, own_step=OWN_STEPS[cfg.own_step],
                                   cold_share=share)
                loss_sum += float(loss) * len(values)
                tokens += len(values)
                done += len(values)
                if on_tokens:
                    on_tokens(len(values))
            losses.append(loss_sum / max(tokens, 1))
            if on_epoch:
                on_epoch(epoch + 1, losses[-1])
    return EgesModel(table, context, attention, side, method == "eges", losses)


@njit(cache=True, parallel=True)
def _aggregate_all(table, attention, has_own, codes, field_offset, n_nodes, eges):  # noqa: ANN001
    n = codes.shape[0]
    out = np.zeros((n, table.shape[1]), dtype=np.float32)
    ok = np.zeros(n, dtype=np.bool_)
    for v in prange(n):
        rows = np.empty(codes.shape[1] + 1, dtype=np.int64)
        slots = np.empty(codes.shape[1] + 1, dtype=np.int64)
        weights = np.empty(codes.shape[1] + 1, dtype=np.float64)
        m = item_parts(v, has_own[v], codes, field_offset, n_nodes, rows, slots)
        if m > 0:
            aggregate(table, attention, v, rows, slots, m, eges, weights, out[v])
            ok[v] = True
    return out, ok


def _weights(attention: np.ndarray, codes: np.ndarray, eges: bool) -> np.ndarray:
    present = np.concatenate([np.ones((len(codes), 1), bool), codes >= 0], axis=1)
    logits = np.where(present, attention if eges else 0.0, -np.inf)
    logits = logits - logits.max(axis=1, keepdims=True)
    w = np.exp(logits) * present
    return w / w.sum(axis=1, keepdims=True)


def behaviour_vectors(model: EgesModel) -> np.ndarray:
    """H_v of every behaviour item (the paper's item embedding)."""
    has_own = np.ones(model.n_nodes, dtype=np.bool_)
    out, _ = _aggregate_all(model.table, model.attention, has_own, np.ascontiguousarray(model.side.codes[: model.n_nodes]),
                            model.side.field_offset, model.n_nodes, model.eges)
    return out


def cold_start_vectors(model: EgesModel, codes: np.ndarray, seen: np.ndarray,
                       field_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for items without behaviour from their side-information value vectors.

    ``field_weights=None`` is the paper's rule (the mean of the known values); otherwise a weighted mean
    with one weight per field (the mean EGES attention), renormalised over the fields an item has.
    Values never seen in training (``seen`` False at their row) are skipped. Returns (vectors, has_vector).
    """
    values = model.value_vectors()
    offsets = model.side.field_offset
    n, f = codes.shape
    vecs = np.zeros((n, values.shape[1]), dtype=np.float32)
    total = np.zeros(n, dtype=np.float64)
    weights = np.ones(f) if field_weights is None else np.asarray(field_weights, dtype=np.float64)
    for s in range(f):
        rows = offsets[s] + codes[:, s]
        usable = (codes[:, s] >= 0) & seen[np.where(codes[:, s] >= 0, rows, 0)]
        vecs[usable] += weights[s] * values[rows[usable]]
        total[usable] += weights[s]
    ok = total > 0
    vecs[ok] /= total[ok, None].astype(np.float32)
    return vecs, ok


def seen_values(side: SideInfo, n_nodes: int, visited: np.ndarray | None = None) -> np.ndarray:
    """Which side-information values belong to at least one behaviour item some walk visits (so were trained)."""
    seen = np.zeros(side.n_values, dtype=bool)
    codes = side.codes[:n_nodes] if visited is None else side.codes[:n_nodes][visited]
    for s, off in enumerate(side.field_offset):
        known = codes[:, s] >= 0
        seen[off + codes[known, s]] = True
    return seen
