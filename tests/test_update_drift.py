"""Drift measures (eges.update.drift), Procrustes alignment (eges.update.align), ``--align-to`` and the drift stage."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA
from eges import layout
from eges.update.align import rotate, rotation
from eges.update.drift import measure, row_cosines, shared_rows


def orthogonal(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def cosines_by_loop(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in zip(a, b)]


# --------------------------------------------------------------------------------------------- pure measures
@pytest.fixture
def planted():
    """A reference of 300 items; this run: items 20.. rotated (a planted rotation), 30 new items, rows shuffled."""
    rng = np.random.default_rng(3)
    d, n = 12, 300
    ref_ids = np.arange(n, dtype=np.int64) * 7
    ref = rng.normal(size=(n, d)).astype(np.float32)
    rot = orthogonal(d, 4)
    kept = np.arange(20, n)
    ids = np.r_[ref_ids[kept], np.arange(30, dtype=np.int64) + 10_000]
    vectors = np.vstack([ref[kept] @ rot, rng.normal(size=(30, d))]).astype(np.float32)
    order = rng.permutation(len(ids))
    return ref_ids, ref, ids[order], vectors[order], rot, kept


def test_drift_measures_are_exact_on_a_planted_rotation(planted):
    ref_ids, ref, ids, vectors, rot, kept = planted
    drift = measure(ref_ids, ref, ids, vectors, k=10, queries=10_000, seed=0)
    assert (drift.shared, drift.new, drift.dropped) == (280, 30, 20)
    expected = np.median(cosines_by_loop(ref[kept], ref[kept] @ rot))
    assert drift.median_cosine == pytest.approx(expected, abs=1e-5)
    assert abs(drift.median_cosine) < 0.9  # the rotation moved every item: not a trivial 1.0
    assert drift.median_cosine_rotated == pytest.approx(1.0, abs=1e-5)
    assert drift.neighbour_overlap == 1.0  # a rotation keeps every neighbour
    assert (drift.k, drift.queries) == (10, 280)


def test_drift_samples_queries_and_sees_moved_items(planted):
    ref_ids, ref, ids, vectors, _, _ = planted
    sampled = measure(ref_ids, ref, ids, vectors, k=10, queries=40, seed=1)
    assert sampled.queries == 40 and sampled.neighbour_overlap == 1.0
    noisy = vectors + np.random.default_rng(5).normal(scale=2.0, size=vectors.shape).astype(np.float32)
    moved = measure(ref_ids, ref, ids, noisy, k=10, queries=40, seed=1)
    assert moved.neighbour_overlap < 0.9 and moved.median_cosine_rotated < 0.9


def test_shared_rows_join_by_id_in_this_runs_order():
    ref_rows, rows = shared_rows(np.array(["a", "b", "c"], dtype=object), np.array(["c", "x", "a"], dtype=object))
    assert rows.tolist() == [0, 2] and ref_rows.tolist() == [2, 0]
    assert len(shared_rows(np.array([1, 2]), np.array(["1", "2"], dtype=object))[0]) == 0  # int never equals text


def test_procrustes_recovers_a_planted_rotation():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(500, 16))
    rot = orthogonal(16, 8)
    found = rotation(x @ rot, x)  # maps the rotated copy back
    np.testing.assert_allclose(found, rot.T, atol=1e-5)
    np.testing.assert_allclose(found @ found.T, np.eye(16), atol=1e-6)


def test_a_rotation_keeps_every_cosine_between_items():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    turned = rotate(x, orthogonal(16, 10))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    unit_turned = turned / np.linalg.norm(turned, axis=1, keepdims=True)
    np.testing.assert_allclose(unit_turned @ unit_turned.T, unit @ unit.T, atol=1e-5)


def test_an_aligned_cold_retrain_reads_like_the_reference():
    """A retrain = the reference in another rotation, plus noise: aligned, each item points where the reference has it."""
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(1000, 32))
    retrain = ref @ orthogonal(32, 12) + rng.normal(scale=0.3, size=ref.shape)
    before = np.median(row_cosines(ref, retrain))
    after = np.median(row_cosines(ref, rotate(retrain, rotation(retrain, ref))))
    assert abs(before) < 0.3 and after > 0.9


# --------------------------------------------------------------------------------------------- --align-to, end to end
FAST = ["--set", "walks.walks_per_node=4", "--set", "train.epochs=2", "--set", "train.dimension=16",
        "--method", "bge", "--quiet"]


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    """A run folder of a slice of the sample up to its walks (copied by each run that trains on them)."""
    from conftest import invoke_cli

    root = tmp_path_factory.mktemp("drift")
    events = root / "events.parquet"
    pq.write_table(pq.read_table(DATA / "events.parquet").slice(0, 60_000), events)
    invoke_cli("run", "--events", events, "--out", root / "walked", *FAST, "--until", "walks")
    return root


@pytest.fixture(scope="module")
def two_seeds(walked):
    """(reference run, a cold retrain with another seed aligned to it, its run output)."""
    from conftest import invoke_cli

    ref, aligned = walked / "seed1", walked / "seed2"
    shutil.copytree(walked / "walked", ref)
    shutil.copytree(walked / "walked", aligned)
    invoke_cli("run", "--out", ref, *FAST, "--set", "train.seed=1", "--until", "skipgram")
    result = invoke_cli("run", "--out", aligned, *FAST, "--set", "train.seed=2", "--align-to", ref, "--until", "drift")
    return ref, aligned, result.output


def test_align_to_turns_a_retrain_with_another_seed_onto_the_reference(two_seeds):
    ref, aligned, output = two_seeds
    manifest = json.loads((aligned / layout.MANIFEST).read_text())
    trained = manifest["stages"]["skipgram"]["details"]
    drift = json.loads((aligned / layout.DRIFT).read_text())
    assert abs(trained["align_median_cosine_before"]) < 0.2  # two seeds: unrelated rotations
    assert drift["median_cosine"] > 0.5 and drift["median_cosine"] == pytest.approx(trained["align_median_cosine_after"],
                                                                                      abs=1e-3)
    assert drift["median_cosine_rotated"] == pytest.approx(drift["median_cosine"], abs=0.02)  # already rotated
    assert drift["relation"] == "align_to" and drift["new"] == drift["dropped"] == 0
    assert manifest["stages"]["drift"]["details"]["shared"] == drift["shared"] > 0
    assert f"drift against the run it is aligned to {ref}: median cosine" in output
    assert manifest["inputs"]["align_to"] == str(ref)


def test_aligned_vectors_keep_their_neighbours(two_seeds, walked):
    """The rotation changes no cosine: the aligned run's own neighbours are those of its unaligned twin."""
    from conftest import invoke_cli
    from eges.recall.neighbours import top_k

    _, aligned, _ = two_seeds
    plain = walked / "seed2-plain"
    shutil.copytree(walked / "walked", plain)
    invoke_cli("run", "--out", plain, *FAST, "--set", "train.seed=2", "--set", "train.threads=1", "--until", "skipgram")
    again = walked / "seed2-again"
    shutil.copytree(walked / "walked", again)
    invoke_cli("run", "--out", again, *FAST, "--set", "train.seed=2", "--set", "train.threads=1", "--align-to",
               two_seeds[0], "--until", "skipgram")
    a = pq.read_table(plain / layout.BGE_VECTORS)
    b = pq.read_table(again / layout.BGE_VECTORS)
    assert a["item_id"].equals(b["item_id"])
    va = np.stack(a["vector"].to_numpy(zero_copy_only=False))
    vb = np.stack(b["vector"].to_numpy(zero_copy_only=False))
    assert not np.allclose(va, vb, atol=1e-3)  # turned
    np.testing.assert_allclose(np.linalg.norm(vb, axis=1), np.linalg.norm(va, axis=1), rtol=1e-4)
    assert (top_k(va, 5)[0] == top_k(vb, 5)[0]).mean() > 0.99


