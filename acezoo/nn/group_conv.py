r"""Exact group convolutions for the wallpaper groups p4 (C4) and p4m (D4), in plain torch.

Group elements
--------------
An element is a pair ``(r, m)`` with ``r in {0, 1, 2, 3}`` and ``m in {0, 1}``. It acts on an
image (the last two dims of a tensor) as

.. math::

    g = (r, m): \quad x \mapsto \mathrm{rot90}^r(\mathrm{flip}^m(x)),

where ``rot90`` is ``torch.rot90(x, 1, dims=(-2, -1))`` (a 90 degree counter-clockwise turn)
and ``flip`` is ``torch.flip(x, dims=(-1,))`` (applied first). Since
``flip . rot90 . flip = rot90^{-1}``, the product is

.. math::

    (r_1, m_1)(r_2, m_2) = (r_1 + (-1)^{m_1} r_2 \bmod 4,\ m_1 \oplus m_2),

and ``act_on_image(act_on_image(x, h), g) == act_on_image(x, g h)``. Elements are indexed
``index = r + 4 m``, so C4 is the prefix ``0..3`` of D4 and an index means the same
transformation in both groups (index 0 is the identity).

Group feature maps
------------------
A group feature map is a tensor ``f`` of shape ``(B, C, G, H, W)`` (``G = |group|``, square
``H == W``), read as a function ``f(h, x)`` of a group element ``h`` and a pixel ``x``. The
group acts on it by moving pixels *and* permuting the group axis by left multiplication:

.. math::

    (T_u f)(h, x) = f(u^{-1} h,\ u^{-1} x), \qquad
    \text{i.e.}\quad (T_u f)[:, :, u h] = \mathrm{act\_on\_image}(f[:, :, h], u),

which :func:`act_on_group_features` implements. All layers here satisfy, exactly (up to
floating-point round-off),

* ``LiftingConv2d(act_on_image(x, u)) == act_on_group_features(LiftingConv2d(x), u)``,
* ``GroupConv2d(act_on_group_features(f, u)) == act_on_group_features(GroupConv2d(f), u)``,
* ``GroupBatchNorm`` and pointwise nonlinearities commute with ``act_on_group_features``,
* ``group_pool(act_on_group_features(f, u)) == act_on_image(group_pool(f), u)``.

Filters
-------
``F.conv2d`` is a cross-correlation. For an odd ``k x k`` filter centred on its middle pixel
and symmetric ("same" or integer) zero padding on a square image,
``act_on_image(x, u) * W == act_on_image(x * act_on_image(W, u^{-1}), u)``. Hence

* lifting: ``out[:, c, g] = x * (g . W_c)``;
* group conv: ``out[:, c, g] = sum_{d, h} f[:, d, h] * (g . W[c, d, g^{-1} h])``,

where ``g . W`` is :func:`act_on_image` applied to the spatial filter dims. Both layers stack
the transformed filters into one bank and call ``F.conv2d`` once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Group",
    "GROUP_NAMES",
    "get_group",
    "act_on_image",
    "act_on_group_features",
    "LiftingConv2d",
    "GroupConv2d",
    "GroupBatchNorm",
    "group_pool",
]

GROUP_NAMES: tuple[str, ...] = ("C4", "D4")


def _compose(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """``(r1, m1)(r2, m2) = (r1 + (-1)^m1 r2 mod 4, m1 xor m2)``."""
    (r1, m1), (r2, m2) = a, b
    return ((r1 + (r2 if m1 == 0 else -r2)) % 4, m1 ^ m2)


@dataclass(frozen=True, eq=False)
class Group:
    """A finite subgroup of D4 acting on square images.

    Attributes:
        name: ``"C4"`` or ``"D4"``.
        elements: the pairs ``(r, m)``; element ``i`` is ``elements[i]`` (``i = r + 4 m``).
        cayley: ``cayley[g, h]`` is the index of the product ``g h`` (LongTensor ``(G, G)``).
        inverse: ``inverse[g]`` is the index of ``g^{-1}`` (LongTensor ``(G,)``).
    """

    name: str
    elements: tuple[tuple[int, int], ...]
    cayley: torch.Tensor = field(repr=False)
    inverse: torch.Tensor = field(repr=False)

    @property
    def order(self) -> int:
        """The number of elements ``|G|``."""
        return len(self.elements)

    def act_on_image(self, x: torch.Tensor, g: int) -> torch.Tensor:
        """:func:`act_on_image` with element index ``g`` of this group."""
        return act_on_image(x, self.elements[g])

    def act_on_group_features(self, x: torch.Tensor, g: int) -> torch.Tensor:
        """:func:`act_on_group_features` with this group."""
        return act_on_group_features(x, g, self)


def _make_group(name: str) -> Group:
    flips = (0,) if name == "C4" else (0, 1)
    elements = tuple((r, m) for m in flips for r in range(4))
    index = {e: i for i, e in enumerate(elements)}
    n = len(elements)
    cayley = torch.tensor([[index[_compose(a, b)] for b in elements] for a in elements], dtype=torch.long)
    inverse = torch.tensor([int((cayley[g] == 0).nonzero()[0, 0]) for g in range(n)], dtype=torch.long)
    return Group(name=name, elements=elements, cayley=cayley, inverse=inverse)


@lru_cache(maxsize=None)
def _cached_group(name: str) -> Group:
    return _make_group(name)


def get_group(name: str | Group) -> Group:
    """The group called ``name`` (``"C4"`` for p4, ``"D4"`` for p4m); a :class:`Group` passes through."""
    if isinstance(name, Group):
        return name
    key = str(name).upper()
    if key not in GROUP_NAMES:
        raise ValueError(f"unknown group {name!r}; allowed names: {', '.join(GROUP_NAMES)}")
    return _cached_group(key)


def _as_pair(g: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(g, tuple):
        r, m = g
        if m not in (0, 1):
            raise ValueError(f"flip bit must be 0 or 1, got {m}")
        return int(r) % 4, int(m)
    g = int(g)
    if not 0 <= g < 8:
        raise ValueError(f"group element index must be in 0..7 (index = r + 4 m), got {g}")
    return g % 4, g // 4


def act_on_image(x: torch.Tensor, g: int | tuple[int, int]) -> torch.Tensor:
    """Apply ``g = (r, m)`` (or its index ``r + 4 m``) to the last two dims: ``rot90^r(flip^m(x))``."""
    r, m = _as_pair(g)
    if m:
        x = torch.flip(x, dims=(-1,))
    if r:
        x = torch.rot90(x, r, dims=(-2, -1))
    return x


def _group_of(x: torch.Tensor, group: str | Group | None) -> Group:
    if group is not None:
        grp = get_group(group)
    elif x.dim() >= 3 and x.shape[-3] in (4, 8):
        grp = get_group("C4" if x.shape[-3] == 4 else "D4")
    else:
        raise ValueError(f"cannot infer the group from shape {tuple(x.shape)}; pass group=")
    if x.dim() < 3 or x.shape[-3] != grp.order:
        raise ValueError(f"expected a group axis of size {grp.order} at dim -3, got shape {tuple(x.shape)}")
    return grp


def act_on_group_features(x: torch.Tensor, g: int, group: str | Group | None = None) -> torch.Tensor:
    r"""``(T_g f)(h, p) = f(g^{-1} h, g^{-1} p)`` on ``(..., G, H, W)`` tensors.

    The group axis is dim -3; ``group`` defaults to C4 for ``G = 4`` and D4 for ``G = 8``.
    Equivalently ``out[..., g h, :, :] = act_on_image(x[..., h, :, :], g)``.
    """
    grp = _group_of(x, group)
    if not 0 <= int(g) < grp.order:
        raise ValueError(f"element index {g} out of range for {grp.name} (order {grp.order})")
    perm = grp.cayley[grp.inverse[int(g)]].to(x.device)  # perm[h] = g^{-1} h
    return act_on_image(x.index_select(x.dim() - 3, perm), grp.elements[int(g)])


def _check_kernel(kernel_size: int) -> int:
    k = int(kernel_size)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer (exact equivariance needs a centred filter), got {kernel_size}")
    return k


def _check_padding(padding: str | int) -> str | int:
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid' or a non-negative int, got {padding!r}")
        return padding
    if int(padding) < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    return int(padding)


def _init_(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int) -> None:
    """The default ``nn.Conv2d`` initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    nn.init.uniform_(weight, -bound, bound)
    if bias is not None:
        nn.init.uniform_(bias, -bound, bound)


