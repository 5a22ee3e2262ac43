"""The stages as plain functions on in-memory tables and arrays: no files touched.

Example::

    sessions, vocab, report = sessionize(events_df)
    graph = build_graph(sessions, n_items=vocab.num_rows)
    walks = random_walks(graph)
    kv = train_skipgram(walks)          # KeyedVectors keyed by item index (native trainer)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from eges.config import Config, GraphConfig, TrainConfig, WalksConfig, default_config
from eges.duck import duckdb_table
from eges.graph.csr import CSRGraph
from eges.sessions.clean import SessionsReport, index_items, sessionize_stream, vocabulary_sql


def sessionize(events: Any, config: Config | None = None) -> tuple[pa.Table, pa.Table, SessionsReport]:
    """Clean a pandas DataFrame or Arrow table of events and cut it into sessions.

    Returns:
        (sessions, vocabulary, report): sessions has user_id, session, position, item_index, ts (ms);
        the vocabulary has item_id, item_index, count.
    """
    from eges.duck import connect
    from eges.sessions.events import register_events

    config = config or default_config()
    report = SessionsReport()
    con = connect(config.engine)
    try:
        source = register_events(con, events, config.sessions)
        report.timestamp_unit = source.timestamp_unit
        parts = list(sessionize_stream(con, source.view, config.sessions, has_behaviour=source.has_behaviour,
                                       has_dwell=source.has_dwell, report=report))
        report.check_not_empty(config.sessions)
        kept = pa.concat_tables(parts)
        con.register("eges_kept_mem", kept)
        vocab = duckdb_table(con, vocabulary_sql("eges_kept_mem"))
    finally:
        con.close()
    report.items_out = vocab.num_rows
    return index_items(kept, vocab.column("item_id")), vocab, report


def build_graph(sessions: Any, n_items: int, config: GraphConfig | None = None) -> CSRGraph:
    """The transition graph of sessions (user_id, session, position, item_index) as CSR arrays."""
    from eges.graph.transitions import count_transitions

    cfg = config or GraphConfig()
    if not isinstance(sessions, pa.Table):
        sessions = pa.Table.from_pandas(sessions, preserve_index=False)
    sessions = sessions.sort_by([("user_id", "ascending"), ("session", "ascending"), ("position", "ascending")])
    items = sessions.column("item_index").to_numpy()
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"item_index must lie in [0, {n_items})")
    position = sessions.column("position").to_numpy().astype(np.int32, copy=False)
    indptr, indices, weights = count_transitions(items.astype(np.int32, copy=False), position, n_items,
                                                 cfg.undirected, float(cfg.min_edge_weight))
    return CSRGraph(indptr, indices, weights)


def random_walks(graph: CSRGraph, config: WalksConfig | None = None) -> np.ndarray:
    """Weighted random walks as an int32 matrix (one walk per row, -1 after a dangling node)."""
    from eges.walks.generate import random_walks_array

    return random_walks_array(graph, config or WalksConfig())


def train_side_info(walks: np.ndarray, node_ids: list[Any], catalog: Any, config: Config | None = None,
                    method: str = "auto") -> Any:
    """GES or EGES from a padded walk matrix over ``node_ids`` and a catalog (pandas) with side information
    (``method`` auto: what ``train.method = auto`` picks with a catalog).

    Returns :class:`eges.side_info.fit.SideInfoEmbeddings` (item ids, vectors, source, value vectors,
    attention weights), using the ``[side_info]`` and ``[train]`` settings of ``config``.
    """
    from eges.methods import resolve
    from eges.side_info.fit import fit_side_info
    from eges.walks.generate import flatten_walks

    method = resolve(method, has_catalog=True).name
    config = config or default_config()
    scfg = config.side_info
    fields = list(scfg.fields) or [c for c in catalog.columns if c != scfg.id_col]
    values, offsets = flatten_walks(walks)
    counts = np.bincount(values, minlength=len(node_ids))
    return fit_side_info(lambda: iter([(values, offsets)]), counts, list(node_ids), catalog, scfg.id_col, fields,
                         scfg.numeric_buckets, config.train, method, numeric=scfg.numeric)


def train_skipgram(walks: np.ndarray, config: TrainConfig | None = None, progress: bool | None = None) -> Any:
    """BGE vectors from a padded walk matrix on eges' own trainer (the one every method and baseline uses): gensim
    KeyedVectors keyed by node index, for the nodes some walk visits.

    ``progress``: a progress bar of training tokens on stderr; None shows it when stderr is a terminal.
    """
    import sys

    from eges.train.gensim_ref import keyed_vectors
    from eges.train.stream import compile_kernel, native_skipgram, resolve_epochs
    from eges.walks.generate import flatten_walks

    values, offsets = flatten_walks(walks)
    n_nodes = int(values.max()) + 1 if len(values) else 0
    counts = np.bincount(values, minlength=n_nodes)
    cfg = resolve_epochs(config or TrainConfig(), int(counts.sum()))
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        index, vectors = native_skipgram(lambda: iter([(values, offsets)]), counts, n_nodes, cfg)
        return keyed_vectors(index.tolist(), vectors)
    from tqdm.auto import tqdm

    compile_kernel()  # before the bar: its rate and ETA are training's
    with tqdm(total=int(counts.sum()) * cfg.epochs, unit="token", unit_scale=True, desc="skipgram",
              leave=False) as bar:
        index, vectors = native_skipgram(lambda: iter([(values, offsets)]), counts, n_nodes, cfg,
                                         on_tokens=bar.update)
    return keyed_vectors(index.tolist(), vectors)
