"""Symmetry-breaking branches whose output scale the weights cannot grow.

ACE constrains the scalar ``gamma`` of ``f_eq(x) + gamma * f_neq(x)``. With an ordinary MLP as
``f_neq`` the product ``gamma * f_neq`` is unchanged when gamma shrinks and the branch's weights
grow, so a small gamma need not mean a small branch (and pruning it then changes the model).
A *bounded* branch removes that escape: every layer is a batch norm without affine parameters
followed by a spectrally normalised linear map without bias (``||W||_2 = 1``, power iteration,
:func:`torch.nn.utils.parametrizations.spectral_norm`), with SiLU in between. The last layer
maps ``z = BN(u)`` (unit variance per feature over the batch) by ``W`` with ``||W||_2 = 1``, so

    mean_batch ||f_neq(x)||^2 <= mean_batch ||z||^2 = d       (d: width of the last layer's input)

whatever the weights: the branch's scale is fixed, and ``gamma`` alone sets the size of the
symmetry breaking (scaling any weight matrix leaves the branch unchanged). This
follows the branches of the ACE authors' EGNO and SchNet code (batch norm, then a
spectral-normalised linear layer).
"""
from __future__ import annotations

from typing import Literal

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["BranchKind", "BRANCH_KINDS", "BRANCH_DESCRIPTION", "BoundedMLP", "branch_mlp", "bounded_linear"]

BranchKind = Literal["plain", "bounded"]
BRANCH_KINDS: tuple[str, ...] = ("plain", "bounded")
BRANCH_DESCRIPTION = (
    "Symmetry-breaking branch: `plain` (an unconstrained MLP / conv, whose weights can grow while gamma "
    "shrinks) or `bounded` (every layer a batch norm without affine parameters, then a spectrally "
    "normalised map without bias: the branch's output scale is fixed, so gamma alone sets the size of "
    "the symmetry breaking; the ACE authors' EGNO/SchNet branch)."
)


def bounded_linear(a: int, b: int, power_iterations: int = 1) -> nn.Module:
    """``x -> W x`` with ``||W||_2 = 1`` (spectral normalisation, no bias)."""
    return spectral_norm(nn.Linear(a, b, bias=False), n_power_iterations=power_iterations)


class BoundedMLP(nn.Sequential):
    """``BN -> SN-Linear -> SiLU -> BN -> SN-Linear ...`` through ``widths`` (BN without affine
    parameters, linear maps without bias and with unit spectral norm)."""

    def __init__(self, widths: list[int]) -> None:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            if i > 0:
                layers.append(nn.SiLU())
            layers += [nn.BatchNorm1d(a, affine=False), bounded_linear(a, b)]
        super().__init__(*layers)


def branch_mlp(kind: str, widths: list[int]) -> nn.Module:
    """The branch MLP of a point-cloud architecture: a plain :class:`~acezoo.nn.mlp.MLP` or a
    :class:`BoundedMLP` (``kind`` is ``plain`` or ``bounded``)."""
    from acezoo.nn.mlp import MLP

    if kind == "bounded":
        return BoundedMLP(widths)
    if kind == "plain":
        return MLP(widths)
    raise ValueError(f"unknown branch kind {kind!r}; allowed: {', '.join(BRANCH_KINDS)}")
