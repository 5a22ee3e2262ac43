"""The hostile-input corpus, part 2: exports that must not destroy anything, full and read-only disks, kills.

Every refusal asserts the exit code, a fragment of the message, no traceback, and that the earlier good run and
whatever the destination held are byte-identical afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trust import FAST, ROOT, assert_named_error, copy_run, run_cli, snapshot


@pytest.fixture
def run(trust_template, tmp_path):
    events, template = trust_template
    return events, copy_run(template, tmp_path / "run")


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('my work')\n")
    (project / "notes.md").write_text("do not lose me\n")
    return project


# Each case: (format, destination given the run folder and tmp_path, message fragment).
REFUSED = {
    "a user's project folder": ("npy", lambda out, tmp: _project(tmp), "is not an eges export"),
    "the run folder itself": ("npy", lambda out, tmp: out, "holds the run folder"),
    "a folder holding the run": ("npy", lambda out, tmp: out.parent, "holds the run folder"),
    "the run's eges-owned vectors folder": ("npy", lambda out, tmp: out / "skipgram", "inside the run's own skipgram"),
    "a stage output file": ("parquet", lambda out, tmp: out / "skipgram" / "vectors.parquet",
                            "inside the run's own skipgram"),
    "a new file in a stage folder": ("parquet", lambda out, tmp: out / "graph" / "mine.parquet",
                                     "inside the run's own graph"),
    "the run's manifest": ("word2vec", lambda out, tmp: out / "manifest.json", "inside the run's own manifest.json"),
    "a user's parquet file": ("parquet", lambda out, tmp: _file(tmp / "data.parquet"), "is not an eges export"),
    "a user's text file as word2vec": ("word2vec", lambda out, tmp: _file(tmp / "vectors.txt"), "is not an eges export"),
    "a file where a folder goes": ("npy", lambda out, tmp: _file(tmp / "npy"), "is a file; the npy export is a folder"),
    "a folder where a file goes": ("parquet", lambda out, tmp: _project(tmp), "is a folder; the parquet export"),
    "a projector folder without a marker": ("projector", lambda out, tmp: _project(tmp), "is not an eges export"),
}


def _file(path: Path) -> Path:
    path.write_bytes(b"PAR1 not really, but mine")
    return path


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_export_never_replaces_what_eges_did_not_write(case, force, run, tmp_path):
    _, out = run
    fmt, dest, message = REFUSED[case]
    to = dest(out, tmp_path)
    before, before_dest = snapshot(tmp_path), snapshot(to) if to.is_dir() else to.read_bytes() if to.exists() else None
    result = run_cli("export", "--out", out, "--format", fmt, "--to", to, *(["--force"] if force else []))
    assert_named_error(result, message)
    assert snapshot(tmp_path) == before
    assert (snapshot(to) if to.is_dir() else to.read_bytes() if to.exists() else None) == before_dest


@pytest.mark.parametrize("fmt,name", [("npy", "npy"), ("projector", "proj"), ("parquet", "m.parquet"),
                                      ("word2vec", "v.txt"), ("word2vec", "v.bin")])
def test_an_eges_export_is_replaced_by_the_same_kind(fmt, name, run, tmp_path):
    _, out = run
    to = tmp_path / "exports" / name
    assert run_cli("export", "--out", out, "--format", fmt, "--to", to).exit_code == 0
    first = snapshot(to) if to.is_dir() else to.read_bytes()
    result = run_cli("export", "--out", out, "--format", fmt, "--to", to)
    assert result.exit_code == 0, result.output
    assert (snapshot(to) if to.is_dir() else to.read_bytes()) == first  # same run, same export
    assert sorted(p.name for p in to.parent.iterdir() if not p.name.endswith(".export.json")) == [name]


@pytest.mark.parametrize("fmt", ["npy", "projector"])
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_a_second_export_never_deletes_the_users_files_in_the_first(fmt, force, run, tmp_path):
    """issue 21 item 8: X/notes.txt and X/mydir/a.txt were deleted by a second export into X, with exit 0."""
    _, out = run
    to = tmp_path / "x"
    assert run_cli("export", "--out", out, "--format", fmt, "--to", to).exit_code == 0
    assert sorted(json.loads((to / "export.json").read_text())["files"]) == sorted(p.name for p in to.iterdir())
    (to / "notes.txt").write_text("mine")
    (to / "mydir").mkdir()
    (to / "mydir" / "a.txt").write_text("mine too")
    before = snapshot(tmp_path)
    assert_named_error(run_cli("export", "--out", out, "--format", fmt, "--to", to, *(["--force"] if force else [])),
                       "holds mydir/, notes.txt beside the eges export, which the export did not write")
    assert snapshot(tmp_path) == before


def test_a_killed_exports_temporaries_are_removed_at_the_next_export(run, tmp_path):
    """issue 21 item 12: .w.txt.<hex>.tmp and .npy.<hex>.tmp/ of a killed export outside the run stayed forever."""
    _, out = run
    (tmp_path / ".npy.0123abcd.tmp").mkdir()
    (tmp_path / ".npy.0123abcd.tmp" / "embeddings.npy").write_bytes(b"half")
    (tmp_path / ".npy.89abcdef.old").mkdir()
    (tmp_path / ".w.txt.0123abcd.tmp").write_text("half")
    (tmp_path / ".w.txt.export.json.0123abcd.tmp").write_text("half")
    mine = [".npy.mine.tmp", ".w.txt.0123abcd.tmp.bak", "w.txt.0123abcd.tmp", ".other.0123abcd.tmp"]
    for name in mine:
        (tmp_path / name).write_text("not eges'")
    assert run_cli("export", "--out", out, "--format", "npy", "--to", tmp_path / "npy").exit_code == 0
    assert run_cli("export", "--out", out, "--format", "word2vec", "--to", tmp_path / "w.txt").exit_code == 0
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["npy", "w.txt", "w.txt.export.json", "run", *mine]), left


@pytest.mark.parametrize("fmt,to,message", [
    ("word2vec", "DIR/", "the word2vec export is one file, not a folder; give a file name ending .txt (text) or .bin"),
    ("parquet", "matrix", "the parquet export is one file, not a folder; give a file name ending .parquet"),
    ("npy", "x.npy", "the npy export is a folder (embeddings.npy, vocabulary.parquet, vocabulary.tsv, ...), not a "
                     ".npy file; give a folder path, e.g. --to "),
    ("projector", "p.tsv", "the projector export is a folder")])
def test_a_path_of_the_other_kind_is_refused(run, tmp_path, fmt, to, message):
    """issue 22: --format word2vec --to DIR/ wrote a file named DIR, and --format npy --to x.npy made a folder."""
    _, out = run
    before = snapshot(tmp_path)
    assert_named_error(run_cli("export", "--out", out, "--format", fmt, "--to", f"{tmp_path}/{to}"), message)
    assert snapshot(tmp_path) == before and not (tmp_path / to.rstrip("/")).exists()


def test_another_kind_of_eges_export_needs_force(run, tmp_path):
    _, out = run
    to = tmp_path / "x"
    assert run_cli("export", "--out", out, "--format", "projector", "--to", to).exit_code == 0
    before = snapshot(to)
    assert_named_error(run_cli("export", "--out", out, "--format", "npy", "--to", to),
                       "holds an eges projector export, not npy; add --force")
    assert snapshot(to) == before
    assert run_cli("export", "--out", out, "--format", "npy", "--to", to, "--force").exit_code == 0
    assert (to / "embeddings.npy").exists() and json.loads((to / "export.json").read_text())["eges_export"] == "npy"


def test_an_export_into_a_new_folder_of_the_run_leaves_the_run_alone(run):
    events, out = run
    before = snapshot(out)
    result = run_cli("export", "--out", out, "--format", "npy", "--to", out / "export" / "npy")
    assert result.exit_code == 0, result.output
    after = snapshot(out)
    assert {k: v for k, v in after.items() if not k.startswith("export/")} == before
    status = run_cli("status", "--out", out)
    assert status.exit_code == 0 and "stale" not in status.output
    assert run_cli("run", "--events", events, "--out", out, "--quiet").exit_code == 0  # still a run eges can use


def test_an_empty_folder_is_a_fine_destination(run, tmp_path):
    _, out = run
    (tmp_path / "empty").mkdir()
    assert run_cli("export", "--out", out, "--format", "npy", "--to", tmp_path / "empty").exit_code == 0
    assert (tmp_path / "empty" / "embeddings.npy").exists()


@pytest.mark.parametrize("manifest", ["{}", '{"stages": {}}'])
@pytest.mark.parametrize("command", ["report", "export"])
def test_a_folder_whose_manifest_is_not_eges_is_refused_and_left_alone(tmp_path, manifest, command):
    """issue 21 item 12: a manifest of {} beside the user's own users/vectors.parquet was taken as a run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "mine"
    (folder / "users").mkdir(parents=True)
    (folder / "manifest.json").write_text(manifest)
    pq.write_table(pa.table({"user_id": [1], "vector": [[0.5, 0.5]]}), folder / "users" / "vectors.parquet")
    args = ("report", "--out", folder) if command == "report" else \
        ("export", "--out", folder, "--format", "npy", "--to", tmp_path / "npy")
    before = snapshot(tmp_path)
    # {} has no eges marker: not eges's at all; {"stages": {}} is eges's, but no stage ever finished
    assert_named_error(run_cli(*args), "is not an eges run" if manifest == "{}" else "holds no eges run")
    assert snapshot(tmp_path) == before


