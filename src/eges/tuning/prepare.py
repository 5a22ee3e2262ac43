"""The files a tune reads: the run's sessions and vocabulary, and the catalog encoded over that vocabulary; the
validation slice is held out of them once (:func:`eges.validation.make_holdout`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from eges.config import Config
from eges.errors import EgesError
from eges.layout import SESSIONS, VOCAB


class SliceError(EgesError):
    """The log leaves nothing to validate on (too short, or no transition after the cut between known items)."""


def read_slice(out: Path, config: Config, inputs: Any) -> tuple[Any, Any, int]:
    """(holdout, side information or None, vocabulary size) of the run folder ``out``.

    The slice is held out with a directed graph whatever the config says: its pairs (and so the question every
    trial answers) must not depend on a searched setting; a trial with ``graph.undirected`` trains on the same
    training rows made undirected.
    """
    from eges.validation import make_holdout

    vocab = pq.read_table(out / VOCAB, columns=["item_id", "item_index"]).sort_by("item_index")
    sessions = pq.read_table(out / SESSIONS, columns=["position", "item_index", "ts"])
    n_items = vocab.num_rows
    has_catalog = inputs.items is not None
    try:
        holdout = make_holdout(sessions["item_index"].to_numpy(), sessions["position"].to_numpy(),
                               sessions["ts"].to_numpy(), n_items, config.replace("graph", undirected=False),
                               has_catalog, config.validate.seed)
    except ValueError as exc:
        raise SliceError(f"cannot hold out a validation slice of {inputs.events}: {exc} (validate.fraction is "
                         f"{config.validate.fraction:g}; a longer log, or a larger fraction, gives one)") from None
    side = None
    if has_catalog:
        from eges.pipeline.side_info_stage import read_catalog
        from eges.side_info.encode import encode

        scfg = config.side_info
        catalog, fields, _ = read_catalog(inputs.items, scfg, vocab.schema.field("item_id").type)
        side, _ = encode(catalog, vocab["item_id"].to_pylist(), scfg.id_col, fields, scfg.numeric_buckets,
                         scfg.numeric)
    return holdout, side, n_items
