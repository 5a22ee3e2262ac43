"""The method table: one row per embedding method, read by the CLI, the registry, recall, evaluation, exports,
``eges.load`` and the report (the mapping used to be written out in each of them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eges.errors import ConfigError
from eges.layout import (
    BGE_KEYED_VECTORS,
    BGE_STATE,
    BGE_VECTORS,
    EGES_KEYED_VECTORS,
    EGES_STATE,
    EGES_VECTORS,
)


@dataclass(frozen=True)
class Method:
    name: str
    stage: str  # the stage that trains it
    vectors: str  # item vectors, relative to the run folder
    keyed_vectors: str  # gensim KeyedVectors of the same vectors
    #: trains side-information rows from a catalog (GES, EGES), so it needs ``--items``
    side_info: bool
    #: learns per-item attention over the item and its fields (the kernel's EGES switch); else a plain mean
    attention: bool
    #: gives items without behaviour a vector from their side information
    cold_start: bool
    #: ``train`` keys this method does not read: setting one on the command line prints a warning.
    ignores: tuple[str, ...]
    summary: str
    #: ``train.cold_share`` when it is left at -1: GES trains its cold-start vector on every centre; EGES, whose
    #: attention would follow side rows trained that way, not (docs/studies/cold-share.md).
    cold_share: float = 0.0
    #: the trained state a warm-started child continues from (own rows, context rows, attention logits)
    state: str = ""

    @property
    def needs_catalog(self) -> bool:
        return self.side_info


METHODS: dict[str, Method] = {
    "bge": Method("bge", "skipgram", BGE_VECTORS, BGE_KEYED_VECTORS, side_info=False, attention=False,
                  cold_start=False,
                  ignores=("cold_start", "own_weight", "side_rate_power", "side_alpha", "attention_alpha",
                           "own_step", "cold_share"),
                  summary="skip-gram on item ids (Base Graph Embedding)", state=BGE_STATE),
    "ges": Method("ges", "eges", EGES_VECTORS, EGES_KEYED_VECTORS, side_info=True, attention=False, cold_start=True,
                  ignores=("backend", "own_weight", "attention_alpha"),
                  summary="mean of the item's and its side-information embeddings", cold_share=1.0,
                  state=EGES_STATE),
    "eges": Method("eges", "eges", EGES_VECTORS, EGES_KEYED_VECTORS, side_info=True, attention=True,
                   cold_start=True, ignores=("backend",),
                   summary="attention-weighted item and side-information embeddings", cold_share=0.0,
                   state=EGES_STATE),
}
#: The method names, in the order tables and choices list them.
NAMES: tuple[str, ...] = tuple(METHODS)
#: ``train.method`` choices: a method, or auto (see :func:`resolve`).
CHOICES: tuple[str, ...] = ("auto", *NAMES)
#: What auto picks with and without a catalog.
AUTO_WITH_CATALOG = "eges"
AUTO_WITHOUT_CATALOG = "bge"


def allowed(has_catalog: bool) -> list[str]:
    """Every method the inputs allow: all of them with a catalog, else those without side information."""
    return [name for name, m in METHODS.items() if has_catalog or not m.side_info]


def method_of(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; methods are: {', '.join(METHODS)}")
    return METHODS[name]


def resolve(method: str, has_catalog: bool) -> Method:
    """``train.method`` with auto resolved: eges when a catalog is given, else bge."""
    return method_of((AUTO_WITH_CATALOG if has_catalog else AUTO_WITHOUT_CATALOG) if method == "auto" else method)


def backend(method: str, configured: str) -> str:
    """Who trains ``method``: gensim or the native trainer (``train.backend`` with auto resolved).

    auto is native for every method: on the same walks it trains BGE faster than gensim with HitRate@50 and link
    AUC at or above gensim's (docs/results.md, "Speed against the peer stack").
    """
    if configured == "auto":
        return "native"
    return configured


def cold_share(method: str, configured: float) -> float:
    """``train.cold_share`` with -1 resolved to ``method``'s default."""
    return METHODS[method].cold_share if configured < 0 else configured


def starting_own_weight(method: str, own_weight: float) -> float:
    """The own weight (``train.own_weight``) a method's attention logits start from: 0 for a method that never reads
    them, so the state it writes does not depend on a key it ignores (and its fingerprint leaves out)."""
    return own_weight if method_of(method).attention else 0.0


def ignored_by_all(methods: list[str]) -> tuple[str, ...]:
    """The ``train`` keys none of ``methods`` reads: they cannot change what a stage training one of them writes."""
    if not methods:
        return ()
    return tuple(key for key in METHODS[methods[0]].ignores if all(key in METHODS[m].ignores for m in methods[1:]))


def ignored_settings(method: str, overrides: list[tuple[str, str, Any]]) -> list[str]:
    """The ``train.KEY`` settings among ``overrides`` (section, key, value) that ``method`` does not read."""
    ignored = METHODS[method].ignores
    return [f"train.{key}" for section, key, _ in overrides if section == "train" and key in ignored]
