"""A data set of graphs of different sizes held as concatenated tensors, with fast batching.

Graph ``g`` owns the nodes ``node_offsets[g] : node_offsets[g + 1]`` of every node field
(shape ``(total_nodes, ...)``) and row ``g`` of every graph field (shape ``(n_graphs, ...)``).
Edges are not stored: :meth:`RaggedGraphDataset.collate` builds them for each batch, either
between all ordered pairs ``i != j`` of a graph or between those within ``radius`` (see
:mod:`acezoo.data.graphs`; row 0 of ``edge_index`` is the receiver).

``collate`` gathers a batch with a handful of tensor operations (no per-graph Python loop)
and returns the same ``Batch`` as ``Batch.from_data_list([ds[i] for i in indices])``: node
fields concatenated, graph fields stacked (a graph field of shape ``(n_graphs, T)`` becomes
``(B, T)``), plus ``edge_index``, ``batch`` and ``ptr``. Field names containing ``index`` or
``face`` (which PyG offsets when batching) and ``batch``, ``ptr``, ``num_nodes`` are refused.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch.utils.data import Dataset
from torch_geometric.data import Batch, Data

from acezoo.data.graphs import batch_fully_connected_edge_index, radius_edge_index

__all__ = ["RaggedGraphDataset", "EdgeMode"]

EdgeMode = Literal["fully_connected", "radius"]
_RESERVED = ("batch", "ptr", "num_nodes")


class RaggedGraphDataset(Dataset):
    """Graphs of different sizes stored as concatenated node tensors and stacked graph tensors.

    Args:
        node_fields: name -> tensor ``(total_nodes, ...)``; must contain ``pos`` for ``edges="radius"``.
        graph_fields: name -> tensor ``(n_graphs, ...)`` (e.g. ``y`` of shape ``(n_graphs, T)``).
        node_offsets: ``(n_graphs + 1,)`` non-decreasing, ``node_offsets[0] == 0`` and
            ``node_offsets[-1] == total_nodes``.
        edges: ``"fully_connected"`` or ``"radius"`` (pairs with ``|x_i - x_j| <= radius``).
        radius: the cutoff for ``edges="radius"``, in the units of ``pos``.
    """

    def __init__(
        self,
        node_fields: dict[str, torch.Tensor],
        graph_fields: dict[str, torch.Tensor],
        node_offsets: torch.Tensor,
        edges: EdgeMode = "fully_connected",
        radius: float | None = None,
    ) -> None:
        offsets = torch.as_tensor(node_offsets, dtype=torch.long)
        if offsets.dim() != 1 or offsets.numel() < 1 or int(offsets[0]) != 0:
            raise ValueError("node_offsets must be a 1-D tensor starting at 0")
        if bool((offsets[1:] < offsets[:-1]).any()):
            raise ValueError("node_offsets must be non-decreasing")
        n_graphs, total = offsets.numel() - 1, int(offsets[-1])
        for k, t in node_fields.items():
            if t.shape[0] != total:
                raise ValueError(f"node field {k!r} has {t.shape[0]} rows, node_offsets say {total}")
        for k, t in graph_fields.items():
            if t.shape[0] != n_graphs:
                raise ValueError(f"graph field {k!r} has {t.shape[0]} rows for {n_graphs} graphs")
        clash = set(node_fields) & set(graph_fields)
        if clash:
            raise ValueError(f"fields are both node and graph fields: {sorted(clash)}")
        special = [k for k in (*node_fields, *graph_fields) if k in _RESERVED or "index" in k or "face" in k]
        if special:  # PyG offsets / concatenates such keys differently when batching
            raise ValueError(f"reserved or PyG-special field names: {special}")
        if edges == "radius":
            if radius is None or radius <= 0:
                raise ValueError(f"edges='radius' needs a radius > 0, got {radius}")
            if "pos" not in node_fields:
                raise ValueError("edges='radius' needs a node field 'pos'")
        elif edges != "fully_connected":
            raise ValueError(f"edges must be 'fully_connected' or 'radius', got {edges!r}")
        self.node_fields = node_fields
        self.graph_fields = graph_fields
        self.node_offsets = offsets
        self.edges: EdgeMode = edges
        self.radius = radius

    @property
    def n_graphs(self) -> int:
        return self.node_offsets.numel() - 1

    def __len__(self) -> int:
        return self.n_graphs

    def num_nodes(self) -> torch.Tensor:
        """Nodes per graph, shape ``(n_graphs,)``."""
        return self.node_offsets[1:] - self.node_offsets[:-1]

    def _edge_index(self, batch: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        if self.edges == "radius":
            assert pos is not None and self.radius is not None
            return radius_edge_index(pos, batch, self.radius)
        return batch_fully_connected_edge_index(batch)

    def __getitem__(self, i: int) -> Data:
        i = int(i)
        if not -self.n_graphs <= i < self.n_graphs:
            raise IndexError(f"graph {i} out of range for {self.n_graphs} graphs")
        i %= self.n_graphs
        lo, hi = int(self.node_offsets[i]), int(self.node_offsets[i + 1])
        nodes = {k: t[lo:hi] for k, t in self.node_fields.items()}
        graph = {k: t[i : i + 1] for k, t in self.graph_fields.items()}
        edge_index = self._edge_index(torch.zeros(hi - lo, dtype=torch.long), nodes.get("pos"))
        item = Data(edge_index=edge_index, **nodes, **graph)
        if not nodes:  # otherwise PyG infers the node count from the node fields
            item.num_nodes = hi - lo
        return item

    def _gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For graphs ``idx``: the gathered node rows, nodes per graph and the new offsets.

        Node ``k`` of the batch is row ``k - ptr[g] + node_offsets[idx[g]]`` of the store, with
        ``g`` its graph: one ``repeat_interleave`` of the per-graph shifts.
        """
        starts = self.node_offsets[idx]
        counts = self.node_offsets[idx + 1] - starts
        ptr = torch.zeros(idx.numel() + 1, dtype=torch.long)
        torch.cumsum(counts, 0, out=ptr[1:])
        total = int(ptr[-1])
        shift = torch.repeat_interleave(starts - ptr[:-1], counts, output_size=total)
        return torch.arange(total) + shift, counts, ptr

    def _index(self, indices: Sequence[int] | torch.Tensor) -> torch.Tensor:
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() and (int(idx.min()) < -self.n_graphs or int(idx.max()) >= self.n_graphs):
            raise IndexError(f"graph indices out of range for {self.n_graphs} graphs")
        return idx % max(self.n_graphs, 1)

    def collate(self, indices: Sequence[int] | torch.Tensor) -> Batch:
        """The ``Batch`` of the given graphs (same content as ``Batch.from_data_list``)."""
        idx = self._index(indices)
        rows, counts, ptr = self._gather(idx)
        b = idx.numel()
        batch_vec = torch.repeat_interleave(torch.arange(b), counts, output_size=rows.numel())
        nodes = {k: t[rows] for k, t in self.node_fields.items()}
        graph = {k: t[idx] for k, t in self.graph_fields.items()}
        edge_index = self._edge_index(batch_vec, nodes.get("pos"))
        out = Batch(edge_index=edge_index, batch=batch_vec, ptr=ptr, **nodes, **graph)
        out._num_graphs = b
        # what Batch.from_data_list records, so that get_example / to_data_list work too
        edge_counts = torch.bincount(batch_vec[edge_index[0]], minlength=b)
        edge_ptr = torch.zeros(b + 1, dtype=torch.long)
        torch.cumsum(edge_counts, 0, out=edge_ptr[1:])
        zeros = torch.zeros(b, dtype=torch.long)
        out._slice_dict = {"edge_index": edge_ptr, **{k: ptr for k in nodes}, **{k: torch.arange(b + 1) for k in graph}}
        out._inc_dict = {"edge_index": ptr[:-1], **{k: zeros for k in nodes}, **{k: zeros for k in graph}}
        return out

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "RaggedGraphDataset":
        """A new data set of the graphs ``indices`` (in that order), with the same edge rule."""
        idx = self._index(indices)
        rows, _, ptr = self._gather(idx)
        return RaggedGraphDataset(
            {k: t[rows] for k, t in self.node_fields.items()},
            {k: t[idx] for k, t in self.graph_fields.items()},
            ptr,
            self.edges,
            self.radius,
        )

    def to_dtype(self, dtype: torch.dtype) -> "RaggedGraphDataset":
        """A copy whose floating-point fields have ``dtype``."""
        cast = lambda t: t.to(dtype) if t.is_floating_point() else t  # noqa: E731
        return RaggedGraphDataset(
            {k: cast(t) for k, t in self.node_fields.items()},
            {k: cast(t) for k, t in self.graph_fields.items()},
            self.node_offsets,
            self.edges,
            self.radius,
        )
