"""Skip-gram training on walks: BGE via gensim."""

from __future__ import annotations

from eges.skipgram.bge import WalkCorpus, train_bge, vectors_by_index

__all__ = ["WalkCorpus", "train_bge", "vectors_by_index"]
