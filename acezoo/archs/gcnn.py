"""Group-equivariant CNN (Cohen & Welling 2016) for p4 (C4) and p4m (D4), relaxed with ACE.

A lifting convolution maps an image ``(B, C, H, W)`` to group feature maps ``(B, C, G, H, W)``;
group convolutions map those to group feature maps (see :mod:`acezoo.nn.group_conv` for the
exact group action). Each conv layer is relaxed by a parallel *ordinary* ``Conv2d`` on the same
input (flattened over the group axis) with the same output shape, evaluated fused with the
group convolution as one conv (:class:`RelaxedGroupConv`)::

    f_l <- ReLU( BN_G( conv_G(f_{l-1}) + gamma_l * conv(f_{l-1}) ) )

``BN_G`` shares its statistics over the group axis. Heads: ``classify`` pools over the group
(max or mean) and over space, then a linear layer gives logits, which are *invariant* under
the group; ``dense`` applies a group convolution to ``out_channels`` and averages over the
group, giving an image that transforms like the input (*equivariant*), plus the input itself
when ``residual`` (predict the change). Block names: ``lift``, ``layers.<i>``. The input is an
image tensor ``(B, C, H, W)``, or a batch holding it as ``x`` (the data sets' ``ImageBatch``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from acezoo.archs.specs import GCNNSpec
from acezoo.nn.group_conv import GroupBatchNorm, GroupConv2d, LiftingConv2d, get_group, group_pool
from acezoo.nn.relaxed import Relaxed

__all__ = ["GCNNSpec", "GCNN", "RelaxedGroupConv", "build_gcnn"]


def branch_conv(c_in: int, c_out: int, k: int, kind: str = "plain") -> nn.Conv2d:
    """The conv of a branch: plain, or with its weight spectrally normalised as the
    ``(c_out, c_in * k * k)`` matrix (``bounded``; ``bounded_fixed``: and no bias)."""
    if kind in ("bounded", "bounded_fixed"):
        return spectral_norm(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=kind == "bounded"))
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


class LiftingBranch(nn.Module):
    """Symmetry-breaking branch of the lifting layer: an ordinary ``Conv2d`` to ``C_out * G`` maps."""

    def __init__(self, c_in: int, c_out: int, order: int, k: int, kind: str = "plain") -> None:
        super().__init__()
        self.conv = branch_conv(c_in, c_out * order, k, kind)
        self.c_out, self.order = c_out, order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y.view(y.shape[0], self.c_out, self.order, *y.shape[-2:])


class GroupBranch(nn.Module):
    """Symmetry-breaking branch of a group conv: an ordinary ``Conv2d`` over all ``C_in * G``
    input maps (flattened channel-major, as the group conv's filter bank reads them)."""

    def __init__(self, c_in: int, c_out: int, order: int, k: int, kind: str = "plain") -> None:
        super().__init__()
        self.conv = branch_conv(c_in * order, c_out * order, k, kind)
        self.c_out, self.order = c_out, order

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        y = self.conv(f.flatten(1, 2))
        return y.view(y.shape[0], self.c_out, self.order, *y.shape[-2:])


class RelaxedGroupConv(Relaxed):
    """A relaxed (lifting or group) convolution evaluated as ONE convolution.

    The equivariant conv and its branch are both convolutions of the same input with the same
    output layout, so by linearity

        conv(x, W_G) + gamma * conv(x, W_b) = conv(x, W_G + gamma * W_b),

    and ACE costs one filter-bank addition per step instead of a second convolution.
    ``equivariant_only`` and pruning (which keeps ``eq``) work as for every :class:`Relaxed`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.equivariant_only:
            return self.eq(x)
        eq, branch = self.eq, self.neq.conv
        G = eq.group.order
        bank = eq.filter_bank() + self.gamma * branch.weight
        bias = None if branch.bias is None else branch.bias * self.gamma
        if eq.bias is not None:
            eq_bias = eq.bias.repeat_interleave(G)
            bias = eq_bias if bias is None else bias + eq_bias
        flat = x if x.dim() == 4 else x.flatten(1, 2)
        out = torch.nn.functional.conv2d(flat, bank, bias, padding=eq.padding)
        return out.view(out.shape[0], eq.out_channels, G, *out.shape[-2:])


class GCNN(nn.Module):
    """Lifting + group convolutions (each relaxed), group batch norm, ReLU, and a head."""

    def __init__(self, spec: GCNNSpec) -> None:
        super().__init__()
        self.spec = spec
        g, c, k = get_group(spec.group), spec.channels, spec.kernel_size
        self.lift = RelaxedGroupConv(LiftingConv2d(spec.in_channels, c, k, g),
                                     LiftingBranch(spec.in_channels, c, g.order, k, spec.branch))
        self.layers = nn.ModuleList(
            RelaxedGroupConv(GroupConv2d(c, c, k, g), GroupBranch(c, c, g.order, k, spec.branch)) for _ in range(spec.layers - 1)
        )
        self.norms = nn.ModuleList(GroupBatchNorm(c, g) for _ in range(spec.layers))
        if spec.head == "classify":
            self.out = nn.Linear(c, spec.num_classes)
        else:
            self.out = GroupConv2d(c, spec.out_channels, k, g)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Group feature maps ``(B, channels, G, H, W)`` after the last conv layer."""
        f = torch.relu(self.norms[0](self.lift(x)))
        for layer, norm in zip(self.layers, self.norms[1:]):
            f = torch.relu(norm(layer(f)))
        return f

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        """Logits ``(B, num_classes)`` or an image ``(B, out_channels, H, W)`` of ``batch``: an
        image tensor ``(B, in_channels, H, W)`` or a batch holding one as ``x``."""
        x = batch if isinstance(batch, torch.Tensor) else batch.x
        f = self.features(x)
        if self.spec.head == "classify":
            return self.out(group_pool(f, self.spec.pool).mean(dim=(-2, -1)))
        y = self.out(f).mean(dim=2)
        return x + y if self.spec.residual else y


def build_gcnn(spec: GCNNSpec) -> GCNN:
    """Group-equivariant CNN (p4 / p4m) with lifting and group convolutions (Cohen & Welling 2016)."""
    return GCNN(spec)
