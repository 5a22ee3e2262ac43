"""Exports of a run's item vectors for the code that uses them.

- ``parquet`` / ``npy``: an embedding matrix aligned with the item vocabulary. **Row 0 is padding and unknown
  items** (zeros: Keras ``mask_zero=True``, PyTorch ``padding_idx=0``); item index ``i`` (the ``item_index`` of
  ``sessions/items.parquet`` / ``graph/nodes.parquet``) is row ``i + 1``, and cold-start items (GES/EGES) follow
  the vocabulary. The vocabulary file gives each item's row. Vocabulary items without a vector (never reached by
  a walk) are zero rows, flagged in the vocabulary. The npy export's vocabulary lists real items only (the
  padding row is named in ``export.json`` and the vocabulary's schema metadata).
- ``word2vec``: the text (``.txt``) or binary (``.bin``) format gensim's ``KeyedVectors.load_word2vec_format``
  and most embedding tools read; keys are the item ids as text.
- ``projector``: TensorBoard Embedding Projector files: ``vectors.tsv``, ``metadata.tsv`` (item id, source and
  the catalog's side-information columns) and ``projector_config.pbtxt``.
- ``neighbours``: the neighbours table in long form (:mod:`eges.outputs.export_neighbours`).

Where an export may go and what it replaces: :mod:`eges.outputs.destination`.
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
from eges.layout import NEIGHBOURS, PADDING_KEY
from eges.outputs.destination import (
    FOLDER_FILES,
    FORMATS,
    check_destination,
    disk_full_named,
    exclusive,
    remove_stale_temporaries,
    sidecar,
)
from eges.outputs.run import Run
from eges.pipeline import io

#: The matrix row of padding and unknown items: 0, as Keras' ``mask_zero`` and PyTorch's ``padding_idx=0`` expect.
PADDING_ROW = 0


@dataclass
class Matrix:
    """The aligned embedding matrix: ``vectors[row]``; ``vocabulary`` (Arrow, so item ids keep their type and the
    padding row's id is a real null) has row, item_id, source, has_vector. Row 0 is padding/unknown."""

    vectors: np.ndarray
    vocabulary: pa.Table
    method: str

    @property
    def has_vector(self) -> np.ndarray:
        return self.vocabulary["has_vector"].to_numpy()

    padding_row = PADDING_ROW


def build_matrix(run: Run) -> Matrix:
    """Assemble the matrix of ``run`` from its graph's vocabulary and the method's vectors: row 0 is padding and
    unknown items (zeros), row ``i + 1`` is item index ``i``, cold-start items follow.

    Raises:
        EgesError: the run holds no vectors for its method, or no recorded graph.
    """
    run.require_vectors()
    by_row, rows = _rows(run)
    extra = np.flatnonzero(rows < 0)  # cold-start items: after the vocabulary
    rows[extra] = len(by_row) + np.arange(len(extra))
    rows += 1  # row 0 is padding
    n_rows = len(by_row) + len(extra) + 1
    matrix = np.zeros((n_rows, run.dimension), dtype=np.float32)
    matrix[rows] = run.vectors
    source = np.full(n_rows, "none", dtype=object)
    source[rows] = run.source
    source[PADDING_ROW] = "padding"
    id_type = by_row.type
    item_id = pa.concat_arrays([pa.nulls(1, id_type), by_row,
                                run.id_array.take(pa.array(extra, pa.int64())).cast(id_type)])
    has = np.zeros(n_rows, dtype=bool)
    has[rows] = True
    vocabulary = pa.table({"row": pa.array(np.arange(n_rows, dtype=np.int32)), "item_id": item_id,
                           "source": pa.array(source.tolist(), pa.string()), "has_vector": pa.array(has)})
    return Matrix(matrix, vocabulary, run.trained_method)  # validation may have chosen another


def _rows(run: Run) -> tuple[pa.Array, np.ndarray]:
    """The graph's items by matrix row - 1 (null where a row is vacant), and each vector's row - 1 (-1: none).

    A fresh run's rows are its item indices; a warm-started run's are its state's slots: its parent's rows for the
    items they share, new items after the chain's last, and a dropped item's row left vacant (null id, zeros), so
    an embedding matrix built on the parent's export keeps reading the same items."""
    nodes = run.nodes()["item_id"].combine_chunks()
    slotted = run.slots()
    if slotted is None:
        return nodes, pd.Index(nodes.to_pandas()).get_indexer(run.id_array.to_pandas())
    ids, slots, n_slots = slotted
    at, taken = np.zeros(n_slots, dtype=np.int64), np.zeros(n_slots, dtype=bool)
    at[slots], taken[slots] = np.arange(len(slots)), True
    by_row = pa.compute.if_else(pa.array(taken), ids.take(pa.array(at)), pa.scalar(None, ids.type))
    position = pd.Index(ids.to_pandas()).get_indexer(run.id_array.to_pandas())
    return by_row, np.where(position >= 0, slots[np.maximum(position, 0)], -1)


def export(out_dir: Path, fmt: str, to: str | Path, method: str | None = None, force: bool = False) -> str:
    """Write the ``fmt`` export of the run in ``out_dir`` to ``to`` atomically; returns a one-line description.

    Where it may go and what it may replace: :mod:`eges.outputs.destination` (a folder export replaces only the
    files its ``export.json`` lists, and refuses a folder holding anything else). An export into the run folder
    holds the run's writer lock.
    """
    from eges.pipeline.lock import holds_lock, run_lock

    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; formats are: {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    run = Run(out_dir, method)  # refuses a folder that holds no eges run before anything is written
    inside_run = check_destination(out_dir, fmt, to, force)
    to = Path(to)
    lock = run_lock(out_dir) if inside_run and not holds_lock(out_dir) else contextlib.nullcontext()
    if fmt == "neighbours":
        from eges.outputs.export_neighbours import write_neighbours

        if method is not None:
            raise InputError("--method does not apply to --format neighbours (the table of the run's own method)")
        if not run.vouched(NEIGHBOURS):
            raise InputError(f"{out_dir} has no recorded neighbours table ({NEIGHBOURS}); run "
                             f"`{run.rerun_command}` first")
        details = run.stage_entry("neighbours").get("details", {})
        marker = {"eges_export": fmt, "method": details.get("method"), "run": str(out_dir.resolve())}
        needed = 2 * (out_dir / NEIGHBOURS).stat().st_size
        with lock, exclusive(to), disk_full_named(to, needed):
            remove_stale_temporaries(to)
            return write_neighbours(out_dir, to, marker)
    m = build_matrix(run)
    _check_ids_fit(m, fmt)
    with lock, exclusive(to), disk_full_named(to, _size_estimate(m, fmt)):
        remove_stale_temporaries(to)
        return _write(m, run, fmt, to)


def _size_estimate(m: Matrix, fmt: str) -> int:
    """About how many bytes the export takes (text formats spell each number out)."""
    per_number = 13 if fmt in ("word2vec", "projector") else 4
    return m.vectors.size * per_number + m.vocabulary.nbytes


def _write(m: Matrix, run: Run, fmt: str, to: Path) -> str:
    n_items = int(m.has_vector.sum())
    marker = {"eges_export": fmt, "method": m.method, "run": str(run.out.resolve()), "rows": len(m.vectors),
              "dimension": int(m.vectors.shape[1]), "padding_row": m.padding_row, "first_item_row": 1,
              "items_with_vectors": n_items}
    if fmt in FOLDER_FILES:
        marker["files"] = list(FOLDER_FILES[fmt])
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
            vocabulary = m.vocabulary.filter(pa.compute.is_valid(m.vocabulary["item_id"]))  # nor vacant rows
            vocabulary = vocabulary.replace_schema_metadata({PADDING_KEY: str(m.padding_row),
                                                             MARKER_KEY: json.dumps(marker)})
            pq.write_table(vocabulary, tmp / "vocabulary.parquet")
            pa.csv.write_csv(vocabulary.select(["row", "item_id"]), tmp / "vocabulary.tsv",
                             pa.csv.WriteOptions(delimiter="\t", quoting_style="needed"))
            (tmp / MARKER).write_text(json.dumps(marker, indent=2))
        where = f"{to}/embeddings.npy + vocabulary (row {m.padding_row} is padding/unknown, items from row 1)"
    elif fmt == "word2vec":
        # The marker first: killed between the two, a marker without its file is harmless, while a file without
        # its marker would read as the user's and block every later export to this path.
        with io.atomic_path(sidecar(to)) as tmp:
            tmp.write_text(json.dumps(marker, indent=2))
        try:
            _write_word2vec(m, to)
        except BaseException:
            if not to.exists():  # a failed first export leaves nothing behind
                sidecar(to).unlink(missing_ok=True)
            raise
        where = str(to)
    else:
        _write_projector(m, run, to, marker)
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


def _write_word2vec(m: Matrix, to: Path) -> None:
    from eges.train.gensim_ref import keyed_vectors

    keep = m.has_vector
    kv = keyed_vectors([str(i) for i in m.vocabulary["item_id"].filter(pa.array(keep)).to_pylist()], m.vectors[keep])
    with io.atomic_path(to) as tmp:
        kv.save_word2vec_format(str(tmp), binary=str(to).endswith(".bin"))


def _write_projector(m: Matrix, run: Run, to: Path, marker: dict) -> None:
    keep = m.has_vector
    meta = m.vocabulary.filter(pa.array(keep)).select(["item_id", "source"]).to_pandas()
    if run.catalog is not None:
        meta = meta.join(run.catalog, on="item_id")
    with io.atomic_dir(to, replace=True) as tmp:
        (tmp / MARKER).write_text(json.dumps(marker, indent=2))
        np.savetxt(tmp / "vectors.tsv", m.vectors[keep], delimiter="\t", fmt="%.6g")
        meta.to_csv(tmp / "metadata.tsv", sep="\t", index=False, na_rep="")
        (tmp / "projector_config.pbtxt").write_text(
            'embeddings {\n  tensor_name: "eges_items"\n  tensor_path: "vectors.tsv"\n'
            '  metadata_path: "metadata.tsv"\n}\n')
