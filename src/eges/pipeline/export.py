"""Exports of a run's item vectors for the code that uses them.

- ``parquet`` / ``npy``: an embedding matrix aligned with the item vocabulary. Row ``i`` is item index ``i`` (the
  ``item_index`` of ``sessions/items.parquet`` / ``graph/nodes.parquet``), so sequences already written as item
  indices feed a Keras ``Embedding`` or a PyTorch ``nn.Embedding`` as they are. Cold-start items (GES/EGES) follow
  the vocabulary, and the last row is reserved for padding and unknown items (zeros). Vocabulary items without a
  vector (never reached by a walk) are zero rows, flagged in the vocabulary.
- ``word2vec``: the text (``.txt``) or binary (``.bin``) format gensim's ``KeyedVectors.load_word2vec_format``
  and most embedding tools read; keys are the item ids as text.
- ``projector``: TensorBoard Embedding Projector files: ``vectors.tsv``, ``metadata.tsv`` (item id, source and
  the catalog's side-information columns) and ``projector_config.pbtxt``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq

from eges.errors import InputError
from eges.pipeline import io
from eges.pipeline.recall_stage import method_vectors
from eges.pipeline.registry import resolved_method
from eges.pipeline.side_info_stage import catalog_by_id
from eges.pipeline.stages import NODES

FORMATS = ("parquet", "npy", "word2vec", "projector")


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


def export(out_dir: Path, fmt: str, to: Path, method: str | None = None) -> str:
    """Write the ``fmt`` export of the run in ``out_dir`` to ``to`` atomically; returns a one-line description."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; formats are: {', '.join(FORMATS)}")
    m = build_matrix(out_dir, method)
    n_items = int(m.has_vector.sum())
    if fmt == "parquet":
        io.write_table(m.vocabulary.append_column("vector", io.vector_column(m.vectors)), to, compression="none")
        where = f"{to} (row {m.padding_row} is padding/unknown)"
    elif fmt == "npy":
        with io.atomic_dir(to) as tmp:
            np.save(tmp / "embeddings.npy", m.vectors)
            pq.write_table(m.vocabulary, tmp / "vocabulary.parquet")
            pa.csv.write_csv(m.vocabulary.select(["row", "item_id"]), tmp / "vocabulary.tsv",
                             pa.csv.WriteOptions(delimiter="\t", quoting_style="none"))
            (tmp / "export.json").write_text(json.dumps(
                {"method": m.method, "rows": len(m.vectors), "dimension": int(m.vectors.shape[1]),
                 "padding_row": m.padding_row, "items_with_vectors": n_items}, indent=2))
        where = f"{to}/embeddings.npy + vocabulary (row {m.padding_row} is padding/unknown)"
    elif fmt == "word2vec":
        _write_word2vec(m, to)
        where = str(to)
    else:
        _write_projector(m, out_dir, to)
        where = f"{to} (load vectors.tsv and metadata.tsv in projector.tensorflow.org or TensorBoard)"
    return f"{m.method}: {n_items:,} item vectors of dimension {m.vectors.shape[1]} -> {where}"


def _write_word2vec(m: Matrix, to: Path) -> None:
    from gensim.models import KeyedVectors

    keep = m.has_vector
    kv = KeyedVectors(m.vectors.shape[1], count=0, dtype=np.float32)
    kv.vectors = m.vectors[keep]
    kv.index_to_key = [str(i) for i in m.vocabulary["item_id"].filter(pa.array(keep)).to_pylist()]
    kv.key_to_index = {key: i for i, key in enumerate(kv.index_to_key)}
    with io.atomic_path(to) as tmp:
        kv.save_word2vec_format(str(tmp), binary=str(to).endswith(".bin"))


def _write_projector(m: Matrix, out_dir: Path, to: Path) -> None:
    from eges.pipeline.runner import resume

    keep = m.has_vector
    meta = m.vocabulary.filter(pa.array(keep)).select(["item_id", "source"]).to_pandas()
    config, inputs = resume(out_dir)
    if inputs.items:
        meta = meta.join(catalog_by_id(inputs.items, config.side_info.id_col), on="item_id")
    with io.atomic_dir(to) as tmp:
        np.savetxt(tmp / "vectors.tsv", m.vectors[keep], delimiter="\t", fmt="%.6g")
        meta.to_csv(tmp / "metadata.tsv", sep="\t", index=False, na_rep="")
        (tmp / "projector_config.pbtxt").write_text(
            'embeddings {\n  tensor_name: "eges_items"\n  tensor_path: "vectors.tsv"\n'
            '  metadata_path: "metadata.tsv"\n}\n')
