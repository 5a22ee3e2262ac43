"""Deciding which stages are fresh or stale, running the stale ones, and keeping the manifest.

The manifest (``OUT/manifest.json``) records, per stage, the config keys it depends on, fingerprints of
its inputs and outputs, row counts, duration and package versions. A stage is out of date when it never
ran, an output is missing or was changed by hand, its config changed, an input changed, or a stage it
reads from reruns. The manifest is rewritten atomically after every stage, so an interrupted run leaves
complete stages recorded and the interrupted one not; a stage that owns a folder writes a fresh one that takes
the old one's place only when the stage returns (``pipeline.staging``), so the interrupted one's files are the
old ones, as recorded.
"""

from __future__ import annotations

import contextlib
import functools
import json
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eges.config import MOVED, Config, carry_moved, load_config, section_to_dict
from eges.errors import EgesError, StageError
from eges.layout import MANIFEST
from eges.methods import ignored_by_all
from eges.pipeline.io import atomic_path, fingerprint, source_exists, source_fingerprint, spark_only
from eges.pipeline.lock import (
    MANIFEST_FORMAT,
    MARKER,
    NotAnEgesRun,
    check_run_folder,
    foreign_manifest_message,
    is_eges_manifest,
    run_lock,
)
from eges.pipeline.registry import (
    RUN_FOLDER_INPUTS,
    STAGES,
    RunInputs,
    Stage,
    StageContext,
    StageResult,
    get_stage,
    producer_of,
)
from eges.pipeline.staging import own_folder, staged_folder


def load_manifest(out_dir: Path) -> dict[str, Any]:
    """The run folder's manifest, checked for shape: a damaged one is a named error, never a traceback."""
    path = out_dir / MANIFEST
    if not path.exists():
        return {"stages": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EgesError(f"manifest {path} is corrupt ({exc}); move it away to rebuild every stage") from None
    except OSError as exc:
        raise EgesError(f"cannot read the manifest {path}: {exc.strerror}") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise EgesError(f"manifest {path} is damaged ({problem}); move it away to rebuild every stage")
    if not is_eges_manifest(manifest):
        raise NotAnEgesRun(foreign_manifest_message(path))
    manifest.setdefault("stages", {})
    return manifest


def require_run(out_dir: Path) -> dict[str, Any]:
    """The manifest of a run that has finished at least one stage, or an error that says which it is not."""
    if not (out_dir / MANIFEST).is_file():
        raise StageError(f"{out_dir} holds no pipeline run (no {MANIFEST}); use `eges run` first")
    manifest = load_manifest(out_dir)
    if "inputs" not in manifest:
        raise StageError(f"{out_dir} holds an eges run that has not finished a stage yet (its first run stopped "
                         "early); run `eges run --events ... --out` again")
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    if not isinstance(manifest, dict):
        return f"a JSON {type(manifest).__name__}, not an object"
    if not isinstance(manifest.get("stages", {}), dict):
        return "'stages' is not an object"
    for name, entry in manifest.get("stages", {}).items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k, {}), dict)
                                                  for k in ("config", "inputs", "outputs", "details")):
            return f"the entry of stage {name!r} is not an object of objects"
        for group in ("inputs", "outputs"):
            if not all(isinstance(v, dict) for v in entry.get(group, {}).values()):
                return f"stage {name!r} has a malformed {group} fingerprint"
    inputs = manifest.get("inputs")
    if inputs is not None and (not isinstance(inputs, dict) or set(inputs) - set(RunInputs.__dataclass_fields__)
                               or not all(v is None or isinstance(v, str) for v in inputs.values())):
        return "'inputs' is not an object of file paths"
    if manifest.get("config") is not None and not (
            isinstance(manifest["config"], dict) and all(isinstance(v, dict) for v in manifest["config"].values())):
        return "'config' is not an object of sections"
    return None


def save_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically, marked as eges's (``lock.MARKER``) whoever's release wrote it before."""
    marked = {MARKER: {"format": MANIFEST_FORMAT, "version": _eges_version()},
              **{k: v for k, v in manifest.items() if k != MARKER}}
    with atomic_path(out_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(marked, indent=2, sort_keys=False, default=str))


def stage_config(stage: Stage, config: Config, inputs: RunInputs | None = None) -> dict[str, Any]:
    """The config keys that make ``stage`` out of date when they change (recorded in the manifest): its sections
    less its ``ignores`` and, given the run's ``inputs``, the train keys no method it may train reads."""
    out = {s: section_to_dict(config[s], output_keys_only=True) for s in stage.sections}
    trained = stage.trains(inputs, config) if stage.trains is not None and inputs is not None else []
    unread = [f"train.{key}" for key in ignored_by_all(trained)] if "train" in stage.sections else []
    for key in (*stage.ignores, *unread):
        section, name = key.split(".")
        out[section].pop(name, None)
    return out


