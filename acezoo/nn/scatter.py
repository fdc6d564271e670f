"""Sum and mean of rows grouped by an index, in plain torch (no torch_geometric import)."""
from __future__ import annotations

import torch

__all__ = ["scatter"]


def scatter(src: torch.Tensor, index: torch.Tensor, dim: int = 0, dim_size: int | None = None,
            reduce: str = "sum") -> torch.Tensor:
    """``out[k] = sum_{i: index[i] = k} src[i]`` along ``dim`` (``reduce="mean"``: divided by the
    count, 0 for empty groups), ``dim_size`` rows (default ``index.max() + 1``)."""
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    dim = dim % src.dim()
    size = int(index.max()) + 1 if dim_size is None and index.numel() else (dim_size or 0)
    shape = list(src.shape)
    shape[dim] = size
    out = src.new_zeros(shape).index_add_(dim, index, src)
    if reduce == "mean":
        count = torch.zeros(size, dtype=src.dtype, device=src.device).index_add_(0, index, torch.ones_like(index, dtype=src.dtype))
        view = [1] * src.dim()
        view[dim] = size
        out = out / count.clamp(min=1).view(view)
    return out