def test_vectors_the_manifest_does_not_record_are_refused_by_export_and_report(run, tmp_path):
    _, out = run
    vectors = out / "skipgram" / "vectors.parquet"
    vectors.write_bytes(vectors.read_bytes()[:-8] + b"PAR1PAR1")  # changed outside the pipeline
    before = snapshot(tmp_path)
    for args in (("report", "--out", out), ("export", "--out", out, "--format", "npy", "--to", tmp_path / "npy")):
        assert_named_error(run_cli(*args), f"rerun `eges run --out {out}`")
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------- disks
@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A small tmpfs at ``path`` (root only): a disk that fills up, or a read-only one."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs (a full or read-only disk)")
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_a_named_error_and_leaves_no_scratch_and_no_damage(trust_template, tmp_path):
    events, template = trust_template
    size_kib = sum(p.stat().st_size for p in template.rglob("*") if p.is_file()) // 1024
    with tmpfs(tmp_path / "disk", f"size={size_kib + 256}k") as disk:
        out = copy_run(template, disk / "run")
        before = snapshot(out)
        # A walks setting that needs far more room than is left: the walks stage runs out of space.
        result = run_cli("run", "--events", events, "--out", out, "--set", "walks.walks_per_node=200", "--quiet")
        assert_named_error(result, "no space left on the device")
        assert snapshot(out) == before
        assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".scratch"))]


