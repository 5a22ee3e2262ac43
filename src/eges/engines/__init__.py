"""Engines: what computes the sessions, graph and walks stages, picked once from ``engine.backend``.

The stages (``eges.pipeline.stages``) own the contract (which files, their schemas, the log line and the
manifest's details); an engine only computes and writes the files. Two engines keep the same contract, file for
file: :class:`eges.engines.local.LocalEngine` (DuckDB and the compiled kernels, on this machine) and
:class:`eges.engines.spark.SparkEngine` (Spark jobs; pyspark is imported only when it runs). The rules both follow
live below them, in ``eges.sessions`` (the normalised events, the timestamp-unit rule, the cleaning SQL),
``eges.graph`` and ``eges.walks``; a new engine implements :class:`Engine` and is named in :func:`engine_for`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from eges.config import Config
    from eges.sessions.clean import SessionsReport


class Engine(Protocol):
    """The three stages an engine computes; each writes the stage's contract files at ``ctx.path(...)`` (the
    stage's staging folder, swapped in by the runner when the stage returns)."""

    #: Prefixes the stages' log lines ("" for the local engine).
    label: str
    #: Whether it reads inputs given as a folder of parts, a URI or ``table:NAME`` (else one local file).
    reads_sources: bool

    def sessions(self, ctx: Any) -> SessionsReport:
        """Write ``layout.SESSIONS`` and ``layout.VOCAB`` from the run's events; the filled report."""

    def graph(self, ctx: Any) -> tuple[int, dict[str, Any]]:
        """Write ``layout.EDGES`` and ``layout.NODES`` from the sessions or ``--edges``; (rows read, the
        statistics of ``layout.GRAPH_STATS``)."""

    def walks(self, ctx: Any, out: str = ..., undirected: bool = False) -> tuple[int, int]:
        """Write ``out`` (default ``layout.WALKS``) from the graph (which has edges), made undirected first when
        ``undirected`` (the validate stage's choice, ``layout.WALKS_UNDIRECTED``); (walks, steps)."""


def engine_for(config: Config) -> Engine:
    """The engine ``engine.backend`` names."""
    if config.engine.backend == "spark":
        from eges.engines.spark import SparkEngine

        return SparkEngine()
    from eges.engines.local import LocalEngine

    return LocalEngine()


__all__ = ["Engine", "engine_for"]
