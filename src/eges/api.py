"""The stages as plain functions on in-memory tables and arrays: no files touched.

Example::

    sessions, vocab, report = sessionize(events_df)
    graph = build_graph(sessions, n_items=vocab.num_rows)
    walks = random_walks(graph)
    kv = train_skipgram(walks)          # KeyedVectors keyed by item index
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from eges.config import Config, GraphConfig, SkipgramConfig, WalksConfig, default_config
from eges.graph.csr import CSRGraph, from_edges
from eges.sessions.clean import SESSIONS_TABLE, VOCAB_TABLE, SessionsReport, sessionize_sql


def sessionize(events: Any, config: Config | None = None) -> tuple[pa.Table, pa.Table, SessionsReport]:
    """Clean a pandas DataFrame or Arrow table of events and cut it into sessions.

    Returns:
        (sessions, vocabulary, report): sessions has user_id, session, position, item_index, ts (ms);
        the vocabulary has item_id, item_index, count.
    """
    from eges.pipeline.io import connect, register_events

    config = config or default_config()
    con = connect(config.engine)
    source = register_events(con, events, config.sessions)
    report = sessionize_sql(con, source.view, config.sessions, has_behaviour=source.has_behaviour,
                            has_dwell=source.has_dwell)
    sessions = _table(con, f"SELECT * FROM {SESSIONS_TABLE} ORDER BY user_id, session, position")
    vocab = _table(con, f"SELECT * FROM {VOCAB_TABLE} ORDER BY item_index")
    con.close()
    return sessions, vocab, report


def _table(con: Any, query: str) -> pa.Table:
    """A DuckDB query's result as an Arrow table (DuckDB 2 renamed ``arrow()`` to ``to_arrow_table()``)."""
    rel = con.sql(query)
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fetch()


def build_graph(sessions: Any, n_items: int, config: GraphConfig | None = None) -> CSRGraph:
    """The transition graph of sessions (user_id, session, position, item_index) as CSR arrays."""
    import duckdb

    from eges.graph.transitions import EDGES_TABLE, transitions_sql

    cfg = config or GraphConfig()
    con = duckdb.connect(":memory:")
    con.register("eges_sessions_mem", sessions)
    transitions_sql(con, "eges_sessions_mem", cfg)
    edges = _table(con, f"SELECT * FROM {EDGES_TABLE}")
    con.close()
    return from_edges(edges["src"].to_numpy(), edges["dst"].to_numpy(), edges["weight"].to_numpy(), n_items)


def random_walks(graph: CSRGraph, config: WalksConfig | None = None) -> np.ndarray:
    """Weighted random walks as an int32 matrix (one walk per row, -1 after a dangling node)."""
    from eges.walks.generate import random_walks_array

    return random_walks_array(graph, config or WalksConfig())


def train_skipgram(walks: np.ndarray, config: SkipgramConfig | None = None) -> Any:
    """BGE vectors from a padded walk matrix: gensim KeyedVectors keyed by node index."""
    from eges.skipgram.bge import WalkCorpus, padded_batches, train_bge

    cfg = config or SkipgramConfig()
    values = walks[walks >= 0]
    counts = np.bincount(values, minlength=int(values.max()) + 1 if len(values) else 0)
    model = train_bge(WalkCorpus(padded_batches(walks)), counts, len(walks), cfg)
    return model.wv
