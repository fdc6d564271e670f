"""What a data set builder returns: the three splits and the task that scores them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["DataBundle", "RegressionTask"]


@dataclass(frozen=True)
class RegressionTask:
    """Mean-squared-error regression of ``batch.<target>`` from the model output."""

    target: str = "y"
    metric: str = "mse"

    def loss(self, pred: torch.Tensor, batch: Any) -> torch.Tensor:
        """Mean squared error over all output components."""
        return torch.nn.functional.mse_loss(pred, getattr(batch, self.target))

    def metric_sums(self, pred: torch.Tensor, batch: Any) -> dict[str, tuple[float, int]]:
        """``{metric: (sum of squared errors, count)}`` so that batches can be pooled exactly."""
        err = (pred.detach() - getattr(batch, self.target)).pow(2)
        return {self.metric: (float(err.sum()), err.numel())}


@dataclass
class DataBundle:
    """Train/validation/test splits plus the task."""

    train: Dataset
    val: Dataset
    test: Dataset
    task: RegressionTask = field(default_factory=RegressionTask)
    info: dict[str, Any] = field(default_factory=dict)