def test_a_full_disk_while_cutting_sessions_removes_the_scratch_file(trust_template, tmp_path):
    events, _ = trust_template
    with tmpfs(tmp_path / "disk", "size=300k") as disk:
        result = run_cli("run", "--events", events, "--out", disk / "run", "--quiet", *FAST)
        assert_named_error(result, "no space left on the device")
        assert not [p for p in (disk / "run").rglob("*") if p.name.endswith((".tmp", ".scratch"))]


@pytest.mark.parametrize("fmt,name", [("npy", "npy"), ("parquet", "m.parquet"), ("word2vec", "v.txt"),
                                      ("projector", "proj")])
def test_a_full_disk_during_an_export_says_how_much_to_free(run, tmp_path, fmt, name):
    """issue 21 item 10: pyarrow's "102240 requested and 66528 written" instead of the promised message."""
    _, out = run
    with tmpfs(tmp_path / "small", "size=64k") as disk:
        (disk / "keep.txt").write_text("mine")
        result = run_cli("export", "--out", out, "--format", fmt, "--to", disk / name)
        assert_named_error(result, f"no space left on {disk}: free ")
        assert " MB (the export of " in result.output and "requested" not in result.output
        assert sorted(p.name for p in disk.iterdir()) == ["keep.txt"]  # no partial export, no temporaries


def test_a_read_only_destination_is_a_named_error(run, tmp_path):
    _, out = run
    with tmpfs(tmp_path / "ro", "size=1m,ro") as ro:
        assert_named_error(run_cli("export", "--out", out, "--format", "npy", "--to", ro / "npy"),
                           "Read-only file system")
        assert_named_error(run_cli("run", "--events", run[0], "--out", ro / "run", *FAST),
                           f"cannot write the run folder {ro / 'run'}: Read-only file system")


