"""Steerable O(3) features of degree <= 1 and their tensor products, with fused kernels.

A feature is a pair ``(s, v)``: ``s`` (N, c0) holds ``c0`` scalars (irreps ``0e``) and ``v``
(N, 3, c1) holds ``c1`` vectors (``1o``), component-major so that mixing channels is one
matrix product on the last axis. An attribute is ``(a, b)``: one scalar ``a`` (N, 1) and one
vector ``b`` (N, 3), e.g. the spherical harmonics ``Y^0, Y^1`` of an edge (:func:`sh_lmax1`).
``a`` may be a number, the same for every row (an edge's ``Y^0`` is the constant :data:`Y0`):
it is then folded into the (small) weight matrices instead of multiplying (N, c) tensors.

The fully connected tensor product ``(s, v) (x) (a, b) -> (s', v')`` onto degrees <= 1 has four
paths (``1o (x) 1o -> 1e`` leads outside the feature space and is left out):

    s' = a (W_ss^T s) + (1/sqrt 3) W_vs^T (v . b) + bias
    v' = (W_sv^T s) b^T + a (W_vv^T v)

(``v . b``: the dot product of each vector channel with ``b``.) Every path is O(3)-equivariant:
scalars times scalars and vectors times scalars commute with any orthogonal ``R``, and
``(R v) . (R b) = v . b``. This is e3nn's ``FullyConnectedTensorProduct`` (component
normalisation, element path normalisation) with the SEGNN authors' weight rescaling (weights
initialised as ``nn.Linear``, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, fan_in the number of
inputs of the output slot): kernel ``e3nn`` runs e3nn's own tensor product on the same
parameters and gives the same numbers to float round-off; kernel ``fused`` is four small
matrix products. Without an attribute (``(a, b) = (1, 0)``) the product is the equivariant
linear map ``s' = W_ss^T s + bias``, ``v' = W_vv^T v``.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import torch
from torch import nn

__all__ = ["Feature", "Kernel", "TensorProduct", "SwishGate", "sh_lmax1", "balanced_multiplicity", "flatten",
           "unflatten", "cat_features", "dot_b", "Y0", "INV_SQRT3"]

Feature = tuple[torch.Tensor, torch.Tensor]
Kernel = Literal["fused", "e3nn"]

Y0 = 1.0 / math.sqrt(4.0 * math.pi)
"""``Y^0`` in the integral normalisation (the sphere integral of ``Y^2`` is 1)."""
_Y1 = math.sqrt(3.0 / (4.0 * math.pi))
INV_SQRT3 = 1.0 / math.sqrt(3.0)
"""``1 / sqrt 3``: the constant of the ``1o (x) 1o -> 0e`` path (``v . b / sqrt 3``)."""


def sh_lmax1(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical harmonics ``(Y^0, Y^1)`` of the directions of ``r`` (M, 3), integral
    normalisation (as ``e3nn.o3.spherical_harmonics(..., normalize=True, normalization='integral')``):
    ``Y^0 = 1/sqrt(4 pi)``, ``Y^1 = sqrt(3 / (4 pi)) r / |r|`` (0 for ``r = 0``)."""
    norm = r.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return r.new_full((r.shape[0], 1), Y0), _Y1 * r / norm


def balanced_multiplicity(hidden: int) -> int:
    """Copies ``n`` of ``0e + 1o`` whose tensor product with ``0e + 1o`` (4 paths, ``4 n^2``
    weights) has at least the ``hidden^2`` weights of a linear layer on ``hidden`` scalars
    (the SEGNN authors' weight-balanced hidden irreps): ``n = ceil(hidden / 2)``."""
    return max(1, math.ceil(hidden / 2))


def flatten(x: Feature) -> torch.Tensor:
    """``(s, v)`` as one (N, c0 + 3 c1) tensor (e.g. for a symmetry-breaking MLP)."""
    s, v = x
    return torch.cat([s, v.flatten(1)], dim=-1)


def unflatten(t: torch.Tensor, c0: int, c1: int) -> Feature:
    """The inverse of :func:`flatten` (a split: its backward is one concatenation)."""
    s, v = torch.split(t, [c0, 3 * c1], dim=-1)
    return s, v.reshape(t.shape[0], 3, c1)


