"""`model.node_features`: extra per-node scalars (MoCap's height, the EGNO protocol)."""
from __future__ import annotations

import math

import pytest
import torch

from acezoo.compiler import compile_model
from acezoo.registry import get_arch
from acezoo.symmetry import E3Element, E3Points, random_orthogonal

SMALL = {"egnn": dict(hidden=16, branch_hidden=16, layers=2), "se3_transformer": dict(layers=2, channels=8)}


def _model(arch: str, **fields):
    spec = get_arch(arch).spec(arch=arch, **SMALL[arch], **fields)
    return compile_model(spec).double().eval()


def _with_height(batch):
    batch.height = batch.pos[:, 1:2] / 10
    return batch


def _moved(batch, g: E3Element):
    moved = E3Points().act_input(batch, g)
    moved.height = moved.pos[:, 1:2] / 10  # the height of the moved joints
    return moved


def _about_vertical(angle: float, n: int) -> E3Element:
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)
    return E3Element(rot, torch.tensor([0.7, 0.0, -1.3], dtype=torch.float64), torch.arange(n))


@pytest.mark.parametrize("arch", list(SMALL))
def test_height_feature_keeps_the_vertical_symmetries_and_breaks_the_others(arch: str) -> None:
    gen = torch.Generator().manual_seed(0)
    batch = _with_height(E3Points().example_input(gen))
    model = _model(arch, node_features=["height"])
    with torch.no_grad(), model.equivariant_only():
        out = model(batch)
        g = _about_vertical(0.9, batch.pos.shape[0])
        kept = (model(_moved(batch, g)) - E3Points().act_output(out, g)).abs().max().item()
        g = E3Element(random_orthogonal(gen, torch.float64, reflect=False), torch.zeros(3, dtype=torch.float64),
                      torch.arange(batch.pos.shape[0]))
        broken = (model(_moved(batch, g)) - E3Points().act_output(out, g)).abs().max().item()
        # the feature matters: a different height changes the output
        other = batch.clone()
        other.height = other.height + 1.0
        changed = (model(other) - out).abs().max().item()
    assert kept < 1e-9
    assert broken > 1e-6 and changed > 1e-6


@pytest.mark.parametrize("arch", list(SMALL))
def test_missing_or_misshapen_node_feature_is_a_clear_error(arch: str) -> None:
    batch = E3Points().example_input(torch.Generator().manual_seed(1))
    model = _model(arch, node_features=["height"])
    with pytest.raises(ValueError, match="model.node_features: the batch has no per-node field 'height'"):
        model(batch)
    batch.height = batch.pos  # (n, 3)
    with pytest.raises(ValueError, match="expected .*one scalar per node"):
        model(batch)


@pytest.mark.parametrize("arch", list(SMALL))
def test_node_features_are_for_dynamics_inputs_only(arch: str) -> None:
    with pytest.raises(Exception, match="node_features needs node_input `velocity`"):
        get_arch(arch).spec(arch=arch, node_input="atoms", edge_input="none", node_features=["height"],
                            **({"output": "graph"} if arch == "egnn" else {}))
