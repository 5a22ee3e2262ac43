"""The hostile-input corpus, part 1: settings, reruns, run folders and concurrent writers.

Every case runs a command against a copy of an earlier good run and asserts the exit code, a fragment of the
message, no traceback, and that the good run's files are byte-identical afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trust import FAST, ROOT, assert_named_error, assert_refused, copy_run, run_cli, snapshot

BAD_SETTINGS = {
    "nan half-life": ("users.half_life=nan", "users.half_life must be a finite number"),
    "nan alpha": ("train.alpha=nan", "train.alpha must be a finite number"),
    "inf alpha": ("train.alpha=inf", "train.alpha must be a finite number"),
    "-inf sample": ("train.sample=-inf", "train.sample must be a finite number"),
    "nan gap": ("sessions.session_gap_seconds=nan", "sessions.session_gap_seconds must be a finite number"),
    "inf dwell": ("sessions.min_dwell_seconds=inf", "sessions.min_dwell_seconds must be a finite number"),
    "nan edge weight": ("graph.min_edge_weight=nan", "graph.min_edge_weight must be a finite number"),
    "nan holdout": ("evaluate.link_holdout=nan", "evaluate.link_holdout must be a finite number"),
    "huge seed": ("walks.seed=99999999999999999999", "walks.seed must be at most 9223372036854775807"),
    "huge train seed": ("train.seed=18446744073709551616", "train.seed must be at most"),
    "huge dimension": ("train.dimension=1000000", "train.dimension must be at most 4096"),
    "huge walk length": ("walks.walk_length=10000000000", "walks.walk_length must be at most 100000"),
    "negative k": ("neighbours.k=-3", "neighbours.k must be at least 1"),
    "memory lots": ('engine.memory_limit="lots"', "engine.memory_limit must be a size such as 500MB"),
    "memory number": ("engine.memory_limit=4", "engine.memory_limit must be a string"),
    "memory negative": ('engine.memory_limit="-4GB"', "engine.memory_limit must be a size"),
    "min_alpha above alpha": ("train.min_alpha=0.5", "train.min_alpha (0.5) must not exceed train.alpha (0.025)"),
    "gensim for eges": ('train.backend="gensim"', "train.backend 'gensim' trains bge only"),
    "cut time inf": ('evaluate.cut_time="inf"', "evaluate.cut_time must be a finite time"),
    "cut time words": ('evaluate.cut_time="yesterday"', "evaluate.cut_time must be unix seconds or an ISO date"),
    "old skipgram section": ("skipgram.dimension=64", "use train.dimension instead of skipgram.dimension"),
    "unknown key": ("walks.lenght=3", "unknown config key walks.lenght"),
    "bool for int": ("walks.walk_length=true", "walks.walk_length must be an integer"),
    "string list": ("evaluate.ks=[10, 'x']", "evaluate.ks must be a list of integers"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS), ids=list(BAD_SETTINGS))
def test_bad_settings_fail_before_anything_is_written(case, good_run):
    events, out = good_run
    setting, message = BAD_SETTINGS[case]
    method = ["--method", "eges"] if "gensim" in case else []
    assert_refused(out, message, "run", "--events", events, "--out", out, "--set", setting, *method, "--from",
                   "sessions")


BAD_FILES = {
    "not utf-8": (b"[walks]\nwalk_length = 5 # \xff\xfe\n", "is not UTF-8 text"),
    "not toml": (b"[walks\nwalk_length = 5\n", "is not valid TOML"),
    "top-level value": (b"walk_length = 5\n", "top-level key 'walk_length' must be a [section]"),
    "nan in file": (b"[users]\nhalf_life = nan\n", "users.half_life must be a finite number"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_bad_config_files_are_named(case, good_run, tmp_path):
    events, out = good_run
    content, message = BAD_FILES[case]
    (tmp_path / "eges.toml").write_bytes(content)
    assert_refused(out, message, "run", "--events", events, "--out", out, "--config", tmp_path / "eges.toml")


BROKEN_MANIFESTS = {
    "a list": ("[]", "is damaged (a JSON list, not an object)"),
    "not json": ("{", "is corrupt"),
    "stages a list": ('{"stages": []}', "'stages' is not an object"),
    "stage entry a string": ('{"stages": {"sessions": "x"}}', "the entry of stage 'sessions' is not an object"),
    "fingerprint a number": ('{"stages": {"graph": {"outputs": {"graph/edges.parquet": 5}}}}',
                             "stage 'graph' has a malformed outputs fingerprint"),
    "inputs a list": ('{"stages": {}, "inputs": ["a"]}', "'inputs' is not an object of file paths"),
    "config sections": ('{"stages": {}, "config": {"walks": 3}}', "'config' is not an object of sections"),
}


@pytest.mark.parametrize("case", list(BROKEN_MANIFESTS), ids=list(BROKEN_MANIFESTS))
@pytest.mark.parametrize("command", ["run", "status", "stage", "report"])
def test_hand_broken_manifests_are_named(case, command, trust_template, tmp_path):
    _, template = trust_template
    out = copy_run(template, tmp_path / "run")
    (out / "manifest.json").write_text(BROKEN_MANIFESTS[case][0])
    before = snapshot(out)
    args = {"run": ["run", "--out", out], "status": ["status", "--out", out], "stage": ["stage", "graph", "--out", out],
            "report": ["report", "--out", out]}[command]
    assert_named_error(run_cli(*args), BROKEN_MANIFESTS[case][1])
    assert snapshot(out) == before


def test_status_and_run_agree_about_remembered_settings(trust_template, tmp_path):
    """The issue's scenario: --set once, then status and a partial rerun use the same (remembered) setting."""
    events, template = trust_template
    out = copy_run(template, tmp_path / "run")
    result = run_cli("run", "--events", events, "--out", out, *FAST, "--set", "train.dimension=16")
    assert result.exit_code == 0, result.output
    assert "changed since the last run, and remembered: config train.dimension: 8 -> 16" in result.output
    status = run_cli("status", "--out", out).output
    assert all(line.split()[1] in ("fresh", "skipped") for line in status.splitlines()), status
    before = snapshot(out)
    result = run_cli("run", "--out", out, "--from", "users", "--quiet")
    assert result.exit_code == 0 and "users: " in result.output
    after = snapshot(out)
    assert after["skipgram/vectors.parquet"] == before["skipgram/vectors.parquet"]  # not retrained at defaults
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["train"]["dimension"] == 16
    # status with a change says what it would change, and run with the same change agrees.
    status = run_cli("status", "--out", out, "--set", "train.dimension=32").output
    assert "skipgram stale" in " ".join(status.split()) and "train.dimension: 16 -> 32" in status


