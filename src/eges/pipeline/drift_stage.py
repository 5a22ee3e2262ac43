"""The drift stage: how far this run's item vectors moved from its reference run's (the run it was aligned to with
--align-to, else the run it warm-started from), in ``drift/drift.json``, the manifest and the summary line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eges.layout import DRIFT
from eges.pipeline import io
from eges.pipeline.recall_stage import method_vectors
from eges.pipeline.registry import RunInputs, StageContext, StageResult, stage


def reference_of(inputs: RunInputs) -> tuple[str, str] | None:
    """(relation, run folder) the drift is measured against: ('align_to', REF), else ('parent', PARENT), else None."""
    if inputs.align_to:
        return "align_to", inputs.align_to
    if inputs.parent:
        return "parent", inputs.parent
    return None


RELATION_TEXT = {"align_to": "the run it is aligned to", "parent": "the parent"}


def drift_between(reference: Any, run_ids: Any, run_vectors: Any, cfg: Any) -> Any:
    """The drift (``eges.update.drift.Drift``) of (ids, vectors) against a loaded reference run."""
    from eges.update.align import id_values
    from eges.update.drift import measure

    return measure(id_values(reference.id_array), reference.vectors, id_values(run_ids), run_vectors, cfg.k,
                   cfg.queries, cfg.seed)


def recorded_drift(run: Any) -> dict[str, Any] | None:
    """A loaded run's ``drift/drift.json`` when it still describes the run: the manifest vouches for it, the run
    still has a reference run, and it was measured on the run's current vectors (else None)."""
    from eges.methods import METHODS

    rel = METHODS[run.method].vectors
    measured_on = run.stage_entry("drift").get("inputs", {}).get(rel, {}).get("digest")
    current = (run.recorded(rel) or {}).get("digest")
    if not run.vouched(DRIFT) or reference_of(run.inputs) is None or measured_on is None or measured_on != current:
        return None
    return json.loads((run.out / DRIFT).read_text())


@stage("drift", sections=("drift",), outputs=(DRIFT,),
       inputs=lambda inp, cfg: (method_vectors(inp, cfg), *(f"@{ref[0]}" for ref in [reference_of(inp)] if ref)),
       enabled=lambda inp, cfg: reference_of(inp) is not None,
       skipped_because="the run has no reference run (--align-to or --warm-start)")
def drift_stage(ctx: StageContext) -> StageResult:
    """Median cosine of the shared items' vectors (as written, and after the best rotation), top-k neighbour overlap,
    and the new, dropped and shared items, against the reference run."""
    from eges.outputs.run import Run

    relation, ref_path = reference_of(ctx.inputs)  # type: ignore[misc]
    reference = Run(Path(ref_path))
    ids, vectors = io.read_vectors(ctx.input_path(method_vectors(ctx.inputs, ctx.config)))
    drift = drift_between(reference, ids, vectors, ctx.config.drift)
    record = {"reference": str(ref_path), "relation": relation, "reference_method": reference.method,
              **drift.as_dict()}
    with io.atomic_path(ctx.path(DRIFT)) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return StageResult(len(ids), drift.shared, f"drift against {RELATION_TEXT[relation]} {ref_path}: {drift.summary()}",
                       record)
