"""Extra per-node scalar inputs read from a batch by name (e.g. MoCap's ``height``)."""
from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

__all__ = ["node_features_field", "read_node_features"]


def node_features_field() -> Any:
    """The ``node_features`` spec field shared by the point-cloud architectures."""
    return Field(
        default_factory=list,
        description="Extra per-node scalar inputs, read from the batch by name, one column each (e.g. `[height]` "
        "on mocap_run: the joint's height / 10, the EGNO protocol's second node feature). They enter as "
        "invariants, so a field that is not invariant (the height) leaves the model equivariant only to what "
        "keeps it unchanged (rotations about the vertical axis, horizontal translations).",
    )


def read_node_features(batch: Any, names: list[str], dtype: torch.dtype) -> list[torch.Tensor]:
    """The named ``(n, 1)`` fields of ``batch`` as ``dtype`` columns; a clear error otherwise."""
    columns = []
    for name in names:
        value = getattr(batch, name, None)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"model.node_features: the batch has no per-node field {name!r} "
                             "(mocap_run provides `height`)")
        if value.dim() == 1:
            value = value.unsqueeze(-1)
        if value.shape != (batch.pos.shape[0], 1):
            raise ValueError(f"model.node_features: field {name!r} has shape {tuple(value.shape)}; "
                             f"expected ({batch.pos.shape[0]}, 1), one scalar per node")
        columns.append(value.to(dtype))
    return columns
