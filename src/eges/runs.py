"""Running the pipeline from Python: what ``eges run`` does, for notebooks and jobs that already hold a Spark
session."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def run(out: str | Path, *, events: str | None = None, items: str | None = None, edges: str | None = None,
        config: str | None = None, settings: Iterable[str] = (), method: str | None = None,
        until: str | None = None, spark: Any = None, echo: Any = None,
        warm_start: str | Path | None = None, align_to: str | Path | None = None) -> dict[str, Any]:
    """Run every stale stage into the run folder ``out``, like ``eges run`` (same rerun rule: a folder remembers
    its inputs and config; ``settings`` are ``--set`` strings such as ``"walks.walk_length=20"``).

    ``spark``: an existing SparkSession (a notebook's, or spark-submit's) for the sessions, graph and walks stages;
    it implies ``engine.backend=spark`` and eges leaves it running. ``warm_start``: an earlier run folder to continue
    from (a daily update, like ``--warm-start``; docs/updates.md). ``align_to``: an earlier run folder whose space
    the vectors are rotated onto (``--align-to``; remembered like the other inputs). Returns the run's manifest.
    Load the vectors with :func:`eges.load`.
    """
    from eges.pipeline.io import is_external
    from eges.pipeline.runner import resolve
    from eges.pipeline.runner import run as run_pipeline

    def absolute(path: str | None) -> str | None:
        return path if path is None or is_external(path) else str(Path(path).resolve())

    sets = [*settings, *([f"train.method={method}"] if method else []),
            *(["engine.backend=spark"] if spark is not None else [])]
    cfg, inputs, _ = resolve(Path(out), config, sets, events=absolute(events), items=absolute(items),
                             edges=absolute(edges), parent=absolute(str(warm_start)) if warm_start else None,
                             align_to=absolute(str(align_to)) if align_to else None)
    given = contextlib.nullcontext()
    if spark is not None:
        from eges.engines.spark.session import use_session

        given = use_session(spark)
    with given:
        return run_pipeline(Path(out), cfg, inputs, to_stage=until, progress=False,
                            echo=echo or (lambda line: None))
