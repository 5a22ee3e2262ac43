"""Files, stages and the runner: everything that reads or writes Parquet lives in this package."""

from __future__ import annotations

from eges.pipeline import (  # noqa: F401  (registers the stages, in pipeline order)
    evaluate_stage,
    recall_stage,
    side_info_stage,
    stages,
)
from eges.pipeline.registry import STAGES, RunInputs, StageContext, StageResult, stage
from eges.pipeline.runner import plan, run

__all__ = ["STAGES", "RunInputs", "StageContext", "StageResult", "plan", "run", "stage"]