class LiftingConv2d(nn.Module):
    r"""Lifting convolution Z^2 -> G: ``out[:, c, g] = x * (g . W_c)``.

    Input ``(B, C_in, H, W)``, output ``(B, C_out, G, H', W')``; one bias per output channel,
    shared over the group axis. Equivariance:
    ``self(act_on_image(x, u)) == act_on_group_features(self(x), u)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, group: str | Group,
                 padding: str | int = "same", bias: bool = True) -> None:
        super().__init__()
        self.group = get_group(group)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _check_kernel(kernel_size)
        self.padding = _check_padding(padding)
        k = self.kernel_size
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, k, k))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        _init_(self.weight, self.bias, self.in_channels * k * k)

    def filter_bank(self) -> torch.Tensor:
        """The stacked bank ``(C_out * G, C_in, k, k)``; row ``c * G + g`` is ``g . W_c``."""
        bank = torch.stack([self.group.act_on_image(self.weight, g) for g in range(self.group.order)], dim=1)
        return bank.reshape(-1, self.in_channels, self.kernel_size, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G = self.group.order
        bias = None if self.bias is None else self.bias.repeat_interleave(G)
        out = F.conv2d(x, self.filter_bank(), bias, padding=self.padding)
        return out.reshape(out.shape[0], self.out_channels, G, out.shape[-2], out.shape[-1])

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"group={self.group.name}, padding={self.padding!r}, bias={self.bias is not None}")


class GroupConv2d(nn.Module):
    r"""Group convolution G -> G: ``out[:, c, g] = sum_{d, h} f[:, d, h] * (g . W[c, d, g^{-1} h])``.

    Weight ``(C_out, C_in, G, k, k)``; input ``(B, C_in, G, H, W)``, output
    ``(B, C_out, G, H', W')``; one bias per output channel, shared over the group axis.
    Equivariance: ``self(act_on_group_features(f, u)) == act_on_group_features(self(f), u)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, group: str | Group,
                 bias: bool = True, padding: str | int = "same") -> None:
        super().__init__()
        self.group = get_group(group)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _check_kernel(kernel_size)
        self.padding = _check_padding(padding)
        G, k = self.group.order, self.kernel_size
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, G, k, k))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        _init_(self.weight, self.bias, self.in_channels * G * k * k)
        # _perm[g, h] = g^{-1} h: the input group index read by output copy g at slot h.
        self.register_buffer("_perm", self.group.cayley[self.group.inverse], persistent=False)

    def filter_bank(self) -> torch.Tensor:
        """The stacked bank ``(C_out * G, C_in * G, k, k)``; block ``(c g, d h)`` is ``g . W[c, d, g^{-1} h]``."""
        G, k = self.group.order, self.kernel_size
        bank = torch.stack(
            [self.group.act_on_image(self.weight[:, :, self._perm[g]], g) for g in range(G)], dim=1
        )  # (C_out, G, C_in, G, k, k)
        return bank.reshape(self.out_channels * G, self.in_channels * G, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G = self.group.order
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] != G:
            raise ValueError(f"expected input (B, {self.in_channels}, {G}, H, W), got {tuple(x.shape)}")
        B = x.shape[0]
        bias = None if self.bias is None else self.bias.repeat_interleave(G)
        out = F.conv2d(x.reshape(B, self.in_channels * G, x.shape[-2], x.shape[-1]), self.filter_bank(),
                       bias, padding=self.padding)
        return out.reshape(B, self.out_channels, G, out.shape[-2], out.shape[-1])

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"group={self.group.name}, padding={self.padding!r}, bias={self.bias is not None}")