@functools.lru_cache(maxsize=1)
def _eges_version() -> str:
    import importlib.metadata as md

    try:
        return md.version("eges")
    except md.PackageNotFoundError:
        return "unknown"


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
        moved = [name for name, to in MOVED.items() if to == section and name in old]
        if section not in old and moved:
            return f"config [{moved[0]}] is part of [{section}] since this stage ran"
        before = old.get(section, {})
        for key, value in values.items():
            if key not in before:
                return f"config {section}.{key} is new since this stage ran ({value!r})"
            if before[key] != value:
                return f"config {section}.{key} changed: {before[key]!r} -> {value!r}"
        gone = [key for key in before if key not in values]
        if gone:  # a key this eges leaves out of the stage's fingerprint, or one that no longer exists
            return f"config {section}.{gone[0]} is no longer read by this stage"
    return "config changed"


def plan(out_dir: Path, config: Config, inputs: RunInputs, force: Iterable[str] = (),
         stages: dict[str, Stage] | None = None) -> list[StageStatus]:
    """The state of every stage (the registry's by default) for this run, in pipeline order."""
    stages = STAGES if stages is None else stages
    manifest = load_manifest(out_dir)
    recorded = manifest.get("stages", {})
    forced = set(force)
    rerun: set[str] = set()
    result = []
    for st in stages.values():
        if not st.enabled(inputs, config):
            result.append(StageStatus(st.name, "skipped", st.skipped_because))
            continue
        state, reason = _judge(st, out_dir, config, inputs, recorded, rerun, forced, stages)
        if state != "fresh":
            rerun.add(st.name)
        result.append(StageStatus(st.name, state, reason))
    return result


def _judge(st: Stage, out_dir: Path, config: Config, inputs: RunInputs, recorded: dict[str, Any],
           rerun: set[str], forced: set[str], stages: dict[str, Stage]) -> tuple[str, str]:
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
    current = stage_config(st, config, inputs)
    if entry.get("config") != current:
        return "stale", _config_diff(entry.get("config", {}), current)
    for key in st.inputs(inputs, config):
        producer = None if key.startswith("@") else producer_of(key, stages)
        if producer in rerun:
            return "stale", f"upstream stage {producer} reruns"
        if key.startswith("@") and inputs.get(key) is None:
            return "stale", f"needs --{key[1:]}"
        source = inputs.get(key) if key.startswith("@") else str(out_dir / key)
        known = entry.get("inputs", {}).get(key)
        if not source_exists(source):
            return "stale", f"input {source} is missing"
        current = input_fingerprint(key, source) if key.startswith("@") else fingerprint(source, known)
        if known is None or current["digest"] != known.get("digest"):
            return "stale", f"input {key.lstrip('@') if key.startswith('@') else key} changed"
    dropped = sorted(k for k in entry.get("inputs", {}) if k.startswith("@") and k not in st.inputs(inputs, config))
    if dropped:  # e.g. --no-align-to: vectors rotated onto a run no longer given are not this run's
        return "stale", f"input {dropped[0][1:]} is no longer given"
    return "fresh", "up to date"


def run(out_dir: Path, config: Config, inputs: RunInputs, *, from_stage: str | None = None,
        only: str | None = None, to_stage: str | None = None, select: Iterable[str] | None = None,
        progress: bool = True, echo: Callable[[str], None] = print,
        stages: dict[str, Stage] | None = None) -> dict[str, Any]:
    """Run every stale stage (all from ``from_stage`` on, or just ``only``, forced; none after ``to_stage``;
    with ``select``, only those stages and only if stale), updating the manifest.

    Holds the run folder's writer lock throughout; refuses a non-empty folder that is not an eges run. The
    manifest is written before the first stage, so even an interrupted first run leaves a folder eges knows.
    A run with ``select`` (evaluation) leaves the folder's remembered inputs and config as they were.
    """
    stages = STAGES if stages is None else stages
    check_engine_inputs(config, inputs)
    from eges.pipeline.parent import check_parent

    check_parent(config, inputs)  # a warm start's parent: finished, with a state, compatible (before any write)
    check_run_folder(out_dir)
    with run_lock(out_dir):
        return _run_locked(out_dir, config, inputs, from_stage, only, to_stage, select, progress, echo, stages)


def check_engine_inputs(config: Config, inputs: RunInputs) -> None:
    """An input only Spark reads (a folder of parts, a URI, a table) with an engine that reads one file is a named
    error."""
    from eges.engines import engine_for

    if engine_for(config).reads_sources:
        return
    for flag, source in (("--events", inputs.events), ("--edges", inputs.edges)):
        if source and spark_only(source):
            raise EgesError(f"{flag} {source} is a folder, a URI or a table, which only the spark engine reads; "
                            "add --set engine.backend=spark, or give one Parquet or CSV file")


