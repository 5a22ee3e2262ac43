"""``eges report``: one self-contained HTML page (PNG plots inlined as data URIs) describing an output directory:
what each stage did, the graph, the EGES attention weights, the evaluation tables, a 2-D map of the item vectors
and the nearest neighbours of a few popular and a few cold items with their side information."""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from eges.layout import EDGES, GRAPH_STATS, NEIGHBOURS, NODES, REPORT, USERS, metrics_path, summary_path
from eges.methods import METHODS
from eges.outputs.run import Run, read_manifest
from eges.pipeline import io
from eges.pipeline.recall_stage import read_provenance

SECTIONS = ("stages", "graph", "validation", "attention", "evaluation", "drift", "map", "neighbours")
DROP_REASONS = {"spam_events": "events of over-active users", "behaviour_dropped": "behaviour type not kept",
                "short_dwell_dropped": "dwell under the minimum", "repeats_collapsed": "consecutive repeats collapsed",
                "short_session_events_dropped": "events in sessions too short"}
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
section{margin-bottom:2.5em}img{width:100%;height:auto}.note{color:#666}h1{margin-bottom:0}"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _is_id(column: Any) -> bool:
    name = str(column).lower()
    return name == "id" or name.endswith("_id")


def _table(frame: pd.DataFrame, index: bool = False, plain: tuple[str, ...] = ()) -> str:
    """An HTML table; counts print as integers (1,234, not 1234.0000) even where a missing value made them float.

    Ids (``item_id``, any ``*_id``) and the ``plain`` columns print as written (330773, never 330,773), so an id
    copied from the page finds the item.
    """
    frame = frame.copy()
    for col in frame.columns:
        if _is_id(col) or col in plain:
            frame[col] = frame[col].map(lambda v: "n/a" if _missing(v) else _plain(v))
            continue
        values = frame[col]
        known = values.dropna() if values.dtype.kind == "f" else None
        # Whole numbers beyond [0, 1] are counts; a metric column of exact 0s and 1s stays a metric.
        if known is not None and len(known) and (known % 1 == 0).all() and not known.between(0, 1).all():
            frame[col] = values.astype("Int64")
        if frame[col].dtype.kind in "iu" or str(frame[col].dtype) == "Int64":
            frame[col] = frame[col].map(lambda v: "n/a" if pd.isna(v) else f"{int(v):,}")
    return frame.to_html(index=index, border=0, na_rep="n/a", float_format=lambda v: f"{v:,.4f}")


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{html.escape(title)}</h2>\n{body}\n</section>'


def stages_section(run: Run) -> str:
    rows = [{"stage": name, "rows in": e.get("rows_in"), "rows out": e.get("rows_out"), "seconds": e.get("seconds"),
             "finished": e.get("finished_at", "")} for name, e in run.manifest["stages"].items()]
    body = _table(pd.DataFrame(rows))
    sessions = run.stage_entry("sessions").get("details")
    if sessions:
        dropped = pd.DataFrame([{"reason": why, "events": sessions.get(key, 0)} for key, why in DROP_REASONS.items()])
        body += "<h3>Cleaning: what was dropped and why</h3>" + _table(dropped)
        body += _note(f"{sessions['events_in']:,} events in, {sessions['events_out']:,} kept in "
                      f"{sessions['sessions_out']:,} sessions of {sessions['users_out']:,} users over "
                      f"{sessions['items_out']:,} items; {sessions['spam_users']:,} over-active users removed; "
                      f"{sessions['short_sessions_dropped']:,} sessions shorter than the minimum dropped.")
    return _section("stages", "Stages", body + provenance_table(run))


def provenance_table(run: Run) -> str:
    """Which method's vectors the neighbours and user vectors were computed from, read from their own Parquet
    metadata (not assumed from the config), and whether those are the run's current vectors."""
    current = None if run.vectors_file is None else \
        io.fingerprint(run.vectors_file, run.recorded(str(run.vectors_file.relative_to(run.out))))["digest"]
    rows = []
    for rel in (NEIGHBOURS, USERS):
        if not (run.out / rel).exists():
            continue
        prov = read_provenance(run.out / rel) or {}
        digest = prov.get("vectors_digest")
        rows.append({"output": rel, "method": prov.get("method", "not recorded"), "vectors": prov.get("vectors", ""),
                     "vectors digest": (digest or "")[:12],
                     "current vectors": "n/a" if digest is None or current is None else
                     "yes" if digest == current else "no: stale, rerun this stage"})
    if not rows:
        return ""
    return "<h3>What the recall outputs were computed from</h3>" + _table(pd.DataFrame(rows))


def graph_section(run: Run) -> str:
    from eges.outputs.plots import degree_distribution

    if not (run.out / GRAPH_STATS).exists():
        return _section("graph", "Item graph", _note("The graph stage has not run."))
    stats = json.loads((run.out / GRAPH_STATS).read_text())
    scalar = {k: v for k, v in stats.items() if not isinstance(v, dict)}
    body = _table(pd.DataFrame([scalar]))
    quantiles = pd.DataFrame({k: v for k, v in stats.items() if isinstance(v, dict)}).T
    body += "<h3>Degree quantiles</h3>" + _table(quantiles, index=True)
    edges = pq.read_table(run.out / EDGES, columns=["src", "dst"])
    n = pq.ParquetFile(run.out / NODES).metadata.num_rows
    out_deg = np.bincount(edges["src"].to_numpy(), minlength=n)
    in_deg = np.bincount(edges["dst"].to_numpy(), minlength=n)
    body += _img(degree_distribution(out_deg, in_deg), "degree distribution")
    return _section("graph", "Item graph", body)


def attention_section(run: Run) -> str:
    from eges.outputs.plots import attention_weights

    trained = [m for m in METHODS.values() if m.side_info and run.stage_entry(m.stage)]
    table = run.attention() if trained else None
    if table is None:
        return _section("attention", "EGES attention weights", _note("No GES/EGES training in this run."))
    fields = [c for c in table.columns if c != "item_id"]
    weights = table[fields].to_numpy()
    summary = pd.DataFrame({"field": fields, "mean weight": weights.mean(axis=0), "median": np.median(weights, axis=0)})
    method = METHODS.get(run.stage_entry(trained[0].stage).get("details", {}).get("method"), trained[0])
    body = _table(summary)
    if not method.side_info:
        body += _note(f"{method.name.upper()} won the validation: each vector is the item's own row, and cold items "
                      "are placed at the mean of the items sharing their side information.")
    elif not method.attention:
        body += _note(f"{method.name.upper()} averages the item and its side information with equal weights; "
                      "the attention methods learn them.")
    body += _img(attention_weights(fields, weights), "attention weights")
    return _section("attention", f"Attention weights ({method.name.upper()})", body)


def validation_section(run: Run) -> str:
    from eges.outputs.plots import validation_curve

    found = run.selection()
    if found is None:
        return _section("validation", "Validation", _note("This run did not choose its passes or method on a "
                                                           "held-out slice (train.epochs and the method were set)."))
    doc, curve = found
    key = {"hitrate": "hitrate", "auc": "link_auc"}[doc["metric"]]
    label = {"hitrate": "next-item HitRate", "auc": "link AUC"}[doc["metric"]]
    body = _note(html.escape(f"Trained {doc['method']} for {doc['epochs']} pass(es): {doc['why']}."))
    if len(curve):
        curves = {m: (g["epoch"].to_numpy(), g[key].to_numpy()) for m, g in curve.groupby("method", sort=False)}
        body += _table(curve.drop(columns=["train_seconds", "score_seconds"]).round(4))
        body += _img(validation_curve(curves, label, (doc["method"], doc["epochs"])), "validation curve")
    return _section("validation", "Validation: passes and method chosen on the log", body)


DRIFT_ROWS = (("median_cosine", "median cosine of an item's two vectors"),
              ("median_cosine_rotated", "the same after the best rotation"),
              ("neighbour_overlap", "top-k neighbours in common (share)"), ("k", "k"),
              ("queries", "items whose neighbours were compared"), ("shared", "items in both runs"),
              ("new", "new items"), ("dropped", "dropped items"))


def drift_table(drift: dict[str, Any], column: str) -> pd.DataFrame:
    """The drift measures (``drift/drift.json``'s keys) as rows of one column of text (cosines to 4 places, counts
    with thousands separators)."""
    def text(value: Any) -> str:
        if value is None:
            return "n/a"
        return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"

    return pd.DataFrame({"measure": [label for _, label in DRIFT_ROWS],
                         column: [text(drift.get(key)) for key, _ in DRIFT_ROWS]})


def drift_section(run: Run) -> str:
    """How far the vectors moved from the run's reference (the run it is aligned to, or its parent)."""
    title = "Drift against the reference run"
    from eges.pipeline.drift_stage import recorded_drift

    drift = recorded_drift(run)
    if drift is None:
        return _section("drift", title, _note("No drift measured on these vectors: give --align-to or --warm-start "
                                              "to measure how far they moved from an earlier run (docs/drift.md)."))
    relation = "aligned to" if drift.get("relation") == "align_to" else "warm-started from"
    body = _table(drift_table(drift, "value"))
    body += _note(f"This run is {relation} {drift.get('reference')} ({drift.get('reference_method')} vectors). A "
                  "median cosine near 1 means a model trained on the reference's vectors still reads these; near 0 "
                  "with a high value after the best rotation means only the space turned (see --align-to). "
                  "Neighbours are searched among the shared items in each run.")
    return _section("drift", title, body)


def evaluation_section(run: Run) -> str:
    from eges.outputs.compare import comparison

    if not list(run.out.glob(metrics_path("*"))):
        return _section("evaluation", "Evaluation", _note(f"No evaluation yet: {_evaluate_command(run)}"))
    table = comparison([run.out])
    table.columns.name = None
    table = table.reset_index()
    body = _table(table) + _note(reading_note([str(c) for c in table.columns]))
    for path in sorted(run.out.glob(summary_path("*"))):
        split = json.loads(path.read_text())["split"]
        body += _note(f"{path.parent.name}: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int)
                                                           else f"{k.replace('_', ' ')} {v}" for k, v in split.items()))
    return _section("evaluation", "Evaluation", body)