def test_a_rerun_that_forgets_items_keeps_the_catalog(tmp_path):
    import pyarrow.parquet as pq

    from trust import DATA

    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(DATA / "events.parquet").slice(0, 20_000), events)
    out = tmp_path / "run"
    args = ["--set", "walks.walks_per_node=2", "--set", "train.dimension=8", "--set", "validate.max_epochs=2", "--quiet"]
    assert run_cli("run", "--events", events, "--items", DATA / "items.parquet", "--out", out, *args).exit_code == 0
    before = snapshot(out)
    result = run_cli("run", "--events", events, "--out", out, "--quiet")  # --items forgotten
    assert result.exit_code == 0 and "eges/vectors.parquet" in result.output
    assert snapshot(out) == before  # same method, nothing overwritten
    result = run_cli("run", "--out", out, "--no-items", "--quiet")
    assert result.exit_code == 0 and "skipgram/vectors.parquet" in result.output
    assert "input items: " in result.output and "-> (none)" in result.output


def test_events_and_edges_together_are_refused(trust_template, tmp_path):
    events, template = trust_template
    out = copy_run(template, tmp_path / "run")
    before = snapshot(out)
    assert_named_error(run_cli("run", "--events", events, "--edges", events, "--out", out),
                       "give --events or --edges, not both")
    assert snapshot(out) == before


FOLDERS = {
    "a file": (lambda p: p.write_text("my notes"), "is a file"),
    "someone's project": (lambda p: (p.mkdir(), (p / "main.py").write_text("print(1)")),
                          "is not empty and holds no eges run"),
}


