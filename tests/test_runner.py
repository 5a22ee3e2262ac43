"""The runner on toy stages: order, freshness, forced reruns and upstream propagation, without the real pipeline."""

from __future__ import annotations

import pytest

from eges.config import load_config
from eges.pipeline.registry import RunInputs, Stage, StageResult, order_stages
from eges.pipeline.runner import plan, run


def toy_stages(calls: list[str]) -> dict[str, Stage]:
    """a writes a.txt; b reads a.txt and writes b.txt; c reads b.txt (config: walks)."""

    def make(name: str, reads: tuple[str, ...], writes: str, sections=("graph",)):
        def body(ctx):
            calls.append(name)
            text = "".join((ctx.out_dir / r).read_text() for r in reads) + name
            (ctx.out_dir / writes).write_text(text)
            return StageResult(1, 1)

        return Stage(name, body, sections, (writes,), lambda i, c: reads, lambda i, c: True)

    return {"a": make("a", (), "a.txt"), "b": make("b", ("a.txt",), "b.txt"),
            "c": make("c", ("b.txt",), "c.txt", sections=("walks",))}


def test_the_runner_runs_stale_toy_stages_in_order_and_skips_fresh_ones(tmp_path):
    calls: list[str] = []
    stages = toy_stages(calls)
    config, inputs = load_config(), RunInputs(events="/dev/null")
    run(tmp_path, config, inputs, stages=stages, echo=lambda _: None)
    assert calls == ["a", "b", "c"] and (tmp_path / "c.txt").read_text() == "abc"
    run(tmp_path, config, inputs, stages=stages, echo=lambda _: None)
    assert calls == ["a", "b", "c"]  # all fresh
    changed = load_config(overrides=["walks.walk_length=3"])
    assert [s.state for s in plan(tmp_path, changed, inputs, stages=stages)] == ["fresh", "fresh", "stale"]
    run(tmp_path, changed, inputs, stages=stages, echo=lambda _: None)
    assert calls[3:] == ["c"]
    run(tmp_path, changed, inputs, from_stage="b", stages=stages, echo=lambda _: None)
    assert calls[4:] == ["b", "c"]


def test_stage_order_must_name_each_stage_once():
    stages = toy_stages([])
    with pytest.raises(ValueError, match="does not name each registered stage once"):
        order_stages(("a", "b"), stages)
    with pytest.raises(ValueError, match="does not name each registered stage once"):
        order_stages(("a", "b", "b"), stages)
    order_stages(("c", "a", "b"), stages)
    assert list(stages) == ["c", "a", "b"]


def test_registering_a_stage_twice_or_an_output_twice_fails():
    from eges.pipeline.registry import STAGES, stage

    with pytest.raises(ValueError, match="registered twice"):
        stage("sessions", sections=(), outputs=("x/y",), inputs=lambda i, c: ())(lambda ctx: None)
    with pytest.raises(ValueError, match="which stage 'graph' writes too"):
        stage("toy", sections=(), outputs=("graph/edges.parquet",), inputs=lambda i, c: ())(lambda ctx: None)
    assert "toy" not in STAGES


