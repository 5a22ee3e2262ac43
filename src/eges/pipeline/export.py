"""Exports of a run's item vectors for the code that uses them.

- ``parquet`` / ``npy``: an embedding matrix aligned with the item vocabulary. Row ``i`` is item index ``i`` (the
  ``item_index`` of ``sessions/items.parquet`` / ``graph/nodes.parquet``), so sequences already written as item
  indices feed a Keras ``Embedding`` or a PyTorch ``nn.Embedding`` as they are. Cold-start items (GES/EGES) follow
  the vocabulary, and the last row is reserved for padding and unknown items (zeros). Vocabulary items without a
  vector (never reached by a walk) are zero rows, flagged in the vocabulary. The npy export's vocabulary lists
  real items only (the padding row is named in ``export.json`` and the vocabulary's schema metadata).
- ``word2vec``: the text (``.txt``) or binary (``.bin``) format gensim's ``KeyedVectors.load_word2vec_format``
  and most embedding tools read; keys are the item ids as text.
- ``projector``: TensorBoard Embedding Projector files: ``vectors.tsv``, ``metadata.tsv`` (item id, source and
  the catalog's side-information columns) and ``projector_config.pbtxt``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq

from eges.errors import InputError
from eges.layout import EXPORT_MARKER as MARKER
from eges.layout import EXPORT_MARKER_KEY as MARKER_KEY
from eges.layout import NODES, PADDING_KEY
from eges.pipeline import io
from eges.pipeline.recall_stage import method_vectors
from eges.pipeline.registry import resolved_method
from eges.pipeline.side_info_stage import catalog_by_id

FORMATS = ("parquet", "npy", "word2vec", "projector", "neighbours")


@dataclass
class Matrix:
    """The aligned embedding matrix: ``vectors[row]``; ``vocabulary`` (Arrow, so item ids keep their type and the
    padding row's id is a real null) has row, item_id, source, has_vector."""

    vectors: np.ndarray
    vocabulary: pa.Table
    method: str

    @property
    def has_vector(self) -> np.ndarray:
        return self.vocabulary["has_vector"].to_numpy()

    @property
    def padding_row(self) -> int:
        return len(self.vectors) - 1


def build_matrix(out_dir: Path, method: str | None = None) -> Matrix:
    """Assemble the matrix of a run in ``out_dir`` from its nodes and the method's vectors.

    Raises:
        InputError: the directory holds no pipeline run, or no vectors for the method.
    """
    from eges.pipeline.runner import resume

    config, inputs = resume(out_dir)
    if method is not None:
        config = config.replace("train", method=method)
    chosen = resolved_method(inputs, config)
    path = out_dir / method_vectors(inputs, config)
    if not path.exists() or not (out_dir / NODES).exists():
        raise InputError(f"{out_dir} holds no {chosen} vectors ({path.relative_to(out_dir)} is missing); "
                         f"run `eges run ... --out {out_dir} --method {chosen}` first")
    nodes = pq.read_table(out_dir / NODES, columns=["item_id", "item_index"]).sort_by("item_index")
    ids, vectors = io.read_vectors(path)
    node_ids = pd.Index(nodes["item_id"].to_pandas())
    vector_ids = ids.to_pandas()
    rows = node_ids.get_indexer(vector_ids)
    extra = np.flatnonzero(rows < 0)  # cold-start items: after the vocabulary
    rows[extra] = len(node_ids) + np.arange(len(extra))
    n_rows = len(node_ids) + len(extra) + 1
    matrix = np.zeros((n_rows, vectors.shape[1]), dtype=np.float32)
    matrix[rows] = vectors
    source = np.full(n_rows, "none", dtype=object)
    source[rows] = io.read_sources(path)
    source[-1] = "padding"
    id_type = nodes["item_id"].type
    item_id = pa.concat_arrays([nodes["item_id"].combine_chunks(), ids.take(pa.array(extra)).cast(id_type),
                                pa.nulls(1, id_type)])
    has = np.zeros(n_rows, dtype=bool)
    has[rows] = True
    vocabulary = pa.table({"row": pa.array(np.arange(n_rows, dtype=np.int32)), "item_id": item_id,
                           "source": pa.array(source.tolist(), pa.string()), "has_vector": pa.array(has)})
    return Matrix(matrix, vocabulary, chosen)


FOLDER_FORMATS = ("npy", "projector")


def export(out_dir: Path, fmt: str, to: Path, method: str | None = None, force: bool = False) -> str:
    """Write the ``fmt`` export of the run in ``out_dir`` to ``to`` atomically; returns a one-line description.

    ``to`` may be new, an empty folder, or eges' own earlier export of the same format (``force``: of any
    format); anything else that exists is refused, and so is the run folder, a folder holding it, or a path
    inside its stage folders. An export into the run folder holds the run's writer lock.
    """
    from eges.pipeline.lock import holds_lock, run_lock

    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; formats are: {', '.join(FORMATS)}")
    inside_run = check_destination(out_dir, fmt, to, force)
    lock = run_lock(out_dir) if inside_run and not holds_lock(out_dir) else contextlib.nullcontext()
    if fmt == "neighbours":
        from eges.pipeline.export_neighbours import write_neighbours
        from eges.pipeline.runner import load_manifest

        if method is not None:
            raise InputError("--method does not apply to --format neighbours (the table of the run's own method)")
        details = load_manifest(out_dir).get("stages", {}).get("neighbours", {}).get("details", {})
        marker = {"eges_export": fmt, "method": details.get("method"), "run": str(out_dir.resolve())}
        with lock:
            return write_neighbours(out_dir, to, marker)
    m = build_matrix(out_dir, method)
    _check_ids_fit(m, fmt)
    with lock:
        return _write(m, out_dir, fmt, to)


def _write(m: Matrix, out_dir: Path, fmt: str, to: Path) -> str:
    n_items = int(m.has_vector.sum())
    marker = {"eges_export": fmt, "method": m.method, "run": str(out_dir.resolve()), "rows": len(m.vectors),
              "dimension": int(m.vectors.shape[1]), "padding_row": m.padding_row, "items_with_vectors": n_items}
    if fmt == "parquet":
        table = m.vocabulary.append_column("vector", io.vector_column(m.vectors))
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), MARKER_KEY: json.dumps(marker)})
        io.write_table(table, to, compression="none")
        where = f"{to} (row {m.padding_row} is padding/unknown)"
    elif fmt == "npy":
        with io.atomic_dir(to, replace=True) as tmp:
            np.save(tmp / "embeddings.npy", m.vectors)
            # The vocabulary lists real items only: a null padding id would turn integer ids into floats in
            # pandas (and lose those above 2**53); the padding row's index is in export.json and the metadata.
            vocabulary = m.vocabulary.slice(0, m.padding_row)
            vocabulary = vocabulary.replace_schema_metadata({PADDING_KEY: str(m.padding_row),
                                                             MARKER_KEY: json.dumps(marker)})
            pq.write_table(vocabulary, tmp / "vocabulary.parquet")
            pa.csv.write_csv(vocabulary.select(["row", "item_id"]), tmp / "vocabulary.tsv",
                             pa.csv.WriteOptions(delimiter="\t", quoting_style="needed"))
            (tmp / MARKER).write_text(json.dumps(marker, indent=2))
        where = f"{to}/embeddings.npy + vocabulary (row {m.padding_row} is padding/unknown)"
    elif fmt == "word2vec":
        _write_word2vec(m, to)
        with io.atomic_path(_sidecar(to)) as tmp:
            tmp.write_text(json.dumps(marker, indent=2))
        where = str(to)
    else:
        _write_projector(m, out_dir, to, marker)
        where = f"{to} (load vectors.tsv and metadata.tsv in projector.tensorflow.org or TensorBoard)"
    return f"{m.method}: {n_items:,} item vectors of dimension {m.vectors.shape[1]} -> {where}"