@pytest.mark.parametrize("case", list(FOLDERS), ids=list(FOLDERS))
def test_out_that_is_not_an_eges_run_is_refused(case, trust_template, tmp_path):
    events, _ = trust_template
    target = tmp_path / "target"
    make, message = FOLDERS[case]
    make(target)
    before = snapshot(tmp_path)
    assert_named_error(run_cli("run", "--events", events, "--out", target, *FAST), message)
    assert snapshot(tmp_path) == before
    assert not (target / ".eges.lock").exists() if target.is_dir() else True


def test_a_second_writer_fails_at_once_naming_the_holder(trust_template, tmp_path):
    events, template = trust_template
    out = copy_run(template, tmp_path / "run")
    before = snapshot(out)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from pathlib import Path;"
        "from eges.pipeline.lock import run_lock\n"
        "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)"),
        str(out), str(ROOT / "src")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        for args in (["run", "--events", events, "--out", out, "--from", "walks"], ["stage", "graph", "--out", out],
                     ["report", "--out", out]):
            assert_named_error(run_cli(*args), f"another eges process (pid {holder.pid}) is writing {out}")
        assert time.monotonic() - started < 10  # at once, not after waiting
        status = run_cli("status", "--out", out)  # readers never block
        assert status.exit_code == 0 and "fresh" in status.output
    finally:
        holder.kill()
        holder.wait()
    assert snapshot(out) == before
    # The kernel released the killed holder's lock: the next writer proceeds.
    assert run_cli("stage", "graph", "--out", out, "--quiet").exit_code == 0


def test_orphaned_temporary_files_are_removed_by_the_next_writer(trust_template, tmp_path):
    events, template = trust_template
    out = copy_run(template, tmp_path / "run")
    orphans = [out / "walks" / ".walks.parquet.0123abcd.tmp", out / ".spill" / ".sessions_with_item_ids.4242.89abcdef.scratch",
               out / "graph" / ".edges.parquet.deadbeef.old"]
    for path in orphans:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("left by a killed run")
    keep = out / "walks" / "notes.tmp"  # not an eges name: never touched
    keep.write_text("mine")
    assert run_cli("run", "--events", events, "--out", out, "--quiet").exit_code == 0
    assert not any(p.exists() for p in orphans)
    assert keep.read_text() == "mine"


def test_scratch_files_are_per_process_and_never_follow_a_symlink(tmp_path):
    import pyarrow as pa

    from eges.pipeline.io import ScratchFile

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    a, b = ScratchFile(tmp_path, "cut"), ScratchFile(tmp_path, "cut")
    assert a.path != b.path and str(os.getpid()) in a.path.name
    os.symlink(victim, a.path)  # planted at the name before the first write
    with pytest.raises(FileExistsError):
        a.write(pa.table({"x": [1]}))
    assert victim.read_text() == "precious"
    b.write(pa.table({"x": [1, 2]}))
    b.close()
    assert sum(batch.num_rows for batch in b.batches()) == 2
    b.remove()
    assert not b.path.exists()


