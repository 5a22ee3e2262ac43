"""Side-by-side tables of evaluation results: methods and baselines of one output directory, or the same
protocols over several directories run with different settings (walk lengths, dimensions, ...)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from eges.config import BASELINES, PROTOCOLS
from eges.errors import EgesError, InputError
from eges.layout import DRIFT, metrics_path
from eges.methods import NAMES
from eges.pipeline.runner import load_manifest


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
        files = sorted(d.glob(metrics_path("*")))
        if not files:
            raise InputError(f"{d} holds no evaluation results; run `eges evaluate --out {d}` first")
        frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
        if len(dirs) > 1:
            frame["method"] = f"{labels[d] or d.name}: " + frame["method"]
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    data["metric"] = data["metric"].where(data["k"] == 0, data["metric"] + "@" + data["k"].astype(str))
    # Rows: protocols in their usual order, metrics as recorded; columns: methods, then baselines.
    data["p_order"] = data["protocol"].map({p: i for i, p in enumerate(PROTOCOLS)})
    data["m_order"] = data["method"].str.split(": ").str[-1].map(
        {m: i for i, m in enumerate(NAMES + BASELINES)}).fillna(len(NAMES + BASELINES))
    data["row"] = range(len(data))
    rows = data.sort_values(["p_order", "row"]).drop_duplicates(["protocol", "metric"])[["protocol", "metric"]]
    methods = data.sort_values(["kind", "m_order", "row"], ascending=[False, True, True])["method"].unique()
    table = data.set_index(["protocol", "metric", "method"])["value"].unstack("method")
    return table.loc[pd.MultiIndex.from_frame(rows), list(methods)]


def drift_comparison(old: str | Path, new: str | Path) -> tuple[pd.DataFrame, str] | None:
    """The drift of NEW's vectors against OLD's when both are runs with vectors (None otherwise), and where it comes
    from: NEW's ``drift/drift.json`` when its drift stage measured it against OLD, else computed now with NEW's
    ``[drift]`` settings."""
    from eges.outputs.report import drift_table
    from eges.outputs.run import Run
    from eges.pipeline.drift_stage import drift_between, recorded_drift

    try:
        old_run, new_run = Run(old), Run(new)
        old_run.require_vectors()
        new_run.require_vectors()
    except EgesError:
        return None
    recorded = recorded_drift(new_run) or {}
    if recorded.get("reference") and Path(recorded["reference"]).resolve() == old_run.out.resolve():
        drift, source = recorded, f"recorded by its drift stage in {new_run.out / DRIFT}"
    else:
        drift = drift_between(old_run, new_run.id_array, new_run.vectors, new_run.config.drift).as_dict()
        source = "computed now from both runs' vectors"
    return drift_table(drift, f"{new_run.out.name} against {old_run.out.name}"), source


def format_table(table: pd.DataFrame) -> str:
    return table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="n/a")


def _split_values(text: str) -> list[str]:
    """Split ``a,b,[c,d],"e,f"`` on the commas outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += ch
    parts.append(current.strip())
    return [p for p in parts if p]


def variants(varies: Sequence[str]) -> list[list[str]]:
    """Every combination of ``section.key=v1,v2,...`` settings, as lists of ``--set`` overrides.

    Raises:
        ConfigError: a setting is not of the form section.key=values.
    """
    import itertools

    from eges.errors import ConfigError

    axes = []
    for text in varies:
        key, sep, values = text.partition("=")
        if not sep or "." not in key or not _split_values(values):
            raise ConfigError(f"--vary expects section.key=value1,value2,..., got {text!r}")
        axes.append([f"{key.strip()}={v}" for v in _split_values(values)])
    return [list(combo) for combo in itertools.product(*axes)]


def variant_dir_name(overrides: Sequence[str]) -> str:
    """A directory name for one variant: its settings, with characters unsafe in paths replaced."""
    import re

    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", ",".join(overrides))[:200] or "default"