#: Characters an item id may not hold in each text format: a word2vec key ends at the first whitespace, and a
#: TensorBoard metadata line cannot hold a tab or a line break. (npy's vocabulary.tsv quotes such ids instead.)
FORBIDDEN = {"word2vec": (r"\s", "whitespace, which ends a word2vec key"),
             "projector": (r"[\t\r\n]", "tabs or line breaks, which break a TensorBoard metadata line")}


def _check_ids_fit(m: Matrix, fmt: str) -> None:
    """Refuse, before writing, an export whose format cannot hold some item ids (it could not be loaded back)."""
    if fmt not in FORBIDDEN or not pa.types.is_string(m.vocabulary["item_id"].type):
        return
    pattern, why = FORBIDDEN[fmt]
    ids = m.vocabulary["item_id"]
    bad = pa.compute.match_substring_regex(ids, pattern).fill_null(False)
    n_bad = pa.compute.sum(bad).as_py() or 0
    if n_bad:
        example = ids.filter(bad)[0].as_py()
        raise InputError(f"{n_bad:,} item id(s) hold {why}, e.g. {example!r}; export --format parquet or npy instead")


def _sidecar(to: Path) -> Path:
    return to.with_name(to.name + "." + MARKER)


def export_kind(path: Path) -> str | None:
    """The format of eges' own export at ``path``, or None when ``path`` is not one."""
    try:
        if path.is_dir():
            marker = json.loads((path / MARKER).read_text())
        elif path.suffix == ".parquet":
            raw = (pq.read_schema(path).metadata or {}).get(MARKER_KEY)
            marker = json.loads(raw) if raw else {}
        else:
            marker = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError, pa.ArrowException):
        return None
    if not isinstance(marker, dict):
        return None
    kind = marker.get("eges_export")
    if kind is None and path.is_dir() and {"method", "padding_row"} <= set(marker):
        kind = "npy"  # an npy export of an eges release before the marker named its format
    return kind if kind in FORMATS else None


