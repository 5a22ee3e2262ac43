"""The ``eges`` command line, built from the stage registry and the config sections.

click is used because it gives typed options, choices, nested commands and help pages without
hand-written argument parsing, and it is already a dependency of much of the data stack.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from eges.errors import EgesError
from eges.methods import CHOICES, NAMES


def _echo(line: str) -> None:
    click.echo(line, err=False)


def _stage_names() -> list[str]:
    from eges.pipeline import STAGES

    return list(STAGES)


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


class _PlainFormatter(logging.Formatter):
    """``warning: message`` with NumPy scalars printed as plain numbers (``103378``, not ``np.int64(103378)``)."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple):
            record.args = tuple(a.item() if hasattr(a, "item") and getattr(a, "ndim", None) == 0 else a
                                for a in record.args)
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (click's test runner and pytest swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never take the command down
            self.handleError(record)


def _setup_logging() -> None:
    """eges' warnings go to stderr through ``logging`` with a level prefix, once per process."""
    log = logging.getLogger("eges")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_PlainFormatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _os_error(exc: OSError) -> str:
    import errno

    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    text = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
        return f"no space left on the device{where}; free some space or point --out (or engine.temp_directory) " \
               "elsewhere; finished outputs are intact"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {text}"
    return f"{text}{where}"


class _Group(click.Group):
    """Turns EgesError into one clear line on stderr and exit status 2 (no traceback), and an interrupt into one
    line and exit status 130."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        _setup_logging()
        try:
            return super().invoke(ctx)
        except EgesError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as exc:  # Ctrl-C: the stage's outputs were not recorded, earlier ones stand
            stage = getattr(exc, "eges_stage", None)
            click.echo(f"interrupted; nothing recorded for {stage}" if stage else "interrupted", err=True)
            sys.exit(130)
        except OSError as exc:  # disk full, permission denied, a read-only folder: the system's words, one line
            click.echo(f"error: {_os_error(exc)}", err=True)
            sys.exit(2)
        except Exception as exc:
            duckdb = sys.modules.get("duckdb")
            if duckdb is not None and isinstance(exc, duckdb.Error):
                click.echo(f"error: the relational engine (DuckDB) failed: {str(exc).splitlines()[0]}", err=True)
                sys.exit(2)
            raise


@click.group(cls=_Group)
@click.version_option(package_name="eges")
def main() -> None:
    """Item embeddings from e-commerce behaviour logs (Alibaba EGES, KDD 2018)."""


_config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                              help="TOML config file (see `eges config --defaults`).")
_set_option = click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
                           help="Override one config key; repeatable.")
_out_option = click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                           help="Output directory (one subdirectory per stage, plus manifest.json).")
_quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")


@main.command()
@click.option("--events", help="Event log (a Parquet or CSV file; with engine.backend=spark also a folder of "
              "parts, a URI such as s3a://bucket/events/, or table:NAME).")
@click.option("--items", type=click.Path(dir_okay=False), help="Item catalog with side information.")
@click.option("--edges", help="A weighted edge list (src, dst[, weight]) to use instead of sessions from --events: a "
              "Parquet or CSV file; with engine.backend=spark also a folder, a URI or table:NAME.")
@_out_option
@_config_option
@_set_option
@click.option("--from", "from_stage", type=click.Choice(_stage_names()),
              help="Rerun this stage and every stage after it, even if fresh.")
@click.option("--until", "to_stage", type=click.Choice(_stage_names()),
              help="Stop after this stage (the stages after it are left as they are).")
@click.option("--method", type=click.Choice(NAMES),
              help="Embedding method (same as --set train.method=...); default: with --items the one that scores "
                   "best on a held-out slice of the log (the validate stage), else bge.")
@click.option("--no-items", "no_items", is_flag=True,
              help="Drop the catalog this run folder remembers (a rerun without --items keeps it).")
@click.option("--warm-start", "warm_start", type=click.Path(file_okay=False),
              help="A daily update: start training from this earlier run folder's vectors (same method, dimension "
              "and catalog fields); new items are placed from side information. See docs/updates.md.")
@click.option("--align-to", "align_to", type=click.Path(file_okay=False),
              help="An earlier run folder: rotate this run's vectors onto its space (orthogonal Procrustes on the "
                   "items both hold), so models trained on its vectors can read these; remembered. docs/drift.md.")
@click.option("--no-align-to", "no_align_to", is_flag=True,
              help="Stop aligning: drop the run to align to this folder remembers (the training stage reruns).")
@_quiet_option
def run(events, items, edges, out_dir, config_path, overrides, from_stage, to_stage, method, no_items, warm_start,
        align_to, no_align_to, quiet) -> None:
    """Run every stage whose outputs are missing or out of date.

    A run folder remembers its inputs and config: a rerun uses them, with the inputs and --set/--method given
    now on top (--config replaces the remembered config). `eges status` applies the same rule.
    """
    from eges.methods import METHODS
    from eges.pipeline.registry import resolved_method
    from eges.pipeline.runner import run as run_pipeline

    if events is not None and edges is not None:
        raise EgesError("give --events or --edges, not both: an edge list replaces the graph the events would make")
    if items is not None and no_items:
        raise EgesError("give --items or --no-items, not both")
    if align_to is not None and no_align_to:
        raise EgesError("give --align-to or --no-align-to, not both")
    from eges.pipeline.io import is_external, spark_only

    for flag, value in (("--events", events), ("--items", items), ("--edges", edges)):
        if value is None or (flag != "--items" and spark_only(value)):  # the runner checks the engine reads it
            continue
        if not Path(value).is_file():
            raise EgesError(f"{flag} file {value} does not exist" if not Path(value).is_dir()
                            else f"{flag} {value} is a directory, not a file")
    out = Path(out_dir)
    sets = [*overrides, *([f"train.method={method}"] if method else [])]

    def given(source: str | None) -> str | None:
        return source if source and is_external(source) else _abs(source)

    config, inputs, changes = _resolve(out, config_path, sets, events=given(events), items=_abs(items),
                                       edges=given(edges), drop_items=no_items, parent=_abs(warm_start),
                                       align_to="" if no_align_to else _abs(align_to))
    run_pipeline(out, config, inputs, from_stage=from_stage, to_stage=to_stage, progress=not quiet, echo=_echo)
    for line in changes:  # after the run: a failed run changes nothing, and its error stays one line
        _echo(f"changed since the last run, and remembered: {line}")
    vectors = out / METHODS[resolved_method(inputs, config)].vectors
    if vectors.exists():
        _echo(f"item vectors: {vectors}")
        _echo(next_steps(out, inputs))


def _resolve(out: Path, config_path, sets, **given):  # noqa: ANN001, ANN003, ANN202
    """runner.resolve plus a warning for each --set of a train key the run's method does not read."""
    from eges.config import parse_override
    from eges.methods import ignored_settings
    from eges.pipeline.registry import resolved_method
    from eges.pipeline.runner import resolve

    config, inputs, changes = resolve(out, config_path, sets, **given)
    method = resolved_method(inputs, config)
    for key in ignored_settings(method, [parse_override(s) for s in sets]):
        logging.getLogger("eges").warning("%s has no effect with method %s", key, method)
    return config, inputs, changes


def next_steps(out: Path, inputs) -> str:  # noqa: ANN001
    """What a user does after a run, with their own paths, each line pasteable as is."""
    import shlex

    o = shlex.quote(str(out))
    data = f"--events {shlex.quote(inputs.events)}" if inputs.events else None
    if data and inputs.items:
        data += f" --items {shlex.quote(inputs.items)}"
    lines = ["next:"]
    if data:
        lines.append(f"  eges evaluate {data} --out {o}   # score it against baselines (reuses this run's sessions)")
    lines.append(f"  eges export --out {o} --format npy --to {o}/export/npy   # matrix + vocabulary for an embedding layer")
    lines.append(f"  eges report --out {o}   # one HTML page: stages, graph, map, neighbours")
    return "\n".join(lines)


@main.command()
@click.argument("name", type=click.Choice(_stage_names()))
@_out_option
@_config_option
@_set_option
@_quiet_option
def stage(name, out_dir, config_path, overrides, quiet) -> None:
    """Rerun one stage by NAME, with the inputs and config recorded in --out (plus any changes)."""
    from eges.pipeline.runner import run as run_pipeline

    out = Path(out_dir)
    config, inputs, changes = _resolve(out, config_path, list(overrides))
    run_pipeline(out, config, inputs, only=name, progress=not quiet, echo=_echo)
    for line in changes:
        _echo(f"changed since the last run, and remembered: {line}")


@main.command()
@_out_option
@_config_option
@_set_option
def status(out_dir, config_path, overrides) -> None:
    """Show each stage as fresh, stale or missing, and why."""
    from eges.pipeline.runner import plan, require_run

    out = Path(out_dir)
    manifest = require_run(out)
    config, inputs, changes = _resolve(out, config_path, list(overrides))
    recorded = manifest.get("stages", {})
    statuses = plan(out, config, inputs)
    width = max(len(st.name) for st in statuses)
    for st in statuses:
        entry = recorded.get(st.name, {})
        extra = f"  ({entry['rows_out']:,} rows, {entry['seconds']:.1f} s)" if "rows_out" in entry else ""
        _echo(f"{st.name:<{width}} {st.state:<8} {st.reason}{extra}")
    for line in changes:
        _echo(f"(with your changes: {line})")
    for line in lineage_lines(recorded):
        _echo(line)


def lineage_lines(recorded: dict) -> list[str]:
    """The warm start a run continued from and its chain of updates, from its training stage's record."""
    for entry in recorded.values():
        lineage = entry.get("details", {}).get("lineage")
        if lineage:
            chain = " -> ".join(link["path"] for link in lineage["chain"])
            return [f"warm start from {lineage['parent']['path']} ({lineage['parent']['method']}, "
                    f"fingerprint {lineage['parent']['digest'][:12]})",
                    f"chain of updates ({len(lineage['chain'])}): {chain} -> this run"]
    return []


@main.command()
@click.option("--events", required=True, type=click.Path(dir_okay=False), help="Event log (Parquet or CSV).")
@click.option("--items", type=click.Path(dir_okay=False), help="Item catalog (needed for GES/EGES and cold start).")
@_out_option
@_config_option
@_set_option
@click.option("--protocol", "protocol_names", multiple=True, type=click.Choice(["link", "temporal", "cold", "all"]),
              help="link: held-out graph edges (the paper's); temporal: next item after a cut time; cold: items "
                   "whose behaviour is hidden. Repeatable. Default: all ('all' runs cold only with --items).")
@click.option("--method", "methods", multiple=True, type=click.Choice(CHOICES),
              help="Method to train and score; repeatable; auto is what a run with no --method trains. Default: every "
                   "method the inputs allow.")
@click.option("--vary", "varies", multiple=True, metavar="SECTION.KEY=V1,V2,...",
              help="Evaluate once per value (every combination when repeated), each in OUT/variants/<setting>/, "
                   "and compare them in one table.")
@_quiet_option
def evaluate(events, items, out_dir, config_path, overrides, protocol_names, methods, varies, quiet) -> None:
    """Split the log, train on the training part, score methods and baselines on the same held-out pairs."""
    from eges.config import PROTOCOLS, load_config
    from eges.outputs.compare import comparison, format_table
    from eges.pipeline import RunInputs
    from eges.pipeline.runner import run as run_pipeline

    for flag, value in (("--events", events), ("--items", items)):
        if value is not None and not Path(value).is_file():
            raise EgesError(f"{flag} file {value} does not exist")
    named = set(protocol_names or ["all"])
    if "cold" in named and not items:
        raise EgesError("the cold-start protocol needs an item catalog: give --items")
    protocols = [p for p in PROTOCOLS if p in named or ("all" in named and (p != "cold" or items))]
    extra = [f"evaluate.protocols={protocols!r}".replace("'", '"')]
    if methods:
        extra.append(f"evaluate.methods={list(methods)!r}".replace("'", '"'))
    out = Path(out_dir)
    runs = [(out, [])]
    if varies:
        from eges.outputs.compare import variant_dir_name, variants

        runs = [(out / "variants" / variant_dir_name(v), v) for v in variants(varies)]
    configs = [load_config(config_path, [*overrides, *v, *extra]) for _, v in runs]  # all validated up front
    inputs = RunInputs(events=_abs(events), items=_abs(items))
    for (directory, setting), config in zip(runs, configs):
        if setting:
            _echo(f"== {', '.join(setting)}")
        run_pipeline(directory, config, inputs, select=[f"evaluate_{p}" for p in protocols], progress=not quiet,
                     echo=_echo)
    _echo(format_table(comparison([d for d, _ in runs])))
    _echo(f"evaluation results: {', '.join(str(d / 'evaluation') for d, _ in runs)}")


@main.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--to", "to_path", type=click.Path(dir_okay=False), help="Also write the table (.csv or .parquet).")
def compare(dirs, to_path) -> None:
    """Compare evaluation results side by side: the methods of one DIR, or several DIRs run with other settings.
    With two run folders OLD NEW, also how far NEW's vectors drifted from OLD's (docs/drift.md)."""
    from eges.errors import InputError
    from eges.outputs.compare import comparison, drift_comparison, format_table

    drift = drift_comparison(*dirs) if len(dirs) == 2 else None
    try:
        table = comparison(dirs)
    except InputError:
        if drift is None:
            raise
        table = None
    if table is not None:
        _echo(format_table(table))
    if drift is not None:
        _echo(f"drift of {dirs[1]} against {dirs[0]} ({drift[1]}):")
        _echo(drift[0].set_index("measure").to_string(index_names=False))
    if to_path and table is not None:
        from eges.pipeline.io import atomic_path

        flat = table.reset_index()
        flat.columns = [str(c) for c in flat.columns]
        with atomic_path(to_path) as tmp:
            if str(to_path).endswith(".parquet"):
                flat.to_parquet(tmp, index=False)
            else:
                flat.to_csv(tmp, index=False)
        _echo(f"wrote {to_path}")


@main.command()
@click.option("--events", required=True, help="Event log (Parquet or CSV); its latest events are held out to score on.")
@click.option("--items", help="Item catalog: the search then covers GES/EGES and their side-information settings.")
@_out_option
@_config_option
@_set_option
@click.option("--budget", default="20m", show_default=True,
              help="Wall-clock time for everything (sessions, the slice, every trial): 90s, 20m, 1h, 1h30m.")
@click.option("--metric", metavar="hitrate|auc", help="What the search maximises (validate.metric): next-item "
              "HitRate@K for recall, or link AUC.")
@click.option("--to", "to_path", help="Also write the best settings' TOML here (new, or an earlier eges tune file).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the candidates drawn.")
@_quiet_option
def tune(events, items, out_dir, config_path, overrides, budget, metric, to_path, seed, quiet) -> None:
    """Search dimension, window, walks, negatives, graph direction, method and side-information weights on a
    validation slice of the log within --budget; write OUT/tune/trials.parquet and OUT/tune/best.toml."""
    import shlex

    from eges.tuning.run import tune as run_tune

    result = run_tune(events, items, out=out_dir, budget=budget, config=config_path, settings=overrides,
                      metric=metric, to=to_path, seed=seed, progress=not quiet, echo=_echo)
    _echo(result.table())
    _echo(f"best: validation {result.metric} {result.best_metric:.4f} of {len(result.trials)} trials in "
          f"{result.seconds:.0f} s; settings: {result.path}" + (f" and {result.copy}" if result.copy else ""))
    data = f"--events {shlex.quote(str(Path(events).resolve()))}" + \
        (f" --items {shlex.quote(str(Path(items).resolve()))}" if items else "")
    _echo(f"next:\n  eges run {data} --out {shlex.quote(out_dir)} --config {shlex.quote(str(result.path))}")


@main.command()
@_out_option
@click.option("--format", "fmt", required=True,
              type=click.Choice(["parquet", "npy", "word2vec", "projector", "neighbours"]),
              help="parquet: one file, matrix rows with their item ids; npy: a directory with embeddings.npy and "
                   "the vocabulary; word2vec: a file (.bin for binary); projector: a directory of TensorBoard files; "
                   "neighbours: the neighbours table in long form (item_id, neighbour_id, rank, score), Parquet or "
                   ".csv.")
@click.option("--to", "to_path", required=True, type=click.Path(),
              help="The file or folder to write: new, empty, or eges' own earlier export of this format.")
@click.option("--method", type=click.Choice(NAMES), help="Whose vectors; default the run's method.")
@click.option("--force", is_flag=True, help="Replace an eges export of another format at --to (eges never replaces "
              "anything but its own exports).")
def export(out_dir, fmt, to_path, method, force) -> None:
    """Export the run's item vectors: an aligned matrix for embedding layers, word2vec, or the TensorBoard projector."""
    from eges.outputs.export import export as run_export

    _echo(run_export(Path(out_dir), fmt, Path(to_path), method, force=force))


@main.command()
@_out_option
def report(out_dir) -> None:
    """Write OUT/report.html: stages, graph, attention weights, evaluation, an item map and example neighbours."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise EgesError("eges report draws its plots with matplotlib: pip install 'eges[report]'")
    from eges.outputs.report import write_report

    _echo(f"report: {write_report(Path(out_dir))}")


@main.command("config")
@click.option("--defaults", is_flag=True, help="Print the full default config with help text.")
@_config_option
@_set_option
def config_cmd(defaults, config_path, overrides) -> None:
    """Print a config (the defaults, or a file with --set changes applied) as TOML."""
    from eges.config import default_config, load_config, to_toml

    cfg = default_config() if defaults else load_config(config_path, overrides)
    _echo(to_toml(cfg))


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--events", "n_events", default=300_000, show_default=True, help="Approximate event count.")
@click.option("--items", "n_items", default=8_000, show_default=True, help="Catalog size.")
@click.option("--seed", default=7, show_default=True)
@click.option("--side-info-signal", default=1.0, show_default=True, type=click.FloatRange(0, 1),
              help="How much the catalog says about behaviour: 1 as the bundled sample, 0 side information "
                   "independent of what users view.")
@click.option("--days", "n_days", default=None, type=click.IntRange(1, 10_000),
              help="Spread the events over this many days with day-to-day drift: items arrive and fade, popularity "
                   "shifts (eges.sample_data.make_days).")
@click.option("--day", default=None, type=click.IntRange(1, 10_000),
              help="With --days: write only this day's events (1-based), the same as that day of the whole log.")
def sample(out_dir, n_events, n_items, seed, side_info_signal, n_days, day) -> None:
    """Generate a synthetic log and catalog with planted topics (see eges.sample_data)."""
    import pyarrow as pa

    from eges.pipeline.io import write_table
    from eges.sample_data import SampleSpec, make_days, make_sample

    spec = SampleSpec(n_events=n_events, n_items=n_items, seed=seed, side_info_signal=side_info_signal)
    if day is not None and (n_days is None or day > n_days):
        raise click.UsageError("--day K needs --days N with K <= N")
    events, catalog, truth = make_sample(spec) if n_days is None else make_days(spec, n_days, day)
    out = Path(out_dir)
    for name, frame in (("events", events), ("items", catalog), ("item_topics", truth)):
        write_table(pa.Table.from_pandas(frame, preserve_index=False), out / f"{name}.parquet")
    _echo(f"wrote {len(events):,} events, {len(catalog):,} items to {out}")


if __name__ == "__main__":
    main()
