"""Data-parallel training across processes with PyTorch's own distributed engine.

Launch with ``torchrun --nproc-per-node N -m acezoo train CONFIG`` (NCCL on GPUs, gloo on
CPU). Every rank holds the whole model, seeded identically; each global batch of
``train.batch_size`` samples (drawn from the same shuffled order on every rank) is split into
one chunk per rank, and after the backward pass the gradients are combined as

    g = sum_r (n_r / N) g_r      (all-reduce, sum),

where ``g_r`` is the gradient of rank ``r``'s mean loss over its ``n_r`` samples: exactly the
gradient of the mean loss over the ``N`` samples of the global batch, whatever the split. The
gammas' and slacks' gradients also carry the Lagrangian terms, which are identical on every
rank and pass through the weighted sum unchanged. All ranks then take the same primal step,
and since the constraints depend only on the gammas (replicated parameters), the same dual
step: weights, multipliers and slacks stay identical. Every rank takes the same number of
steps; only rank 0 writes checkpoints, history, MLflow runs and cards.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistContext", "init_from_env", "shard"]


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel job (``world_size == 1``: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this context initialised the process group (and destroys it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sync_gradients(self, params: Iterable[torch.nn.Parameter], n_local: int, n_global: int) -> None:
        """``p.grad <- sum_r (n_r / N) p.grad_r`` for every parameter, on every rank."""
        if not self.enabled:
            return
        grads = []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        self._weighted_sum(grads, n_local / n_global)

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average the batch-norm running statistics over the ranks (each rank normalises with its
        own batch, as ``BatchNorm`` does without ``SyncBatchNorm``), so the replicas stay identical."""
        if not self.enabled:
            return
        bufs = [b for n, b in module.named_buffers() if b.is_floating_point() and n.rsplit(".", 1)[-1] in
                ("running_mean", "running_var")]
        self._weighted_sum(bufs, 1.0 / self.world_size)

    def _weighted_sum(self, tensors: list[torch.Tensor], weight: float) -> None:
        """``t <- sum_r weight_r * t_r`` in place for every tensor, in one all-reduce."""
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors]) * weight
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over ranks (float64)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_from_env(prefer_cuda: bool) -> DistContext:
    """The context described by torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; joins
    (or creates) the default process group: NCCL when ``prefer_cuda`` and CUDA exist, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if prefer_cuda and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        owns = True
    return DistContext(rank=rank, world_size=world, local_rank=local, owns_group=owns)


def shard(indices: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's chunk of a global batch (chunk sizes differ by at most one)."""
    if not ctx.enabled:
        return indices
    return indices.tensor_split(ctx.world_size)[ctx.rank]