def check_destination(out_dir: Path, fmt: str, to: Path, force: bool) -> bool:
    """Refuse a destination that would destroy data; True when ``to`` lies inside the run folder.

    Raises:
        InputError: ``to`` is the run folder or holds it, lies inside one of its stage folders, or exists and is
            not eges' own export of this format (of any format with ``force``).
    """
    from eges.pipeline import PIPELINE, STAGES

    run = out_dir.resolve()
    dest = to.parent.resolve() / to.name
    if dest == run or run.is_relative_to(dest):
        raise InputError(f"--to {to} holds the run folder {out_dir}; an export there would replace the run. "
                         "Give a path of its own, e.g. --to " + str(out_dir / "export" / fmt))
    if dest.is_relative_to(run):
        top = dest.relative_to(run).parts[0]
        owned = {rel.split("/")[0] for name in PIPELINE for rel in STAGES[name].outputs}
        owned |= {"manifest.json", ".eges.lock", ".spill", "report.html", "variants"}
        if top in owned:
            raise InputError(f"--to {to} is inside the run's own {top} (written by eges stages); export to a "
                             f"folder of its own, e.g. --to {out_dir / 'export' / fmt}")
    if not (dest.exists() or dest.is_symlink()):
        return dest.is_relative_to(run)
    folder = fmt in FOLDER_FORMATS
    if folder and not dest.is_dir():
        raise InputError(f"--to {to} is a file; the {fmt} export is a folder: give a new path")
    if not folder and dest.is_dir():
        raise InputError(f"--to {to} is a folder; the {fmt} export is one file: give a file path")
    if folder and not any(dest.iterdir()):
        return dest.is_relative_to(run)
    kind = export_kind(dest)
    if kind == fmt or (kind is not None and force):
        return dest.is_relative_to(run)
    if kind is not None:
        raise InputError(f"--to {to} holds an eges {kind} export, not {fmt}; add --force to replace it")
    raise InputError(f"--to {to} already exists and is not an eges export (eges replaces only its own exports); "
                     "give a new path")


def _write_word2vec(m: Matrix, to: Path) -> None:
    from gensim.models import KeyedVectors

    keep = m.has_vector
    kv = KeyedVectors(m.vectors.shape[1], count=0, dtype=np.float32)
    kv.vectors = m.vectors[keep]
    kv.index_to_key = [str(i) for i in m.vocabulary["item_id"].filter(pa.array(keep)).to_pylist()]
    kv.key_to_index = {key: i for i, key in enumerate(kv.index_to_key)}
    with io.atomic_path(to) as tmp:
        kv.save_word2vec_format(str(tmp), binary=str(to).endswith(".bin"))


def _write_projector(m: Matrix, out_dir: Path, to: Path, marker: dict) -> None:
    from eges.pipeline.runner import resume

    keep = m.has_vector
    meta = m.vocabulary.filter(pa.array(keep)).select(["item_id", "source"]).to_pandas()
    config, inputs = resume(out_dir)
    if inputs.items:
        meta = meta.join(catalog_by_id(inputs.items, config.side_info.id_col), on="item_id")
    with io.atomic_dir(to, replace=True) as tmp:
        (tmp / MARKER).write_text(json.dumps(marker, indent=2))
        np.savetxt(tmp / "vectors.tsv", m.vectors[keep], delimiter="\t", fmt="%.6g")
        meta.to_csv(tmp / "metadata.tsv", sep="\t", index=False, na_rep="")
        (tmp / "projector_config.pbtxt").write_text(
            'embeddings {\n  tensor_name: "eges_items"\n  tensor_path: "vectors.tsv"\n'
            '  metadata_path: "metadata.tsv"\n}\n')