@pytest.mark.parametrize("kernel_exchange", [True, False], ids=["renameat2", "two renames"])
def test_a_staged_folder_takes_the_old_ones_place_whole(kernel_exchange, tmp_path, monkeypatch):
    from eges.pipeline import staging

    if not kernel_exchange:
        monkeypatch.setattr(staging, "exchange", lambda a, b: False)
    elif not staging.exchange(tmp_path, tmp_path):
        pytest.skip("no renameat2(RENAME_EXCHANGE) here")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.txt").write_text("old a")
    (tmp_path / "x" / "gone.txt").write_text("old, no longer written")
    (tmp_path / "x" / "mine").mkdir()
    (tmp_path / "x" / "mine" / "notes.txt").write_text("the user's")
    with staging.staged_folder(tmp_path, "x", ["a.txt", "gone.txt"]) as tmp:
        (tmp / "a.txt").write_text("new a")
        assert (tmp_path / "x" / "a.txt").read_text() == "old a"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == \
        ["x", "x/a.txt", "x/mine", "x/mine/notes.txt"]
    assert (tmp_path / "x" / "a.txt").read_text() == "new a"
    assert (tmp_path / "x" / "mine" / "notes.txt").read_text() == "the user's"


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_file_or_link_at_a_stage_folders_name_is_refused_not_replaced(kind, tmp_path):
    """A stage folder's name holding the user's file, or a link to a folder elsewhere, is named, never swapped away."""
    from eges.errors import StageError
    from eges.pipeline import staging

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "note.txt").write_text("the user's")
    if kind == "file":
        (tmp_path / "x").write_text("the user's file")
    else:
        (tmp_path / "x").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StageError, match="not the folder eges writes"), staging.staged_folder(tmp_path, "x", ["a"]) as tmp:
        (tmp / "a").write_text("new")
    assert (tmp_path / "x").is_symlink() if kind == "link" else (tmp_path / "x").read_text() == "the user's file"
    assert (elsewhere / "note.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "x"]  # no staging folder left


def test_the_two_rename_swap_puts_the_old_folder_back_when_interrupted(tmp_path, monkeypatch):
    """Without the kernel's exchange, an interrupt after the old folder moved aside puts it back."""
    from eges.pipeline import staging

    monkeypatch.setattr(staging, "exchange", lambda a, b: False)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a").write_text("old")
    (tmp_path / "new").mkdir()
    real_rename = staging.os.rename

    def rename(src, dst):  # noqa: ANN001, ANN202
        real_rename(src, dst)
        if str(dst).endswith(".old"):
            raise KeyboardInterrupt  # right after the old folder moved aside

    monkeypatch.setattr(staging.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        staging.swap_in(tmp_path / "new", tmp_path / "x")
    monkeypatch.setattr(staging.os, "rename", real_rename)
    assert (tmp_path / "x" / "a").read_text() == "old"


def test_orphan_cleaning_leaves_nested_run_folders_to_their_own_writer(tmp_path):
    """A nested run folder (its own .eges.lock) may be written by another process: its staging folder is live."""
    from eges.layout import LOCK
    from eges.pipeline.lock import remove_orphans

    nested = tmp_path / "variants" / "a"
    nested.mkdir(parents=True)
    (nested / LOCK).write_text("")
    live = nested / ".walks.0123abcd.tmp"
    live.mkdir()
    orphan = tmp_path / ".walks.89abcdef.tmp"
    orphan.mkdir()
    remove_orphans(tmp_path)
    assert live.exists() and not orphan.exists()


def test_a_train_key_no_method_of_the_stage_reads_leaves_it_fresh(tmp_path):
    """A stage that trains BGE alone (``trains``) stays fresh when a key only GES/EGES read changes; a key BGE reads
    still makes it stale, and so does the EGES key once the stage may train EGES (a catalog)."""
    from eges.pipeline.registry import Stage

    def body(ctx):
        (ctx.out_dir / "t.txt").write_text("t")
        return StageResult(1, 1)

    def trains(inputs, _config):
        return ["bge"] if inputs.items is None else ["bge", "ges", "eges"]

    stages = {"t": Stage("t", body, ("train",), ("t.txt",), lambda i, c: (), lambda i, c: True, trains=trains)}
    for inputs, eges_key_counts in ((RunInputs(events="/dev/null"), False),
                                    (RunInputs(events="/dev/null", items="/dev/null"), True)):
        run(tmp_path, load_config(), inputs, stages=stages, echo=lambda _: None)
        for key, counts in (("train.attention_alpha=0.01", eges_key_counts), ("train.side_alpha=0.01", eges_key_counts),
                            ("train.own_weight=0.3", eges_key_counts), ("train.window=3", True)):
            state = plan(tmp_path, load_config(overrides=[key]), inputs, stages=stages)[0].state
            assert state == ("stale" if counts else "fresh"), key


def test_the_stale_reason_names_a_key_added_changed_or_no_longer_read():
    """A folder from an eges whose stage fingerprinted more keys (or fewer) says which key made it stale."""
    from eges.pipeline.runner import _config_diff

    old = {"train": {"window": 5, "side_alpha": 0.0}}
    assert _config_diff(old, {"train": {"window": 5}}) == "config train.side_alpha is no longer read by this stage"
    assert _config_diff(old, {"train": {"window": 3, "side_alpha": 0.0}}) == "config train.window changed: 5 -> 3"
    assert _config_diff({"train": {"window": 5}}, {"train": {"window": 5, "seed": 1}}) == \
        "config train.seed is new since this stage ran (1)"