def test_a_changed_reference_makes_the_aligned_training_stale(two_seeds):
    from eges.pipeline import plan
    from eges.pipeline.runner import resume

    ref, aligned, _ = two_seeds
    config, inputs = resume(aligned)
    assert {s.name: s.state for s in plan(aligned, config, inputs)}["skipgram"] == "fresh"
    backup = (ref / layout.BGE_VECTORS).read_bytes()
    table = pq.read_table(ref / layout.BGE_VECTORS)
    pq.write_table(table.slice(1), ref / layout.BGE_VECTORS)  # the reference changed outside eges
    try:
        states = {s.name: (s.state, s.reason) for s in plan(aligned, config, inputs)}
        assert states["skipgram"] == ("stale", "input align_to changed")
    finally:
        (ref / layout.BGE_VECTORS).write_bytes(backup)


def snapshot(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _other_ids_run(root, dimension: int):
    """A finished run of an edge list whose items the sample does not hold."""
    from conftest import invoke_cli

    src = np.arange(200, dtype=np.int64) + 10**12
    edges = root / f"edges{dimension}.parquet"
    pq.write_table(pa.table({"src": src, "dst": np.roll(src, 1)}), edges)
    out = root / f"other{dimension}"
    invoke_cli("run", "--edges", edges, "--out", out, *FAST, "--set", f"train.dimension={dimension}", "--set",
               "neighbours.k=5", "--until", "skipgram")
    return out


@pytest.mark.parametrize("case", ["missing", "not a run", "no vectors", "other dimension", "too few shared", "itself"])
def test_a_bad_reference_is_refused_before_anything_is_written(walked, two_seeds, case, tmp_path, cli):
    out = tmp_path / "run"
    shutil.copytree(walked / "walked", out)
    before = snapshot(out)
    ref, expected = {
        "missing": (tmp_path / "nowhere", "no such run folder"),
        "not a run": (tmp_path, "holds no eges run"),
        "no vectors": (walked / "walked", "holds no bge vectors"),
        "other dimension": (lambda: _other_ids_run(tmp_path, 8), "has vectors of dimension 8, this run trains 16"),
        "too few shared": (lambda: _other_ids_run(tmp_path, 16), "shares 0 items with this run, fewer than the "
                           "dimension (16)"),
        "itself": (out, "is this run's own folder"),
    }[case]
    ref = ref() if callable(ref) else ref
    if case == "not a run":
        (tmp_path / "somefile.txt").write_text("mine")
    result = cli("run", "--out", out, *FAST, "--align-to", ref, ok=False)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1
    assert snapshot(out) == before


def test_compare_shows_the_drift_of_new_against_old(two_seeds, cli):
    ref, aligned, _ = two_seeds
    drift = json.loads((aligned / layout.DRIFT).read_text())
    recorded = cli("compare", ref, aligned).output
    assert f"drift of {aligned} against {ref} (recorded by its drift stage" in recorded
    assert f"median cosine of an item's two vectors {drift['median_cosine']:.4f}" in " ".join(recorded.split())
    computed = cli("compare", aligned, ref).output  # no drift.json relates them this way round
    assert "computed now from both runs' vectors" in computed
    assert f"median cosine of an item's two vectors {drift['median_cosine']:.4f}" in " ".join(computed.split())
    assert "holds no evaluation results" in cli("compare", aligned, ok=False).output


def test_the_report_has_a_drift_section(two_seeds, cli):
    ref, aligned, _ = two_seeds
    cli("report", "--out", aligned)
    page = (aligned / layout.REPORT).read_text()
    section = page[page.index('<section id="drift">'):]
    section = section[:section.index("</section>")]
    drift = json.loads((aligned / layout.DRIFT).read_text())
    assert f"<td>{drift['median_cosine']:.4f}</td>" in section and f"aligned to {ref}" in section
    cli("report", "--out", ref)
    assert "No drift measured" in (ref / layout.REPORT).read_text()


def test_eges_turns_item_cold_start_and_side_information_vectors_alike(two_seeds, walked):
    """The eges stage rotates every vector it writes by one rotation: behaviour and cold-start item vectors and the
    side-information value vectors (so a cold item built from its values later lands in the same space)."""
    from conftest import invoke_cli

    ref, _, _ = two_seeds
    eges = [*FAST[:-3], "--method", "eges", "--items", DATA / "items.parquet", "--set", "train.threads=1", "--quiet"]
    runs = {}
    for name, extra in (("plain", []), ("aligned", ["--align-to", ref])):
        out = walked / f"eges-{name}"
        shutil.copytree(walked / "walked", out)
        invoke_cli("run", "--out", out, *eges, *extra, "--until", "eges")
        runs[name] = (pq.read_table(out / layout.EGES_VECTORS), pq.read_table(out / layout.SIDE_VECTORS))

    def matrix(table):
        return np.stack(table["vector"].to_numpy(zero_copy_only=False)).astype(np.float64)

    (plain, plain_side), (aligned, aligned_side) = runs["plain"], runs["aligned"]
    assert plain["item_id"].equals(aligned["item_id"]) and "cold_start" in plain["source"].to_pylist()
    turn = rotation(matrix(plain), matrix(aligned))
    assert not np.allclose(turn, np.eye(len(turn)), atol=0.1)
    np.testing.assert_allclose(matrix(plain) @ turn, matrix(aligned), atol=2e-4)
    np.testing.assert_allclose(matrix(plain_side) @ turn, matrix(aligned_side), atol=2e-4)


def test_a_warm_started_run_measures_its_drift_against_the_parent(two_seeds, walked, tmp_path):
    """Without --align-to the reference is the parent (RunInputs.parent, set by --warm-start)."""
    from dataclasses import replace

    from conftest import invoke_cli
    from eges.pipeline import run
    from eges.pipeline.runner import resume

    def read(out):
        table = pq.read_table(out / layout.BGE_VECTORS)
        return table["item_id"].to_numpy(), np.stack(table["vector"].to_numpy(zero_copy_only=False))

    ref, _, _ = two_seeds
    child = tmp_path / "child"
    shutil.copytree(walked / "walked", child)
    invoke_cli("run", "--out", child, *FAST, "--set", "train.seed=3", "--until", "skipgram")
    config, inputs = resume(child)
    run(child, config, replace(inputs, parent=str(ref)), select=["drift"], progress=False, echo=lambda line: None)
    drift = json.loads((child / layout.DRIFT).read_text())
    assert drift["relation"] == "parent" and drift["reference"] == str(ref)
    expected = measure(*read(ref), *read(child))
    assert drift["median_cosine"] == pytest.approx(expected.median_cosine, abs=1e-6)
    assert drift["neighbour_overlap"] == pytest.approx(expected.neighbour_overlap, abs=1e-6)
    assert drift["median_cosine"] < drift["median_cosine_rotated"]  # unaligned: partly another rotation


def test_eges_run_takes_align_to_and_remembers_it(two_seeds, walked):
    import eges

    ref, _, _ = two_seeds
    out = walked / "api"
    shutil.copytree(walked / "walked", out)
    sets = ["walks.walks_per_node=4", "train.epochs=2", "train.dimension=16", "train.seed=4"]
    manifest = eges.run(out, settings=sets, method="bge", align_to=ref, until="skipgram")
    assert manifest["inputs"]["align_to"] == str(ref)
    assert manifest["stages"]["skipgram"]["details"]["aligned_to"] == str(ref)


def test_no_align_to_drops_the_reference_and_retrains(two_seeds, walked, cli):
    ref, _, _ = two_seeds
    out = walked / "unaligned-later"
    shutil.copytree(walked / "walked", out)
    cli("run", "--out", out, *FAST, "--set", "train.seed=2", "--align-to", ref, "--until", "drift")
    result = cli("run", "--out", out, *FAST[:-1], "--no-align-to", "--until", "drift")
    assert "skipgram: 0 rows" not in result.output and "skipgram: " in result.output and "rotated onto" not in \
        result.output
    manifest = json.loads((out / layout.MANIFEST).read_text())
    assert manifest["inputs"]["align_to"] is None and "aligned_to" not in manifest["stages"]["skipgram"]["details"]
    status = cli("status", "--out", out).output
    assert [line.split()[:2] for line in status.splitlines() if line.startswith(("skipgram", "drift"))] == [
        ["skipgram", "fresh"], ["drift", "skipped"]]
    assert "computed now" in cli("compare", ref, out).output  # the old drift.json no longer describes the vectors
    assert "give --align-to or --no-align-to" in cli("run", "--out", out, "--align-to", ref, "--no-align-to",
                                                       ok=False).output
