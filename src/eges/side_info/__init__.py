"""Side information (paper, section 2.3): encoding the catalog, and placing cold-start items from it (``fit``).
Training lives in :mod:`eges.train`; this package's ``__init__`` imports only the encoding, so the trainer can use it
without an import loop."""

from __future__ import annotations

from eges.side_info.encode import SideInfo, encode

__all__ = ["SideInfo", "encode"]
