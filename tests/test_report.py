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
from eges.outputs.report import SECTIONS

# A validated default run (the report plots its curve), with at most three passes tried per method to stay quick;
# without the later trials of the chosen recipe (direction, window), which the report does not show.
SMALL = ["--set", "walks.walks_per_node=3", "--set", "train.dimension=16", "--set", "validate.max_epochs=3",
         "--set", "validate.try_undirected=false", "--set", "validate.windows=[5]", "--quiet"]


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
    assert len(sources) == 3  # degree distribution, validation curve, attention weights (the item map is SVG)
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        image = png(base64.b64decode(src.split(",", 1)[1]))
        assert image.shape[0] >= 300 and image.shape[1] >= 500
        assert image[..., :3].std() > 0.05  # something is drawn
    assert "http://" not in page and "https://" not in page  # self-contained


def test_the_map_shows_ids_and_side_information_and_outlines_cold_items(report):
    page = report.read_text()
    svg = re.search(r'<svg id="item-map".*?</svg>', page, re.S).group(0)
    circles = re.findall(r"<circle [^>]*>.*?</circle>", svg)
    assert 1000 < len(circles) <= 5000
    titles = [re.search(r"<title>(.*?)</title>", c).group(1) for c in circles]
    assert all(t.startswith("item ") and "category: cat" in t and "brand: brand" in t for t in titles)
    cold = [c for c in circles if 'class="cold"' in c]
    assert cold and all("cold start" in c for c in cold)
    assert not any("cold start" in c for c in circles if 'class="cold"' not in c)
    assert "price: " in titles[0] and ".0 ·" not in " ".join(titles)  # plain values
    assert 'id="map-search"' in page


def test_ids_print_plainly_so_a_pasted_id_finds_the_item(report):
    """issue 22: ids were shown with thousands separators (330,773), and a pasted id found nothing."""
    page = report.read_text()
    neighbours = re.search(r'<section id="neighbours">.*?</section>', page, re.S).group(0)
    headed = re.findall(r"<h3>(?:popular|cold) item (\S+) and its", neighbours)
    assert len(headed) == 6 and all(h.isdigit() for h in headed)
    cells = re.findall(r"<td>([^<]*)</td>", neighbours)
    assert not [c for c in cells if re.fullmatch(r"\d{1,3}(,\d{3})+", c)], "an id or a value printed with separators"
    for item in headed:
        assert f"<td>{item}</td>" in neighbours  # the id as pasted into the map's search box


def test_tables_print_ids_and_catalog_values_plainly_and_counts_with_separators():
    import pandas as pd

    from eges.outputs.report import _table

    page = _table(pd.DataFrame({"item_id": [330773, 5], "category_id": [12345, None], "events": [1234567, 8]}))
    assert "<td>330773</td>" in page and "<td>12345</td>" in page and "<td>1,234,567</td>" in page
    assert "<td>n/a</td>" in page and "12345.0" not in page
    assert "<td>1234</td>" in _table(pd.DataFrame({"brand": [1234]}), plain=("brand",))


def test_the_evaluation_table_says_how_to_read_it_against_the_baselines(report):
    evaluation = re.search(r'<section id="evaluation">.*?</section>', report.read_text(), re.S).group(0)
    assert "How to read this table" in evaluation and "higher is better" in evaluation
    assert "popularity recommends the most frequent training items" in evaluation  # the baseline evaluated here
    assert "cooccurrence recommends" not in evaluation  # only the baselines in the table are explained


def test_the_reading_note_explains_each_baseline_it_is_given():
    from eges.outputs.report import reading_note

    note = reading_note(["eges", "bge", "popularity", "cooccurrence", "item2vec"])
    assert "cold and long-tail items" in note and "without the graph" in note and "item counts" in note
    assert "baselines" in reading_note(["eges"]) and "recommends" not in reading_note(["eges"])


SEARCHES = [  # (query, tooltip, matches): whole values only, spaces around the query do not matter
    ("brand17", "item 1 · category: cat3 · brand: brand17", True),
    ("brand17", "item 1 · category: cat3 · brand: brand170", False),
    ("item 123456 ", "item 123456 · brand: brand1", True),  # the documented exact match, trailing space
    ("item 123456", "item 1234567 · brand: brand1", False),
    ("  Category:  CAT3 ", "item 1 · category: cat3 · brand: brand1", True),
    ("cat3", "item 1 · category: cat30", False),
    ("", "item 1", False),
    ("   ", "item 1", False),
]


