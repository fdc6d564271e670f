"""Evaluation of a model on a data split."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from acezoo.data.bundle import RegressionTask
from acezoo.training.batches import eval_batches

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(
    model: Callable[[Any], torch.Tensor],
    dataset: Dataset,
    task: RegressionTask,
    device: torch.device,
    batch_size: int = 500,
) -> dict[str, float]:
    """Metrics of ``model`` on ``dataset``, pooled exactly over batches."""
    sums: dict[str, list[float]] = {}
    for batch in eval_batches(dataset, batch_size):
        batch = batch.to(device, non_blocking=True)
        for name, (total, count) in task.metric_sums(model(batch), batch).items():
            acc = sums.setdefault(name, [0.0, 0])
            acc[0] += total
            acc[1] += count
    return {name: total / count for name, (total, count) in sums.items()}
