"""What the test suite's own machinery promises (tests/conftest.py) and a parent's damaged state refused in time:
found by a review of the warm-bucket and suite merges (2026-12-03)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from eges.layout import BGE_STATE
from trust import FAST, assert_named_error, run_cli

TESTS = Path(__file__).resolve().parent


def test_a_parent_state_file_with_a_damaged_body_is_refused_before_anything_is_written(good_run, tmp_path):
    events, parent = good_run
    state = parent / BGE_STATE
    data = bytearray(state.read_bytes())
    for i in range(8, len(data) // 2, 7):  # garble the data pages, keep the footer (the schema still reads)
        data[i] ^= 0xFF
    state.write_bytes(bytes(data))
    pq.read_schema(state)
    child = tmp_path / "child"
    outcome = run_cli("run", "--events", events, "--out", child, "--warm-start", parent, *FAST)
    assert_named_error(outcome, "is missing or unreadable")
    written = sorted(str(p.relative_to(child)) for p in child.rglob("*.parquet")) if child.exists() else []
    assert not written, f"written before the refusal: {written}"


BACKGROUND_TEST = '''
import subprocess, pytest
from dataclasses import dataclass

@dataclass
class Job:
    proc: subprocess.Popen

def start(folder):
    return Job(subprocess.Popen(["sleep", "120"], start_new_session=True))  # as start_local_cluster starts its run

@pytest.mark.background.with_args(start)
def test_waits(background, request):
    import time
    time.sleep(60)
'''


def children_named(parent: int, name: str) -> list[int]:
    """The processes whose parent is ``parent`` and whose command is ``name``, from /proc (no procps on a bare CI
    image)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        comm, rest = text[text.index("(") + 1: text.rindex(")")], text[text.rindex(")") + 2:].split()
        if comm == name and int(rest[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def test_a_background_job_ends_when_the_test_run_is_terminated(tmp_path):
    (tmp_path / "test_bg.py").write_text(BACKGROUND_TEST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                            "--rootdir", str(tmp_path), str(tmp_path / "test_bg.py")], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    sleeps = []
    for _ in range(200):  # until the session fixture has started the job
        sleeps = children_named(run.pid, "sleep")
        if sleeps:
            break
        time.sleep(0.1)
    assert sleeps, "the background job did not start"
    os.killpg(run.pid, signal.SIGTERM)  # what a CI timeout sends the job's process group
    run.wait(timeout=30)
    time.sleep(0.5)
    alive = [p for p in sleeps if Path(f"/proc/{p}").exists()
             and Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"]
    for p in alive:
        os.killpg(p, signal.SIGKILL)
    assert not alive, "the background job outlived the test run"
