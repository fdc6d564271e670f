"""SEGNN: the fused degree <= 1 kernels against e3nn, the published setting, the zoo configs.

The registry-wide symmetry tests (tests/test_equivariance.py) cover SEGNN's rotations,
reflections, translations and permutations through its registry examples.
"""
from __future__ import annotations

import pytest
import torch

from acezoo.archs.specs import SEGNNSpec
from acezoo.compiler import compile_model
from acezoo.config.constraints import ConstraintBudget
from acezoo.config.loader import load_config
from acezoo.nn.o3_lmax1 import GatedTensorProduct, TensorProduct, balanced_multiplicity, sh_lmax1
from acezoo.symmetry import E3Points

e3nn = pytest.importorskip("e3nn")
from e3nn import o3  # noqa: E402


@pytest.fixture(autouse=True)
def _float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def _feature(n: int, c0: int, c1: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, c0, generator=gen), torch.randn(n, 3, c1, generator=gen)


@pytest.mark.parametrize("attr", [True, False])
def test_fused_tensor_product_equals_e3nn(attr: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    tp = TensorProduct(5, 4, 6, 3, attr=attr)
    x = _feature(7, 5, 4, gen)
    a = sh_lmax1(torch.randn(7, 3, generator=gen)) if attr else None
    fused = tp(x, a)
    tp.kernel = "e3nn"
    ref = tp(x, a)
    for got, want in zip(fused, ref):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", ["fused", "e3nn"])
@pytest.mark.parametrize("bias", [True, False])
def test_a_constant_scalar_attribute_equals_the_same_tensor(kernel: str, bias: bool) -> None:
    """An edge's ``Y^0`` passed as a number (folded into the weights) gives what the (N, 1)
    tensor of it gives, forward and backward."""
    gen = torch.Generator().manual_seed(1)
    tp = TensorProduct(5, 4, 6, 3, attr=True, bias=bias, kernel=kernel)
    x = _feature(7, 5, 4, gen)
    a, b = sh_lmax1(torch.randn(7, 3, generator=gen))
    results = []
    for attr in ((a, b), (float(a[0, 0]), b)):
        tp.zero_grad()
        out = tp(x, attr)
        (out[0].square().sum() + out[1].square().sum()).backward()
        results.append((out, [p.grad.clone() for p in tp.parameters()]))
    for got, want in zip(results[1][0] + tuple(results[1][1]), results[0][0] + tuple(results[0][1])):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_the_fused_edge_message_folds_a_constant_y0_exactly() -> None:
    from acezoo.archs.egnn import EdgeGraph
    from acezoo.archs.segnn import EdgeMessage

    gen = torch.Generator().manual_seed(2)
    batch = E3Points().example_input(gen)
    n, c = batch.pos.shape[0], 3
    graph = EdgeGraph(batch.edge_index, n)
    a, b = sh_lmax1(graph.flat(graph.differences(batch.pos)))
    scalars = torch.randn(a.shape[0], 2, generator=gen)
    h = _feature(n, c, c, gen)
    message = EdgeMessage(c, 2, "fused")
    folded, plain = message(h, scalars, (float(a[0, 0]), b), graph), message(h, scalars, (a, b), graph)
    for got, want in zip(folded, plain):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_e3nn_kernel_is_e3nns_own_tensor_product() -> None:
    """The e3nn kernel is ``o3.FullyConnectedTensorProduct`` on e3nn's flat layout (channel-major
    vectors), with our parameters as its weights: checked against a product built here."""
    gen = torch.Generator().manual_seed(1)
    tp = TensorProduct(3, 2, 4, 2, attr=True, kernel="e3nn")
    x = _feature(6, 3, 2, gen)
    a, b = sh_lmax1(torch.randn(6, 3, generator=gen))
    ref_tp = o3.FullyConnectedTensorProduct("3x0e + 2x1o", "1x0e + 1x1o", "4x0e + 2x1o", internal_weights=False,
                                            shared_weights=True)
    flat = torch.cat([x[0], x[1].transpose(1, 2).reshape(6, -1)], dim=-1)
    out = ref_tp(flat, torch.cat([a, b], dim=-1), tp.e3nn_weight())
    s, v = tp(x, (a, b))
    torch.testing.assert_close(s, out[:, :4] + tp.bias)
    torch.testing.assert_close(v, out[:, 4:].reshape(6, 2, 3).transpose(1, 2))


def test_gate_matches_e3nn_gate() -> None:
    from e3nn.nn import Gate

    gen = torch.Generator().manual_seed(2)
    gated = GatedTensorProduct(3, 3, 4, 2, attr=False)
    s, v = torch.randn(5, 6, generator=gen), torch.randn(5, 3, 2, generator=gen)
    out_s, out_v = gated.gate((s, v))
    gate = Gate("4x0e", [torch.nn.functional.silu], "2x0e", [torch.sigmoid], "2x1o")
    ref = gate(torch.cat([s, v.transpose(1, 2).reshape(5, -1)], dim=-1))
    torch.testing.assert_close(out_s, ref[:, :4])
    torch.testing.assert_close(out_v, ref[:, 4:].reshape(5, 2, 3).transpose(1, 2))


def test_spherical_harmonics_match_e3nn() -> None:
    r = torch.randn(9, 3, generator=torch.Generator().manual_seed(3))
    a, b = sh_lmax1(r)
    ref = o3.spherical_harmonics(o3.Irreps.spherical_harmonics(1), r, normalize=True, normalization="integral")
    torch.testing.assert_close(torch.cat([a, b], dim=-1), ref)


@pytest.mark.parametrize("hidden", [8, 16, 64, 65])
def test_weight_balanced_multiplicity_matches_the_authors_search(hidden: int) -> None:
    """The SEGNN authors' search: the smallest n whose n x (0e + 1o) tensor product with 0e + 1o
    onto itself has at least the weights of hidden x 0e -> hidden x 0e."""
    target = o3.FullyConnectedTensorProduct(f"{hidden}x0e", "1x0e", f"{hidden}x0e").weight_numel
    n = 1
    while o3.FullyConnectedTensorProduct(f"{n}x0e + {n}x1o", "0e + 1o", f"{n}x0e + {n}x1o").weight_numel < target:
        n += 1
    assert balanced_multiplicity(hidden) == n == SEGNNSpec(hidden=hidden).multiplicity


@pytest.mark.parametrize("mode", ["strict", "equality"])
def test_fused_and_e3nn_kernels_give_the_same_model(mode: str) -> None:
    """The whole network, fused against e3nn kernels on the same parameters: equal to round-off."""
    gen = torch.Generator().manual_seed(4)
    batch = E3Points().example_input(gen)
    torch.manual_seed(0)
    fused = compile_model(SEGNNSpec(hidden=8, layers=2), ConstraintBudget(mode=mode))
    reference = compile_model(SEGNNSpec(hidden=8, layers=2, kernel="e3nn"), ConstraintBudget(mode=mode))
    reference.load_state_dict(fused.state_dict())
    torch.testing.assert_close(fused(batch), reference(batch), rtol=1e-10, atol=1e-10)


def test_general_edge_layout_equals_the_regular_one() -> None:
    """Shuffled edges take the general gather/scatter path; the output must not change."""
    gen = torch.Generator().manual_seed(5)
    batch = E3Points().example_input(gen)
    torch.manual_seed(0)
    model = compile_model(SEGNNSpec(hidden=8, layers=2), ConstraintBudget(mode="equality"))
    shuffled = batch.clone()
    shuffled.edge_index = batch.edge_index[:, torch.randperm(batch.edge_index.shape[1], generator=gen)]
    torch.testing.assert_close(model(batch), model(shuffled))


def test_published_size_and_the_authors_branch() -> None:
    """64 balanced hidden features -> 32x0e + 32x1o; 8 gammas (two relaxed sub-blocks per layer);
    the authors' branch holds most of the relaxed model's parameters."""
    model = compile_model(SEGNNSpec(), ConstraintBudget(mode="equality"))
    assert sorted(model.named_gammas()) == [f"layers.{i}.update{k}" for i in range(4) for k in (1, 2)]
    counts = model.parameter_counts()
    strict = compile_model(SEGNNSpec(), ConstraintBudget(mode="strict"))
    assert counts["pruned"] == sum(p.numel() for p in strict.parameters())
    assert counts["full"] > 5 * counts["pruned"]
    first = model.net.layers[0].update1.neq.mlp
    assert [m.in_features for m in first if isinstance(m, torch.nn.Linear)] == [2 * 128 + 3, 256, 128]


def test_input_positions_enter_relative_to_the_centroid() -> None:
    """Translating one graph moves only that graph's prediction, by the same shift."""
    gen = torch.Generator().manual_seed(6)
    batch = E3Points().example_input(gen)
    torch.manual_seed(0)
    model = compile_model(SEGNNSpec(hidden=8, layers=2), ConstraintBudget(mode="strict"))
    moved = batch.clone()
    shift = torch.tensor([5.0, -2.0, 1.0])
    moved.pos = batch.pos + (batch.batch == 1).unsqueeze(1) * shift
    delta = model(moved) - model(batch)
    torch.testing.assert_close(delta[batch.batch == 1], shift.expand(int((batch.batch == 1).sum()), 3))
    torch.testing.assert_close(delta[batch.batch != 1], torch.zeros_like(delta[batch.batch != 1]))


def test_missing_charge_names_the_field() -> None:
    batch = E3Points().example_input(torch.Generator().manual_seed(7))
    del batch.charge
    model = compile_model(SEGNNSpec(hidden=8, layers=1), ConstraintBudget(mode="strict"))
    with pytest.raises((AttributeError, ValueError), match="charge"):
        model(batch)


@pytest.mark.parametrize("name", ["segnn_nbody_strict", "segnn_nbody_equality"])
def test_zoo_configs_hold_the_published_setting(name: str) -> None:
    cfg = load_config(f"zoo_configs/{name}.yaml")
    assert (cfg.model.arch, cfg.model.hidden, cfg.model.layers, cfg.model.lmax) == ("segnn", 64, 4, 1)
    assert (cfg.data.draw, cfg.data.n_train, cfg.train.batch_size, cfg.train.lr) == ("egnn_small", 3000, 100, 9e-4)
    assert (cfg.data.frame_in, cfg.data.frame_out) == (31, 41)
    if name.endswith("equality"):
        c = cfg.constraints
        assert (cfg.model.branch, c.dual_optimizer, c.dual_lr, c.gamma_optimizer, c.penalty) == (
            "authors", "adam", 8e-4, "adam", 0.0)
