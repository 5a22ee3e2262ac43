"""The one reader of a finished run folder: what ``eges.load(OUT)`` returns, and what the report and exports read.

It resolves the method and its vectors file from the manifest, serves only outputs the manifest vouches for (their
recorded fingerprints), never trains or rewrites anything, and takes no lock: a run being rewritten is read through
its atomically renamed files.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eges.errors import EgesError, plain
from eges.layout import ATTENTION, MANIFEST, NEIGHBOURS, NODES, USERS


class QueryError(EgesError, ValueError):
    """A query the run cannot answer as asked: a k that is not a positive whole number, a vector of the wrong
    shape or with NaN or inf."""


class UnknownItem(EgesError, KeyError):
    """An item (or user) id the run has no vector for."""

    def __str__(self) -> str:  # KeyError quotes its message; say it plainly
        return str(self.args[0])


def _not_a_run(out: Path, why: str) -> EgesError:
    return EgesError(f"{out} holds no eges run (no pipeline run recorded: {why}); run `eges run ... --out {out}` "
                     "first")


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of a run folder that eges wrote: one with recorded inputs and at least one finished stage.

    Raises:
        EgesError: no manifest, a damaged one, or one that is not eges' (``{}``, no stages, no inputs).
    """
    from eges.pipeline.runner import load_manifest

    if not (out / MANIFEST).is_file():
        raise _not_a_run(out, f"no {MANIFEST}")
    manifest = load_manifest(out)
    if not manifest.get("stages") or not manifest.get("inputs"):
        raise _not_a_run(out, f"{MANIFEST} records no stages or inputs; a manifest eges did not write is not a run")
    return manifest


