"""What ``eges tune`` searches: the settings that decide quality on real logs (issue 19), each over a few values.

A candidate is a mapping ``"section.key" -> value`` over every dimension of the space. A key the candidate's method
does not read (``train.own_weight`` for GES and BGE, ``train.side_rate_power`` for BGE: the method table's
``ignores``) holds None, so two candidates that train the same model are one candidate, and the table of trials
shows ``-`` there. The side-information keys are searched only with a catalog, and the methods are
:func:`eges.methods.allowed` for the inputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from eges.config import Config
from eges.methods import METHODS, allowed, resolve

Candidate = dict[str, Any]
METHOD_KEY = "train.method"
EPOCHS_KEY = "train.epochs"


@dataclass(frozen=True)
class Dimension:
    key: str  # section.key
    choices: tuple[Any, ...]
    #: searched only with a catalog (the side-information keys)
    needs_catalog: bool = False

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


#: The values tried. They bracket the defaults by a factor of two to four each way: the range where the real logs of
#: docs/studies/real-logs-defaults.md moved quality; the method's choices come from the inputs (:func:`dimensions`).
#: Walks per node also tries 0, the rule (walks follow each node's out-weight, docs/studies/walk-tokens.md): on a
#: sparse log it trains a fraction of the tokens, and whether it costs quality there is the slice's to say.
DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("train.dimension", (32, 64, 128, 256)),
    Dimension("train.window", (2, 3, 5, 8)),
    Dimension("walks.walk_length", (5, 10, 20, 40)),
    Dimension("walks.walks_per_node", (0, 5, 10, 20, 40)),
    Dimension("train.negative", (2, 5, 10, 20)),
    Dimension("graph.undirected", (False, True)),
    Dimension("train.own_weight", (0.0, 0.25, 0.5, 0.75), needs_catalog=True),
    Dimension("train.side_rate_power", (0.0, 0.25, 0.5, 0.75, 1.0), needs_catalog=True),
)


def dimensions(has_catalog: bool) -> list[Dimension]:
    """The space for these inputs: the method among those the inputs allow, and the side-information keys only
    with a catalog."""
    dims = [d for d in DIMENSIONS if has_catalog or not d.needs_catalog]
    return [Dimension(METHOD_KEY, tuple(allowed(has_catalog))), *dims]


def applies(key: str, method: str) -> bool:
    """Whether ``method`` reads ``key`` (the method table's ``ignores``)."""
    section, name = key.split(".", 1)
    return not (section == "train" and name in METHODS[method].ignores)


def normalised(candidate: Mapping[str, Any]) -> Candidate:
    """``candidate`` with the keys its method ignores set to None (one candidate per model trained)."""
    method = candidate[METHOD_KEY]
    return {key: (value if applies(key, method) else None) for key, value in candidate.items()}


def base_candidate(config: Config, has_catalog: bool) -> Candidate:
    """The settings ``config`` holds on the space's keys (``train.method = auto`` resolved for the inputs): the
    first trial, so the table always shows where the search started."""
    method = resolve(config.train.method, has_catalog).name
    values = {d.key: getattr(config[d.section], d.name) for d in dimensions(has_catalog)}
    return normalised({**values, METHOD_KEY: method})


def candidates(config: Config, has_catalog: bool, seed: int) -> Iterator[Candidate]:
    """The base candidate, then seeded random draws from the space, each model once. Ends when the space (after the
    ignored keys fold together) is exhausted, which on the full space takes tens of thousands of draws."""
    dims = dimensions(has_catalog)
    rng = np.random.default_rng(seed)
    seen: set[tuple[Any, ...]] = set()
    size = int(np.prod([len(d.choices) for d in dims]))
    first = base_candidate(config, has_catalog)
    misses = 0
    pending: Candidate | None = first
    while True:
        if pending is None:
            pending = normalised({d.key: d.choices[int(rng.integers(len(d.choices)))] for d in dims})
        key = tuple(pending[d.key] for d in dims)
        if key not in seen:
            seen.add(key)
            misses = 0
            yield pending
        else:
            misses += 1
            if misses > 20 * size:  # every distinct model drawn
                return
        pending = None


def apply(config: Config, candidate: Mapping[str, Any], passes: int) -> Config:
    """``config`` with the candidate's settings and exactly ``passes`` passes (an explicit ``train.epochs``, so no
    rule or early stop changes them): what a trial trains and what the best trial's TOML holds."""
    changes: dict[str, dict[str, Any]] = {}
    for key, value in candidate.items():
        if value is not None:
            section, name = key.split(".", 1)
            changes.setdefault(section, {})[name] = value
    changes.setdefault("train", {})["epochs"] = int(passes)
    out = config
    for section, values in changes.items():
        out = out.replace(section, **values)
    return out
