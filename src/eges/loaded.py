"""``eges.load(OUT)``: a finished run as an object to serve from, for ranking and recall code in Python.

It reads what the run wrote (the method's vectors, the neighbours table, the user vectors), never trains or
rewrites anything, and takes no lock: a run being rewritten is read through its atomically renamed files. Stage
outputs may be one Parquet file or a folder of Parquet parts (as a Spark job writes them).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from eges.errors import EgesError
from eges.layout import MANIFEST, NEIGHBOURS, USERS


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file or a folder of parts."""
    import pyarrow.dataset as ds

    try:
        return ds.dataset(str(path), format="parquet").to_table(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise EgesError(f"cannot read {path}: {exc}") from None


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    col = column.combine_chunks()
    return col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size).astype(np.float32, copy=False)


@dataclass
class Run:
    """A run's item vectors and what was computed from them.

    Attributes:
        out: the run folder.
        method: bge, ges or eges (from the manifest: the method that made ``vectors``).
        ids: item ids in their original type (an Arrow array; ``ids.to_pylist()`` for Python values).
        vectors: float32 matrix, row ``i`` is ``ids[i]``.
        source: ``behaviour`` or ``cold_start`` per row.
    """

    out: Path
    method: str
    ids: pa.Array
    vectors: np.ndarray
    source: np.ndarray
    vectors_file: Path
    _index: dict[Hashable, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {key: row for row, key in enumerate(self.ids.to_pylist())}

    def __len__(self) -> int:
        return len(self.vectors)

    def __contains__(self, item: Hashable) -> bool:
        return item in self._index

    def index_of(self, item: Hashable) -> int:
        """The row of ``item`` in :attr:`vectors`."""
        try:
            return self._index[item]
        except KeyError:
            example = self.ids[0].as_py() if len(self.ids) else None
            raise KeyError(f"item {item!r} has no vector in this run (ids look like {example!r})") from None

    def vector(self, item: Hashable) -> np.ndarray:
        return self.vectors[self.index_of(item)]

    @cached_property
    def _unit(self) -> np.ndarray:
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return self.vectors / np.where(norms > 0, norms, 1)

    def most_similar(self, query: Hashable | Sequence[float] | np.ndarray, k: int = 10) -> list[tuple[Any, float]]:
        """The ``k`` items most similar to an item (itself excluded) or to a vector, best first, with scores.

        For an item, the run's neighbours table answers when it was computed from these vectors and holds at least
        ``k`` neighbours; otherwise (and for a vector) exact cosine similarity over :attr:`vectors` does.
        """
        if isinstance(query, (np.ndarray, list, tuple)) and np.asarray(query).ndim == 1 and \
                len(query) == self.vectors.shape[1]:
            return self._exact(np.asarray(query, dtype=np.float32), k, exclude=None)
        row = self.index_of(query)
        table = self.neighbours_by_item
        if table is not None and query in table and len(table[query][0]) >= k:
            found, scores = table[query]
            return list(zip(found[:k], scores[:k]))
        return self._exact(self.vectors[row], k, exclude=row)

    def _exact(self, vector: np.ndarray, k: int, exclude: int | None) -> list[tuple[Any, float]]:
        norm = np.linalg.norm(vector)
        scores = self._unit @ (vector / (norm if norm > 0 else 1))
        if exclude is not None:
            scores[exclude] = -np.inf
        k = min(k, len(scores) - (exclude is not None))
        best = np.argpartition(-scores, k - 1)[:k] if k > 0 else np.zeros(0, int)
        best = best[np.argsort(-scores[best], kind="stable")]
        ids = self.ids.take(pa.array(best)).to_pylist()
        return [(i, float(s)) for i, s in zip(ids, scores[best])]

    def to_keyed_vectors(self) -> Any:
        """The vectors as gensim KeyedVectors keyed by item id (what ``vectors.kv`` holds)."""
        from gensim.models import KeyedVectors

        kv = KeyedVectors(self.vectors.shape[1], count=0, dtype=np.float32)
        kv.vectors = self.vectors.copy()
        kv.index_to_key = self.ids.to_pylist()
        kv.key_to_index = dict(self._index)
        return kv

    # ------------------------------------------------------------------------------------ recall outputs
    def _fresh(self, relative: str) -> Path | None:
        """``relative`` if it exists and was computed from this run's vectors (its recorded provenance)."""
        from eges.pipeline.io import fingerprint
        from eges.pipeline.recall_stage import read_provenance

        path = self.out / relative
        if not path.exists():
            return None
        prov = read_provenance(path) if path.is_file() else None
        if prov is not None and self.vectors_file.is_file() and \
                prov.get("vectors_digest") != fingerprint(self.vectors_file)["digest"]:
            return None  # computed from other vectors (an earlier method or training)
        return path

    @cached_property
    def neighbours(self) -> Any:
        """The neighbours table as pandas (item_id, neighbours, scores), or None when absent or stale."""
        path = self._fresh(NEIGHBOURS)
        return _read(path).to_pandas() if path is not None else None

    @cached_property
    def neighbours_by_item(self) -> dict[Hashable, tuple[list[Any], list[float]]] | None:
        frame = self.neighbours
        if frame is None:
            return None
        return {i: (list(n), [float(x) for x in s]) for i, n, s in
                zip(frame["item_id"], frame["neighbours"], frame["scores"])}

    @cached_property
    def users(self) -> tuple[pa.Array, np.ndarray] | None:
        """(user ids, float32 matrix) of the user vectors, or None when absent or stale."""
        path = self._fresh(USERS)
        if path is None:
            return None
        table = _read(path, ["user_id", "vector"])
        return table["user_id"].combine_chunks(), _matrix(table["vector"])

    def user_vector(self, user: Hashable) -> np.ndarray:
        if self.users is None:
            raise EgesError(f"{self.out} has no user vectors for these item vectors (run the users stage)")
        ids, matrix = self.users
        rows = np.flatnonzero(np.asarray(ids.to_pylist(), dtype=object) == user)
        if not len(rows):
            raise KeyError(f"user {user!r} has no vector in this run")
        return matrix[rows[0]]


def load(out: str | Path, method: str | None = None) -> Run:
    """Open the run in folder ``out``: its method's item vectors (or ``method``'s, when the run trained several).

    Raises:
        EgesError: ``out`` holds no run, or no vectors for the method.
    """
    from eges.methods import METHODS, method_of
    from eges.pipeline.registry import resolved_method
    from eges.pipeline.runner import resume

    out = Path(out)
    if not (out / MANIFEST).is_file():
        raise EgesError(f"{out} holds no eges run (no manifest.json)")
    config, inputs = resume(out)
    chosen = method_of(method).name if method else resolved_method(inputs, config)
    path = out / METHODS[chosen].vectors
    if not path.exists():
        raise EgesError(f"{out} holds no {chosen} vectors ({METHODS[chosen].vectors} is missing); run `eges run --out "
                        f"{out}` first")
    table = _read(path)
    source = table["source"].to_numpy(zero_copy_only=False) if "source" in table.column_names else \
        np.full(table.num_rows, "behaviour", dtype=object)
    return Run(out, chosen, table["item_id"].combine_chunks(), _matrix(table["vector"]), np.asarray(source),
               path)
