"""A warm start's numeric buckets: the bounds its parent cut each quantity with, which every reader of the child's
catalog cuts with too (:func:`parent_cuts`), so the parent's bucket rows carry over however the catalog grew."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.errors import ParentError
from eges.layout import NODES, SIDE_VECTORS
from eges.pipeline import io
from eges.pipeline.parent import RERUN, parent_manifest, parent_training, parent_value_labels


def parent_cuts(parent: str | None, catalog: Any = None, scfg: Any = None) -> dict[str, np.ndarray]:
    """The bounds of the parent's quantile buckets by field, which every reader of this run's catalog cuts with
    (:func:`eges.side_info.encode.encode`), or {} without a parent. Cut afresh, a grown catalog moves the quantiles,
    the buckets' labels no longer match the parent's and their rows start from the field's mean.

    A parent records its bounds in its training stage's details (``numeric_bounds``, exact). An older one's labels
    keep six significant digits, which may merge close bounds, so per field, the first that applies: the bounds cut
    again from the parent's own catalog file (unchanged since it trained), exact; this run's own cut of its
    ``catalog`` (pandas, read with ``scfg``) when that gives the parent's labels (the field is left out: cut afresh,
    exact on the parent's own catalog); the bounds read back from the labels when every one is above the one
    before; else none (cut afresh, as before bounds were shared)."""
    if parent is None:
        return {}
    from eges.side_info.encode import bounds_for_labels, checked_bounds

    manifest = parent_manifest(parent)
    _, entry, _ = parent_training(parent, manifest)
    details = entry.get("details", {})
    recorded = details.get("numeric_bounds")
    if recorded is not None:
        cuts = {f: checked_bounds(b) for f, b in (recorded.items() if isinstance(recorded, dict) else [("?", None)])}
        broken = [f for f, b in cuts.items() if b is None]
        if broken:
            raise ParentError(f"--warm-start {parent}: the bucket bounds its manifest records (numeric_bounds, field "
                              f"{broken[0]!r}) are not two or more numbers in order; {RERUN}")
        return {f: b for f, b in cuts.items() if b is not None}
    treated = details.get("fields", {})
    bucketed = [f for f, how in treated.items() if "quantile" in str(how)] if isinstance(treated, dict) else []
    if not bucketed or not (Path(parent) / SIDE_VECTORS).exists():
        return {}
    labels = parent_value_labels(parent, bucketed)
    cuts = _cut_as_the_parent(parent, manifest, entry, labels)
    buckets, numeric = (scfg.numeric_buckets, scfg.numeric) if scfg is not None else (0, [])
    for f in (f for f in bucketed if f not in cuts):
        ours = catalog[f] if catalog is not None and scfg is not None and f in catalog.columns else None
        bounds = bounds_for_labels(labels[f], ours, buckets, f in numeric)
        if bounds is not None:
            cuts[f] = bounds
    return cuts


def _cut_as_the_parent(parent: str, manifest: dict[str, Any], entry: dict[str, Any],
                       labels: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """The bounds an older parent cut its fields with, cut again from its catalog file as it did (its side_info
    settings, its ids' type) while the file is the one it trained on (same digest): per field whose cut labels its
    buckets as the parent's ``labels``. {} when the file is gone, changed or external."""
    import logging

    from eges.config import build_section
    from eges.errors import EgesError
    from eges.pipeline.side_info_stage import read_catalog
    from eges.side_info.encode import encode_column

    source = manifest.get("inputs", {}).get("items")
    known = entry.get("inputs", {}).get("@items")
    if not isinstance(source, str) or not isinstance(known, dict) or io.is_external(source):
        return {}
    logger = logging.getLogger("eges")
    quiet = logger.disabled
    logger.disabled = True  # the parent's catalog's warnings were the parent's
    try:
        if not Path(source).exists() or io.source_fingerprint(source)["digest"] != known.get("digest"):
            return {}
        scfg = build_section("side_info", entry.get("config", {}).get("side_info", {}))
        id_type = pq.read_schema(Path(parent) / NODES).field("item_id").type
        catalog, fields, _ = read_catalog(source, scfg, id_type)
    except (EgesError, OSError, KeyError, TypeError, ValueError, pa.ArrowException):
        return {}
    finally:
        logger.disabled = quiet
    cuts = {}
    for f, want in labels.items():
        if f in fields:
            _, got, _, bounds = encode_column(catalog[f], scfg.numeric_buckets, f in scfg.numeric)
            if bounds is not None and got == want:
                cuts[f] = bounds
    return cuts
