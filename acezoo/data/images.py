"""Image data sets held as stacked tensors, with fast batching.

An :class:`ImageBatch` has ``x`` (B, C, H, W) and a target ``y`` (class labels (B,) or
images (B, C', H, W)); it moves with ``.to(device)`` like a PyG ``Batch``, so the shared
trainer treats images and graphs alike.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

__all__ = ["ImageBatch", "ImageTensorDataset"]


@dataclass(frozen=True)
class ImageBatch:
    """A mini-batch of images ``x`` and targets ``y``."""

    x: torch.Tensor
    y: torch.Tensor

    @property
    def num_graphs(self) -> int:
        """Batch size (named as in PyG so that code counting samples works for both)."""
        return self.x.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "ImageBatch":
        return ImageBatch(self.x.to(device, non_blocking=non_blocking), self.y.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "ImageBatch":
        return ImageBatch(self.x.pin_memory(), self.y.pin_memory())

    def replace(self, **fields: torch.Tensor) -> "ImageBatch":
        return dataclasses.replace(self, **fields)


class ImageTensorDataset(Dataset):
    """``x`` (N, C, H, W) float images and targets ``y`` (N,) or (N, C', H, W)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"images must have shape (N, C, H, W) with H == W, got {tuple(x.shape)}")
        if len(x) != len(y):
            raise ValueError(f"{len(x)} images but {len(y)} targets")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> ImageBatch:
        return ImageBatch(self.x[i : i + 1], self.y[i : i + 1])

    def collate(self, indices: Sequence[int] | torch.Tensor) -> ImageBatch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageBatch(self.x[idx], self.y[idx])
