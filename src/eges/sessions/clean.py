"""Cleaning an event log and cutting it into sessions.

Relational steps run in DuckDB: counting each user's clicks and purchases, filtering, and one sort of
the surviving events by (user, time). DuckDB runs them on all cores and spills to disk under a memory
cap. The sequential step (gaps, repeats, session numbers) then runs vectorised over the sorted stream
in NumPy/Arrow batches, each holding whole users, so one sort serves everything, memory stays bounded,
and the sessions come out already in (user, session, position) order, where nested SQL window functions
would sort once each (docs/benchmarks.md).

The raw-events view must have the columns ``user_id``, ``item_id``, ``ts`` (BIGINT milliseconds),
``behaviour`` (VARCHAR, may be NULL) and ``dwell`` (DOUBLE seconds, may be NULL); see
:func:`eges.sessions.events.open_events`. Nothing here touches files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eges.config import SessionsConfig
from eges.duck import duckdb_batches
from eges.errors import InputError
from eges.sessions.kernels import cut_sessions

#: The order events are cut into sessions in: by user, then time, and ties in time in the input's own order
#: (``seq``, the row number in the file), never by item id, which would invent transitions. Every engine uses it.
EVENT_ORDER = "e.user_id, e.ts, e.seq"


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")" if values else "(NULL)"


@dataclass
class SessionsReport:
    """What cleaning dropped and why, with counts; it goes into the manifest and the stage log line."""

    events_in: int = 0
    spam_users: int = 0
    spam_events: int = 0
    behaviour_dropped: int = 0
    short_dwell_dropped: int = 0
    repeats_collapsed: int = 0
    short_sessions_dropped: int = 0
    short_session_events_dropped: int = 0
    events_out: int = 0
    sessions_out: int = 0
    users_out: int = 0
    items_out: int = 0
    timestamp_unit: str = ""  # the unit the time column was read in (s, ms, us, ns or timestamp)
    columns_recognised: dict[str, str] = field(default_factory=dict)  # role -> column found under a common name

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self, engine: str = "") -> str:
        """The sessions stage's log line, the same words on every engine (``engine`` prefixes it)."""
        found = "".join(f"{role} column {col!r} (no {role}_col column), "
                        for role, col in self.columns_recognised.items())
        return (f"{engine + ': ' if engine else ''}{found}times read in {self.timestamp_unit}; "
                f"{self.sessions_out:,} sessions, {self.users_out:,} users, {self.items_out:,} items; dropped "
                f"{self.spam_events:,} events of {self.spam_users:,} over-active users, {self.behaviour_dropped:,} "
                f"by behaviour, {self.short_dwell_dropped:,} with short dwell, {self.repeats_collapsed:,} repeats, "
                f"{self.short_session_events_dropped:,} in {self.short_sessions_dropped:,} short sessions")

    def check_not_empty(self, cfg: SessionsConfig) -> None:
        if self.events_out == 0:
            raise InputError(
                "no events are left after cleaning "
                f"({self.events_in} in; {self.spam_events} from {self.spam_users} over-active users, "
                f"{self.behaviour_dropped} by behaviour type, {self.short_dwell_dropped} with short dwell, "
                f"{self.short_session_events_dropped} in sessions shorter than {cfg.min_session_length}); "
                "check the sessions settings")


def cleaning_predicates(cfg: SessionsConfig, *, has_behaviour: bool, has_dwell: bool) -> dict[str, str]:
    """The cleaning rules as SQL predicates over (behaviour, dwell), valid in DuckDB and Spark SQL alike, so a rule
    changes in one place for both engines: ``clicks`` and ``purchases`` (what counts toward the over-active
    limits), ``keep_beh`` (behaviour types kept) and ``dwell_ok`` (long enough dwell)."""
    keep_beh = "TRUE"
    if has_behaviour and cfg.keep_behaviours:
        keep_beh = f"behaviour IN {_sql_list(cfg.keep_behaviours)}"
    return {
        "clicks": "TRUE" if not has_behaviour else f"behaviour IN {_sql_list(cfg.click_behaviours)}",
        "purchases": "FALSE" if not has_behaviour else f"behaviour IN {_sql_list(cfg.purchase_behaviours)}",
        "keep_beh": keep_beh,
        "dwell_ok": f"(dwell IS NULL OR dwell >= {float(cfg.min_dwell_seconds)!r})" if has_dwell else "TRUE",
    }