def dot_b(v: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``v . b`` per channel: ``v`` (M, 3, c), ``b`` (M, 3) -> (M, c): one broadcast product and a
    sum over the three components (fewer kernels forward and backward than three indexed
    multiply-adds or a batched product of 1 x 3 matrices)."""
    return (v * b.unsqueeze(2)).sum(dim=1)


def cat_features(*xs: Feature) -> Feature:
    """Channel-wise concatenation of features."""
    return torch.cat([x[0] for x in xs], dim=-1), torch.cat([x[1] for x in xs], dim=-1)


@lru_cache(maxsize=None)
def _act_norm(name: str) -> float:
    """e3nn's second-moment normalisation constant of an activation (1 / sqrt(E[f(z)^2]), z ~ N(0, 1))."""
    from e3nn.math import normalize2mom

    return float(normalize2mom({"silu": torch.nn.functional.silu, "sigmoid": torch.sigmoid}[name]).cst)


def _uniform(shape: tuple[int, int], fan_in: int) -> nn.Parameter:
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class TensorProduct(nn.Module):
    """``(s, v) (x) (a, b) -> (s', v')`` on degrees <= 1 (see the module docstring).

    Args:
        in_s, in_v: scalar and vector channels in.
        out_s, out_v: scalar and vector channels out.
        attr: whether there is an attribute ``(a, b)``; without one the map is linear.
        bias: a bias on the output scalars.
        kernel: ``fused`` (matrix products) or ``e3nn`` (e3nn's tensor product, same parameters).
    """

    def __init__(self, in_s: int, in_v: int, out_s: int, out_v: int, attr: bool = True, bias: bool = True,
                 kernel: Kernel = "fused") -> None:
        super().__init__()
        self.in_s, self.in_v, self.out_s, self.out_v, self.attr = in_s, in_v, out_s, out_v, attr
        fan_s = in_s + (in_v if attr else 0)  # inputs of each output scalar (one attribute copy per path)
        fan_v = in_v + (in_s if attr else 0)
        self.w_ss = _uniform((in_s, out_s), fan_s)
        self.w_vv = _uniform((in_v, out_v), fan_v)
        self.w_vs = _uniform((in_v, out_s), fan_s) if attr else None
        self.w_sv = _uniform((in_s, out_v), fan_v) if attr else None
        self.bias = _uniform((1, out_s), fan_s) if bias and out_s else None
        self._fan = (fan_s, fan_v)
        self.kernel = kernel
        self._e3nn_tp: nn.Module | None = None

    def forward(self, x: Feature, attr: tuple[torch.Tensor, torch.Tensor] | None = None) -> Feature:
        if self.kernel == "e3nn":
            return self._forward_e3nn(x, attr)
        s, v = x
        if not self.attr:
            s_out = s @ self.w_ss
            v_out = v @ self.w_vv
        else:
            a, b = attr
            vb = dot_b(v, INV_SQRT3 * b)  # the 1/sqrt 3 on the (M, 3) attribute, not on (M, out_s)
            sv = (s @ self.w_sv).unsqueeze(1)
            if isinstance(a, (int, float)):  # a constant: a W, not a * (N, c) products
                s_out = s @ (a * self.w_ss) if self.bias is None else torch.addmm(self.bias, s, a * self.w_ss)
                return torch.addmm(s_out, vb, self.w_vs), torch.addcmul(v @ (a * self.w_vv), sv, b.unsqueeze(2))
            s_ss = s @ self.w_ss
            s_out = (torch.addcmul(self.bias, a, s_ss) if self.bias is not None else a * s_ss) + vb @ self.w_vs
            return s_out, torch.addcmul(a.unsqueeze(2) * (v @ self.w_vv), sv, b.unsqueeze(2))
        if self.bias is not None:
            s_out = s_out + self.bias
        return s_out, v_out

    # ------------------------------------------------------------------ the e3nn kernel

    def _irreps(self) -> tuple[str, str, str]:
        def irreps(c0: int, c1: int) -> str:
            return " + ".join(p for p in ((f"{c0}x0e" if c0 else ""), (f"{c1}x1o" if c1 else "")) if p)

        return irreps(self.in_s, self.in_v), ("1x0e + 1x1o" if self.attr else "1x0e"), irreps(self.out_s, self.out_v)

    def _e3nn(self) -> nn.Module:
        if self._e3nn_tp is None:
            from e3nn import o3

            in1, in2, out = self._irreps()
            # not a registered submodule: it holds no parameters (ours are passed as `weight`)
            object.__setattr__(self, "_e3nn_tp", o3.FullyConnectedTensorProduct(
                in1, in2, out, internal_weights=False, shared_weights=True))
        return self._e3nn_tp

    def e3nn_weight(self) -> torch.Tensor:
        """Our parameters as the flat ``weight`` of e3nn's tensor product (instruction order,
        scaled by ``sqrt(fan_in)`` to undo e3nn's path normalisation)."""
        tp = self._e3nn()
        fan_s, fan_v = self._fan
        irreps_in1 = [ir.ir.l for ir in tp.irreps_in1]
        irreps_in2 = [ir.ir.l for ir in tp.irreps_in2]
        irreps_out = [ir.ir.l for ir in tp.irreps_out]
        table = {(0, 0, 0): self.w_ss, (0, 1, 1): self.w_sv, (1, 0, 1): self.w_vv, (1, 1, 0): self.w_vs}
        parts = []
        for ins in tp.instructions:
            key = (irreps_in1[ins.i_in1], irreps_in2[ins.i_in2], irreps_out[ins.i_out])
            fan = fan_s if key[2] == 0 else fan_v
            parts.append((table[key] * math.sqrt(fan)).reshape(-1))
        return torch.cat(parts)

    def _forward_e3nn(self, x: Feature, attr: tuple[torch.Tensor, torch.Tensor] | None) -> Feature:
        s, v = x
        n = s.shape[0]
        x1 = torch.cat([s, v.transpose(1, 2).reshape(n, -1)], dim=-1)  # e3nn: channel-major vectors
        if self.attr:
            a, b = attr
            x2 = torch.cat([b.new_full((n, 1), a) if isinstance(a, (int, float)) else a, b], dim=-1)
        else:
            x2 = s.new_ones(n, 1)
        out = self._e3nn()(x1, x2, self.e3nn_weight())
        s_out = out[:, :self.out_s]
        v_out = out[:, self.out_s:].reshape(n, self.out_v, 3).transpose(1, 2)
        if self.bias is not None:
            s_out = s_out + self.bias
        return s_out, v_out

    def extra_repr(self) -> str:
        return (f"{self.in_s}x0e + {self.in_v}x1o -> {self.out_s}x0e + {self.out_v}x1o, "
                f"attr={self.attr}, kernel={self.kernel}")


class SwishGate(nn.Module):
    """e3nn's gate with the SEGNN activations: ``(s, v)`` with ``s = [scalars, gates]`` (c0 + c1)
    -> ``(c_silu silu(scalars), v * c_sig sigmoid(gates))`` (``c``: e3nn's second-moment
    normalisation of each activation). Equivariant: the gates are scalars."""

    def __init__(self, scalars: int, gated: int) -> None:
        super().__init__()
        self.scalars, self.gated = scalars, gated
        self.c_silu, self.c_sig = _act_norm("silu"), _act_norm("sigmoid")

    def forward(self, x: Feature) -> Feature:
        s, v = x
        if not self.gated:
            return self.c_silu * torch.nn.functional.silu(s[:, :self.scalars]), v
        scalars, gates = torch.split(s, [self.scalars, self.gated], dim=-1)  # backward: one concatenation
        out_s = self.c_silu * torch.nn.functional.silu(scalars)
        return out_s, v * (self.c_sig * torch.sigmoid(gates)).unsqueeze(1)


class GatedTensorProduct(nn.Module):
    """A :class:`TensorProduct` onto ``out_s`` scalars, ``out_v`` gates and ``out_v`` vectors,
    then the :class:`SwishGate` (the SEGNN authors' ``O3TensorProductSwishGate``)."""

    def __init__(self, in_s: int, in_v: int, out_s: int, out_v: int, attr: bool = True,
                 kernel: Kernel = "fused") -> None:
        super().__init__()
        self.tp = TensorProduct(in_s, in_v, out_s + out_v, out_v, attr=attr, kernel=kernel)
        self.gate = SwishGate(out_s, out_v)

    def forward(self, x: Feature, attr: tuple[torch.Tensor, torch.Tensor] | None = None) -> Feature:
        return self.gate(self.tp(x, attr))


__all__ += ["GatedTensorProduct"]