#: What each baseline is, for the note under the evaluation table (docs/evaluation.md has the details).
BASELINE_NOTES = {
    "popularity": "popularity recommends the most frequent training items to every query; a method below it has "
                  "learnt less than the item counts",
    "cooccurrence": "cooccurrence recommends the items seen most often right after the query item in the training "
                    "sessions (the graph's own edge counts); on a log where next items repeat, it is hard to beat "
                    "for items with many sessions, and it has nothing to say for items without any (cold and "
                    "long-tail items), which is where vectors earn their place",
    "item2vec": "item2vec is skip-gram on the raw sessions without the graph: its distance to BGE is about what "
                "the graph and its walks add",
    "deepwalk": "deepwalk is skip-gram on uniform walks over the undirected, unweighted training graph (the "
                "textbook graph embedding): its distance to BGE is what the weighted, directed graph adds",
    "side_mean": "side_mean places a cold item at the mean of its catalogue values' item2vec vectors, with no "
                 "side-information training: GES/EGES's cold-start vectors must beat it to earn theirs",
}


def reading_note(columns: list[str]) -> str:
    """How to read the evaluation table: what its baselines are and how to hold the methods against them."""
    present = [BASELINE_NOTES[c] for c in BASELINE_NOTES if c in columns]
    text = ("How to read this table: every column is scored on the same held-out pairs, and higher is better for "
            "every metric (AUC: a held-out pair scores above a random one; HitRate@k and the others: the held-out "
            "item is among the k recommended). The baselines are yardsticks, not alternatives to ship: ")
    return text + "; ".join(present) + "." if present else text.rstrip(": ") + "."


