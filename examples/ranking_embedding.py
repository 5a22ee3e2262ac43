"""Initialise a ranking model's item embedding layer from an eges export (PyTorch; Keras in docs/exports.md).

    eges run --events data/events.parquet --items data/items.parquet --out out/sample
    eges export --out out/sample --format npy --to out/sample/export/npy    # the command `eges run` prints
    python examples/ranking_embedding.py          # reads out/sample/export/npy; or give the export folder

PyTorch is needed for this example only; eges itself does not depend on it. Row 0 of the matrix is the
padding/unknown row (zeros; PyTorch ``padding_idx=0``, Keras ``mask_zero=True``), item index i is row i + 1 and
cold-start items follow; the vocabulary gives each item's row, and unknown items map to row 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

try:
    import torch
    from torch import nn
except ImportError:  # the example's only extra dependency: say so in one line
    sys.exit("this example needs PyTorch: pip install 'eges[example]' (make test installs it too)")


class TwoTower(nn.Module):
    """A minimal ranking model: a user's recent items (mean of their embeddings) scored against a candidate."""

    def __init__(self, matrix: np.ndarray, padding_row: int, freeze: bool = False):
        super().__init__()
        self.items = nn.Embedding.from_pretrained(torch.from_numpy(matrix), freeze=freeze, padding_idx=padding_row)
        self.padding_row = padding_row

    def forward(self, history: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        mask = (history != self.padding_row).unsqueeze(-1).float()
        user = (self.items(history) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return (user * self.items(candidate)).sum(-1)


#: Where the export command that ``eges run`` prints for the demo writes (``make demo``: out/sample).
DEFAULT_EXPORT = "out/sample/export/npy"


def main(export_dir: str = DEFAULT_EXPORT) -> None:
    folder = Path(export_dir)
    if not (folder / "export.json").is_file():
        sys.exit(f"{folder} holds no eges npy export; run: eges export --out out/sample --format npy --to {folder}")
    info = json.loads((folder / "export.json").read_text())
    matrix = np.load(folder / "embeddings.npy")
    vocab = pq.read_table(folder / "vocabulary.parquet").to_pandas()
    row_of = dict(zip(vocab["item_id"], vocab["row"]))  # raw item id -> row (from 1); unknown ids -> row 0
    model = TwoTower(matrix, info["padding_row"])
    ids = vocab["item_id"].dropna().tolist()
    history = torch.tensor([[row_of.get(i, info["padding_row"]) for i in ids[:5]] + [info["padding_row"]] * 3])
    scores = model(history.repeat(3, 1), torch.tensor([row_of[ids[0]], row_of[ids[100]], info["padding_row"]]))
    assert torch.allclose(model.items.weight[row_of[ids[0]]], torch.from_numpy(matrix[row_of[ids[0]]]))
    print(f"embedding layer {tuple(model.items.weight.shape)} from {folder}; scores {scores.tolist()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_EXPORT)
