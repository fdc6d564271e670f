"""Graph construction in plain torch (no torch-cluster / pyg-lib)."""
from __future__ import annotations

import torch

__all__ = ["fully_connected_edge_index"]


def fully_connected_edge_index(n: int, device: torch.device | None = None) -> torch.Tensor:
    """Edges ``(i, j)`` for all ``i != j`` among ``n`` nodes, shape ``(2, n * (n - 1))``.

    Row 0 holds the receiving node ``i`` (messages are aggregated there), row 1 the sender.
    """
    idx = torch.arange(n, device=device)
    row = idx.repeat_interleave(n)
    col = idx.repeat(n)
    keep = row != col
    return torch.stack([row[keep], col[keep]])
