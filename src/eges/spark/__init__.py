"""The Spark backend (``engine.backend = "spark"``): the sessions and graph stages as Spark jobs (docs/scale-out.md).

Imports pyspark lazily, so eges works without the ``spark`` extra until the backend is chosen.
"""