def _run_locked(out_dir: Path, config: Config, inputs: RunInputs, from_stage: str | None, only: str | None,
                to_stage: str | None, select: Iterable[str] | None, progress: bool, echo: Callable[[str], None],
                stages: dict[str, Stage]) -> dict[str, Any]:
    def named(name: str) -> Stage:
        return get_stage(name, stages)

    names = list(stages)
    force: list[str] = []
    if from_stage is not None:
        named(from_stage)
        force = names[names.index(from_stage):]
    if only is not None:
        force = [named(only).name]
    last = names.index(named(to_stage).name) if to_stage is not None else len(names) - 1
    selected = {named(n).name for n in select} if select is not None else None
    statuses = plan(out_dir, config, inputs, force, stages)
    manifest = load_manifest(out_dir)
    if not (out_dir / MANIFEST).exists():
        save_manifest(out_dir, manifest)  # marks the folder as an eges run before anything else is written
    if selected is None or "inputs" not in manifest:
        # Remembered from the first stage that completes (or at the end): a run that fails before changing
        # anything leaves the manifest byte-identical.
        manifest["inputs"] = inputs.to_dict()
        manifest["config"] = config.to_dict()
    ctx = StageContext(out_dir=out_dir, config=config, inputs=inputs, progress=progress, echo=echo)
    chosen = [s for s in statuses if not ((only is not None and s.name != only) or names.index(s.name) > last
                                          or (selected is not None and s.name not in selected)
                                          or s.state == "skipped")]
    will_run = {s.name for s in chosen if s.state != "fresh"}
    for name in will_run:  # every stage about to run checks its inputs before the first one writes anything
        check = stages[name].check
        if check is not None:
            check(ctx, will_run)
    for status in chosen:
        st = stages[status.name]
        if status.state == "fresh":
            echo(f"{st.name}: fresh, skipped")
            continue
        _check_upstream(st, out_dir, inputs, config, stages)
        started = time.perf_counter()
        try:  # until its record is saved, an interrupt leaves the stage unrecorded: the CLI names it
            with _noting_interrupts() as interrupted:
                result = _run_staged(st, ctx, stages)
                _record(manifest, st, config, inputs, ctx, out_dir, result, time.perf_counter() - started)
        except BaseException as exc:
            # An error raised while an interrupt was handled (a compiled kernel returning with it pending, a
            # writer cut short, DuckDB turning the interrupt of a Python reader into its own error) is that
            # interrupt.
            interrupt = exc if isinstance(exc, KeyboardInterrupt) else exc.__cause__ or exc.__context__
            if not isinstance(interrupt, KeyboardInterrupt):
                if not interrupted:
                    raise
                interrupt = KeyboardInterrupt()
            interrupt.eges_stage = st.name  # type: ignore[attr-defined]
            raise interrupt from None
        seconds = manifest["stages"][st.name]["seconds"]
        line = f"{st.name}: {result.rows_in:,} rows in -> {result.rows_out:,} out in {seconds:.1f} s"
        echo(line + (f"; {result.summary}" if result.summary else ""))
        will_run.discard(st.name)
        for name in sorted(will_run, key=names.index):  # checks that learn from what this stage wrote
            later = stages[name]
            if later.check is not None and st.name in later.recheck_after:
                later.check(ctx, will_run)
    save_manifest(out_dir, manifest)
    return manifest


def _run_staged(st: Stage, ctx: StageContext, stages: dict[str, Stage]) -> StageResult:
    """Run ``st``; a stage that owns its folder writes into a fresh one swapped in when it returns (before the
    manifest records it), so an interrupted stage leaves its old files as they were (``pipeline.staging``)."""
    folder = own_folder(st.name, (*st.outputs, *st.may_write),
                        {s.name: (*s.outputs, *s.may_write) for s in stages.values()})
    if folder is None:
        return st.run(ctx)
    owned = [rel.split("/", 1)[1] for rel in (*st.outputs, *st.may_write)]
    with staged_folder(ctx.out_dir, folder, owned) as tmp:
        return st.run(replace(ctx, staging={folder: tmp}))


