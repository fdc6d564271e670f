"""Symmetry-breaking branches whose linear maps cannot grow.

ACE constrains the scalar ``gamma`` of ``f_eq(x) + gamma * f_neq(x)``. With an ordinary MLP as
``f_neq`` the product ``gamma * f_neq`` is unchanged when gamma shrinks and the branch's weights
grow, so a small gamma need not mean a small branch (and pruning it then changes the model).
Two branches close that escape, following the ACE authors' EGNO and SchNet code (every layer a
batch norm, then a spectrally normalised linear map, ``||W||_2 = 1`` by power iteration,
:func:`torch.nn.utils.parametrizations.spectral_norm`; SiLU in between):

- ``bounded``: the authors' form: the batch norm keeps its learnable per-feature scale and
  shift, and the linear maps their bias. The weight matrices cannot grow; the branch can still
  shrink (or grow) itself through the batch norm's scale.
- ``bounded_fixed``: no affine batch-norm parameters and no biases. The last layer maps
  ``z = BN(u)`` (unit variance per feature over the batch) by ``W`` with ``||W||_2 = 1``, so

      mean_batch ||f_neq(x)||^2 <= mean_batch ||z||^2 = d      (d: width of the last layer's input)

  whatever the weights: gamma alone sets the size of the symmetry breaking. (On N-body this
  pins gamma: the network adapts to a branch of fixed O(1) size faster than gamma can leave;
  see the README's ACE study.)
"""
from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from acezoo.config.fields import BRANCH_DESCRIPTION, BRANCH_KINDS, BranchKind

__all__ = ["BranchKind", "BRANCH_KINDS", "BRANCH_DESCRIPTION", "BoundedMLP", "branch_mlp", "bounded_linear"]



def bounded_linear(a: int, b: int, bias: bool = True, power_iterations: int = 1) -> nn.Module:
    """``x -> W x (+ b)`` with ``||W||_2 = 1`` (spectral normalisation)."""
    return spectral_norm(nn.Linear(a, b, bias=bias), n_power_iterations=power_iterations)


class BoundedMLP(nn.Sequential):
    """``BN -> SN-Linear -> SiLU -> BN -> SN-Linear ...`` through ``widths``; ``fixed``: batch
    norms without affine parameters and linear maps without bias (a fixed output scale)."""

    def __init__(self, widths: list[int], fixed: bool = False) -> None:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            if i > 0:
                layers.append(nn.SiLU())
            layers += [nn.BatchNorm1d(a, affine=not fixed), bounded_linear(a, b, bias=not fixed)]
        super().__init__(*layers)


def branch_mlp(kind: str, widths: list[int]) -> nn.Module:
    """The branch MLP of a point-cloud architecture: a plain :class:`~acezoo.nn.mlp.MLP` or a
    :class:`BoundedMLP` (``kind``: ``plain``, ``bounded`` or ``bounded_fixed``)."""
    from acezoo.nn.mlp import MLP

    if kind in ("bounded", "bounded_fixed"):
        return BoundedMLP(widths, fixed=kind == "bounded_fixed")
    if kind == "plain":
        return MLP(widths)
    raise ValueError(f"unknown branch kind {kind!r}; allowed: {', '.join(BRANCH_KINDS)}")
