"""Files, stages and the runner: everything that reads or writes Parquet lives in this package."""

from __future__ import annotations

from eges.pipeline import (  # noqa: F401  (register the stages)
    drift_stage,
    evaluate_stage,
    recall_stage,
    side_info_stage,
    stages,
    validate_stage,
)
from eges.pipeline.registry import STAGES, RunInputs, StageContext, StageResult, order_stages, stage
from eges.pipeline.runner import plan, run

#: The pipeline, in the order stages run: explicit, so it does not depend on which module is imported first.
PIPELINE = ("sessions", "graph", "walks", "validate", "skipgram", "eges", "drift", "neighbours", "users",
            "evaluate_link", "evaluate_temporal", "evaluate_cold")
order_stages(PIPELINE)

__all__ = ["PIPELINE", "STAGES", "RunInputs", "StageContext", "StageResult", "plan", "run", "stage"]
