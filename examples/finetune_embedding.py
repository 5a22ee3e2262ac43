"""From an eges run to a fine-tuned PyTorch embedding layer, the loop a ranking or recall engineer runs next.

    eges run --events data/events.parquet --items data/items.parquet --out out/sample
    python examples/finetune_embedding.py out/sample [--steps 200]

1. ``eges.load`` opens the run: item ids in their own type, the matrix, the method that made it.
2. An explicit id-to-row map with row 0 reserved for padding and unknown items (zeros, never updated).
3. ``nn.Embedding`` initialised from the vectors, fine-tuned for a few steps on next-item pairs read from the
   run's ``sessions/sessions.parquet`` (in-batch negatives: each pair's other targets in the batch are its negatives).

CPU only, seconds on the sample. PyTorch is needed for this example only (``pip install torch``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

try:
    import torch
    from torch import nn
except ImportError:  # the example's only extra dependency: say so in one line
    sys.exit("this example needs PyTorch: pip install 'eges[example]' (make test installs it too)")

import eges
from eges.sessions.clean import predecessors

PAD = 0


def id_to_row(ids: list) -> dict:
    """Item id -> embedding row; row 0 is padding/unknown, so ``row_of.get(item, PAD)`` never fails."""
    return {item: row + 1 for row, item in enumerate(ids)}


def embedding_layer(vectors: np.ndarray) -> nn.Embedding:
    weights = np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors])
    return nn.Embedding.from_pretrained(torch.from_numpy(weights), freeze=False, padding_idx=PAD)


def next_item_pairs(out: Path, row_of: dict) -> torch.Tensor:
    """(previous item row, next item row) for every transition of the run's sessions, as embedding rows."""
    sessions = pq.read_table(out / "sessions" / "sessions.parquet", columns=["position", "item_index"])
    vocab = pq.read_table(out / "sessions" / "items.parquet", columns=["item_id", "item_index"]).sort_by("item_index")
    index_to_row = np.array([row_of.get(i, PAD) for i in vocab["item_id"].to_pylist()], dtype=np.int64)
    item = sessions["item_index"].to_numpy()
    prev = predecessors(item, sessions["position"].to_numpy())
    keep = prev >= 0
    pairs = np.stack([index_to_row[prev[keep]], index_to_row[item[keep]]], axis=1)
    return torch.from_numpy(pairs[(pairs != PAD).all(axis=1)])


def finetune(out: str | Path, steps: int = 200, batch: int = 512, lr: float = 1e-3, seed: int = 0) -> dict:
    """Fine-tune the run's item embeddings on next-item pairs; returns what happened (losses, shapes)."""
    torch.manual_seed(seed)
    out = Path(out)
    run = eges.load(out)
    row_of = id_to_row(run.ids)
    layer = embedding_layer(run.vectors)
    pairs = next_item_pairs(out, row_of)
    optimiser = torch.optim.Adam(layer.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    held_out = pairs[torch.randint(len(pairs), (batch,), generator=torch.Generator().manual_seed(seed + 1))]

    def loss_on(sample: torch.Tensor) -> torch.Tensor:
        source, target = layer(sample[:, 0]), layer(sample[:, 1])
        logits = nn.functional.normalize(source, dim=1) @ nn.functional.normalize(target, dim=1).T / 0.1
        return nn.functional.cross_entropy(logits, torch.arange(len(sample)))

    with torch.no_grad():
        before = float(loss_on(held_out))
    losses = []
    for _ in range(steps):
        loss = loss_on(pairs[torch.randint(len(pairs), (batch,), generator=generator)])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        after = float(loss_on(held_out))
    return {"method": run.method, "rows": layer.weight.shape[0], "pairs": len(pairs), "losses": losses,
            "held_out_loss": (before, after),
            "padding_row_norm": float(layer.weight[PAD].detach().norm()),
            "unknown_item_row": row_of.get("not-an-item", PAD)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="out/sample")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    result = finetune(args.out, steps=args.steps)
    before, after = result["held_out_loss"]
    print(f"{result['method']} vectors -> nn.Embedding({result['rows']}, ...), row 0 padding/unknown; "
          f"{result['pairs']:,} next-item pairs; in-batch softmax loss on a fixed batch {before:.3f} -> {after:.3f} "
          f"after {args.steps} steps")


if __name__ == "__main__":
    main()
