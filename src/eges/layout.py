"""The output contract of a run folder: every path eges writes and the schemas a user may rely on.

One module at the bottom of the house (it imports only pyarrow): stages write these paths, and ``eges.load``, the
report, exports and evaluation read them, so a path or schema changes here and nowhere else.
"""

from __future__ import annotations

import pyarrow as pa

# --------------------------------------------------------------------------------------------- the run folder
MANIFEST = "manifest.json"
LOCK = ".eges.lock"
SPILL = ".spill"
REPORT = "report.html"
VARIANTS = "variants"  # eges evaluate --vary: one run folder per setting

# --------------------------------------------------------------------------------------------- stage outputs
SESSIONS = "sessions/sessions.parquet"
VOCAB = "sessions/items.parquet"
EDGES = "graph/edges.parquet"
NODES = "graph/nodes.parquet"
GRAPH_STATS = "graph/stats.json"
WALKS = "walks/walks.parquet"
BGE_VECTORS = "skipgram/vectors.parquet"
BGE_KEYED_VECTORS = "skipgram/vectors.kv"
EGES_VECTORS = "eges/vectors.parquet"
EGES_KEYED_VECTORS = "eges/vectors.kv"
SIDE_VECTORS = "eges/side_info_vectors.parquet"
ATTENTION = "eges/attention.parquet"
#: What a warm-started child run continues from (``eges run --warm-start``): per behaviour item its own row, context
#: row and attention logits, as the trainer holds them (side-information value rows are SIDE_VECTORS' raw rows).
BGE_STATE = "skipgram/state.parquet"
EGES_STATE = "eges/state.parquet"
NEIGHBOURS = "neighbours/neighbours.parquet"
FAISS_INDEX = "neighbours/index.faiss"
FAISS_IDS = "neighbours/index_ids.parquet"
USERS = "users/vectors.parquet"
#: The validate stage: what it chose (passes, method, why) and the validation figures of every pass per method.
SELECTION = "validation/selection.json"
VALIDATION_CURVE = "validation/curve.parquet"
#: Written only when the slice chose the undirected graph (validate.try_undirected): the whole log's walks over the
#: graph made undirected, which the training stages then read instead of WALKS (selection.json's "walks").
WALKS_UNDIRECTED = "validation/walks_undirected.parquet"
#: The drift of the run's vectors against its reference run (--align-to, else the --warm-start parent).
DRIFT = "drift/drift.json"

EVALUATION = "evaluation"
#: The whole log's sessions and graph, built once for the link and cold-start protocols.
EVALUATION_FULL = "evaluation/full"


#: eges tune: the table of trials and the best trial's settings as a TOML file for `eges run --config`.
TUNE = "tune"
TUNE_TRIALS = "tune/trials.parquet"
TUNE_BEST = "tune/best.toml"


def evaluation_dir(protocol: str) -> str:
    return f"{EVALUATION}/{protocol}"


def metrics_path(protocol: str) -> str:
    return f"{EVALUATION}/{protocol}/metrics.parquet"


def summary_path(protocol: str) -> str:
    return f"{EVALUATION}/{protocol}/summary.json"


# --------------------------------------------------------------------------------------------- schemas
WALKS_SCHEMA = pa.schema([pa.field("walk", pa.list_(pa.int32()), nullable=False)])
#: Integer columns of sessions.parquet written with delta encoding (see io.AtomicParquetWriter): sorted ids and
#: times, small counters, and item indices (most frequent first), for which delta beats zstd in time and size.
SESSIONS_DELTA = ("user_id", "session", "position", "item_index", "ts")
SESSIONS_TYPES = {"session": pa.int32(), "position": pa.int32(), "item_index": pa.int32(), "ts": pa.int64()}
METRICS_SCHEMA = pa.schema([("protocol", pa.string()), ("method", pa.string()), ("kind", pa.string()),
                            ("metric", pa.string()), ("k", pa.int32()), ("value", pa.float64()),
                            ("pairs", pa.int64()), ("coverage", pa.float64())])
CURVE_SCHEMA = pa.schema([("method", pa.string()), ("epoch", pa.int32()), ("loss", pa.float64()),
                          ("hitrate", pa.float64()), ("next_auc", pa.float64()), ("link_auc", pa.float64()),
                          ("cold_auc", pa.float64()), ("train_seconds", pa.float64()),
                          ("score_seconds", pa.float64()), ("centred", pa.bool_())])

#: Schema metadata of a state file (BGE_STATE, EGES_STATE): JSON with the method, dimension and side-information
#: fields the state was trained with, which a child run checks before it starts from it.
STATE_KEY = b"eges.state"

#: Parquet schema metadata key of neighbours and users outputs: which method's vectors they were computed from.
PROVENANCE_KEY = b"eges.provenance"
#: The marker every export carries: ``export.json`` in a folder export, Parquet schema metadata in a Parquet
#: export, a ``NAME.export.json`` file beside a word2vec export. Only a path holding eges' own export is replaced.
EXPORT_MARKER = "export.json"
EXPORT_MARKER_KEY = b"eges.export"
#: Schema metadata of the npy export's vocabulary: the matrix row reserved for padding and unknown items.
PADDING_KEY = b"eges.padding_row"