@contextlib.contextmanager
def _noting_interrupts() -> Iterator[list[bool]]:
    """Note a SIGINT that arrives inside the block (the list becomes non-empty) and raise KeyboardInterrupt as usual:
    a library that catches the interrupt and raises its own error (DuckDB reading a Python stream) still lets the
    runner tell an interrupt from a failure. Only the main thread can set signal handlers; elsewhere nothing is
    noted."""
    noted: list[bool] = []
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield noted
        return

    def handler(signum: int, frame: Any) -> None:
        noted.append(True)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _record(manifest: dict[str, Any], st: Stage, config: Config, inputs: RunInputs, ctx: StageContext,
            out_dir: Path, result: Any, seconds: float) -> None:
    """Record a finished stage in the manifest and save it (one atomic write)."""
    manifest.setdefault("stages", {})[st.name] = {
        "config": stage_config(st, config, inputs),
        "inputs": {k: input_fingerprint(k, inputs.get(k)) if k.startswith("@") else fingerprint(ctx.input_path(k))
                   for k in st.inputs(inputs, config)},
        "outputs": {rel: fingerprint(out_dir / rel) for rel in st.outputs},
        "rows_in": result.rows_in,
        "rows_out": result.rows_out,
        "seconds": round(seconds, 3),
        "details": result.details,
        "versions": versions(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    save_manifest(out_dir, manifest)


def input_fingerprint(key: str, source: str) -> dict[str, Any]:
    """A run input's fingerprint: a run folder (the parent) by its recorded training outputs, else the source's."""
    if key in RUN_FOLDER_INPUTS:
        from eges.pipeline.parent import run_fingerprint

        return run_fingerprint(source)
    return source_fingerprint(source)


def _check_upstream(st: Stage, out_dir: Path, inputs: RunInputs, config: Config, stages: dict[str, Stage]) -> None:
    for key in st.inputs(inputs, config):
        if key.startswith("@"):
            if inputs.get(key) is None:
                raise StageError(f"stage {st.name} needs --{key[1:]} (an item catalog)" if key == "@items"
                                 else f"stage {st.name} needs --{key[1:]}")
        elif not (out_dir / key).exists():
            raise StageError(f"stage {st.name} needs {out_dir / key}; run stage {producer_of(key, stages)} first")


def resolve(out_dir: Path, config_path: str | None = None, overrides: Iterable[str] = (), *,
            events: str | None = None, items: str | None = None, edges: str | None = None,
            drop_items: bool = False, parent: str | None = None,
            align_to: str | None = None) -> tuple[Config, RunInputs, list[str]]:
    """The config and inputs a command uses in ``out_dir``: one rule for run, stage and status.

    A run folder remembers its inputs and config. Inputs given now replace the remembered ones of their kind
    (--events and --edges replace each other); inputs not given are the remembered ones (``drop_items`` drops the
    catalog; ``parent`` is a warm start's parent run; ``align_to`` is the run --align-to rotates onto, "" drops
    it). Without ``config_path`` the remembered config is the base and ``overrides`` (--set, --method) apply on top;
    ``config_path`` replaces it. Returns the config, the inputs and one line per change from the record.
    """
    manifest = load_manifest(out_dir)
    recorded = manifest.get("inputs")
    if events is None and edges is None and not recorded:
        why = "its first run finished no stage" if (out_dir / MANIFEST).is_file() else "no earlier `eges run`"
        raise StageError(f"{out_dir} holds no pipeline run to take inputs from ({why}): give --events (or --edges)")
    before = recorded or {}
    if events is not None:
        events_now, edges_now = events, None
    elif edges is not None:
        events_now, edges_now = None, edges
    else:
        events_now, edges_now = before.get("events"), before.get("edges")
    items_now = None if drop_items else items if items is not None else before.get("items")
    # A warm start's parent and the run to align to are remembered like the other inputs (align_to "" drops it).
    inputs = RunInputs(events=events_now, items=items_now, edges=edges_now,
                       parent=parent if parent is not None else before.get("parent"),
                       align_to=(align_to or None) if align_to is not None else before.get("align_to"))
    recorded_config = manifest.get("config")
    notes = []
    if recorded_config and set(recorded_config) & set(MOVED):  # a run from before a section moved keeps its settings
        recorded_config, carried = carry_moved(recorded_config, bool(before.get("items")))
        notes += carried if config_path is None else []
    config = load_config(config_path, overrides, base=recorded_config if config_path is None else None)
    if recorded:
        notes += [f"input {k}: {before.get(k) or '(none)'} -> {v or '(none)'}" for k, v in inputs.to_dict().items()
                  if before.get(k) != v]
    if recorded_config:
        for section, values in config.to_dict().items():
            old = recorded_config.get(section, {})
            notes += [f"config {section}.{k}: {old[k]!r} -> {v!r}" for k, v in values.items()
                      if k in old and old[k] != v]
    return config, inputs, notes


def resume(out_dir: Path, config_path: str | None = None, overrides: Iterable[str] = (),
           inputs: RunInputs | None = None) -> tuple[Config, RunInputs]:
    """The config and inputs of an existing output directory, with a new config file or ``--set``s on top."""
    if inputs is None:
        require_run(out_dir)
    if inputs is not None:
        config, _, _ = resolve(out_dir, config_path, overrides, events=inputs.events, items=inputs.items,
                               edges=inputs.edges, drop_items=inputs.items is None)
        return config, inputs
    config, found, _ = resolve(out_dir, config_path, overrides)
    return config, found