def test_the_lock_file_holds_the_writers_pid_and_is_released(tmp_path):
    from eges.pipeline.lock import holds_lock, run_lock

    with run_lock(tmp_path), run_lock(tmp_path):  # re-entrant within a process
        assert holds_lock(tmp_path)
        assert (tmp_path / ".eges.lock").read_text().strip() == str(os.getpid())
        fd = os.open(tmp_path / ".eges.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    assert not holds_lock(tmp_path)
    fd = os.open(tmp_path / ".eges.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_numba_cache_falls_back_to_a_temporary_folder_when_nothing_is_writable(monkeypatch):
    from eges import numba_cache_dir

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)  # the caller's own choice wins (checked below)

    none_writable = lambda path, mode: False  # noqa: E731
    all_writable = lambda path, mode: True  # noqa: E731
    assert numba_cache_dir("/site/eges", "/home/u/.cache/numba", all_writable) is None
    fallback = numba_cache_dir("/site/eges", "/home/u/.cache/numba", none_writable)
    assert fallback is not None and fallback.startswith(__import__("tempfile").gettempdir())
    only_home = lambda path, mode: path.startswith("/home")  # noqa: E731
    assert numba_cache_dir("/site/eges", "/home/u/.cache/numba", only_home) is None
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/chosen")
    assert numba_cache_dir("/site/eges", "/home/u/.cache/numba", none_writable) is None  # the caller's choice


def test_a_read_only_install_with_an_unwritable_home_still_runs():
    """The real thing: the package copied read-only, HOME unwritable, run as a user who cannot write either."""
    import shutil
    import tempfile

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to drop to another user) and setpriv")
    root = Path(tempfile.mkdtemp(prefix="eges-readonly-"))  # not under pytest's root-only folder
    try:
        pkg, home = root / "site", root / "home"
        shutil.copytree(ROOT / "src" / "eges", pkg / "eges", ignore=shutil.ignore_patterns("__pycache__"))
        home.mkdir()
        for path in [*pkg.rglob("*"), pkg, home, root]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        site = [p for p in sys.path if p.endswith("site-packages")]
        # -S: no site processing, so the checkout's editable install (.pth) cannot shadow the read-only copy.
        code = ("import sys; sys.path[:0] = sys.argv[1:]; import eges.walks.kernels, eges, os; "
                "print(eges.__file__, os.environ.get('NUMBA_CACHE_DIR'))")
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-S",
                               "-c", code, str(pkg), *site], capture_output=True, text=True,
                              env={"HOME": str(home), "PATH": "/usr/bin"}, timeout=300)
        if proc.returncode != 0 and "Permission denied" in proc.stderr and "site-packages" not in proc.stderr:
            pytest.skip(f"the interpreter is not usable by an unprivileged user here: {proc.stderr[-200:]}")
        assert proc.returncode == 0, proc.stderr
        assert str(pkg) in proc.stdout and "eges-numba-cache-65534" in proc.stdout
    finally:
        for path in [root, *root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------------------- a stage's files
def folder_stages(fail_after_first: BaseException | None = None) -> dict:
    """One toy stage that owns folder x/ and writes x/a.txt then x/b.txt (or fails in between)."""
    from eges.pipeline.registry import Stage, StageResult

    def body(ctx):
        ctx.path("x/a.txt").write_text(f"new a {ctx.config.walks.walk_length}")
        if fail_after_first is not None:
            raise fail_after_first
        ctx.path("x/b.txt").write_text(f"new b {ctx.config.walks.walk_length}")
        return StageResult(1, 2)

    return {"x": Stage("x", body, ("walks",), ("x/a.txt", "x/b.txt"), lambda i, c: (), lambda i, c: True)}


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), OSError(28, "No space left on device")],
                         ids=["error", "interrupt", "full disk"])
