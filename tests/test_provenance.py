"""Neighbours and user vectors say which vectors they came from: method, vectors file and its digest in their
Parquet schema metadata and their manifest entries; the report reads them from there and flags stale ones."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from eges.layout import NEIGHBOURS, USERS
from eges.pipeline.recall_stage import read_provenance
from trust import FAST, copy_run, run_cli

VECTORS = "skipgram/vectors.parquet"


def test_outputs_record_the_method_and_the_vectors_digest(trust_template):
    _, out = trust_template
    manifest = json.loads((out / "manifest.json").read_text())
    digest = manifest["stages"]["skipgram"]["outputs"][VECTORS]["digest"]
    for stage, rel in (("neighbours", NEIGHBOURS), ("users", USERS)):
        prov = read_provenance(out / rel)
        assert prov == {"method": "bge", "vectors": VECTORS, "vectors_digest": digest}, rel
        details = manifest["stages"][stage]["details"]
        assert {k: details[k] for k in prov} == prov
        assert manifest["stages"][stage]["inputs"][VECTORS]["digest"] == digest


def test_an_output_without_provenance_reads_as_none(tmp_path, trust_template):
    _, out = trust_template
    table = pq.read_table(out / NEIGHBOURS)
    pq.write_table(table.replace_schema_metadata({}), tmp_path / "old.parquet")
    assert read_provenance(tmp_path / "old.parquet") is None
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    assert read_provenance(tmp_path / "broken.parquet") is None


def test_report_flags_neighbours_of_older_vectors(tmp_path, trust_template):
    """Retrain only (new seed): the neighbours and users still hold the old vectors' digest, and the report says
    so instead of presenting them as the current vectors' neighbours."""
    events, template = trust_template
    out = copy_run(template, tmp_path / "out")
    before = read_provenance(out / NEIGHBOURS)
    run_cli("report", "--out", out)
    page = (out / "report.html").read_text()
    assert "What the recall outputs were computed from" in page and "stale" not in page
    result = run_cli("run", "--events", events, "--out", out, *FAST, "--set", "walks.seed=7", "--until", "skipgram")
    assert result.exit_code == 0, result.output
    assert read_provenance(out / NEIGHBOURS) == before  # not rerun
    run_cli("report", "--out", out)
    page = (out / "report.html").read_text()
    assert page.count("no: stale, rerun this stage") == 2
