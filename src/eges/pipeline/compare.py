"""Side-by-side tables of evaluation results: methods and baselines of one output directory, or the same
protocols over several directories run with different settings (walk lengths, dimensions, ...)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from eges.config import BASELINES, METHODS
from eges.errors import InputError
from eges.pipeline.runner import load_manifest

PROTOCOL_ORDER = ("link", "temporal", "cold")


def setting_differences(dirs: Sequence[Path]) -> dict[Path, str]:
    """Per directory, the config keys whose values differ between the directories (``walks.walk_length=20``)."""
    configs = {d: load_manifest(d).get("config", {}) for d in dirs}
    keys = sorted({(s, k) for c in configs.values() for s, vals in c.items() for k in vals if s != "evaluate"
                   or k != "protocols"})
    differing = [(s, k) for s, k in keys if len({json.dumps(c.get(s, {}).get(k)) for c in configs.values()}) > 1]
    return {d: ", ".join(f"{s}.{k}={configs[d].get(s, {}).get(k)!r}" for s, k in differing) for d in dirs}


def comparison(dirs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per (protocol, metric), one column per method (per directory when several are given).

    Raises:
        InputError: a directory holds no evaluation results.
    """
    dirs = [Path(d) for d in dirs]
    frames = []
    labels = setting_differences(dirs) if len(dirs) > 1 else {}
    for d in dirs:
        files = sorted((d / "evaluation").glob("*/metrics.parquet"))
        if not files:
            raise InputError(f"{d} holds no evaluation results; run `eges evaluate --out {d}` first")
        frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
        if len(dirs) > 1:
            frame["method"] = f"{labels[d] or d.name}: " + frame["method"]
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    data["metric"] = data["metric"].where(data["k"] == 0, data["metric"] + "@" + data["k"].astype(str))
    # Rows: protocols in their usual order, metrics as recorded; columns: methods, then baselines.
    data["p_order"] = data["protocol"].map({p: i for i, p in enumerate(PROTOCOL_ORDER)})
    data["m_order"] = data["method"].str.split(": ").str[-1].map(
        {m: i for i, m in enumerate(METHODS + BASELINES)}).fillna(len(METHODS + BASELINES))
    data["row"] = range(len(data))
    rows = data.sort_values(["p_order", "row"]).drop_duplicates(["protocol", "metric"])[["protocol", "metric"]]
    methods = data.sort_values(["kind", "m_order", "row"], ascending=[False, True, True])["method"].unique()
    table = data.set_index(["protocol", "metric", "method"])["value"].unstack("method")
    return table.loc[pd.MultiIndex.from_frame(rows), list(methods)]


def format_table(table: pd.DataFrame) -> str:
    return table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="n/a")
