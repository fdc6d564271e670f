"""The ACE homotopy block.

A relaxed block computes

    f(x) = f_eq(x) + gamma * f_neq(x)

where ``f_eq`` respects the architecture's symmetry, ``f_neq`` is an unconstrained branch
that breaks it on purpose, and ``gamma`` is one learned scalar. Both branches receive the
same arguments; their outputs are tensors or tuples of tensors of the same shapes. With
``gamma = 0`` (or in equivariant-only mode, where ``f_neq`` is not even evaluated) the block
is exactly ``f_eq``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Relaxed", "equivariant_part", "outputs_both"]


def _combine(eq_out: Any, gamma: torch.Tensor, neq_out: Any) -> Any:
    if isinstance(eq_out, torch.Tensor):
        return eq_out + gamma * neq_out
    if isinstance(eq_out, (tuple, list)):
        return type(eq_out)(_combine(a, gamma, b) for a, b in zip(eq_out, neq_out))
    raise TypeError(f"Relaxed branches must return tensors or tuples of tensors, got {type(eq_out).__name__}")


class Relaxed(nn.Module):
    """``f_eq(x) + gamma * f_neq(x)`` with one learned scalar ``gamma``.

    Args:
        eq: the equivariant block.
        neq: the symmetry-breaking branch (same inputs, same output shapes).
        init_gamma: initial value of ``gamma``.
    """

    def __init__(self, eq: nn.Module, neq: nn.Module, init_gamma: float = 1.0) -> None:
        super().__init__()
        self.eq = eq
        self.neq = neq
        self.gamma = nn.Parameter(torch.tensor(float(init_gamma)))
        self.equivariant_only = False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.eq(*args, **kwargs)
        if self.equivariant_only:
            return out
        return _combine(out, self.gamma, self.neq(*args, **kwargs))

    def forward_both(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """``(f_eq(x), f(x))``, ``f_eq`` evaluated once: the block's output in equivariant-only
        mode and as it is now (the same object twice when the branch is off)."""
        out = self.eq(*args, **kwargs)
        if self.equivariant_only:
            return out, out
        return out, _combine(out, self.gamma, self.neq(*args, **kwargs))

    def extra_repr(self) -> str:
        return f"gamma={self.gamma.item():.4g}, equivariant_only={self.equivariant_only}"


def equivariant_part(block: nn.Module) -> nn.Module:
    """The equivariant part of a block: ``block.eq`` of a :class:`Relaxed` block, else the block
    itself (e.g. once pruned)."""
    return block.eq if isinstance(block, Relaxed) else block


def outputs_both(block: nn.Module, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``(equivariant-only output, output as now)`` of a block, its equivariant part run once
    (:meth:`Relaxed.forward_both`; a block that is not relaxed gives its output twice)."""
    if isinstance(block, Relaxed):
        return block.forward_both(*args, **kwargs)
    out = block(*args, **kwargs)
    return out, out