def test_a_stage_that_fails_after_one_of_its_files_leaves_the_folder_as_it_was(error, tmp_path):
    from eges.config import load_config
    from eges.pipeline.registry import RunInputs
    from eges.pipeline.runner import run

    inputs = RunInputs(events="/dev/null")
    run(tmp_path, load_config(), inputs, stages=folder_stages(), echo=lambda _: None)
    (tmp_path / "x" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(type(error)):
        run(tmp_path, load_config(overrides=["walks.walk_length=3"]), inputs, stages=folder_stages(error),
            echo=lambda _: None)
    assert snapshot(tmp_path) == before  # both old files, the manifest, and no temporary folder left
    run(tmp_path, load_config(overrides=["walks.walk_length=3"]), inputs, stages=folder_stages(), echo=lambda _: None)
    assert (tmp_path / "x" / "a.txt").read_text() == "new a 3" and (tmp_path / "x" / "b.txt").read_text() == "new b 3"
    assert (tmp_path / "x" / "notes.txt").read_text() == "mine"  # the user's file in the folder is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == [".eges.lock", "manifest.json", "x"]


def test_a_killed_stage_leaves_its_old_files_and_the_next_run_removes_the_orphan(tmp_path):
    from eges.config import load_config
    from eges.pipeline.registry import RunInputs
    from eges.pipeline.runner import run

    inputs = RunInputs(events="/dev/null")
    run(tmp_path, load_config(), inputs, stages=folder_stages(), echo=lambda _: None)
    before = snapshot(tmp_path)
    script = ("import dataclasses, os, signal, sys; sys.path[:0] = sys.argv[2:]; from pathlib import Path\n"
              "from test_trust_runs import folder_stages\nfrom eges.config import load_config\n"
              "from eges.pipeline.registry import RunInputs\nfrom eges.pipeline.runner import run\n"
              "def dying(ctx):\n    ctx.path('x/a.txt').write_text('half')\n    os.kill(os.getpid(), signal.SIGKILL)\n"
              "stages = {'x': dataclasses.replace(folder_stages()['x'], run=dying)}\n"
              "run(Path(sys.argv[1]), load_config(overrides=['walks.walk_length=3']), RunInputs(events='/dev/null'), "
              "stages=stages, echo=print)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(ROOT / "src"), str(ROOT / "tests")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    orphans = [p for p in tmp_path.iterdir() if p.name.startswith(".x.") and p.name.endswith(".tmp")]
    assert len(orphans) == 1 and (orphans[0] / "a.txt").read_text() == "half"
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(".x.")} == before
    run(tmp_path, load_config(), inputs, stages=folder_stages(), echo=lambda _: None)
    assert not orphans[0].exists()


def test_an_interrupted_training_leaves_no_unrecorded_vectors(good_run, monkeypatch):
    """The issue's case: a rerun at another dimension fails after vectors.parquet is written (full disk while
    writing vectors.kv): the old vectors and their manifest stay, with nothing new beside them."""
    from eges.pipeline import io

    events, out = good_run
    before = snapshot(out)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io, "write_keyed_vectors", full_disk)
    recorded = json.loads((out / "manifest.json").read_text())["stages"]["skipgram"]
    outcome = run_cli("run", "--events", events, "--out", out, "--set", "train.dimension=16", "--quiet")
    assert_named_error(outcome, "no space left on the device")
    # The validate stage (it reads train.dimension) finished before training failed: its new choice is recorded.
    # Everything else, and the manifest's record of the old vectors, is as it was.
    after = snapshot(out)
    outside = {k: v for k, v in before.items() if not k.startswith("validation/") and k != "manifest.json"}
    assert {k: v for k, v in after.items() if not k.startswith("validation/") and k != "manifest.json"} == outside
    assert json.loads((out / "manifest.json").read_text())["stages"]["skipgram"] == recorded
    status = run_cli("status", "--out", out)
    assert "changed outside the pipeline" not in status.output


# --------------------------------------------------------------------------------------------- old runs
#: [skipgram] (BGE's settings) and [train] (GES/EGES's) as the release before the one [train] section wrote them.
OLD_SKIPGRAM = {"dimension": 128, "window": 5, "negative": 5, "epochs": 1, "alpha": 0.025, "min_alpha": 0.0001,
                "sample": 0.001, "ns_exponent": 0.75, "threads": 0, "seed": 42}
OLD_TRAIN = {"method": "auto", "dimension": 128, "window": 5, "negative": 5, "epochs": 1, "alpha": 0.025,
             "min_alpha": 0.0001, "ns_exponent": 0.75, "sample": 0.001, "threads": 0, "seed": 42, "cold_start": "mean"}


