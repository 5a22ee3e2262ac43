"""The Spark engine (``engine.backend = "spark"``): the sessions, graph and walks stages as Spark jobs
(docs/scale-out.md).

Imports pyspark lazily, so eges works without the ``spark`` extra until the engine runs.
"""

from __future__ import annotations

from eges.engines.spark.engine import SparkEngine

__all__ = ["SparkEngine"]
