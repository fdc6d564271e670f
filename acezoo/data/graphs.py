"""Graph construction in plain torch (no torch-cluster / pyg-lib).

Every builder returns ``edge_index`` of shape ``(2, E)`` with row 0 the receiving node ``i``
(messages are aggregated there) and row 1 the sender ``j``, never a self-loop, and only
edges inside one graph of a batch. ``batch`` is PyG's node-to-graph vector; nodes of one
graph must be contiguous (as in every PyG ``Batch``).

The batched builders pad the batch to ``(graphs, max_nodes)`` and work on dense
``(graphs, max_nodes, max_nodes)`` blocks, so memory is ``O(sum_g n_g^2)``-ish rather than
``O(n^2)`` for the whole batch.
"""
from __future__ import annotations

import torch

__all__ = [
    "fully_connected_edge_index",
    "batch_fully_connected_edge_index",
    "radius_edge_index",
    "knn_edge_index",
]


def fully_connected_edge_index(n: int, device: torch.device | None = None) -> torch.Tensor:
    """Edges ``(i, j)`` for all ``i != j`` among ``n`` nodes, shape ``(2, n * (n - 1))``.

    Row 0 holds the receiving node ``i`` (messages are aggregated there), row 1 the sender.
    """
    idx = torch.arange(n, device=device)
    row = idx.repeat_interleave(n)
    col = idx.repeat(n)
    keep = row != col
    return torch.stack([row[keep], col[keep]])


def _dense_layout(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per node: its graph and its slot inside the graph; and the largest graph's size."""
    if batch.numel() == 0:
        return batch, batch, 0
    if batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("nodes of one graph must be contiguous in `batch` (as in a PyG Batch)")
    graphs = int(batch[-1]) + 1
    counts = torch.bincount(batch, minlength=graphs)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(batch.numel(), device=batch.device) - starts[batch]
    return batch, slot, int(counts.max())


def _pair_mask(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(graphs, m, m)`` mask of valid ordered pairs ``i != j`` and the node-index map."""
    graph, slot, m = _dense_layout(batch)
    graphs = int(graph[-1]) + 1 if graph.numel() else 0
    index = torch.full((graphs, m), -1, dtype=torch.long, device=batch.device)
    index[graph, slot] = torch.arange(batch.numel(), device=batch.device)
    valid = index >= 0
    mask = valid[:, :, None] & valid[:, None, :]
    mask &= ~torch.eye(m, dtype=torch.bool, device=batch.device)
    return mask, index, slot


def _dense_distances(pos: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mask, index, _ = _pair_mask(batch)
    dense = pos.new_zeros(*index.shape, pos.shape[-1])
    valid = index >= 0
    dense[valid] = pos[index[valid]]
    dist = torch.cdist(dense, dense)
    return dist, mask, index


def _edges_from_mask(keep: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    g, i, j = keep.nonzero(as_tuple=True)
    return torch.stack([index[g, i], index[g, j]])


def batch_fully_connected_edge_index(batch: torch.Tensor) -> torch.Tensor:
    """All ordered pairs ``i != j`` inside each graph of the batch."""
    mask, index, _ = _pair_mask(batch)
    return _edges_from_mask(mask, index)


def radius_edge_index(pos: torch.Tensor, batch: torch.Tensor, r: float) -> torch.Tensor:
    """Pairs ``i != j`` of the same graph with ``|x_i - x_j| <= r``."""
    if r <= 0:
        raise ValueError(f"radius must be > 0, got {r}")
    dist, mask, index = _dense_distances(pos.detach(), batch)
    return _edges_from_mask(mask & (dist <= r), index)


def knn_edge_index(pos: torch.Tensor, batch: torch.Tensor, k: int) -> torch.Tensor:
    """Each node ``i`` receives from its ``k`` nearest other nodes of the same graph
    (all of them when the graph has ``<= k`` other nodes)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    dist, mask, index = _dense_distances(pos.detach(), batch)
    m = dist.shape[-1]
    if m == 0:
        return torch.empty(2, 0, dtype=torch.long, device=pos.device)
    dist = dist.masked_fill(~mask, float("inf"))
    kk = min(k, m)
    nearest = dist.topk(kk, dim=-1, largest=False).indices  # (graphs, m, kk)
    keep = torch.zeros_like(mask)
    keep.scatter_(-1, nearest, True)
    return _edges_from_mask(keep & mask, index)