# --------------------------------------------------------------------------------------------- kills
def _eges(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "eges", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _wait_for_stage(out: Path, stage: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if stage in json.loads((out / "manifest.json").read_text()).get("stages", {}):
                return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before stage {stage}: {proc.stdout.read()}")
        time.sleep(0.02)
    pytest.fail(f"stage {stage} did not finish in time")


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, trust_template):
    """The reference: a clean run with the settings the kill tests use."""
    events, _ = trust_template
    out = tmp_path_factory.mktemp("clean") / "run"
    assert run_cli("run", "--events", events, "--out", out, *KILL_SETTINGS).exit_code == 0
    return out


# Ten walks per node keep the walks stage long enough to be killed in; two passes at most tried per method keep
# the reruns' validate stage short (what is checked here is the stages' files, not the choice).
KILL_SETTINGS = ("--set", "walks.walks_per_node=10", "--set", "train.dimension=8", "--set", "train.threads=1",
                 "--set", "validate.max_epochs=2", "--quiet")
DETERMINISTIC = ("sessions/sessions.parquet", "sessions/items.parquet", "graph/edges.parquet", "graph/nodes.parquet",
                 "walks/walks.parquet", "skipgram/vectors.parquet")


@pytest.mark.parametrize("after,sig", [("sessions", signal.SIGKILL), ("graph", signal.SIGKILL),
                                       ("walks", signal.SIGKILL), ("sessions", signal.SIGTERM)],
                         ids=["kill-after-sessions", "kill-after-graph", "kill-after-walks", "term-after-sessions"])
def test_a_killed_run_is_told_truthfully_and_a_rerun_matches_a_clean_run(after, sig, trust_template, clean_run,
                                                                         tmp_path):
    events, _ = trust_template
    out = tmp_path / "run"
    proc = _eges("run", "--events", events, "--out", out, *KILL_SETTINGS)
    _wait_for_stage(out, after, proc)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    manifest = json.loads((out / "manifest.json").read_text())  # never half-written
    status = run_cli("status", "--out", out)
    assert status.exit_code == 0, status.output
    for line in status.output.splitlines():
        name, state = line.split()[:2]
        assert (state == "fresh") == (name in manifest["stages"]), status.output  # what finished, and only that
    result = run_cli("run", "--events", events, "--out", out, *KILL_SETTINGS)
    assert result.exit_code == 0, result.output
    done, reference = snapshot(out), snapshot(clean_run)
    assert {k: done[k] for k in DETERMINISTIC} == {k: reference[k] for k in DETERMINISTIC}
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".scratch", ".old"))]


@pytest.fixture(scope="module")
def awkward_ids(tmp_path_factory):
    """A run whose item ids hold spaces, tabs and line breaks."""
    import pandas as pd

    root = tmp_path_factory.mktemp("awkward")
    rng = __import__("numpy").random.default_rng(0)
    names = ["plain", "two words", "tab\there", "line\nbreak", "x", "y", "z", "w"]
    n = 4000
    frame = pd.DataFrame({"user_id": rng.integers(0, 80, n), "item_id": [names[i] for i in rng.integers(0, 8, n)],
                          "timestamp": 1_511_539_200 + __import__("numpy").arange(n)})
    frame.to_parquet(root / "events.parquet", index=False)
    out = root / "run"
    result = run_cli("run", "--events", root / "events.parquet", "--out", out, *FAST, "--set", "neighbours.k=3")
    assert result.exit_code == 0, result.output
    return out, names


@pytest.mark.parametrize("fmt,name,message", [
    ("word2vec", "v.txt", "item id(s) hold whitespace, which ends a word2vec key, e.g. "),
    ("word2vec", "v.bin", "item id(s) hold whitespace"),
    ("projector", "proj", "item id(s) hold tabs or line breaks")])
def test_ids_a_text_format_cannot_hold_are_refused(awkward_ids, tmp_path, fmt, name, message):
    out, _ = awkward_ids
    assert_named_error(run_cli("export", "--out", out, "--format", fmt, "--to", tmp_path / name), message)
    assert not (tmp_path / name).exists()


def test_npy_quotes_awkward_ids_so_they_load_back(awkward_ids, tmp_path):
    import pandas as pd

    out, names = awkward_ids
    assert run_cli("export", "--out", out, "--format", "npy", "--to", tmp_path / "npy").exit_code == 0
    tsv = pd.read_csv(tmp_path / "npy" / "vocabulary.tsv", sep="\t")
    parquet = pd.read_parquet(tmp_path / "npy" / "vocabulary.parquet")
    assert tsv["item_id"].tolist() == parquet["item_id"].tolist()
    assert set(tsv["item_id"]) == set(names)