def user_counts(cfg: SessionsConfig, rules: dict[str, str], over: str = "") -> dict[str, str]:
    """Per user, as SQL aggregates (DuckDB and Spark SQL alike): ``n`` events, ``spam`` (clicks or purchases above
    the limits: over-active) and ``beh_drop`` (events of a type not kept). ``over`` (`` OVER w``) makes them
    window aggregates, for an engine that keeps each event beside its user's counts (Spark: no join back)."""
    def count_if(predicate: str) -> str:
        return f"count(CASE WHEN {predicate} THEN 1 END){over}"

    keep_beh = rules["keep_beh"]
    return {"n": f"count(*){over}",
            "spam": f"({count_if(rules['clicks'])} > {int(cfg.max_user_clicks)} "
                    f"OR {count_if(rules['purchases'])} > {int(cfg.max_user_purchases)})",
            "beh_drop": "0" if keep_beh == "TRUE" else count_if(f"NOT ({keep_beh})")}


def users_sql(events_view: str, cfg: SessionsConfig, rules: dict[str, str]) -> str:
    """Per user: events, whether over-active (clicks or purchases above the limits), events of dropped types."""
    counts = user_counts(cfg, rules)
    return f"""
        SELECT user_id, {", ".join(f"{expr} AS {name}" for name, expr in counts.items())}
        FROM {events_view} GROUP BY user_id
    """


def filter_events_sql(con: Any, events_view: str, cfg: SessionsConfig, *, has_behaviour: bool,
                      has_dwell: bool, report: SessionsReport) -> str:
    """Find over-active users; return a query of the other users' kept events sorted by (user, time).

    Fills the counts of ``report`` that one pass over the log gives (events in, spam users and their events,
    events of a behaviour type not kept); events dropped for short dwell are the rest, counted from the
    sorted stream by :func:`sessionize_stream`, so the per-user pass never looks at the dwell column.
    """
    rules = cleaning_predicates(cfg, has_behaviour=has_behaviour, has_dwell=has_dwell)
    keep_beh, dwell_ok = rules["keep_beh"], rules["dwell_ok"]
    con.execute(f"CREATE OR REPLACE TEMP TABLE eges_users AS {users_sql(events_view, cfg, rules)}")
    totals = con.execute("""
        SELECT sum(n), count(*) FILTER (WHERE spam), coalesce(sum(n) FILTER (WHERE spam), 0),
               coalesce(sum(beh_drop) FILTER (WHERE NOT spam), 0)
        FROM eges_users""").fetchall()[0]
    report.events_in, report.spam_users, report.spam_events, report.behaviour_dropped = (int(x or 0) for x in totals)
    con.execute("CREATE OR REPLACE TEMP TABLE eges_spam AS SELECT user_id FROM eges_users WHERE spam")
    kept = f"{events_view} e ANTI JOIN eges_spam s ON e.user_id = s.user_id"
    return (f"SELECT e.user_id, e.item_id, e.ts FROM {kept} WHERE ({keep_beh}) AND {dwell_ok} "
            f"ORDER BY {EVENT_ORDER}")


def sessionize_stream(con: Any, events_view: str, cfg: SessionsConfig, *, has_behaviour: bool, has_dwell: bool,
                      report: SessionsReport, batch_rows: int = 1_000_000) -> Iterator[pa.Table]:
    """Sessions as a stream of tables (user_id, session, position, item_id, ts) in sorted order.

    ``report`` is filled in as the stream is consumed (all but ``items_out``).
    """
    query = filter_events_sql(con, events_view, cfg, has_behaviour=has_behaviour, has_dwell=has_dwell,
                              report=report)
    sorted_rows = 0

    def counted(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        nonlocal sorted_rows
        for batch in batches:
            sorted_rows += batch.num_rows
            yield batch

    for table in SessionCutter(cfg, report)(counted(duckdb_batches(con, query, batch_rows))):
        report.events_out += table.num_rows
        yield table
    # Every event of a non-spam user with a kept behaviour type that the sort did not stream had short dwell.
    report.short_dwell_dropped = report.events_in - report.spam_events - report.behaviour_dropped - sorted_rows


def gather_batches(batches: Iterable[pa.RecordBatch | pa.Table], rows: int) -> Iterator[pa.Table]:
    """Group small record batches into tables of at least ``rows`` rows (fewer, larger steps and row groups)."""
    pending: list[pa.Table] = []
    size = 0
    for batch in batches:
        pending.append(batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch]))
        size += pending[-1].num_rows
        if size >= rows:
            yield pa.concat_tables(pending)
            pending, size = [], 0
    if pending:
        yield pa.concat_tables(pending)