class GroupBatchNorm(nn.Module):
    """Batch norm over ``(B, C, G, H, W)`` with statistics and affine parameters shared over ``G``.

    Each channel is normalised with its mean and variance over ``(B, G, H, W)``, which a
    permutation of ``G`` and of the pixels leaves unchanged, so the layer is equivariant.
    """

    def __init__(self, channels: int, group: str | Group, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True) -> None:
        super().__init__()
        self.group = get_group(group)
        self.bn = nn.BatchNorm3d(channels, eps=eps, momentum=momentum, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != self.group.order:
            raise ValueError(f"expected input (B, C, {self.group.order}, H, W), got {tuple(x.shape)}")
        return self.bn(x)


def group_pool(x: torch.Tensor, reduce: str = "max") -> torch.Tensor:
    """Pool ``(B, C, G, H, W) -> (B, C, H, W)`` over the group axis (``"max"`` or ``"mean"``).

    ``group_pool(act_on_group_features(f, u)) == act_on_image(group_pool(f), u)``.
    """
    if x.dim() != 5:
        raise ValueError(f"expected a (B, C, G, H, W) tensor, got shape {tuple(x.shape)}")
    if reduce == "max":
        return x.amax(dim=2)
    if reduce == "mean":
        return x.mean(dim=2)
    raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
