"""Point clouds from your own stacked tensors: the batch the point-cloud networks read.

The EGNN, EGNO, SEGNN and SE(3)-Transformer read a batch of graphs by attribute (``pos``,
``vel``, ``charge``, ``edge_index``, ``batch``, ...), the layout of a ``torch_geometric`` batch.
:func:`point_cloud` builds one from ``(B, N, ...)`` tensors, without torch_geometric::

    model = acezoo.load("egnn-nbody-ace")
    x = acezoo.point_cloud(pos, vel, charge=charge)   # pos, vel: (B, N, 3); charge: (B, N) or (B, N, 1)
    with torch.no_grad():
        future = x.unstack(model(x))                  # (B, N, 3)
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch

__all__ = ["PointCloudBatch", "point_cloud"]


@dataclass
class PointCloudBatch:
    """``B`` graphs of ``N`` nodes each, flattened to ``B * N`` nodes (graph ``b`` owns nodes
    ``b N .. b N + N - 1``), with the edges of every graph in ``edge_index``."""

    pos: torch.Tensor
    edge_index: torch.Tensor
    batch: torch.Tensor
    ptr: torch.Tensor
    num_graphs: int
    vel: torch.Tensor | None = None
    charge: torch.Tensor | None = None
    edge_attr: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getattr__(self, name: str) -> torch.Tensor:  # the extra node fields, e.g. ``height``
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(name)

    def unstack(self, node_values: torch.Tensor) -> torch.Tensor:
        """Per-node outputs ``(B * N, ...)`` back to ``(B, N, ...)`` (graphs of equal size)."""
        return node_values.reshape(self.num_graphs, -1, *node_values.shape[1:])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "PointCloudBatch":
        """The same batch with every tensor on ``device``."""
        moved = {f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                 for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)}
        extra = {k: v.to(device, non_blocking=non_blocking) for k, v in self.extra.items()}
        return replace(self, **moved, extra=extra)


def _stacked(name: str, t: torch.Tensor | None, trailing: int | None) -> torch.Tensor | None:
    if t is None:
        return None
    t = torch.as_tensor(t)
    if trailing is not None and t.dim() == 2 and trailing == 1:
        t = t.unsqueeze(-1)  # charges (B, N) -> (B, N, 1)
    if t.dim() != 3 or (trailing is not None and t.shape[-1] != trailing):
        shape = f"(B, N, {trailing})" if trailing is not None else "(B, N, C)"
        raise ValueError(f"{name} must have shape {shape} (or (N, ...) for one system), got {tuple(t.shape)}")
    return t


def point_cloud(
    pos: torch.Tensor,
    vel: torch.Tensor | None = None,
    *,
    charge: torch.Tensor | None = None,
    edge_index: torch.Tensor | None = None,
    edge_attr: torch.Tensor | None = None,
    **node_fields: torch.Tensor,
) -> PointCloudBatch:
    """A batch of ``B`` point clouds of ``N`` points from ``pos`` ``(B, N, 3)`` (or ``(N, 3)``).

    Args:
        pos, vel: positions and velocities, ``(B, N, 3)``.
        charge: per-point charges ``(B, N)`` or ``(B, N, 1)`` (the N-body models need them).
            ``vel``, ``charge``, ``edge_attr`` and float ``node_fields`` take the dtype of ``pos``.
        edge_index: ``(2, E)`` edges of *one* graph (row 0 the receiver), shared by all; default:
            every ordered pair ``i != j`` (the N-body protocol's fully connected graph).
        edge_attr: ``(E, D)`` invariant attributes of those edges, shared by all graphs (e.g. the
            mocap skeleton's bone / two-hop flags: ``dataset.edge_attr``).
        node_fields: further per-point inputs by name, ``(B, N, C)`` (e.g. ``height`` for mocap).
    """
    single = torch.as_tensor(pos).dim() == 2  # one system: add the batch axis to every input

    def batched(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else (torch.as_tensor(t).unsqueeze(0) if single else torch.as_tensor(t))

    pos3 = _stacked("pos", batched(pos), 3)
    assert pos3 is not None
    b, n = pos3.shape[:2]

    def like_pos(t: torch.Tensor | None, always: bool = True) -> torch.Tensor | None:
        """Float inputs in the dtype of ``pos`` (e.g. integer charges +-1)."""
        if t is None or not pos3.is_floating_point() or not (always or t.is_floating_point()):
            return t
        return t.to(pos3.dtype)

    vel3 = like_pos(_stacked("vel", batched(vel), 3))
    q3 = like_pos(_stacked("charge", batched(charge), 1))
    extra = {k: like_pos(_stacked(k, batched(v), None), always=False) for k, v in node_fields.items()}
    for name, t in (("vel", vel3), ("charge", q3), *extra.items()):
        if t is not None and t.shape[:2] != (b, n):
            raise ValueError(f"{name} has {tuple(t.shape[:2])} graphs x points; pos has {(b, n)}")
    if edge_index is None:
        idx = torch.arange(n, device=pos3.device)
        row, col = idx.repeat_interleave(n), idx.repeat(n)
        edge_index = torch.stack([row[row != col], col[row != col]])
    edge_index = torch.as_tensor(edge_index, device=pos3.device)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2 or (edge_index.numel() and int(edge_index.max()) >= n):
        raise ValueError(f"edge_index must be (2, E) with node indices < {n}, got shape {tuple(edge_index.shape)}")
    if edge_attr is not None:
        edge_attr = like_pos(torch.as_tensor(edge_attr, device=pos3.device))
        if edge_attr.shape[0] != edge_index.shape[1]:
            raise ValueError(f"edge_attr has {edge_attr.shape[0]} rows; edge_index has {edge_index.shape[1]} edges")
        edge_attr = edge_attr.repeat(b, *([1] * (edge_attr.dim() - 1)))
    offsets = (torch.arange(b, device=pos3.device) * n).repeat_interleave(edge_index.shape[1])

    def flat(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.reshape(b * n, *t.shape[2:])

    return PointCloudBatch(
        pos=flat(pos3), edge_index=edge_index.repeat(1, b) + offsets,
        batch=torch.arange(b, device=pos3.device).repeat_interleave(n),
        ptr=torch.arange(b + 1, device=pos3.device) * n, num_graphs=b,
        vel=flat(vel3), charge=flat(q3), edge_attr=edge_attr, extra={k: flat(v) for k, v in extra.items()},
    )
