"""The stage registry: stages are small functions registered by name with what they read and write.

The runner, ``eges status`` and the CLI's ``eges stage NAME`` are all built from this table, so a new
stage (side information, evaluation, exports) plugs in by registering itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eges.config import Config
from eges.errors import StageError

if TYPE_CHECKING:
    from eges.methods import Method

#: External inputs are named with a leading '@': these are the ones a run can be given.
#: '@parent' is the run a warm start continues (``--warm-start``), '@align_to' the run whose space the vectors are
#: rotated onto (``--align-to``): both are run folders, not files.
EXTERNAL_INPUTS = ("@events", "@items", "@edges", "@parent", "@align_to")
#: The external inputs that are run folders: fingerprinted by what their manifest records for their training outputs
#: (``pipeline.parent.run_fingerprint``), not by hashing the whole folder.
RUN_FOLDER_INPUTS = ("@parent", "@align_to")


@dataclass(frozen=True)
class RunInputs:
    """The files a run starts from (absolute paths, or None)."""

    events: str | None = None
    items: str | None = None
    edges: str | None = None
    parent: str | None = None
    align_to: str | None = None

    def get(self, key: str) -> str | None:
        return getattr(self, key.lstrip("@"))

    def to_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


@dataclass
class StageResult:
    """What a stage reports: row counts, free-form details for the manifest, a one-line summary."""

    rows_in: int
    rows_out: int
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    """Everything a stage may use: where outputs go, the config, the run's inputs, a progress switch and
    where to print (stages that run a nested pipeline, like evaluation, report its stages there)."""

    out_dir: Path
    config: Config
    inputs: RunInputs
    progress: bool = True
    echo: Callable[[str], None] = print
    #: The running stage's own folder -> the temporary folder its outputs go to (see ``pipeline.staging``).
    staging: dict[str, Path] = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        """Where the running stage writes ``relative``: in its staging folder when the folder is its own."""
        top, _, rest = relative.partition("/")
        if rest and top in self.staging:
            return self.staging[top] / rest
        return self.out_dir / relative

    def input_source(self, key: str) -> str:
        """A run input as given: a local path, or (for the spark engine) a URI or ``table:NAME``."""
        value = self.inputs.get(key)
        if value is None:
            raise StageError(f"this stage needs --{key[1:]}")
        return value

    def input_path(self, key: str) -> Path:
        if key.startswith("@"):
            value = self.inputs.get(key)
            if value is None:
                raise StageError(f"this stage needs --{key[1:]}")
            return Path(value)
        return self.out_dir / key

    @property
    def engine(self) -> Any:
        """The engine of the sessions, graph and walks stages (``eges.engines``), picked from engine.backend."""
        from eges.engines import engine_for

        return engine_for(self.config)

    @property
    def spill_dir(self) -> Path:
        return self.out_dir / ".spill"


@dataclass(frozen=True)
class Stage:
    """A registered stage.

    Attributes:
        name: the stage name used by ``--from`` and ``eges stage``.
        run: the function doing the work.
        sections: config sections whose (output-affecting) keys make the stage out of date.
        outputs: files it writes, relative to the output directory.
        inputs: given the run's inputs and config, the files it reads: external ones as '@events' etc., others
            as paths relative to the output directory (another stage's outputs).
        enabled: whether the stage applies to this run's inputs and config (the sessions stage does not
            when an edge list is given instead of events; skipgram and eges depend on the method).
        ignores: ``section.key`` entries of ``sections`` that do not affect this stage's outputs (the evaluation
            stages train every method in ``evaluate.methods`` whatever ``train.method`` says).
        trains: given the run's inputs and config, the methods the stage may train: the ``train`` keys none of them
            reads (``methods.ignored_by_all``) do not make it out of date (EGES's keys do not stale a BGE run's).
        check: validates the stage's inputs and settings; the runner calls it (with the names of the stages about
            to run) for every stage it is about to run, before the first one writes anything (a bad catalog fails
            before the sessions are cut).
    """

    name: str
    run: Callable[[StageContext], StageResult]
    sections: tuple[str, ...]
    outputs: tuple[str, ...]
    inputs: Callable[[RunInputs, Config], tuple[str, ...]]
    enabled: Callable[[RunInputs, Config], bool]
    skipped_because: str = "not used by this run's inputs or method"
    ignores: tuple[str, ...] = ()
    check: Callable[[StageContext, set[str]], None] | None = None
    #: Files the stage writes only sometimes (the faiss index): not fingerprinted, but its own, not the user's.
    may_write: tuple[str, ...] = ()
    #: Stages after which ``check`` runs again, with what they wrote (neighbours.k against the graph's node count,
    #: known once the graph is built: before walks and training).
    recheck_after: tuple[str, ...] = ()
    trains: Callable[[RunInputs, Config], list[str]] | None = None


STAGES: dict[str, Stage] = {}


def stage(name: str, *, sections: tuple[str, ...], outputs: tuple[str, ...],
          inputs: Callable[[RunInputs, Config], tuple[str, ...]],
          enabled: Callable[[RunInputs, Config], bool] | None = None,
          skipped_because: str | None = None, ignores: tuple[str, ...] = (),
          check: Callable[[StageContext, set[str]], None] | None = None,
          may_write: tuple[str, ...] = (), recheck_after: tuple[str, ...] = (),
          trains: Callable[[RunInputs, Config], list[str]] | None = None) -> Callable:
    """Register the decorated function as stage ``name`` (the order is set by ``eges.pipeline.PIPELINE``)."""
    unknown = [key for key in ignores if key.split(".")[0] not in sections or key.count(".") != 1]
    if unknown:
        raise ValueError(f"stage {name!r}: ignores {unknown[0]!r} is not 'section.key' of one of its sections")

    def wrap(func: Callable[[StageContext], StageResult]) -> Callable[[StageContext], StageResult]:
        if name in STAGES:
            raise ValueError(f"stage {name!r} is registered twice")
        clash = [(other.name, rel) for other in STAGES.values() for rel in (*outputs, *may_write)
                 if rel in (*other.outputs, *other.may_write)]
        if clash:
            raise ValueError(f"stage {name!r} writes {clash[0][1]}, which stage {clash[0][0]!r} writes too")
        STAGES[name] = Stage(name, func, sections, outputs, inputs, enabled or (lambda _i, _c: True),
                             skipped_because or Stage.skipped_because, ignores, check, may_write, recheck_after,
                             trains)
        return func

    return wrap


def order_stages(order: tuple[str, ...], stages: dict[str, Stage] | None = None) -> None:
    """Put ``stages`` (the registry by default) in the explicit pipeline ``order``, which must name each once."""
    stages = STAGES if stages is None else stages
    if sorted(order) != sorted(stages) or len(set(order)) != len(order):
        raise ValueError(f"the pipeline order {order} does not name each registered stage once: {list(stages)}")
    reordered = {name: stages[name] for name in order}
    stages.clear()
    stages.update(reordered)


def producer_of(relative: str, stages: dict[str, Stage] | None = None) -> str | None:
    """The stage (of ``stages``, the registry by default) that writes ``relative``, if any."""
    for st in (STAGES if stages is None else stages).values():
        if relative in st.outputs:
            return st.name
    return None


def run_method(inputs: RunInputs, config: Config) -> Method:
    """The training method of a run (its row of the method table): ``train.method``, auto resolved by the catalog."""
    from eges.methods import resolve

    return resolve(config["train"].method, bool(inputs.items))


def resolved_method(inputs: RunInputs, config: Config) -> str:
    """The name of the run's training method (see :func:`run_method`)."""
    return run_method(inputs, config).name


def get_stage(name: str, stages: dict[str, Stage] | None = None) -> Stage:
    """Stage ``name`` of ``stages`` (the registry by default); an unknown name is a named error."""
    stages = STAGES if stages is None else stages
    if name not in stages:
        raise StageError(f"unknown stage {name!r}; stages are: {', '.join(stages)}")
    return stages[name]