@pytest.mark.parametrize("query,tooltip,expected", SEARCHES)
def test_the_map_search_matches_whole_values(query, tooltip, expected):
    """The page's own matching function, run by node (the same script Chromium runs in the test below)."""
    import json

    from eges.outputs.item_map import MATCHES, searchable

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the Chromium test covers the page)")
    script = f"{MATCHES}\nprocess.stdout.write(JSON.stringify(matches({json.dumps(searchable(tooltip))}, " \
             f"{json.dumps(query)})));"
    got = subprocess.run([node, "-e", script], check=True, capture_output=True, text=True, timeout=60).stdout
    assert json.loads(got) is expected


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def headless(tmp_path, *args: str) -> list[str]:
    """A headless Chromium command (skips, or fails under EGES_REQUIRE_CHROMIUM, when there is none)."""
    browser = chromium()
    if browser is None:
        if os.environ.get("EGES_REQUIRE_CHROMIUM"):
            pytest.fail("EGES_REQUIRE_CHROMIUM is set but no chromium is installed")
        pytest.skip("chromium is not installed (CI installs it)")
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", *args]


def test_the_report_opens_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    cmd = headless(tmp_path, "--window-size=1200,4000", f"--screenshot={shot}", report.as_uri())
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    image = png(shot.read_bytes())
    assert image.shape[:2] == (4000, 1200)
    # A rendered page: mostly white background, but with text, tables and plots on it.
    rgb = image[..., :3]
    assert 0.5 < rgb.mean() < 0.99 and rgb.std() > 0.1


def test_the_map_search_highlights_the_item_in_a_real_browser(report, tmp_path):
    """The page's own script, run by Chromium on a ``#search=ID`` address, marks exactly that item."""
    page = report.read_text()
    item = re.search(r"<title>item (\d+)", page).group(1)
    cmd = headless(tmp_path, "--dump-dom", report.as_uri() + f"#search=item%20{item}%20")
    dom = subprocess.run(cmd, check=True, capture_output=True, timeout=120, text=True).stdout
    hits = re.findall(r'<circle [^>]*class="[^"]*hit[^"]*"[^>]*>.*?</circle>', dom)
    assert len(hits) == 1 and f"item {item} " in hits[0]
    assert "1 matching item" in dom


def test_the_map_search_matches_whole_values_in_a_real_browser(report, tmp_path):
    """``brand1`` finds brand1's items, not brand10's to brand199's (issue 22: brand17 matched brand170)."""
    page = report.read_text()
    brands = re.findall(r"<title>[^<]*brand: (brand\d+)", page)
    short = min(brands, key=len)
    expected = sum(1 for b in brands if b == short)
    assert any(b != short and b.startswith(short) for b in brands)  # a longer brand that starts the same
    dom = subprocess.run(headless(tmp_path, "--dump-dom", report.as_uri() + f"#search={short}"), check=True,
                         capture_output=True, timeout=120, text=True).stdout
    hits = re.findall(r'<circle [^>]*class="[^"]*hit[^"]*"[^>]*>.*?</circle>', dom)
    assert len(hits) == expected and all(f"brand: {short} " in h or f"brand: {short}<" in h for h in hits)


def test_report_needs_a_run(cli, tmp_path):
    result = cli("report", "--out", tmp_path, ok=False)
    assert result.exit_code == 2 and "holds no eges run" in result.output


def test_report_shows_the_run_methods_vectors(tmp_path, cli):
    """After switching from EGES back to BGE, the map and neighbours come from BGE's vectors."""
    out = tmp_path / "out"
    data = ["--events", DATA / "events.parquet", "--items", DATA / "items.parquet", "--out", out, *SMALL,
            "--set", "train.epochs=1", "--until", "eges"]
    cli("run", *data)
    cli("run", *data[:-2], "--until", "skipgram", "--method", "bge")
    cli("report", "--out", out)
    page = (out / "report.html").read_text()
    assert "skipgram/vectors.parquet" in page and "cold item " not in page
    assert f"No evaluation yet: eges evaluate --events {DATA / 'events.parquet'} --items {DATA / 'items.parquet'} " \
           f"--out {out}" in page  # a complete, pasteable command
