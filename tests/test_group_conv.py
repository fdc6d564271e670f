"""Exact equivariance of the p4 / p4m group convolutions (acezoo.nn.group_conv), in float64."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from acezoo.nn.group_conv import (
    GroupBatchNorm,
    GroupConv2d,
    LiftingConv2d,
    act_on_group_features,
    act_on_image,
    get_group,
    group_pool,
)

B, C, H = 2, 3, 9
TOL = 1e-10
GROUPS = ["C4", "D4"]
KERNELS = [3, 5]


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().max())


def _image(seed: int = 0, channels: int = C) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, channels, H, H, generator=g, dtype=torch.float64)


def _features(group: str, seed: int = 0, channels: int = C) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, channels, get_group(group).order, H, H, generator=g, dtype=torch.float64)


def _randomised_bn(channels: int, group: str) -> GroupBatchNorm:
    """An eval-mode batch norm with non-trivial running statistics and affine parameters."""
    torch.manual_seed(3)
    bn = GroupBatchNorm(channels, group).double().eval()
    with torch.no_grad():
        bn.bn.running_mean.uniform_(-1.0, 1.0)
        bn.bn.running_var.uniform_(0.5, 2.0)
        bn.bn.weight.uniform_(0.5, 1.5)
        bn.bn.bias.uniform_(-0.5, 0.5)
    return bn


class _Net(nn.Module):
    """lifting -> bn -> relu -> group conv -> group pool -> spatial mean: a G-invariant map."""

    def __init__(self, group: str, k: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.lift = LiftingConv2d(C, 4, k, group).double()
        self.bn = _randomised_bn(4, group)
        self.gconv = GroupConv2d(4, 5, k, group).double()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return group_pool(self.gconv(torch.relu(self.bn(self.lift(x)))), "max")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(-2, -1))


# --------------------------------------------------------------------------- the group


@pytest.mark.parametrize("name", GROUPS)
def test_cayley_table_matches_the_action_on_images(name: str) -> None:
    grp = get_group(name)
    assert grp.order == (4 if name == "C4" else 8)
    assert grp.elements[0] == (0, 0)
    x = _image()
    for g in range(grp.order):
        assert int(grp.cayley[g, grp.inverse[g]]) == 0 and int(grp.cayley[grp.inverse[g], g]) == 0
        for h in range(grp.order):
            lhs = act_on_image(act_on_image(x, h), g)
            assert torch.equal(lhs, act_on_image(x, int(grp.cayley[g, h])))
    # every row of the Cayley table is a permutation (group axioms)
    assert all(sorted(row.tolist()) == list(range(grp.order)) for row in grp.cayley)


def test_element_convention() -> None:
    x = _image()
    assert torch.equal(act_on_image(x, 1), torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.equal(act_on_image(x, (3, 1)), torch.rot90(torch.flip(x, dims=(-1,)), 3, dims=(-2, -1)))
    assert torch.equal(act_on_image(x, 5), act_on_image(x, (1, 1)))


@pytest.mark.parametrize("name", GROUPS)
def test_action_on_group_features_is_a_left_action(name: str) -> None:
    grp = get_group(name)
    f = _features(name)
    for g in range(grp.order):
        for h in range(grp.order):
            lhs = act_on_group_features(act_on_group_features(f, h), g)
            assert torch.equal(lhs, act_on_group_features(f, int(grp.cayley[g, h])))


def test_bad_group_name() -> None:
    with pytest.raises(ValueError, match=r"unknown group 'C8'; allowed names: C4, D4"):
        get_group("C8")
    with pytest.raises(ValueError, match="unknown group"):
        LiftingConv2d(1, 1, 3, "p4")


@pytest.mark.parametrize("k", [0, 2, 4])
def test_bad_kernel_size(k: int) -> None:
    with pytest.raises(ValueError, match="kernel_size must be a positive odd integer"):
        LiftingConv2d(1, 1, k, "C4")
    with pytest.raises(ValueError, match="kernel_size must be a positive odd integer"):
        GroupConv2d(1, 1, k, "D4")


# --------------------------------------------------------------------------- the layers


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("k", KERNELS)
def test_lifting_conv_is_equivariant(name: str, k: int) -> None:
    torch.manual_seed(0)
    layer = LiftingConv2d(C, 4, k, name).double()
    x = _image()
    y = layer(x)
    assert y.shape == (B, 4, get_group(name).order, H, H)
    for g in range(get_group(name).order):
        assert _err(layer(act_on_image(x, g)), act_on_group_features(y, g)) < TOL


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("k", KERNELS)
def test_lifting_conv_valid_padding_is_equivariant(name: str, k: int) -> None:
    torch.manual_seed(0)
    layer = LiftingConv2d(C, 2, k, name, padding="valid", bias=False).double()
    x = _image()
    y = layer(x)
    assert y.shape[-2:] == (H - k + 1, H - k + 1)
    for g in range(get_group(name).order):
        assert _err(layer(act_on_image(x, g)), act_on_group_features(y, g)) < TOL


def test_lifting_matches_explicit_convolutions() -> None:
    torch.manual_seed(0)
    layer = LiftingConv2d(C, 2, 3, "D4").double()
    x = _image()
    y = layer(x)
    for c in range(2):
        for g in range(8):
            w = act_on_image(layer.weight[c : c + 1], g)
            ref = torch.nn.functional.conv2d(x, w, layer.bias[c : c + 1], padding=1)[:, 0]
            assert _err(y[:, c, g], ref) < 1e-12


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("k", KERNELS)
def test_group_conv_is_equivariant(name: str, k: int) -> None:
    torch.manual_seed(0)
    layer = GroupConv2d(C, 4, k, name).double()
    f = _features(name)
    y = layer(f)
    assert y.shape == (B, 4, get_group(name).order, H, H)
    for g in range(get_group(name).order):
        assert _err(layer(act_on_group_features(f, g)), act_on_group_features(y, g)) < TOL


def test_group_conv_matches_explicit_sum() -> None:
    """``out[:, c, g] = sum_{d, h} f[:, d, h] * (g . W[c, d, g^{-1} h])`` written out by hand."""
    grp = get_group("D4")
    torch.manual_seed(0)
    layer = GroupConv2d(2, 2, 3, grp).double()
    f = _features("D4", channels=2)
    y = layer(f)
    for c in range(2):
        for g in range(8):
            ref = layer.bias[c].expand(B, H, H).clone()
            for d in range(2):
                for h in range(8):
                    w = act_on_image(layer.weight[c, d, int(grp.cayley[grp.inverse[g], h])], g)
                    ref = ref + torch.nn.functional.conv2d(f[:, d : d + 1, h], w[None, None], padding=1)[:, 0]
            assert _err(y[:, c, g], ref) < 1e-12


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("k", KERNELS)
def test_group_conv_parameter_count(name: str, k: int) -> None:
    G = get_group(name).order
    n = sum(p.numel() for p in GroupConv2d(3, 5, k, name).parameters())
    assert n == 5 * 3 * G * k * k + 5
    n = sum(p.numel() for p in GroupConv2d(3, 5, k, name, bias=False).parameters())
    assert n == 5 * 3 * G * k * k


@pytest.mark.parametrize("name", GROUPS)
def test_batch_norm_is_equivariant(name: str) -> None:
    f = _features(name)
    train_bn = GroupBatchNorm(C, name).double().train()
    eval_bn = _randomised_bn(C, name)
    for bn in (train_bn, eval_bn):
        y = bn(f)
        for g in range(get_group(name).order):
            assert _err(bn(act_on_group_features(f, g)), act_on_group_features(y, g)) < TOL
    # statistics are shared over the group axis: one mean per channel
    assert train_bn.bn.running_mean.shape == (C,)


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_group_pool_is_image_equivariant(name: str, reduce: str) -> None:
    f = _features(name)
    y = group_pool(f, reduce)
    assert y.shape == (B, C, H, H)
    for g in range(get_group(name).order):
        assert _err(group_pool(act_on_group_features(f, g), reduce), act_on_image(y, g)) < TOL
    with pytest.raises(ValueError, match="reduce must be"):
        group_pool(f, "sum")


# --------------------------------------------------------------------------- the composition


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("k", KERNELS)
def test_network_is_invariant(name: str, k: int) -> None:
    net = _Net(name, k)
    x = _image(seed=7)
    y, feats = net(x), net.features(x)
    assert y.shape == (B, 5)
    for g in range(get_group(name).order):
        xg = act_on_image(x, g)
        assert _err(net(xg), y) < TOL
        assert _err(net.features(xg), act_on_image(feats, g)) < TOL


@pytest.mark.parametrize("k", KERNELS)
def test_c4_is_not_flip_equivariant(k: int) -> None:
    """The test can fail: C4 layers see a flipped image as a different image; D4 layers do not."""
    x = _image(seed=7)
    flip = (0, 1)
    net = _Net("C4", k)
    assert _err(net(act_on_image(x, flip)), net(x)) > 1e-3
    assert _err(net.features(act_on_image(x, flip)), act_on_image(net.features(x), flip)) > 1e-3
    # but C4 is still exact for rotations, and D4 for the flip
    assert _err(net(act_on_image(x, 1)), net(x)) < TOL
    assert _err(_Net("D4", k)(act_on_image(x, flip)), _Net("D4", k)(x)) < TOL
