"""Nested training runs and split files of the evaluation protocols (:mod:`eges.evaluation.protocols`).

A protocol writes its split under ``OUT/evaluation/<protocol>/`` and runs the pipeline on the training part in a
nested run folder there (``.../pipeline``, with its own manifest and lock, so a rerun reuses every fresh stage and
each nested stage swaps its folder in whole). The whole log's sessions and graph, which link prediction and cold
start split, are built once in ``OUT/evaluation/full`` (or reused from the run itself when fresh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from eges.config import Config
from eges.duck import duckdb_batches, duckdb_session
from eges.errors import InputError
from eges.evaluation.scorers import CosineScorer, placed
from eges.layout import EVALUATION, EVALUATION_FULL, SESSIONS, VOCAB
from eges.methods import METHODS, Method, allowed, resolve
from eges.pipeline import io
from eges.pipeline.registry import RunInputs, StageContext
from eges.sessions.clean import predecessors
from eges.sessions.events import EventsSource, open_events

#: The event columns of split files: the normalised view of any input format, read back with these settings.
SPLIT_EVENTS = {"format": "generic", "user_col": "user_id", "item_col": "item_id", "time_col": "timestamp",
                "timestamp_unit": "ms", "behaviour_col": "behaviour", "dwell_col": "dwell"}


def methods_of(ctx: StageContext) -> list[str]:
    """The methods to score: ``evaluate.methods``, or every method the inputs allow. ``auto`` is scored as a method
    of its own: what a run with no --method trains on these inputs (the default run)."""
    methods = list(ctx.config.evaluate.methods) or allowed(ctx.inputs.items is not None)
    needs_catalog = [m for m in methods if m in METHODS and METHODS[m].side_info]
    if needs_catalog and ctx.inputs.items is None:
        raise InputError(f"evaluate.methods includes {needs_catalog[0]!r}, which needs an item catalog (--items)")
    return methods


# --------------------------------------------------------------------------------------------- nested runs
def nested_config(config: Config, **sections: dict[str, Any]) -> Config:
    """The config of a nested training run: evaluation switched off (no recursion), plus changes by section."""
    out = config.replace("evaluate", protocols=[])
    for name, changes in sections.items():
        out = out.replace(name, **changes)
    return out


def run_nested(ctx: StageContext, sub: str, config: Config, inputs: RunInputs, to_stage: str) -> Path:
    """Run the pipeline up to ``to_stage`` in ``OUT/sub`` (reusing its fresh stages); returns that directory."""
    from eges.pipeline.runner import run

    label = sub.removeprefix(f"{EVALUATION}/")
    run(ctx.out_dir / sub, config, inputs, to_stage=to_stage, progress=ctx.progress,
        echo=lambda line: ctx.echo(f"  [{label}] {line}"))
    return ctx.out_dir / sub


def whole_log(ctx: StageContext) -> Path:
    """The directory holding the whole log's sessions and graph: the run's own when they are fresh (``eges run``
    with ``evaluate.protocols`` builds them just before), else a nested run in ``OUT/evaluation/full``."""
    from eges.pipeline.runner import plan

    config, inputs = nested_config(ctx.config), RunInputs(events=ctx.inputs.events)
    states = {status.name: status.state for status in plan(ctx.out_dir, config, inputs)}
    if states.get("sessions") == states.get("graph") == "fresh":
        ctx.echo("  [full] the run's own sessions and graph are fresh: reused")
        return ctx.out_dir
    return run_nested(ctx, EVALUATION_FULL, config, inputs, "graph")


def method_scorers(ctx: StageContext, sub: str, config: Config, inputs: RunInputs, methods: list[str],
                   universe: pd.Index) -> list[CosineScorer]:
    """Train each method on the split's training part and wrap its vectors over the universe of item ids."""
    scorers = []
    for method in methods:
        row = method_row(method, inputs)
        out = run_nested(ctx, sub, config.replace("train", method=method), inputs, row.stage)
        ids, vectors = io.read_vectors(out / row.vectors)
        scorers.append(CosineScorer(method, *placed(universe.get_indexer(ids.to_pandas()), vectors, len(universe))))
    return scorers


def method_row(method: str, inputs: RunInputs) -> Method:
    """The method table's row that trains ``method`` (a name, or auto) on these inputs."""
    return resolve(method, inputs.items is not None)


def read_sessions(directory: Path) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
    """(vocabulary ids by item index, session-start flags, item indices, predecessor indices or -1)."""
    vocab = pq.read_table(directory / VOCAB, columns=["item_id", "item_index"]).sort_by("item_index")
    table = pq.read_table(directory / SESSIONS, columns=["position", "item_index"])
    item, position = table["item_index"].to_numpy(), table["position"].to_numpy()
    return pd.Index(vocab["item_id"].to_pandas()), position == 0, item, predecessors(item, position)


# --------------------------------------------------------------------------------------------- split files
def split_query(source: EventsSource, where: str) -> str:
    """SQL for the events matching ``where`` (over user_id, item_id, ts in ms) in the split schema: the optional
    columns only when the log has them, so the split is cleaned exactly like the log; sorted by user and time."""
    cols = ["user_id", "item_id", "ts AS timestamp"] + (["behaviour"] if source.has_behaviour else []) \
        + (["dwell"] if source.has_dwell else [])
    # The split keeps the log's order of events at equal times (seq), so its sessions are the log's.
    return f"SELECT {', '.join(cols)} FROM {source.view} WHERE {where} ORDER BY user_id, ts, seq"


def write_events_split(ctx: StageContext, relative: str, where: str, tables: dict[str, pa.Table] | None = None) -> int:
    """Write the events matching ``where`` in the split schema, sorted so the file is identical whenever the
    split is (its digest keeps the nested stages fresh)."""
    with duckdb_session(ctx.config.engine, ctx.spill_dir) as con:
        source = open_events(con, ctx.input_path("@events"), ctx.config.sessions)
        for name, table in (tables or {}).items():
            con.register(name, table)
        query = split_query(source, where)
        with io.AtomicParquetWriter(ctx.path(relative)) as out:
            for batch in duckdb_batches(con, query):
                out.write(batch)
        return out.rows