class Run:
    """A run folder: its method's item vectors and what was computed from them.

    Attributes:
        out: the run folder.
        method: bge, ges or eges: the method whose vectors are served (the run's own, or the one asked for).
        ids: item ids as plain Python values (a list, like gensim's ``index_to_key``); every one is accepted by
            :meth:`most_similar`, :meth:`vector` and :meth:`index_of`.
        vectors: float32 matrix, row ``i`` is ``ids[i]``.
        source: ``behaviour`` or ``cold_start`` per row.
    """

    def __init__(self, out: str | Path, method: str | None = None):
        from eges.methods import method_of
        from eges.pipeline.registry import resolved_method
        from eges.pipeline.runner import resume

        self.out = Path(out)
        self.manifest = read_manifest(self.out)
        self.config, self.inputs = resume(self.out)
        own = resolved_method(self.inputs, self.config)
        self.method = method_of(method).name if method else own
        self._own_method = own

    @property
    def trained_method(self) -> str:
        """The method that trained the served vectors: ``method``, unless validation chose another for this run's
        training stage (with a catalog and train.method = auto, BGE can win and train in the eges stage)."""
        from eges.methods import METHODS

        made_by = self.stage_entry(METHODS[self.method].stage).get("details", {}).get("method")
        return made_by if self.method == self._own_method and made_by in METHODS else self.method

    def __repr__(self) -> str:
        if self.vectors_file is None:
            return f"Run({str(self.out)!r}, method={self.method!r}, no vectors yet)"
        trained = f", trained={self.trained_method!r}" if self.trained_method != self.method else ""
        return (f"Run({str(self.out)!r}, method={self.method!r}{trained}, items={len(self)}, "
                f"dimension={self.dimension})")

    # ------------------------------------------------------------------------------------ what the manifest vouches
    def stage_entry(self, name: str) -> dict[str, Any]:
        return self.manifest["stages"].get(name) or {}

    def recorded(self, relative: str) -> dict[str, Any] | None:
        """The fingerprint the manifest records for ``relative``, or None when no finished stage wrote it."""
        for entry in self.manifest["stages"].values():
            found = entry.get("outputs", {}).get(relative)
            if found is not None:
                return found
        return None

    def vouched(self, relative: str) -> bool:
        """``relative`` exists and is the file the manifest records (size and mtime, else its digest)."""
        from eges.pipeline.io import fingerprint

        known = self.recorded(relative)
        path = self.out / relative
        if known is None or not path.is_file():
            return False
        try:
            return fingerprint(path, known)["digest"] == known.get("digest")
        except OSError:
            return False

    @cached_property
    def vectors_file(self) -> Path | None:
        """The method's vectors file when its stage has finished, else None.

        Raises:
            EgesError: the file is there but is not what the manifest records (an interrupted or outside write).
        """
        from eges.methods import METHODS

        rel = METHODS[self.method].vectors
        path = self.out / rel
        if self.recorded(rel) is None:
            return None
        if not self.vouched(rel):
            raise EgesError(f"{path} is not the file {self.out / MANIFEST} records (an interrupted or outside "
                            f"write); rerun `{self.rerun_command}` to rebuild it")
        made_by = self.stage_entry(METHODS[self.method].stage).get("details", {}).get("method")
        if made_by is not None and made_by != self.method and self.method != self._own_method:
            return None  # the stage's file holds another method's vectors (GES and EGES share a stage)
        return path

    @property
    def rerun_command(self) -> str:
        extra = "" if self.method == self._own_method else f" --method {self.method}"
        return f"eges run --out {self.out}{extra}"

    def require_vectors(self) -> Path:
        """The vectors file, or a named error saying which command writes it."""
        from eges.methods import METHODS

        if self.vectors_file is None:
            raise EgesError(f"{self.out} holds no {self.method} vectors ({METHODS[self.method].vectors} is not "
                            f"recorded); run `{self.rerun_command}` first")
        return self.vectors_file

    # ------------------------------------------------------------------------------------ the vectors
    @cached_property
    def _table(self) -> pa.Table:
        path = self.require_vectors()
        try:
            return pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise EgesError(f"cannot read {path}: {exc}") from None

    @cached_property
    def id_array(self) -> pa.Array:
        """The item ids as an Arrow array (their stored type), for writers that keep the type."""
        return self._table["item_id"].combine_chunks()

    @cached_property
    def ids(self) -> list[Any]:
        return self.id_array.to_pylist()

    @cached_property
    def vectors(self) -> np.ndarray:
        return _matrix(self._table["vector"])

    @cached_property
    def source(self) -> np.ndarray:
        if "source" not in self._table.column_names:
            return np.full(self._table.num_rows, "behaviour", dtype=object)
        return np.asarray(self._table["source"].to_numpy(zero_copy_only=False))

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    @cached_property
    def _index(self) -> dict[Hashable, int]:
        return {key: row for row, key in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item: Any) -> bool:
        try:
            return plain(item) in self._index
        except TypeError:
            return False

    def index_of(self, item: Any) -> int:
        """The row of ``item`` in :attr:`vectors` (any id :attr:`ids` holds, also as a NumPy or Arrow scalar)."""
        key = plain(item)
        try:
            return self._index[key]
        except (KeyError, TypeError):
            example = self.ids[0] if self.ids else None
            kind = type(example).__name__
            raise UnknownItem(f"item {key!r} has no vector in this run (ids are {kind}, like {example!r})") from None

    def vector(self, item: Any) -> np.ndarray:
        return self.vectors[self.index_of(item)]

    @cached_property
    def _unit(self) -> np.ndarray:
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return self.vectors / np.where(norms > 0, norms, 1)

    def most_similar(self, query: Any, k: int = 10) -> list[tuple[Any, float]]:
        """The ``k`` items most similar to an item (itself excluded) or to a vector, best first, with scores.

        Args:
            query: an item id of the run's type (any element of :attr:`ids`; NumPy and Arrow scalars of it too),
                or a vector: a 1-D NumPy array, list or tuple of :attr:`dimension` finite numbers.
            k: how many items, a whole number of at least 1 (fewer come back when the run has fewer).

        Returns:
            ``[(item_id, score), ...]`` with ids as plain Python values (int or str) for both kinds of query.
            For an item, the run's neighbours table answers when it was computed from these vectors and holds at
            least ``k`` neighbours; otherwise (and for a vector) exact cosine similarity over :attr:`vectors`.

        Raises:
            QueryError: ``k`` is not a positive whole number; the vector has another shape or holds NaN or inf.
            UnknownItem: (a KeyError) the id has no vector in this run.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise QueryError(f"k must be a whole number of at least 1, got {k!r}")
        k = int(k)
        if isinstance(query, (np.ndarray, list, tuple)) and np.ndim(query) > 0:
            return self._exact(self._query_vector(query), k, exclude=None)
        row = self.index_of(query)
        table = self.neighbours_by_item
        key = self.ids[row]
        if table is not None and key in table and len(table[key][0]) >= k:
            found, scores = table[key]
            return list(zip(found[:k], scores[:k]))
        return self._exact(self.vectors[row], k, exclude=row)

    def _query_vector(self, query: np.ndarray | Sequence[float]) -> np.ndarray:
        expected = f"an item id like {self.ids[0]!r} or a vector of dimension {self.dimension}" if self.ids else \
            f"a vector of dimension {self.dimension}"
        try:
            vector = np.asarray(query, dtype=np.float32)
        except (TypeError, ValueError):
            raise QueryError(f"query {type(query).__name__} is not numeric; expected {expected}") from None
        if vector.shape != (self.dimension,):
            raise QueryError(f"query {type(query).__name__} of shape {vector.shape}; expected {expected}")
        if not np.isfinite(vector).all():
            raise QueryError("the query vector holds NaN or inf; give finite numbers")
        return vector

    def _exact(self, vector: np.ndarray, k: int, exclude: int | None) -> list[tuple[Any, float]]:
        norm = np.linalg.norm(vector)
        scores = self._unit @ (vector / (norm if norm > 0 else 1))
        if exclude is not None:
            scores[exclude] = -np.inf
        k = min(k, len(scores) - (exclude is not None))
        best = np.argpartition(-scores, k - 1)[:k] if k > 0 else np.zeros(0, int)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in best.tolist()]

    def to_keyed_vectors(self) -> Any:
        """The vectors as gensim KeyedVectors keyed by item id (what ``vectors.kv`` holds)."""
        from eges.train.gensim_ref import keyed_vectors

        return keyed_vectors(list(self.ids), self.vectors.copy())

    # ------------------------------------------------------------------------------------ what else the run holds
    def slots(self) -> tuple[pa.Array, np.ndarray, int] | None:
        """(item ids, their export slots, the next free slot) from the training state, or None (a run from before
        state files). A warm-started run keeps its parent's slots: see :mod:`eges.update.warm`."""
        import json

        from eges.layout import STATE_KEY
        from eges.methods import METHODS

        rel = METHODS[self.method].state
        if not rel or not self.vouched(rel):
            return None
        if "slot" not in pq.read_schema(self.out / rel).names:
            return None
        state = pq.read_table(self.out / rel, columns=["item_id", "slot"])
        meta = json.loads((state.schema.metadata or {}).get(STATE_KEY, b"{}"))
        return state["item_id"].combine_chunks(), state["slot"].to_numpy(), int(meta.get("next_slot", state.num_rows))

    def nodes(self) -> pa.Table:
        """The graph's vocabulary (item_id, item_index) in item-index order."""
        if not self.vouched(NODES):
            raise EgesError(f"{self.out} holds no recorded item graph ({NODES}); run `{self.rerun_command}` first")
        return pq.read_table(self.out / NODES, columns=["item_id", "item_index"]).sort_by("item_index")

    @cached_property
    def catalog(self) -> Any:
        """The run's item catalog as pandas indexed by item id, or None (no catalog, or it is gone)."""
        from eges.pipeline.side_info_stage import catalog_by_id

        items = self.inputs.items
        if not items or not Path(items).exists():
            return None
        return catalog_by_id(items, self.config.side_info.id_col)

    def _fresh(self, relative: str) -> Path | None:
        """``relative`` if the manifest vouches for it and it was computed from this run's vectors."""
        from eges.pipeline.io import fingerprint
        from eges.pipeline.recall_stage import read_provenance

        if not self.vouched(relative) or self.vectors_file is None:
            return None
        path = self.out / relative
        prov = read_provenance(path)
        if prov is not None and prov.get("vectors_digest") != fingerprint(
                self.vectors_file, self.recorded(str(self.vectors_file.relative_to(self.out))))["digest"]:
            return None  # computed from other vectors (an earlier method or training)
        return path

    @cached_property
    def neighbours(self) -> Any:
        """The neighbours table as pandas (item_id, neighbours, scores), or None when absent or stale."""
        path = self._fresh(NEIGHBOURS)
        return pq.read_table(path).to_pandas() if path is not None else None

    @cached_property
    def neighbours_by_item(self) -> dict[Hashable, tuple[list[Any], list[float]]] | None:
        path = self._fresh(NEIGHBOURS)
        if path is None:
            return None
        table = pq.read_table(path, columns=["item_id", "neighbours", "scores"])
        found = {}
        for item, near, scores in zip(*(table[c].to_pylist() for c in ("item_id", "neighbours", "scores"))):
            keep = [j for j, n in enumerate(near) if n is not None]  # an approximate index may find fewer
            found[item] = ([near[j] for j in keep], [float(scores[j]) for j in keep])
        return found

    @cached_property
    def users(self) -> tuple[list[Any], np.ndarray] | None:
        """(user ids as plain Python values, float32 matrix) of the user vectors, or None when absent or stale."""
        path = self._fresh(USERS)
        if path is None:
            return None
        table = pq.read_table(path, columns=["user_id", "vector"])
        return table["user_id"].to_pylist(), _matrix(table["vector"])

    def user_vector(self, user: Any) -> np.ndarray:
        if self.users is None:
            raise EgesError(f"{self.out} has no user vectors for these item vectors (run `{self.rerun_command}`)")
        ids, matrix = self.users
        key = plain(user)
        row = next((i for i, u in enumerate(ids) if u == key), None)
        if row is None:
            raise UnknownItem(f"user {key!r} has no vector in this run")
        return matrix[row]

    def selection(self) -> tuple[dict[str, Any], Any] | None:
        """What the validate stage chose (the selection document) and its curve (pandas: method, epoch and the
        figures per pass), or None when this run did not validate."""
        import json

        from eges.layout import SELECTION, VALIDATION_CURVE

        if not (self.vouched(SELECTION) and self.vouched(VALIDATION_CURVE)):
            return None
        return json.loads((self.out / SELECTION).read_text()), pq.read_table(self.out / VALIDATION_CURVE).to_pandas()

    def attention(self) -> Any:
        """The per-item attention weights (pandas: item_id and one column per field), or None."""
        return pq.read_table(self.out / ATTENTION).to_pandas() if self.vouched(ATTENTION) else None


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    col = column.combine_chunks()
    return col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size).astype(np.float32, copy=False)


def load(out: str | Path, method: str | None = None) -> Run:
    """Open the run in folder ``out``: its method's item vectors (or ``method``'s, when the run trained several).

    Raises:
        EgesError: ``out`` holds no run, no vectors for the method, or vectors the manifest does not record.
    """
    run = Run(out, method)
    run.require_vectors()
    run.vectors  # noqa: B018  (read now: a broken file is an error here, not at the first query)
    return run
