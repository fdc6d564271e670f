"""Small equivariant building blocks on e3nn irreps features.

Features are laid out as e3nn does: for ``irreps = c_0 x 0e + c_1 x 1o + ...`` a tensor
``(..., irreps.dim)`` holds, block after block, ``c_l`` copies of a ``2l+1`` vector.
"""
from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

__all__ = ["degree_irreps", "EquivariantLayerNorm", "split_heads", "merge_heads"]


def degree_irreps(channels: list[int]) -> o3.Irreps:
    """``c_0 x 0e + c_1 x 1o + c_2 x 2e + ...`` for ``channels = [c_0, c_1, ...]``.

    Parity ``(-1)^l`` is the parity of spherical harmonics of a polar vector, so tensor
    products of these features with ``Y(r_ij)`` stay among them and the network is
    equivariant to reflections as well as rotations (E(3), not only SE(3)).
    """
    return o3.Irreps([(c, (l, (-1) ** l)) for l, c in enumerate(channels)])


class EquivariantLayerNorm(nn.Module):
    """Layer norm that commutes with rotations.

    Scalars (l = 0) get an ordinary layer norm (centre, scale, affine). For l > 0 the
    vectors are divided by the root-mean-square of their norms over channels,

        x_{c,l} <- w_{c,l} * x_{c,l} / sqrt(mean_c |x_{c,l}|^2 / (2l+1) + eps),

    which uses only rotation invariants, so ``norm(D x) = D norm(x)``.
    """

    def __init__(self, irreps: o3.Irreps, eps: float = 1e-5) -> None:
        super().__init__()
        self.irreps = o3.Irreps(irreps)
        self.eps = eps
        self.weights = nn.ParameterList(nn.Parameter(torch.ones(mul)) for mul, _ in self.irreps)
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(mul if ir.l == 0 else 0)) for mul, ir in self.irreps
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for (mul, ir), sl, w, b in zip(self.irreps, self.irreps.slices(), self.weights, self.biases):
            block = x[..., sl].reshape(*x.shape[:-1], mul, ir.dim)
            if ir.l == 0:
                block = block - block.mean(dim=-2, keepdim=True)
            scale = block.pow(2).mean(dim=(-2, -1), keepdim=True).add(self.eps).rsqrt()
            block = block * scale * w[:, None]
            if ir.l == 0:
                block = block + b[:, None]
            out.append(block.reshape(*x.shape[:-1], mul * ir.dim))
        return torch.cat(out, dim=-1)


def split_heads(x: torch.Tensor, irreps: o3.Irreps, heads: int) -> list[torch.Tensor]:
    """Per irreps block, ``(..., heads, mul // heads, 2l+1)``: channel ``u`` belongs to head ``u // (mul/heads)``."""
    return [
        x[..., sl].reshape(*x.shape[:-1], heads, mul // heads, ir.dim)
        for (mul, ir), sl in zip(irreps, irreps.slices())
    ]


def merge_heads(blocks: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`split_heads`."""
    return torch.cat([b.reshape(*b.shape[:-3], -1) for b in blocks], dim=-1)
