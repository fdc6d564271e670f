"""The compiler: gamma names, modes, per-block overrides, pruning."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import acezoo
from acezoo.archs.egnn import EGNNSpec
from acezoo.symmetry import get_symmetry


def batch():
    return get_symmetry("e3_points").example_input(torch.Generator().manual_seed(0), torch.float32)


def test_gammas_are_named_by_block_path() -> None:
    model = acezoo.compile_model(EGNNSpec(layers=3))
    assert list(model.named_gammas()) == [f"layers.{i}.{k}" for i in range(3) for k in ("x", "h")]
    assert all(g.item() == 1.0 for g in model.named_gammas().values())


def test_strict_mode_has_no_branches() -> None:
    model = acezoo.compile_model(EGNNSpec(), acezoo.ConstraintBudget(mode="strict"))
    assert model.named_gammas() == {}
    assert not any(isinstance(m, acezoo.Relaxed) for m in model.modules())
    relaxed = acezoo.compile_model(EGNNSpec())
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in relaxed.prune().parameters())


def test_per_block_override_keeps_last_layer_strict() -> None:
    budget = acezoo.ConstraintBudget(mode="resilient", blocks={"layers.3.*": {"mode": "strict"}, "layers.0.x": {"init_gamma": 0.25, "rho": 4.0}})
    model = acezoo.compile_model(EGNNSpec(), budget)
    names = list(model.named_gammas())
    assert names == [f"layers.{i}.{k}" for i in range(3) for k in ("x", "h")]
    assert model.gamma_values()["layers.0.x"] == 0.25 and model.plan["layers.0.x"].rho == 4.0
    assert model.plan["layers.1.h"].mode == "resilient" and model.plan["layers.1.h"].rho == 1.0


def test_parameter_counts_match_the_pruned_copy() -> None:
    model = acezoo.compile_model(EGNNSpec())
    counts = model.parameter_counts()
    assert counts["full"] == sum(p.numel() for p in model.parameters())
    assert counts["pruned"] == sum(p.numel() for p in model.prune().parameters()) < counts["full"]


def test_schedule_gammas_are_not_trainable() -> None:
    model = acezoo.compile_model(EGNNSpec(), acezoo.ConstraintBudget(mode="schedule"))
    assert all(not g.requires_grad for g in model.named_gammas().values())


def test_prune_equals_equivariant_only_mode_exactly() -> None:
    torch.manual_seed(0)
    model = acezoo.compile_model(EGNNSpec()).eval()
    x = batch()
    with model.equivariant_only():
        ref = model(x)
    full = model(x)
    assert model.relaxed_blocks()["layers.0.x"].equivariant_only is False  # context restored
    pruned = model.prune()
    assert torch.equal(pruned(x), ref)
    assert not torch.equal(full, ref)
    assert isinstance(pruned, nn.Module) and not any(isinstance(m, acezoo.Relaxed) for m in pruned.modules())
    assert model.relaxed_blocks(), "prune() must not modify the relaxed model"


def test_relaxed_block_combines_tuples() -> None:
    class Pair(nn.Module):
        def __init__(self, s: float) -> None:
            super().__init__()
            self.s = s

        def forward(self, a, b):  # noqa: ANN001
            return a * self.s, b * self.s

    block = acezoo.Relaxed(Pair(1.0), Pair(2.0), init_gamma=0.5)
    a, b = block(torch.ones(2), torch.full((2,), 3.0))
    assert torch.equal(a, torch.full((2,), 2.0)) and torch.equal(b, torch.full((2,), 6.0))
    with pytest.raises(TypeError, match="tensors or tuples"):
        acezoo.Relaxed(nn.Identity(), nn.Identity())("text")
