"""The trainer's optimisation step, built from a config alone.

One place decides how a run's parameters move, so that :class:`~acezoo.training.trainer.Trainer`
and the benchmarks (``scripts/bench_segnn.py``) time and run the same step:

- the primal optimiser: Adam at ``train.lr`` with ``train.weight_decay``, fused (one kernel over
  every parameter tensor, the same update to float round-off) where the device has it;
- the primal-dual engine (:class:`~acezoo.constraints.engine.PrimalDual`) over it, in every
  constraint mode (``strict`` included: there it is a plain primal step);
- gradient clipping, ``||g||_2 <= train.grad_clip`` over the trained parameters, between the
  backward pass and the primal step.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from acezoo.config.schema import ZooConfig
from acezoo.config.train import TrainConfig
from acezoo.constraints.engine import PrimalDual, PrimalOptimizerFactory

__all__ = ["fused_default", "primal_adam", "gradient_clipper", "build_engine"]


def fused_default(device: torch.device) -> bool:
    """Whether Adam runs fused by default on ``device`` (CPU and CUDA have the kernel)."""
    return device.type in ("cpu", "cuda")


def primal_adam(train: TrainConfig, fused: bool) -> PrimalOptimizerFactory:
    """The primal optimiser's factory: Adam over the engine's parameter groups."""
    return lambda groups: torch.optim.Adam(groups, lr=train.lr, weight_decay=train.weight_decay, fused=fused)


def gradient_clipper(model: torch.nn.Module, max_norm: float | None) -> Callable[[], None] | None:
    """Clips the gradient norm of ``model``'s trained parameters to ``max_norm`` (None: no clipping)."""
    if max_norm is None:
        return None
    params = [p for p in model.parameters() if p.requires_grad]
    return lambda: torch.nn.utils.clip_grad_norm_(params, max_norm)


def build_engine(model: torch.nn.Module, config: ZooConfig, total_steps: int, fused: bool | None = None,
                 reduce_defect: Callable[[torch.Tensor], torch.Tensor] | None = None) -> PrimalDual:
    """The primal-dual engine that trains ``model`` under ``config`` for ``total_steps`` iterations
    (``fused``: default :func:`fused_default` of the model's device)."""
    if fused is None:
        param = next(iter(model.parameters()), None)
        fused = fused_default(param.device if param is not None else torch.device("cpu"))
    return PrimalDual(model, config.constraints, primal_adam(config.train, fused), total_steps,  # type: ignore[arg-type]
                      reduce_defect=reduce_defect)
