"""Extra per-node scalar inputs read from a batch by name (e.g. MoCap's ``height``)."""
from __future__ import annotations

from typing import Any

import torch

from acezoo.config.fields import node_features_field

__all__ = ["node_features_field", "read_node_features"]


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
