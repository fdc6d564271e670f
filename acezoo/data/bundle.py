"""What a data set builder returns: the three splits and the task that scores them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["DataBundle", "RegressionTask", "TrajectoryTask", "ClassificationTask", "Task"]


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


@dataclass(frozen=True)
class TrajectoryTask:
    """Mean-squared-error regression of ``K`` frames ``batch.<target>`` of shape ``(n, K, d)``.

    The training loss is the MSE over every frame, node and component (the mean of the per-frame
    MSEs: what EGNO trains on); the reported metric ``<metric>`` is the MSE of the *last* frame
    (EGNO's reported number) and ``<metric>_all_frames`` that of all frames (pooled as sums and counts).
    """

    target: str = "y"
    metric: str = "mse"

    def _target(self, pred: torch.Tensor, batch: Any) -> torch.Tensor:
        y = getattr(batch, self.target)
        if pred.shape != y.shape:
            raise ValueError(f"prediction of shape {tuple(pred.shape)} for targets of shape {tuple(y.shape)} "
                             "(nodes, frames, 3): the model must predict as many frames as the data set gives "
                             "(e.g. model.frames = data.frames)")
        return y

    def loss(self, pred: torch.Tensor, batch: Any) -> torch.Tensor:
        """Mean squared error over all frames, nodes and components."""
        return torch.nn.functional.mse_loss(pred, self._target(pred, batch))

    def metric_sums(self, pred: torch.Tensor, batch: Any) -> dict[str, tuple[float, int]]:
        """``{metric: last frame's (sum of squared errors, count), metric_all_frames: all frames'}``."""
        err = (pred.detach() - self._target(pred, batch)).pow(2)
        last = err[:, -1]
        return {self.metric: (float(last.sum()), last.numel()),
                f"{self.metric}_all_frames": (float(err.sum()), err.numel())}


@dataclass(frozen=True)
class ClassificationTask:
    """Cross-entropy classification of the labels ``batch.<target>`` from logits.

    The selection metric is the error rate ``1 - accuracy`` (lower is better, like every
    acezoo metric); ``accuracy`` and the mean negative log-likelihood ``nll`` are reported too.
    """

    target: str = "y"
    metric: str = "error"

    def loss(self, pred: torch.Tensor, batch: Any) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(pred, getattr(batch, self.target))

    def metric_sums(self, pred: torch.Tensor, batch: Any) -> dict[str, tuple[float, int]]:
        labels = getattr(batch, self.target)
        right = int((pred.detach().argmax(dim=-1) == labels).sum())
        nll = float(torch.nn.functional.cross_entropy(pred.detach(), labels, reduction="sum"))
        n = labels.numel()
        return {self.metric: (float(n - right), n), "accuracy": (float(right), n), "nll": (nll, n)}


Task = RegressionTask | TrajectoryTask | ClassificationTask


@dataclass
class DataBundle:
    """Train/validation/test splits plus the task."""

    train: Dataset
    val: Dataset
    test: Dataset
    task: Task = field(default_factory=RegressionTask)
    info: dict[str, Any] = field(default_factory=dict)
