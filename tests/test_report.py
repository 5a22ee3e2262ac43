"""`eges report`: every section present, every plot an embedded, decodable PNG, and the page opens in a real
browser (headless Chromium, installed by .ci/run; CI sets EGES_REQUIRE_CHROMIUM so it cannot be skipped there)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from conftest import DATA, invoke_cli
from eges.pipeline.report import SECTIONS

SMALL = ["--set", "walks.walks_per_node=3", "--set", "train.dimension=16", "--set", "skipgram.dimension=16",
         "--quiet"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    data = ["--events", DATA / "events.parquet", "--items", DATA / "items.parquet", "--out", out]
    invoke_cli("run", *data, *SMALL)
    invoke_cli("evaluate", *data, *SMALL, "--protocol", "link", "--method", "eges",
               "--set", "evaluate.baselines=['popularity']")
    result = invoke_cli("report", "--out", out)
    assert f"report: {out / 'report.html'}" in result.output
    return out / "report.html"


def png(data: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(data), format="png")


def test_every_section_is_present_with_content(report):
    page = report.read_text()
    for key in SECTIONS:
        assert f'<section id="{key}">' in page, key
    assert "No GES/EGES" not in page and "No evaluation yet" not in page
    assert "events of over-active users" in page  # cleaning reasons with counts
    assert re.search(r"<td>link</td>\s*<td>auc</td>", page)
    assert page.count("cold item ") == 3 and page.count("popular item ") == 3
    assert "brand" in page and "shop" in page  # neighbours shown with their side information


def test_every_image_is_embedded_and_decodes(report):
    page = report.read_text()
    sources = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert len(sources) == 3  # degree distribution, attention weights, item map
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        image = png(base64.b64decode(src.split(",", 1)[1]))
        assert image.shape[0] >= 300 and image.shape[1] >= 500
        assert image[..., :3].std() > 0.05  # something is drawn
    assert "http://" not in page and "https://" not in page  # self-contained


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_the_report_opens_in_headless_chromium(report, tmp_path):
    browser = chromium()
    if browser is None:
        if os.environ.get("EGES_REQUIRE_CHROMIUM"):
            pytest.fail("EGES_REQUIRE_CHROMIUM is set but no chromium is installed")
        pytest.skip("chromium is not installed (CI installs it)")
    shot = tmp_path / "report.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,4000", f"--screenshot={shot}",
           report.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    image = png(shot.read_bytes())
    assert image.shape[:2] == (4000, 1200)
    # A rendered page: mostly white background, but with text, tables and plots on it.
    rgb = image[..., :3]
    assert 0.5 < rgb.mean() < 0.99 and rgb.std() > 0.1


def test_report_needs_a_run(cli, tmp_path):
    result = cli("report", "--out", tmp_path, ok=False)
    assert result.exit_code == 2 and "holds no pipeline run" in result.output


def test_report_shows_the_run_methods_vectors(tmp_path, cli):
    """After switching from EGES back to BGE, the map and neighbours come from BGE's vectors."""
    out = tmp_path / "out"
    data = ["--events", DATA / "events.parquet", "--items", DATA / "items.parquet", "--out", out, *SMALL,
            "--until", "eges"]
    cli("run", *data)
    cli("run", *data[:-2], "--until", "skipgram", "--method", "bge")
    cli("report", "--out", out)
    page = (out / "report.html").read_text()
    assert "skipgram/vectors.parquet" in page and "cold item " not in page
