"""Aligning a cold retrain onto a reference run (``eges run --align-to REF``): orthogonal Procrustes over the items
both runs hold, applied to every vector the run writes, so a model trained on REF's vectors can read today's.

A rotation keeps every cosine and dot product between this run's vectors (neighbours, user vectors and scores are
unchanged); it only turns the whole space so that shared items land near where REF has them. :func:`rotation` is
pure array code; :func:`onto_reference` and :func:`check_reference` are the training stages' hooks, and read REF
through the run folder object (``eges.load``), the one reader of a finished run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from eges.errors import EgesError

if TYPE_CHECKING:
    from eges.outputs.run import Run
    from eges.pipeline.registry import RunInputs, StageContext


class AlignError(EgesError):
    """The run to align to (--align-to) is not a finished eges run with vectors, has another dimension, or shares
    too few items with this run to fix a rotation."""


def rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The orthogonal matrix R (d x d) that best maps ``source``'s rows onto ``target``'s (least squares of
    source @ R - target, rows scaled to unit length first so every item counts alike: cosines are what consumers
    read, and frequent items have longer vectors)."""
    from eges.recall.neighbours import normalised

    u, _, vt = np.linalg.svd(normalised(source).astype(np.float64).T @ normalised(target).astype(np.float64))
    return u @ vt


def rotate(matrix: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """``matrix``'s rows turned by ``rot``, float32 like every vectors file."""
    return (np.asarray(matrix, dtype=np.float64) @ rot).astype(np.float32)


class Aligned(NamedTuple):
    """What :func:`onto_reference` returns: the item vectors and the extra matrices turned by ``rotation`` (None:
    no --align-to, everything unchanged), the manifest details and a note for the stage's summary line."""

    vectors: np.ndarray
    extra: tuple[np.ndarray, ...]
    rotation: np.ndarray | None
    details: dict[str, Any]
    note: str


def reference_inputs(inputs: RunInputs) -> tuple[str, ...]:
    """The training stages' extra input: REF's training outputs make them stale when they change."""
    return ("@align_to",) if inputs.align_to else ()


def onto_reference(ctx: StageContext, ids: Any, vectors: np.ndarray, extra: tuple[np.ndarray, ...] = ()) -> Aligned:
    """This run's item vectors (row i is item ``ids[i]``, an Arrow array or list) and ``extra`` matrices in the
    same space (side-information value vectors, context rows) rotated onto REF's space, when the run has
    --align-to. The rotation is fitted on the items both runs hold and applied to every row, cold-start ones too.

    Raises:
        AlignError: REF is unusable, or shares fewer items than the dimension (checked before anything is written).
    """
    from eges.update.drift import row_cosines, shared_rows

    if ctx.inputs.align_to is None:
        return Aligned(vectors, tuple(extra), None, {}, "")
    ref = reference_run(ctx.inputs.align_to, vectors.shape[1], ctx.out_dir)
    ref_rows, rows = shared_rows(id_values(ref.id_array), id_values(ids))
    _require_shared(ctx.inputs.align_to, len(rows), vectors.shape[1])
    before = float(np.median(row_cosines(ref.vectors[ref_rows], vectors[rows])))
    rot = rotation(vectors[rows], ref.vectors[ref_rows])
    turned = rotate(vectors, rot)
    after = float(np.median(row_cosines(ref.vectors[ref_rows], turned[rows])))
    details = {"aligned_to": str(ctx.inputs.align_to), "aligned_to_method": ref.method, "align_shared_items": len(rows),
               "align_median_cosine_before": round(before, 4), "align_median_cosine_after": round(after, 4)}
    note = (f"; rotated onto {ctx.inputs.align_to} ({len(rows):,} shared items, median cosine "
            f"{before:.2f} -> {after:.2f})")
    return Aligned(turned, tuple(rotate(m, rot) for m in extra), rot, details, note)


def id_values(ids: Any) -> np.ndarray:
    """Item ids as a NumPy array (an Arrow array or a list), for :func:`eges.update.drift.shared_rows`."""
    to_numpy = getattr(ids, "to_numpy", None)
    return to_numpy(zero_copy_only=False) if callable(to_numpy) else np.asarray(ids)


def _require_shared(ref: str, shared: int, dimension: int) -> None:
    if shared < dimension:
        raise AlignError(f"--align-to {ref} shares {shared:,} items with this run, fewer than the dimension "
                         f"({dimension}): too few to fix a rotation; align to a run of an overlapping log")


def reference_run(ref: str, dimension: int, out_dir: Path | None = None) -> Run:
    """REF as a finished run with vectors of ``dimension``, else a named error (no vectors are read here)."""
    import pyarrow.parquet as pq

    from eges.outputs.run import Run

    path = Path(ref)
    if out_dir is not None and path.resolve() == Path(out_dir).resolve():
        raise AlignError(f"--align-to {ref} is this run's own folder; align to an earlier run")
    if not path.is_dir():
        raise AlignError(f"--align-to {ref}: no such run folder")
    try:
        run = Run(path)
        vectors = run.require_vectors()
        found = pq.read_schema(vectors).field("vector").type.list_size
    except EgesError as exc:
        raise AlignError(f"--align-to {ref}: {exc}") from None
    if found != dimension:
        raise AlignError(f"--align-to {ref} has vectors of dimension {found}, this run trains {dimension}; give "
                         f"--set train.dimension={found} or align to another run")
    return run


def check_reference(ctx: StageContext, will_run: set[str]) -> None:
    """Before a training stage runs (and again once the graph is built): REF is usable and shares at least as many
    items as the dimension with this run's graph (plus its catalog, for a method with cold-start vectors)."""
    import pyarrow.parquet as pq

    from eges.layout import NODES
    from eges.pipeline.registry import run_method

    ref_path = ctx.inputs.align_to
    if ref_path is None:
        return
    dimension = ctx.config.train.dimension
    ref = reference_run(ref_path, dimension, ctx.out_dir)
    nodes = ctx.input_path(NODES)
    if "graph" in will_run or not nodes.exists():
        return  # checked again after the graph stage (recheck_after)
    from eges.update.drift import id_kind, shared_rows

    ids = id_values(pq.read_table(nodes, columns=["item_id"])["item_id"])
    if run_method(ctx.inputs, ctx.config).cold_start and ctx.inputs.items:  # cold-start items get vectors too
        from eges.pipeline.side_info_stage import catalog_by_id

        catalog = np.asarray(catalog_by_id(ctx.inputs.items, ctx.config.side_info.id_col).index)
        if id_kind(catalog) == id_kind(ids):
            ids = np.unique(np.concatenate([ids, catalog.astype(ids.dtype)]))
    ref_ids = id_values(pq.read_table(ref.require_vectors(), columns=["item_id"])["item_id"])
    _require_shared(ref_path, len(shared_rows(ref_ids, ids)[1]), dimension)

