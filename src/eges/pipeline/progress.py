"""Progress bars for the stages: a tqdm bar on a terminal, nothing under ``--quiet`` or into a pipe or file."""

from __future__ import annotations

import sys
from typing import Any


class NoProgress:
    """What :func:`progress` gives under --quiet: not even importing tqdm, whose import lands in the stage's time."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


def progress(ctx: Any, total: int | None, unit: str, desc: str) -> Any:
    """A tqdm bar on a terminal; nothing under --quiet or when stderr is a pipe or file (a log fills with
    carriage returns otherwise)."""
    if not ctx.progress or not sys.stderr.isatty():
        return NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, leave=False)
