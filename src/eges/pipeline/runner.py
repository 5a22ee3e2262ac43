"""Deciding which stages are fresh or stale, running the stale ones, and keeping the manifest.

The manifest (``OUT/manifest.json``) records, per stage, the config keys it depends on, fingerprints of
its inputs and outputs, row counts, duration and package versions. A stage is out of date when it never
ran, an output is missing or was changed by hand, its config changed, an input changed, or a stage it
reads from reruns. The manifest is rewritten atomically after every stage, so an interrupted run leaves
complete stages recorded and the interrupted one not.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eges.config import Config, load_config, section_to_dict
from eges.errors import EgesError, StageError
from eges.pipeline.io import atomic_path, fingerprint
from eges.pipeline.registry import STAGES, RunInputs, Stage, StageContext, get_stage, producer_of

MANIFEST = "manifest.json"


def load_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST
    if not path.exists():
        return {"stages": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EgesError(f"manifest {path} is corrupt ({exc}); delete it to rebuild every stage") from None


def save_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    with atomic_path(out_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str))


def stage_config(stage: Stage, config: Config) -> dict[str, Any]:
    """The config keys that make ``stage`` out of date when they change (recorded in the manifest)."""
    out = {s: section_to_dict(config[s], output_keys_only=True) for s in stage.sections}
    for key in stage.ignores:
        section, name = key.split(".")
        out[section].pop(name, None)
    return out


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("eges", "numpy", "pandas", "pyarrow", "duckdb", "numba", "gensim", "networkx"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class StageStatus:
    name: str
    state: str  # fresh | stale | missing | skipped
    reason: str


def _config_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    for section, values in new.items():
        before = old.get(section, {})
        for key, value in values.items():
            if before.get(key) != value:
                return f"config {section}.{key} changed: {before.get(key)!r} -> {value!r}"
    return "config changed"


def plan(out_dir: Path, config: Config, inputs: RunInputs, force: Iterable[str] = ()) -> list[StageStatus]:
    """The state of every registered stage for this run, in pipeline order."""
    manifest = load_manifest(out_dir)
    recorded = manifest.get("stages", {})
    forced = set(force)
    rerun: set[str] = set()
    result = []
    for st in STAGES.values():
        if not st.enabled(inputs, config):
            result.append(StageStatus(st.name, "skipped", st.skipped_because))
            continue
        state, reason = _judge(st, out_dir, config, inputs, recorded, rerun, forced)
        if state != "fresh":
            rerun.add(st.name)
        result.append(StageStatus(st.name, state, reason))
    return result


def _judge(st: Stage, out_dir: Path, config: Config, inputs: RunInputs, recorded: dict[str, Any],
           rerun: set[str], forced: set[str]) -> tuple[str, str]:
    if st.name in forced:
        return "stale", "forced"
    entry = recorded.get(st.name)
    if entry is None:
        return "missing", "never ran"
    for rel in st.outputs:
        path = out_dir / rel
        if not path.exists():
            return "missing", f"output {rel} is missing"
        known = entry.get("outputs", {}).get(rel)
        if known is None or fingerprint(path, known)["digest"] != known.get("digest"):
            return "stale", f"output {rel} was changed outside the pipeline"
    current = stage_config(st, config)
    if entry.get("config") != current:
        return "stale", _config_diff(entry.get("config", {}), current)
    for key in st.inputs(inputs, config):
        producer = None if key.startswith("@") else producer_of(key)
        if producer in rerun:
            return "stale", f"upstream stage {producer} reruns"
        if key.startswith("@") and inputs.get(key) is None:
            return "stale", f"needs --{key[1:]}"
        path = Path(inputs.get(key)) if key.startswith("@") else out_dir / key
        known = entry.get("inputs", {}).get(key)
        if not path.exists():
            return "stale", f"input {path} is missing"
        if known is None or fingerprint(path, known)["digest"] != known.get("digest"):
            return "stale", f"input {key.lstrip('@') if key.startswith('@') else key} changed"
    return "fresh", "up to date"


def run(out_dir: Path, config: Config, inputs: RunInputs, *, from_stage: str | None = None,
        only: str | None = None, to_stage: str | None = None, select: Iterable[str] | None = None,
        progress: bool = True, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stale stage (all from ``from_stage`` on, or just ``only``, forced; none after ``to_stage``;
    with ``select``, only those stages and only if stale), updating the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(STAGES)
    force: list[str] = []
    if from_stage is not None:
        get_stage(from_stage)
        force = names[names.index(from_stage):]
    if only is not None:
        force = [get_stage(only).name]
    last = names.index(get_stage(to_stage).name) if to_stage is not None else len(names) - 1
    selected = {get_stage(n).name for n in select} if select is not None else None
    statuses = plan(out_dir, config, inputs, force)
    manifest = load_manifest(out_dir)
    manifest["inputs"] = inputs.to_dict()
    manifest["config"] = config.to_dict()
    ctx = StageContext(out_dir=out_dir, config=config, inputs=inputs, progress=progress, echo=echo)
    for status in statuses:
        st = STAGES[status.name]
        if (only is not None and st.name != only) or names.index(st.name) > last:
            continue
        if selected is not None and st.name not in selected:
            continue
        if status.state == "skipped":
            continue
        if status.state == "fresh":
            echo(f"{st.name}: fresh, skipped")
            continue
        _check_upstream(st, out_dir, inputs, config)
        started = time.perf_counter()
        result = st.run(ctx)
        seconds = time.perf_counter() - started
        manifest.setdefault("stages", {})[st.name] = {
            "config": stage_config(st, config),
            "inputs": {k: fingerprint(ctx.input_path(k)) for k in st.inputs(inputs, config)},
            "outputs": {rel: fingerprint(out_dir / rel) for rel in st.outputs},
            "rows_in": result.rows_in,
            "rows_out": result.rows_out,
            "seconds": round(seconds, 3),
            "details": result.details,
            "versions": versions(),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        save_manifest(out_dir, manifest)
        line = f"{st.name}: {result.rows_in:,} rows in -> {result.rows_out:,} out in {seconds:.1f} s"
        echo(line + (f"; {result.summary}" if result.summary else ""))
    save_manifest(out_dir, manifest)
    return manifest


def _check_upstream(st: Stage, out_dir: Path, inputs: RunInputs, config: Config) -> None:
    for key in st.inputs(inputs, config):
        if key.startswith("@"):
            if inputs.get(key) is None:
                raise StageError(f"stage {st.name} needs --{key[1:]} (an item catalog)" if key == "@items"
                                 else f"stage {st.name} needs --{key[1:]}")
        elif not (out_dir / key).exists():
            raise StageError(f"stage {st.name} needs {out_dir / key}; run stage {producer_of(key)} first")


def resume(out_dir: Path, config_path: str | None = None, overrides: Iterable[str] = (),
           inputs: RunInputs | None = None) -> tuple[Config, RunInputs]:
    """The config and inputs of an existing output directory, with a new config file or ``--set``s on top."""
    manifest = load_manifest(out_dir)
    if inputs is None:
        if "inputs" not in manifest:
            raise StageError(f"{out_dir} holds no pipeline run (no {MANIFEST}); use `eges run` first")
        inputs = RunInputs(**manifest["inputs"])
    base = manifest.get("config") if config_path is None else None
    return load_config(config_path, overrides, base=base), inputs
