"""Every registered architecture, in every constraint mode, against its symmetry.

Parametrized over the registry: a newly registered architecture (with a symmetry from
``acezoo.symmetry``) is tested here with no new test code, on its default spec and on each
of its registered ``examples`` (other input modes and heads). In float64:
- the pruned model (and the equivariant-only mode) is equivariant to float precision under
  rotations, reflections, translations and node permutations, separately and combined;
- the full model's equivariance error is clearly > 0 when gamma != 0.
"""
from __future__ import annotations

import pytest
import torch

import acezoo
from acezoo import registry
from acezoo.config.constraints import MODES
from acezoo.symmetry import equivariance_error, get_symmetry, symmetry_for

CASES = [f"{name}/{example}" for name, entry in sorted(registry.architectures().items()) for example in entry.examples]
TOL = 1e-10


def _spec(case: str) -> acezoo.ArchSpec:
    arch, example = case.split("/")
    return registry.get_arch(arch).example_specs()[example]


def _build(case: str, mode: str) -> acezoo.RelaxedModel:
    """Built under a float64 default dtype: e3nn computes its Clebsch-Gordan and basis
    constants in the default dtype, and float32 constants would cap the precision at ~1e-9."""
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return acezoo.compile_model(_spec(case), acezoo.ConstraintBudget(mode=mode, init_gamma=0.7)).double().eval()
    finally:
        torch.set_default_dtype(previous)


def test_every_architecture_has_its_default_case() -> None:
    assert {c.split("/")[0] for c in CASES} == set(registry.architectures())
    assert all(f"{a}/default" in CASES for a in registry.architectures())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch", CASES)
def test_pruned_model_is_exactly_equivariant(arch: str, mode: str) -> None:
    model = _build(arch, mode)
    sym = symmetry_for(_spec(arch))
    x = sym.example_input(torch.Generator().manual_seed(1))
    pruned = model.prune()
    for name, action in sym.actions.items():
        err = equivariance_error(pruned, x, sym, torch.Generator().manual_seed(2), **action)
        assert err < TOL, f"pruned {arch}/{mode} not equivariant under {name}: {err:.3e}"
        with model.equivariant_only():
            err_eq = equivariance_error(model, x, sym, torch.Generator().manual_seed(2), **action)
        assert err_eq < TOL, f"equivariant-only {arch}/{mode} under {name}: {err_eq:.3e}"


@pytest.mark.parametrize("mode", [m for m in MODES if m != "strict"])
@pytest.mark.parametrize("arch", CASES)
def test_full_model_breaks_symmetry_when_gamma_nonzero(arch: str, mode: str) -> None:
    model = _build(arch, mode)
    assert model.named_gammas(), "a relaxed mode must leave gammas"
    sym = symmetry_for(_spec(arch))
    x = sym.example_input(torch.Generator().manual_seed(1))
    for name in sym.broken_by_branch:
        err = equivariance_error(model, x, sym, torch.Generator().manual_seed(2), **sym.actions[name])
        assert err > 1e-4, f"full {arch}/{mode} should break {name} symmetry (gamma=0.7): {err:.3e}"
    for name in sym.kept_by_branch:  # e.g. a permutation is still a symmetry of a per-node branch
        err = equivariance_error(model, x, sym, torch.Generator().manual_seed(2), **sym.actions[name])
        assert err < TOL, f"full {arch}/{mode} should keep {name} symmetry: {err:.3e}"


@pytest.mark.parametrize("arch", CASES)
def test_gamma_zero_full_model_equals_pruned(arch: str) -> None:
    model = _build(arch, "equality")
    sym = symmetry_for(_spec(arch))
    x = sym.example_input(torch.Generator().manual_seed(3))
    with torch.no_grad():
        for g in model.named_gammas().values():
            g.zero_()
    assert torch.allclose(model(x), model.prune()(x), atol=1e-12, rtol=0)


def test_egnn_with_edge_attr_input_is_equivariant() -> None:
    from acezoo.archs.egnn import EGNNSpec

    torch.manual_seed(0)
    model = acezoo.compile_model(EGNNSpec(edge_input="edge_attr", edge_dim=2)).double().eval()
    sym = get_symmetry("e3_points")
    x = sym.example_input(torch.Generator().manual_seed(1))
    x.edge_attr = torch.randn(x.edge_index.shape[1], 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert equivariance_error(model.prune(), x, sym, torch.Generator().manual_seed(2)) < TOL
    assert equivariance_error(model, x, sym, torch.Generator().manual_seed(2)) > 1e-4


@pytest.mark.parametrize("arch", CASES)
def test_forward_both_equals_two_passes(arch: str) -> None:
    """``RelaxedModel.forward_both`` (the network's one-pass version where it has one, two passes
    otherwise) gives the equivariant-only and the full output of two separate passes."""
    model = _build(arch, "equality")
    sym = symmetry_for(_spec(arch))
    x = sym.example_input(torch.Generator().manual_seed(4))
    with torch.no_grad():
        with model.equivariant_only():
            eq = model(x)
        full = model(x)
        got_eq, got_full = model.forward_both(x)
        pruned_eq, pruned_full = acezoo.RelaxedModel(model.prune()).forward_both(x)
    torch.testing.assert_close(got_eq, eq, rtol=0, atol=1e-12)
    torch.testing.assert_close(got_full, full, rtol=0, atol=1e-12)
    torch.testing.assert_close(pruned_eq, eq, rtol=0, atol=1e-12)  # a pruned network: one form, twice
    torch.testing.assert_close(pruned_full, eq, rtol=0, atol=1e-12)
