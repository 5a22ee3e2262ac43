"""Side information (paper, section 2.3): encoding the catalog, GES/EGES training, cold-start vectors."""

from __future__ import annotations

from eges.side_info.encode import SideInfo, encode
from eges.side_info.train import EgesModel, behaviour_vectors, cold_start_vectors, train

__all__ = ["EgesModel", "SideInfo", "behaviour_vectors", "cold_start_vectors", "encode", "train"]
