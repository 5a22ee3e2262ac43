"""The evaluation stages: thin registrations of the protocols in :mod:`eges.evaluation.protocols` (link
prediction, next item after a cut time, cold start).

The protocols are imported when a stage runs, so importing the pipeline does not import the evaluation code (and
``eges.evaluation`` may import the pipeline's io and runner for its nested runs without an import loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eges.config import Config
from eges.layout import metrics_path, summary_path
from eges.pipeline.registry import RunInputs, StageContext, StageResult, stage

#: Every section that changes what the nested runs train, plus the protocol settings.
SECTIONS = ("sessions", "graph", "walks", "validate", "side_info", "train", "evaluate")
#: The nested runs train every method in evaluate.methods, whatever the main run's method is.
IGNORES = ("train.method",)
NOT_REQUESTED = "not requested (eges evaluate, or evaluate.protocols)"


def _inputs(inp: RunInputs, cfg: Any) -> tuple[str, ...]:
    return ("@events", "@items") if inp.items else ("@events",)


def _requested(protocol: str) -> Callable[[RunInputs, Config], bool]:
    return lambda inp, cfg: protocol in cfg["evaluate"].protocols and inp.events is not None


def _register(protocol: str) -> Callable[[StageContext], StageResult]:
    """Stage ``evaluate_<protocol>``: runs ``eges.evaluation.protocols.<protocol>``."""

    def run(ctx: StageContext) -> StageResult:
        from eges.evaluation import protocols

        return getattr(protocols, protocol)(ctx)

    run.__name__ = run.__qualname__ = f"evaluate_{protocol}"
    run.__doc__ = f"The {protocol} protocol (eges.evaluation.protocols.{protocol})."
    return stage(f"evaluate_{protocol}", sections=SECTIONS, outputs=(metrics_path(protocol), summary_path(protocol)),
                 inputs=_inputs, enabled=_requested(protocol), skipped_because=NOT_REQUESTED, ignores=IGNORES)(run)


evaluate_link = _register("link")
evaluate_temporal = _register("temporal")
evaluate_cold = _register("cold")
