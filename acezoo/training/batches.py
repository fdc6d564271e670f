"""Mini-batches of graphs, reproducible from a ``torch.Generator`` state."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset
from torch_geometric.data import Batch

__all__ = ["collate", "epoch_indices", "eval_batches"]


def collate(dataset: Dataset, indices: torch.Tensor) -> Batch:
    """The ``Batch`` of ``dataset[indices]`` (fast path for datasets that have ``collate``)."""
    fast = getattr(dataset, "collate", None)
    if fast is not None:
        return fast(indices)
    return Batch.from_data_list([dataset[int(i)] for i in indices])


def epoch_indices(
    n: int, batch_size: int, generator: torch.Generator, skip: int = 0
) -> Iterator[torch.Tensor]:
    """Index batches of one shuffled epoch; the order is drawn from ``generator`` once, up front.

    ``skip`` drops the first batches (used to resume exactly in the middle of an epoch).
    """
    order = torch.randperm(n, generator=generator)
    for i, idx in enumerate(order.split(batch_size)):
        if i >= skip:
            yield idx


def eval_batches(dataset: Dataset, batch_size: int) -> Iterator[Batch]:
    """Batches in dataset order."""
    for idx in torch.arange(len(dataset)).split(batch_size):
        yield collate(dataset, idx)
