"""File formats, atomic writes and fingerprints (eges.pipeline.io)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import invoke_cli
from eges.config import SessionsConfig, load_config
from eges.duck import connect
from eges.errors import InputError
from eges.pipeline import io
from eges.sessions.clean import SessionsReport, sessionize_stream
from eges.sessions.events import open_events, sniff_format


def sessions_of(path, cfg=None):
    cfg = cfg or SessionsConfig()
    con = connect(load_config().engine)
    source = open_events(con, path, cfg)
    report = SessionsReport()
    tables = list(sessionize_stream(con, source.view, cfg, has_behaviour=source.has_behaviour,
                                    has_dwell=source.has_dwell, report=report))
    con.close()
    rows = pa.concat_tables(tables).to_pylist() if tables else []
    return source, [(r["user_id"], r["session"], r["item_id"]) for r in rows], report


def test_taobao_user_behavior_csv(tmp_path):
    path = tmp_path / "UserBehavior.csv"
    path.write_text("1,100,7,pv,1511544070\n1,101,7,pv,1511544100\n1,102,7,buy,1511544200\n"
                    "2,100,7,pv,1511544070\n2,103,8,cart,1511551300\n")
    assert sniff_format(path) == "taobao"
    source, rows, _ = sessions_of(path)
    assert source.has_behaviour and not source.has_dwell and source.timestamp_unit == "s"
    # User 2's two events are 7,230 s apart: two sessions of one item, both dropped.
    assert rows == [(1, 0, 100), (1, 0, 101), (1, 0, 102)]


def test_retailrocket_events_csv(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("timestamp,visitorid,event,itemid,transactionid\n"
                    "1433221332117,257597,view,355908,\n1433221400000,257597,addtocart,248676,\n"
                    "1433221500000,257597,transaction,248676,4000\n1433224214164,992329,view,248676,\n")
    assert sniff_format(path) == "retailrocket"
    source, rows, _ = sessions_of(path)
    assert source.timestamp_unit == "ms"
    assert rows == [(257597, 0, 355908), (257597, 0, 248676)]  # the repeat of 248676 collapses
    _, rows, _ = sessions_of(path, SessionsConfig(keep_behaviours=("view", "transaction")))
    assert rows == [(257597, 0, 355908), (257597, 0, 248676)]


def test_generic_csv_with_custom_columns(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("who,what,when\nu1,a,2024-01-01 10:00:00\nu1,b,2024-01-01 10:05:00\n")
    cfg = SessionsConfig(user_col="who", item_col="what", time_col="when")
    source, rows, _ = sessions_of(path, cfg)
    assert source.timestamp_unit == "timestamp"
    assert rows == [("u1", 0, "a"), ("u1", 0, "b")]
    with pytest.raises(InputError, match="has no column 'user_id'"):
        sessions_of(path)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "file.parquet"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert not target.exists() and list(target.parent.iterdir()) == []
    with io.atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(target.parent.iterdir()) == [target]


def test_streaming_writer_is_atomic(tmp_path):
    target = tmp_path / "w.parquet"
    with pytest.raises(KeyboardInterrupt), io.AtomicParquetWriter(target) as w:
        w.write(pa.table({"a": [1, 2]}))
        raise KeyboardInterrupt
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with io.AtomicParquetWriter(target) as w:
        w.write(pa.table({"a": [1, 2]}))
        w.write(pa.table({"a": [3]}))
    assert io.read_table(target)["a"].to_pylist() == [1, 2, 3]


def test_fingerprint_reuses_digest_while_unchanged(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    first = io.fingerprint(path)
    assert io.fingerprint(path, {**first, "digest": "cached"})["digest"] == "cached"
    path.write_bytes(b"abcd")
    assert io.fingerprint(path, first)["digest"] != first["digest"]


def test_read_table_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        io.read_table(tmp_path / "nope.parquet")
    with pytest.raises(InputError, match="is a directory"):
        io.read_table(tmp_path)


def test_read_column_fills_row_group_by_row_group(tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    values = np.arange(10_007, dtype=np.int32)[::-1].copy()
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": values, "b": values.astype(np.int64) * 2}), path, row_group_size=1_000)
    assert pq.ParquetFile(path).metadata.num_row_groups == 11
    got = io.read_column(path, "b", np.int64)
    assert got.dtype == np.int64 and np.array_equal(got, values.astype(np.int64) * 2)
    assert np.array_equal(io.read_column(path, "a", np.int32), values)


def test_keyed_vectors_are_byte_stable_and_load(tmp_path):
    """The same keys and vectors written twice (at different times, through different temporary names) give the
    same bytes, and gensim loads the file. gensim's own save records a save time and the file name in it."""
    import time

    import numpy as np
    from gensim.models import KeyedVectors

    keys = ["a", 7, "c"]
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    io.write_keyed_vectors(keys, vectors, tmp_path / "one.kv")
    time.sleep(0.01)
    io.write_keyed_vectors(keys, vectors, tmp_path / "two.kv")
    assert (tmp_path / "one.kv").read_bytes() == (tmp_path / "two.kv").read_bytes()
    kv = KeyedVectors.load(str(tmp_path / "two.kv"))
    assert kv.index_to_key == keys and kv.key_to_index == {"a": 0, 7: 1, "c": 2}
    np.testing.assert_array_equal(kv["c"], vectors[2])
    assert kv.most_similar("a", topn=1)[0][0] in (7, "c")


