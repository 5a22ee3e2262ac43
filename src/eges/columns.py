"""Finding the columns a user meant: common names recognised when the configured one is absent, and errors that
suggest the ``--set`` that fixes a name.

A column is recognised only when the configured name is the default (the user did not choose it), the default is
absent, and exactly one of the common names for that role is present (case-insensitive): a guess among several
candidates, or over a name the user chose, would be a silent wrong answer.
"""

from __future__ import annotations

import difflib

from eges.errors import InputError

#: Common names per role, in the order they are preferred.
COMMON = {
    "user": ("user_id", "userid", "user", "visitorid", "visitor_id", "customer_id", "customerid", "uid", "member_id"),
    "item": ("item_id", "itemid", "item", "product_id", "productid", "sku", "article_id", "asin", "goods_id"),
    "time": ("timestamp", "ts", "time", "event_time", "datetime", "event_timestamp", "created_at", "time_stamp",
             "unix_time"),
}


def resolve(columns: list[str], role: str, configured: str, default: str, key: str, where: str) -> tuple[str, bool]:
    """The column to use for ``role`` and whether it was recognised rather than configured.

    Raises:
        InputError: the column is absent and cannot be recognised; the message suggests ``--set key=...``.
    """
    if configured in columns:
        return configured, False
    if configured == default:
        lowered = {c.lower(): c for c in columns}
        found = [lowered[name] for name in COMMON.get(role, ()) if name in lowered]
        if len(found) == 1:
            return found[0], True
    raise InputError(missing_message(columns, configured, key, where, role))


def missing_message(columns: list[str], configured: str, key: str, where: str, role: str | None = None) -> str:
    """``has no column 'x'; its columns are ...; did you mean --set key=y``."""
    lowered = {c.lower(): c for c in columns}
    candidates = [lowered[n] for n in COMMON.get(role or "", ()) if n in lowered]
    candidates += [c for c in difflib.get_close_matches(configured, columns, n=3, cutoff=0.5) if c not in candidates]
    hint = f"; did you mean --set {key}={candidates[0]}" if candidates else f"; set the column with --set {key}=NAME"
    if len(candidates) > 1:
        hint += f" (or {', '.join(candidates[1:])})"
    return f"{where} has no column {configured!r} ({key}); its columns are: {', '.join(columns)}{hint}"
