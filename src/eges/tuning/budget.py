"""The wall-clock budget of ``eges tune`` (``--budget 20m``): text to seconds, with a named error for bad text."""

from __future__ import annotations

import math
import re

from eges.errors import EgesError


class BudgetError(EgesError):
    """``--budget`` is not a duration such as 90s, 20m or 1h."""


_UNITS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
          "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
          "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
#: A budget below this cannot hold the preparation and one trial on any log; a week is surely a typo.
SHORTEST, LONGEST = 1.0, 7 * 24 * 3600.0


def parse_budget(text: str | float | int) -> float:
    """Seconds in ``text``: ``90s``, ``20m``, ``1h``, ``1h30m``, ``1.5h`` (a bare number is seconds)."""
    if isinstance(text, bool):
        raise BudgetError(f"--budget must be a duration such as 90s, 20m or 1h, got {text!r}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        raw = text.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            seconds = float(raw)
        else:
            parts = _PART.findall(raw)
            if not parts or "".join(f"{n}{u}" for n, u in parts) != raw or any(u not in _UNITS for _, u in parts):
                raise BudgetError(f"--budget must be a duration such as 90s, 20m, 1h or 1h30m, got {text!r}")
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or not SHORTEST <= seconds <= LONGEST:
        raise BudgetError(f"--budget must be between {SHORTEST:g} s and 7 days, got {text!r}")
    return seconds


def format_seconds(seconds: float) -> str:
    """``95.0`` -> ``1m35s``: how a budget is echoed back."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or hours else "") + (f"{secs}s" if secs else "")