def _default_sigint() -> None:
    """In the child before it starts: SIGINT's default action. A suite started in the background by a shell
    without job control (``pytest &``) inherits SIGINT ignored, and so would every eges it starts: Python keeps an
    ignored SIGINT ignored, so no interrupt would ever arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_during_sessions_write(events, out, delay: float, min_length: int) -> subprocess.CompletedProcess:
    """Rerun the sessions stage (a setting other than the recorded one makes it stale) and send SIGINT ``delay``
    seconds after its first scratch or output file appears."""
    proc = subprocess.Popen([sys.executable, "-m", "eges", "run", "--events", str(events), "--out", str(out),
                             "--until", "sessions", "--quiet", "--set", f"sessions.min_session_length={min_length}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(out.rglob("*.scratch")) or any(out.rglob(".sessions.parquet.*.tmp")):
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.01)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_sigint_while_the_sessions_stage_writes_is_one_line_and_exit_130(tmp_path):
    """Ctrl-C while the writer thread encodes (issue 21, item 7): the thread is stopped before its writer is
    closed and its file removed, so the process never crashes natively; one line, exit 130, the manifest
    untouched, no temporary file left and every file whole. (Which of the stage's files were already swapped in
    is issue 21, item 3: the manifest does not vouch for them, so the stage reruns.)"""
    rng = np.random.default_rng(0)
    n = 2_000_000
    events = tmp_path / "events.parquet"
    pq.write_table(pa.table({"user_id": np.sort(rng.integers(0, n // 20, n)), "item_id": rng.integers(0, 50_000, n),
                             "timestamp": 1_511_539_200 + np.arange(n) % 100_000 * 30}), events)
    out = tmp_path / "out"
    # The recorded run, in-process: only the interrupted runs need a process of their own (a signal to send).
    invoke_cli("run", "--events", events, "--out", out, "--until", "sessions", "--quiet")
    manifest = (out / "manifest.json").read_bytes()
    interrupted, recorded = 0, 2
    for delay in (0.0, 0.1, 0.3, 0.6, 0.0, 0.05, 0.0, 0.2):  # a loaded machine may let some runs finish first
        length = 3 if recorded != 3 else 4  # never the recorded setting, so every attempt reruns the stage
        run = _interrupt_during_sessions_write(events, out, delay, length)
        assert "Fatal" not in run.stderr and "core dumped" not in run.stderr and run.returncode not in (-6, -11)
        if "sessions:" in run.stdout:  # the stage finished before the signal came: nothing to check this time
            manifest, recorded = (out / "manifest.json").read_bytes(), length
            continue
        interrupted += 1
        assert run.returncode == 130, run.stderr[-2000:]
        assert run.stderr.strip().splitlines() == ["interrupted; nothing recorded for sessions"], run.stderr[-2000:]
        assert (out / "manifest.json").read_bytes() == manifest
        assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".scratch"))]
        for path in out.rglob("*.parquet"):
            pq.read_metadata(path)  # whole: an old file or a new one, never a torn one
        if interrupted == 3:
            break
    assert interrupted
