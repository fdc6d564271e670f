"""Evaluation of a model on a data split."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from acezoo.data.bundle import RegressionTask
from acezoo.symmetry import Symmetry, equivariance_error
from acezoo.training.batches import collate, eval_batches

__all__ = ["evaluate", "evaluate_pair", "score", "CPU_FORWARD_BATCH", "CPU_FORWARD_NODES"]

#: At most this many samples go through one forward pass when evaluating on the CPU, whatever
#: ``batch_size`` asks: larger CPU forward passes are slower per sample (their activations fall
#: out of the caches, and glibc hands buffers of several MB back to the OS after every pass, so
#: each pass page-faults them in again). On the N-body EGNN, validation in passes of 200 graphs
#: takes about 0.6x the time of passes of 500. Metrics are pooled exactly either way (up to
#: float round-off).
CPU_FORWARD_BATCH = 200

#: And at most this many nodes (graphs of ``n`` nodes: ``CPU_FORWARD_NODES // n`` of them), for
#: the same reason: 200 N-body graphs of 5 nodes pass unchanged, while 200 MoCap skeletons of 31
#: joints would be 6200 nodes (EGNO's validation pair: 6.6 s in passes of 200 against 3.6 s in
#: passes of 48).
CPU_FORWARD_NODES = 1500


@torch.no_grad()
def evaluate(
    model: Callable[[Any], torch.Tensor],
    dataset: Dataset,
    task: RegressionTask,
    device: torch.device,
    batch_size: int = 500,
) -> dict[str, float]:
    """Metrics of ``model`` on ``dataset``, pooled exactly over batches.

    ``batch_size`` samples per forward pass; on the CPU at most :data:`CPU_FORWARD_BATCH`.
    """
    return _pooled_metrics(lambda batch: (model(batch),), 1, dataset, task, device, batch_size)[0]


@torch.no_grad()
def evaluate_pair(
    model: Callable[[Any], tuple[torch.Tensor, torch.Tensor]],
    dataset: Dataset,
    task: RegressionTask,
    device: torch.device,
    batch_size: int = 500,
) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics of the two predictions of ``model(batch) -> (a, b)`` (e.g. a relaxed model's
    equivariant-only and full outputs from ``forward_both``), pooled as :func:`evaluate` does."""
    first, second = _pooled_metrics(model, 2, dataset, task, device, batch_size)
    return first, second


def _node_cap(dataset: Dataset) -> int:
    """Graphs per CPU forward pass that keep it under :data:`CPU_FORWARD_NODES` nodes (judged by
    the first sample; no cap for samples that are not graphs)."""
    if len(dataset) == 0:
        return CPU_FORWARD_BATCH
    nodes = getattr(dataset[0], "num_nodes", None)
    return max(1, CPU_FORWARD_NODES // nodes) if isinstance(nodes, int) and nodes > 0 else CPU_FORWARD_BATCH


def _pooled_metrics(
    predict: Callable[[Any], tuple[torch.Tensor, ...]],
    outputs: int,
    dataset: Dataset,
    task: RegressionTask,
    device: torch.device,
    batch_size: int,
) -> list[dict[str, float]]:
    """Metrics of each of the ``outputs`` predictions of ``predict(batch)``, every metric pooled
    exactly over the batches (sums and counts, divided at the end)."""
    if torch.device(device).type == "cpu":
        batch_size = min(batch_size, CPU_FORWARD_BATCH, _node_cap(dataset))
    sums: list[dict[str, list[float]]] = [{} for _ in range(outputs)]
    for batch in eval_batches(dataset, batch_size):
        batch = batch.to(device, non_blocking=True)
        for pred, acc_of in zip(predict(batch), sums, strict=True):
            for name, (total, count) in task.metric_sums(pred, batch).items():
                acc = acc_of.setdefault(name, [0.0, 0])
                acc[0] += total
                acc[1] += count
    return [{name: total / count for name, (total, count) in acc_of.items()} for acc_of in sums]


def score(
    model: Any, dataset: Dataset, task: RegressionTask, symmetry: Symmetry, device: torch.device, batch_size: int = 500
) -> dict[str, dict[str, Any]]:
    """Metrics and equivariance error of a relaxed model, pruned and full, on one split.

    The equivariance error uses the first 100 samples and a fixed random group element.
    """
    model.eval()
    pruned = model.prune().eval()
    batch = collate(dataset, torch.arange(min(len(dataset), 100))).to(device)
    return {
        "test": {
            "pruned": evaluate(pruned, dataset, task, device, batch_size),
            "full": evaluate(model, dataset, task, device, batch_size),
        },
        "equivariance_error": {
            "pruned": equivariance_error(pruned, batch, symmetry, torch.Generator().manual_seed(4321)),
            "full": equivariance_error(model, batch, symmetry, torch.Generator().manual_seed(4321)),
        },
    }
