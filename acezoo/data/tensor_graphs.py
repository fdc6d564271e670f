"""A data set of equal-size graphs held as stacked tensors, with fast batching.

Items are ``torch_geometric.data.Data``; :meth:`GraphTensorDataset.collate` builds a
``Batch`` for a list of indices directly from the stacked tensors (no per-item objects),
which is what the trainer uses.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset
from torch_geometric.data import Batch, Data

__all__ = ["GraphTensorDataset"]


class GraphTensorDataset(Dataset):
    """``len(fields[k]) == n_graphs``; every graph has ``n_nodes`` nodes and the same edges.

    Args:
        node_fields: name -> tensor of shape ``(n_graphs, n_nodes, ...)``.
        edge_index: ``(2, E)`` edges of one graph.
    """

    def __init__(self, node_fields: dict[str, torch.Tensor], edge_index: torch.Tensor) -> None:
        sizes = {t.shape[:2] for t in node_fields.values()}
        if len(sizes) != 1:
            raise ValueError(f"node fields disagree on (n_graphs, n_nodes): {sizes}")
        (self.n_graphs, self.n_nodes), = sizes
        self.fields = node_fields
        self.edge_index = edge_index

    def __len__(self) -> int:
        return self.n_graphs

    def __getitem__(self, i: int) -> Data:
        return Data(edge_index=self.edge_index.clone(), **{k: t[i] for k, t in self.fields.items()})

    def collate(self, indices: Sequence[int] | torch.Tensor) -> Batch:
        """The ``Batch`` of the given graphs (same layout as ``Batch.from_data_list``)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        b, n = len(idx), self.n_nodes
        offsets = (torch.arange(b) * n).repeat_interleave(self.edge_index.shape[1])
        edge_index = self.edge_index.repeat(1, b) + offsets
        fields = {k: t[idx].reshape(b * n, *t.shape[2:]) for k, t in self.fields.items()}
        batch = Batch(
            edge_index=edge_index,
            batch=torch.arange(b).repeat_interleave(n),
            ptr=torch.arange(b + 1) * n,
            **fields,
        )
        batch._num_graphs = b
        return batch

    def to_dtype(self, dtype: torch.dtype) -> "GraphTensorDataset":
        """A copy whose floating-point fields have ``dtype``."""
        fields = {k: t.to(dtype) if t.is_floating_point() else t for k, t in self.fields.items()}
        return GraphTensorDataset(fields, self.edge_index)