def test_a_run_from_before_the_train_section_keeps_its_settings(good_run):
    """Issue 21 item 2: a run made with --set skipgram.dimension=16 by an older release is rerun at 16, and says
    so (it used to drop the [skipgram] section and train at 128)."""
    import pyarrow.parquet as pq

    events, out = good_run
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"].pop("train")
    manifest["config"]["skipgram"] = {**OLD_SKIPGRAM, "dimension": 16}
    manifest["config"]["train"] = dict(OLD_TRAIN)
    manifest["stages"]["skipgram"]["config"] = {"skipgram": {k: v for k, v in manifest["config"]["skipgram"].items()
                                                             if k != "threads"}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    status = run_cli("status", "--out", out)
    assert "config [skipgram] is part of [train] since this stage ran" in status.output, status.output
    assert "config skipgram.dimension is now train.dimension: carried over (16, which trained this bge run" \
        in status.output
    result = run_cli("run", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "remembered: config skipgram.dimension is now train.dimension: carried over (16" in result.output
    assert pq.read_schema(out / "skipgram/vectors.parquet").field("vector").type.list_size == 16
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert "skipgram" not in config and config["train"]["dimension"] == 16 and config["train"]["epochs"] == 1


def test_carried_settings_follow_the_method_that_trained_the_run():
    from eges.config import carry_moved

    old = {"skipgram": {**OLD_SKIPGRAM, "dimension": 16}, "train": {**OLD_TRAIN, "dimension": 32}}
    for has_catalog, kept in ((False, 16), (True, 32)):  # a catalog: auto was eges, trained by [train]
        carried, notes = carry_moved(old, has_catalog)
        assert carried["train"]["dimension"] == kept and "skipgram" not in carried
        assert len(notes) == 1 and "skipgram.dimension" in notes[0] and f"{kept}" in notes[0]
    with pytest.raises(Exception, match="skipgram.workers = 3, which \\[train\\] no longer has"):
        carry_moved({"skipgram": {"workers": 3}}, False)


# --------------------------------------------------------------------------------------------- errors in time
def test_neighbours_k_above_the_items_fails_before_walks_and_training(tmp_path):
    """Issue 21 item 9: a 9-item log with k = 10 (and a self-loop-only edge list) used to fail only after sessions,
    graph, walks and training were written."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 600
    pd.DataFrame({"user_id": rng.integers(0, 30, n), "item_id": rng.integers(0, 9, n),
                  "timestamp": 1_511_539_200 + np.arange(n) * 60}).to_parquet(tmp_path / "events.parquet")
    pd.DataFrame({"src": [1, 2, 3], "dst": [1, 2, 3]}).to_parquet(tmp_path / "loops.parquet")
    for flag, source, items in (("--events", "events.parquet", 9), ("--edges", "loops.parquet", 3)):
        out = tmp_path / f"run-{source}"
        outcome = run_cli("run", flag, tmp_path / source, "--out", out, *FAST, "--set", "neighbours.k=10")
        assert_named_error(outcome, f"neighbours.k = 10 but the graph has only {items} items; use at most {items - 1}")
        assert not [p for p in out.iterdir() if p.name in ("walks", "skipgram", "neighbours")]


def test_a_manifest_eges_did_not_write_is_not_a_run(trust_template, tmp_path):
    """Issue 21 item 12: a folder with a manifest.json of {} and the user's own users/vectors.parquet was taken as a
    run and its file overwritten."""
    events, _ = trust_template
    out = tmp_path / "theirs"
    (out / "users").mkdir(parents=True)
    (out / "users" / "vectors.parquet").write_bytes(b"the user's own file")
    for foreign in ("{}", '{"inputs": {"events": null}, "config": {}}'):
        (out / "manifest.json").write_text(foreign)
        before = snapshot(out)
        for args in (["run", "--events", events, "--out", out, *FAST], ["status", "--out", out],
                     ["stage", "users", "--out", out]):
            assert_named_error(run_cli(*args), "was not written by eges (no 'eges' marker and no 'stages')")
        assert snapshot(out) == before and not (out / ".eges.lock").exists()


def test_every_manifest_is_marked_and_an_earlier_releases_manifest_is_still_a_run(good_run):
    events, out = good_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest)[0] == "eges" and manifest["eges"]["format"] == 1
    del manifest["eges"]  # as a release before the marker wrote it
    (out / "manifest.json").write_text(json.dumps(manifest))
    status = run_cli("status", "--out", out)
    assert status.exit_code == 0 and "skipgram" in status.output and "fresh" in status.output, status.output
    assert run_cli("run", "--out", out, "--quiet").exit_code == 0
    assert "eges" in json.loads((out / "manifest.json").read_text())


def test_a_run_that_finished_no_stage_is_told_as_such(trust_template, tmp_path):
    """An interrupted first run leaves {"stages": {}} (every release wrote it before the first stage): status said
    'no manifest.json' although there is one."""
    events, _ = trust_template
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"stages": {}}')
    assert_named_error(run_cli("status", "--out", out), "holds an eges run that has not finished a stage yet")
    for args in (["run", "--out", out], ["stage", "graph", "--out", out]):
        assert_named_error(run_cli(*args), "(its first run finished no stage): give --events")
    assert run_cli("run", "--events", events, "--out", out, *FAST).exit_code == 0