def _changes(arr: pa.Array) -> np.ndarray:
    """Boolean array: True where ``arr[i] != arr[i-1]`` (and at 0); works for any Arrow type."""
    n = len(arr)
    out = np.ones(n, dtype=bool)
    if n > 1:
        if (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)) and arr.null_count == 0:
            values = arr.to_numpy()  # zero-copy; NumPy compares integers faster than Arrow compute
            np.not_equal(values[1:], values[:-1], out=out[1:])
        else:
            out[1:] = pc.not_equal(arr.slice(1), arr.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return out


@dataclass
class SessionCutter:
    """Cuts a stream of events sorted by (user, ts, item) into sessions, batch by batch.

    Each batch is processed only up to its last user, whose rows are carried into the next batch,
    so every user is handled whole and no session straddles two batches.
    """

    cfg: SessionsConfig
    report: SessionsReport
    min_rows: int = 1_000_000
    _carry: pa.Table | None = field(default=None, repr=False)

    def __call__(self, batches: Iterable[pa.RecordBatch | pa.Table]) -> Iterator[pa.Table]:
        for table in gather_batches(batches, self.min_rows):
            if self._carry is not None:
                table = pa.concat_tables([self._carry, table])
            if table.num_rows == 0:
                continue
            users = table.column("user_id").combine_chunks()
            new_user = _changes(users)
            cut = int(np.flatnonzero(new_user)[-1])  # the last user may continue in the next batch
            self._carry = table.slice(cut)
            if cut:
                yield self._cut(table.slice(0, cut), users.slice(0, cut), new_user[:cut])
        if self._carry is not None and self._carry.num_rows:
            users = self._carry.column("user_id").combine_chunks()
            yield self._cut(self._carry, users, _changes(users))
        self._carry = None

    def _cut(self, table: pa.Table, users: pa.Array, new_user: np.ndarray) -> pa.Table:
        cfg = self.cfg
        items = table.column("item_id").combine_chunks()
        ts = table.column("ts").to_numpy()
        keep, session, position, counts = cut_sessions(
            new_user, _changes(items), ts, int(round(cfg.session_gap_seconds * 1000)),
            cfg.collapse_repeats, cfg.min_session_length)
        self.report.repeats_collapsed += int(counts[0])
        self.report.short_sessions_dropped += int(counts[1])
        self.report.short_session_events_dropped += int(counts[2])
        self.report.sessions_out += int(counts[3])
        self.report.users_out += int(counts[4])
        return pa.table({
            "user_id": _select(users, keep),
            "session": pa.array(session),
            "position": pa.array(position),
            "item_id": _select(items, keep),
            "ts": pa.array(ts[keep]),
        })


def _select(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    """Rows of ``arr`` where ``mask`` is true (NumPy for plain numbers, Arrow for everything else)."""
    if (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)) and arr.null_count == 0:
        return pa.array(arr.to_numpy()[mask])
    return arr.filter(pa.array(mask))


def vocabulary_sql(sessions_source: str) -> str:
    """Item vocabulary over kept sessions: item_id, item_index (most frequent first), count."""
    return f"""
        SELECT item_id, CAST(row_number() OVER (ORDER BY count(*) DESC, item_id) - 1 AS INTEGER) AS item_index,
               count(*) AS count
        FROM {sessions_source} GROUP BY item_id ORDER BY item_index
    """


def index_items(table: pa.Table, vocab_ids: pa.Array) -> pa.Table:
    """Replace item_id by its item_index in ``vocab_ids`` (whose position is the index)."""
    index = pc.index_in(table.column("item_id"), value_set=vocab_ids).cast(pa.int32())
    return pa.table({"user_id": table.column("user_id"), "session": table.column("session"),
                     "position": table.column("position"), "item_index": index, "ts": table.column("ts")})


def predecessors(items: np.ndarray, position: np.ndarray) -> np.ndarray:
    """For rows in (session, position) order: the previous row's item, or -1 where position is 0.

    Sessions files do not store it (it is the row before whenever position > 0); SQL readers get it with
    ``lag(item_index) OVER (PARTITION BY user_id, session ORDER BY position)``.
    """
    prev = np.full(len(items), -1, dtype=np.int64)
    if len(items):
        prev[1:] = items[:-1]
        prev[np.asarray(position) == 0] = -1
    return prev


def user_starts(users: pa.Array) -> np.ndarray:
    """First row of each user in rows sorted by user."""
    return np.flatnonzero(_changes(users))
