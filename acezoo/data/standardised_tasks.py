"""Regression tasks whose model predicts standardised targets; metrics in the target's unit.

``MAERegressionTask`` (scalars, e.g. QM9 energies) and ``TensorMAETask`` (symmetric 3x3
tensors, e.g. a polarizability, standardised in a rotation-compatible way). Both follow the
task protocol of :mod:`acezoo.data.bundle`: ``loss(pred, batch)`` and ``metric_sums(pred, batch)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["MAERegressionTask", "TensorMAETask"]


@dataclass(frozen=True)
class MAERegressionTask:
    """Mean-absolute-error regression of ``batch.<target>`` for a model with standardised output.

    The model predicts ``p = (y - mean) / std`` (``mean``, ``std``: of the training targets), so
    its prediction in the target's unit is ``p * std + mean``. The loss is the L1 error on the
    standardised scale, ``mean |p - (y - mean) / std|`` (``loss_kind="mse"``: the squared error);
    the metric ``mae`` is the absolute error in the target's unit, ``|p * std + mean - y|`` (pooled
    as sum and count), computed in float64.
    """

    target: str = "y"
    metric: str = "mae"
    mean: float = 0.0
    std: float = 1.0
    loss_kind: str = "l1"

    def _shaped(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if pred.shape != y.shape:
            if pred.numel() != y.numel():
                raise ValueError(f"prediction of shape {tuple(pred.shape)} for targets of shape {tuple(y.shape)}")
            pred = pred.reshape(y.shape)
        return pred

    def loss(self, pred: torch.Tensor, batch: Any) -> torch.Tensor:
        """L1 (or squared) error on standardised targets."""
        y = getattr(batch, self.target)
        pred = self._shaped(pred, y)
        scaled = ((y.double() - self.mean) / self.std).to(pred.dtype)
        if self.loss_kind == "mse":
            return torch.nn.functional.mse_loss(pred, scaled)
        return torch.nn.functional.l1_loss(pred, scaled)

    def metric_sums(self, pred: torch.Tensor, batch: Any) -> dict[str, tuple[float, int]]:
        """``{metric: (sum of absolute errors in the target's unit, count)}``."""
        y = getattr(batch, self.target)
        pred = self._shaped(pred.detach(), y)
        err = (pred.double() * self.std + self.mean - y.double()).abs()
        return {self.metric: (float(err.sum()), err.numel())}


@dataclass(frozen=True)
class TensorMAETask:
    """Regression of a symmetric 3x3 tensor ``batch.<target>`` (B, 3, 3) with an equivariant scaling.

    The model predicts ``P = (Y - mu I) / sigma`` with ``mu`` the mean of ``tr(Y) / 3`` and
    ``sigma`` the standard deviation of the entries of ``Y - mu I`` over the training set (a
    shift along the identity and a scale commute with ``Y -> R Y R^T``). The loss is the mean
    Frobenius norm ``||P - (Y - mu I) / sigma||_F`` (rotation-invariant; ``loss_kind="mse"``: the
    mean squared entry error, also rotation-invariant); the metric ``mae`` is the mean absolute
    error of the nine entries in the target's unit, in float64.
    """

    target: str = "y"
    metric: str = "mae"
    mean: float = 0.0
    std: float = 1.0
    loss_kind: str = "l1"

    def _scaled(self, y: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(3, dtype=torch.float64, device=y.device)
        return (y.double() - self.mean * eye) / self.std

    def loss(self, pred: torch.Tensor, batch: Any) -> torch.Tensor:
        """Mean Frobenius error on the scaled tensors."""
        y = getattr(batch, self.target)
        if pred.shape != y.shape:
            raise ValueError(f"prediction of shape {tuple(pred.shape)} for tensors of shape {tuple(y.shape)}")
        diff = pred - self._scaled(y).to(pred.dtype)
        if self.loss_kind == "mse":
            return diff.square().mean()
        return diff.square().sum(dim=(-2, -1)).clamp_min(1e-12).sqrt().mean()

    def metric_sums(self, pred: torch.Tensor, batch: Any) -> dict[str, tuple[float, int]]:
        """``{metric: (sum of absolute entry errors in the target's unit, number of entries)}``."""
        y = getattr(batch, self.target)
        eye = torch.eye(3, dtype=torch.float64, device=y.device)
        err = (pred.detach().double().reshape(y.shape) * self.std + self.mean * eye - y.double()).abs()
        return {self.metric: (float(err.sum()), err.numel())}
