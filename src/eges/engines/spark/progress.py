"""One progress line for a stage's Spark jobs on a terminal (Spark's own console bar is off): the job, its
stages and tasks done, from the status tracker, redrawn twice a second on stderr."""

from __future__ import annotations

import sys
import threading
from typing import Any


def progress_line(stage: str, tracker: Any) -> str:
    """'sessions: spark job 7, 3 stage(s), 12/40 tasks' for the jobs running now ('' when none runs)."""
    stages = [info for info in (tracker.getStageInfo(i) for i in tracker.getActiveStageIds()) if info is not None]
    if not stages:
        return ""
    jobs = tracker.getActiveJobsIds()
    done = sum(info.numCompletedTasks for info in stages)
    total = sum(info.numTasks for info in stages)
    job = f"job {max(jobs)}" if jobs else "a job"
    return f"{stage}: spark {job}, {len(stages)} stage(s), {done:,}/{total:,} tasks"


class SparkProgress:
    """Draws :func:`progress_line` while the block runs, when progress is on and stderr is a terminal."""

    def __init__(self, stage: str, ctx: Any, every: float = 0.5):
        self.stage = stage
        self.every = every
        self.enabled = bool(getattr(ctx, "progress", False)) and sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SparkProgress:
        if self.enabled:
            self._thread = threading.Thread(target=self._draw, name="eges-spark-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def _draw(self) -> None:
        from pyspark import SparkContext

        while not self._stop.wait(self.every):
            context = SparkContext._active_spark_context
            if context is None:
                continue
            try:
                line = progress_line(self.stage, context.statusTracker())
            except Exception:  # the context is stopping: nothing to draw
                continue
            if line:
                sys.stderr.write("\r\033[K" + line)
                sys.stderr.flush()