def _evaluate_command(run: Run) -> str:
    """The command that evaluates this run, complete and pasteable (its own inputs and folder)."""
    import shlex

    inputs = run.manifest.get("inputs") or {}
    args = ["eges", "evaluate"]
    for flag in ("events", "items"):
        if inputs.get(flag):
            args += [f"--{flag}", inputs[flag]]
    if not inputs.get("events"):
        return f"`eges evaluate` needs the event log (this run was built from an edge list, {inputs.get('edges')})"
    return shlex.join([*args, "--out", str(run.out)])


def map_section(run: Run, ids: pd.Series, vectors: np.ndarray, source: np.ndarray, seed: int = 0,
                limit: int = 5000) -> str:
    from eges.outputs.item_map import item_map_svg
    from eges.outputs.plots import pca_2d

    rng = np.random.default_rng(seed)
    cold_rows = np.flatnonzero(source == "cold_start")
    warm_rows = np.flatnonzero(source != "cold_start")
    # Every cold-start item up to a fifth of the map, so they can be found; the rest a seeded sample.
    n_cold = min(len(cold_rows), limit // 5)
    pick = np.sort(np.concatenate([rng.choice(cold_rows, size=n_cold, replace=False),
                                   rng.choice(warm_rows, size=min(len(warm_rows), limit - n_cold), replace=False)]))
    picked_ids = ids.iloc[pick]
    field = None
    side = None
    if run.catalog is not None:
        field = next((c for c in ("category", "category_id", "cate_id") if c in run.catalog.columns),
                     run.catalog.columns[0] if len(run.catalog.columns) else None)
        side = run.catalog.reindex(picked_ids)
    labels = (side[field].astype(str).fillna("unknown").to_numpy() if field else np.full(len(pick), "item"))
    tips = []
    for j, item in enumerate(picked_ids):
        parts = [f"item {item}"] + (["cold start"] if source[pick[j]] == "cold_start" else [])
        if side is not None:
            parts += [f"{col}: {_plain(val)}" for col, val in side.iloc[j].items() if pd.notna(val)]
        tips.append(" · ".join(parts))
    body = _note(f"The first two principal components of {len(pick):,} of {len(ids):,} item vectors "
                 f"({run.vectors_file.relative_to(run.out)}), coloured by {field or 'nothing (no catalog)'}. "
                 "Hover over a point for the item and its side information; the box finds items by id or side "
                 "information.")
    body += item_map_svg(pca_2d(vectors[pick]), labels, tips, source[pick] == "cold_start")
    return _section("map", "Map of the item vectors", body)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array value
        return False


def _plain(value: Any) -> str:
    """A catalog value as a person writes it: 12, not 12.0; 3.5, not np.float64(3.5)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def neighbours_section(run: Run, ids: pd.Series, vectors: np.ndarray, source: np.ndarray, k: int = 5,
                       per_kind: int = 3) -> str:
    from eges.recall.neighbours import normalised

    unit = normalised(vectors)
    vocab = pq.read_table(run.out / NODES, columns=["item_id", "count"]).to_pandas()
    popular = vocab.sort_values("count", ascending=False)["item_id"].head(per_kind)
    row_of = pd.Index(ids)
    chosen = [("popular", row_of.get_loc(i)) for i in popular if i in row_of]
    chosen += [("cold", r) for r in np.flatnonzero(source == "cold_start")[:per_kind]]
    body = ""
    for kind, r in chosen:
        scores = unit @ unit[r]
        scores[r] = -np.inf
        best = np.argsort(-scores)[:k]
        rows = pd.DataFrame({"item_id": ids.iloc[np.r_[r, best]].to_numpy(),
                             "score": np.r_[np.nan, scores[best]], "source": source[np.r_[r, best]]})
        if run.catalog is not None:
            rows = rows.join(run.catalog, on="item_id")
        side_columns = tuple(c for c in rows.columns if c not in ("score", "source"))
        body += f"<h3>{kind} item {html.escape(_plain(ids.iloc[r]))} and its {k} nearest</h3>" + \
            _table(rows, plain=side_columns)
    if not any(kind == "cold" for kind, _ in chosen):
        body += _note("No cold-start items in this run (they need GES/EGES and a catalog).")
    return _section("neighbours", "Nearest neighbours of popular and cold items", body)


def write_report(out: Path) -> Path:
    """Render ``out/report.html`` atomically; returns its path.

    Raises:
        EgesError: ``out`` holds no eges run, or vectors its manifest does not record.
    """
    from eges.pipeline.lock import run_lock

    read_manifest(out)  # checked before the lock: eges creates nothing in a folder that holds no run
    with run_lock(out):
        return _write_report(out)


def _write_report(out: Path) -> Path:
    run = Run(out)
    parts = [stages_section(run), graph_section(run), validation_section(run), attention_section(run),
             evaluation_section(run), drift_section(run)]
    if run.vectors_file is None:
        parts += [_section(key, title, _note("No item vectors in this run yet."))
                  for key, title in (("map", "Map of the item vectors"), ("neighbours", "Nearest neighbours"))]
    else:
        ids = pd.Series(run.ids, dtype=object)
        parts += [map_section(run, ids, run.vectors, run.source), neighbours_section(run, ids, run.vectors, run.source)]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    inputs = ", ".join(f"{k}: {v}" for k, v in (run.manifest.get("inputs") or {}).items() if v)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>eges report: {html.escape(out.name)}"
            f"</title><style>{STYLE}</style></head><body>\n<h1>eges report</h1>"
            f"{_note(f'{out} · {inputs} · {created}')}\n" + "\n".join(parts) + "\n</body></html>\n")
    target = out / REPORT
    with io.atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target
