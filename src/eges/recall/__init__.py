"""Putting vectors to work: nearest-neighbour tables for item-to-item recall."""

from __future__ import annotations

from eges.recall.neighbours import top_k

__all__ = ["top_k"]
