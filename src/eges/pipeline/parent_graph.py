"""The parent run's graph files for an update that carries them over (``update.events = "new"``), read through the
run folder object so only outputs the parent's manifest vouches for are used."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eges.errors import InputError
from eges.graph.carry import CarryRule
from eges.layout import EDGES, NODES


def carries_parent(inputs: Any, config: Any) -> bool:
    """Whether the graph stage reads the parent's graph: a parent, new events only, and events (not an edge list)."""
    return inputs.parent is not None and inputs.edges is None and config.update.events == "new"


@dataclass(frozen=True)
class ParentGraph:
    """The parent's graph/edges.parquet, its nodes table and the carry-over rule."""

    edges: Path
    nodes: pa.Table
    rule: CarryRule
    where: str


def parent_graph(ctx: Any) -> ParentGraph | None:
    """The parent's graph when this run carries it over, else None; a parent with no recorded graph is an error."""
    if not carries_parent(ctx.inputs, ctx.config):
        return None
    from eges.outputs.run import Run

    folder = ctx.input_path("@parent")
    run = Run(folder)
    for rel in (EDGES, NODES):
        if not run.vouched(rel):
            raise InputError(f"parent run {folder} holds no recorded graph ({rel}); finish its graph stage first, "
                             "or use update.events = 'window'")
    nodes = pq.read_table(folder / NODES)
    return ParentGraph(folder / EDGES, nodes, CarryRule.from_config(ctx.config.update), f"parent run {folder} ({NODES})")
