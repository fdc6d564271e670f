"""The levers of the ACE study: the bounded branch, SGD on the gammas, the penalty baseline."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from acezoo.config.constraints import ConstraintBudget
from acezoo.config.loader import load_config
from acezoo.constraints import PrimalDual
from acezoo.nn.bounded import BoundedMLP, branch_mlp
from acezoo.run import train

from conftest import ZOO, tiny_overrides
from test_primal_dual import X, grads, loss_fn, sgd, toy_model


def test_bounded_branch_output_scale_does_not_grow_with_its_weights() -> None:
    torch.manual_seed(0)
    mlp = BoundedMLP([6, 16, 3], fixed=True).train()
    x = torch.randn(200, 6) * 50 + 3
    y = mlp(x)
    # mean ||f(x)||^2 <= 16 (the last layer maps a unit-variance 16-vector by ||W||_2 = 1)
    assert y.pow(2).sum(1).mean() <= 16 * (1 + 1e-3)
    with torch.no_grad():  # scaling the raw weights up 100x leaves the branch (essentially) as it was
        for name, p in mlp.named_parameters():
            p.mul_(100.0)
    for _ in range(20):  # power iterations settle on the new (same-direction) weights
        mlp(x)
    assert torch.allclose(mlp(x), y, atol=1e-3, rtol=1e-3)
    plain = branch_mlp("plain", [6, 16, 3])
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())
    with pytest.raises(ValueError, match="allowed: plain, bounded, bounded_fixed"):
        branch_mlp("huge", [6, 3])


@pytest.mark.parametrize("kind", ["bounded", "bounded_fixed"])
@pytest.mark.parametrize("config", ["egnn_nbody_equality", "se3t_nbody_equality", "gcnn_digits_equality"])
def test_every_architecture_offers_the_bounded_branches(config: str, kind: str) -> None:
    from acezoo.compiler import compile_model

    conf = load_config(ZOO / f"{config}.yaml", [f"model.branch={kind}"])
    model = compile_model(conf)
    sn = [n for n in model.state_dict() if "parametrizations" in n]
    assert sn and all(".neq." in n for n in sn)  # only the branches are spectrally normalised
    affine = [n for n, _ in model.named_parameters() if ".neq." in n and n.endswith(("bias", ".weight"))]
    assert (affine == []) == (kind == "bounded_fixed")  # fixed: no bias, no batch-norm scale
    pruned = model.prune()
    assert not any("neq" in n for n in pruned.state_dict())


def test_sgd_on_gamma_steps_by_lr_times_gradient_plus_multiplier() -> None:
    eta_p, eta_g, eta_d, w, v, g, lam = 0.01, 0.7, 0.5, 0.5, -1.5, 0.8, 0.3
    model = toy_model("equality", g, w=w, v=v)
    budget = ConstraintBudget(mode="equality", penalty=0.0, dual_optimizer="sgd", dual_lr=eta_d,
                              gamma_optimizer="sgd", gamma_lr=eta_g)
    engine = PrimalDual(model, budget, sgd(eta_p))
    assert engine.gamma_sgd is not None and all(grp.get("name") != "gammas" for grp in engine.primal.param_groups)
    engine.problem.equality.multiplier.weight.data.fill_(lam)
    engine.step(loss_fn(model))
    dw, _, dg = grads(w, v, g)
    g_new = g - eta_g * (dg + lam)
    assert model.net.b.eq.w.item() == pytest.approx(w - eta_p * dw, abs=1e-12)
    assert model.gamma_values()["b"] == pytest.approx(g_new, abs=1e-12)
    assert engine.multipliers()["b"] == pytest.approx(lam + eta_d * g_new, abs=1e-12)
    # the state (both primal optimisers) round-trips
    other = PrimalDual(toy_model("equality", g, w=w, v=v), budget, sgd(eta_p))
    other.load_state_dict(engine.state_dict())
    assert other.gamma_sgd.state_dict()["param_groups"][0]["lr"] == eta_g


def test_sgd_gamma_lr_defaults_to_1000x_the_primal_lr() -> None:
    model = toy_model("equality", 0.5)
    engine = PrimalDual(model, ConstraintBudget(mode="equality", gamma_optimizer="sgd"),
                        lambda groups: torch.optim.Adam(groups, lr=5e-4))
    assert engine.gamma_sgd.param_groups[0]["lr"] == pytest.approx(0.5)


def test_penalty_mode_adds_weight_times_defect_and_trains_gamma() -> None:
    eta_p, alpha, w, v, g = 0.01, 3.0, 0.5, -1.5, 0.8
    model = toy_model("penalty", g, w=w, v=v)
    engine = PrimalDual(model, ConstraintBudget(mode="penalty", penalty_weight=alpha), sgd(eta_p))
    assert engine.dual is None and engine.needs_defect

    def loss_and_defect():
        # a stand-in defect that depends on gamma: (gamma v X)^2
        return loss_fn(model)(), (model.net.b.gamma * v * X) ** 2

    engine.step(loss_and_defect)
    g_new = g - eta_p * (grads(w, v, g)[2] + alpha * 2 * g * (v * X) ** 2)
    assert model.gamma_values()["b"] == pytest.approx(g_new, abs=1e-12)
    with pytest.raises(ValueError, match="penalty modes need loss_fn"):
        engine.step(loss_fn(model))


def test_penalty_mode_trains_end_to_end_and_selects_the_full_model(tmp_path: Path) -> None:
    conf = load_config(ZOO / "egnn_nbody_equality.yaml",
                       [*tiny_overrides(tmp_path, epochs=2), "constraints.mode=penalty", "constraints.penalty_weight=10"])
    result = train(conf)
    assert result.metrics["selected_on"] == "val_full_mse"
    assert all("train_equivariance_defect" in rec for rec in result.history)
    assert result.metrics["equivariance_error"]["pruned"] < 1e-4


def test_bounded_branch_with_sgd_gammas_trains_and_resumes_exactly(tmp_path: Path) -> None:
    overrides = [*tiny_overrides(tmp_path, epochs=3), "model.branch=bounded", "constraints.gamma_optimizer=sgd"]
    conf = load_config(ZOO / "egnn_nbody_equality.yaml", overrides)
    full = train(conf, run_dir=tmp_path / "full")
    short = train(load_config(ZOO / "egnn_nbody_equality.yaml", [*overrides, "train.epochs=2"]), run_dir=tmp_path / "cut")
    resumed = train(resume=short.run_dir, overrides=("train.epochs=3",))
    assert resumed.history[-1]["train_loss"] == full.history[-1]["train_loss"]
    assert resumed.metrics["gammas"] == full.metrics["gammas"]


def test_prune_tol_removes_the_branches_once_the_equality_constraint_is_met(tmp_path: Path) -> None:
    overrides = [*tiny_overrides(tmp_path, epochs=3), "constraints.gamma_optimizer=sgd", "constraints.gamma_lr=0.05",
                 "constraints.init_gamma=0.1", "constraints.prune_tol=0.5"]
    conf = load_config(ZOO / "egnn_nbody_equality.yaml", overrides)
    result = train(conf, run_dir=tmp_path / "full")
    first, later = result.history[0], result.history[1:]
    assert first.get("pruned") and result.metrics["branches_pruned_at_epoch"] == 1
    assert all(v == 0.0 for v in result.metrics["gammas"].values())
    for rec in later:  # the branches are gone: the full model is the equivariant one
        assert rec["val_full_mse"] == rec["val_eq_mse"] and rec["equivariance_error"] < 1e-4
    assert result.metrics["test"]["full"] == result.metrics["test"]["pruned"]
    # resuming after the pruning epoch continues exactly
    cut = train(load_config(ZOO / "egnn_nbody_equality.yaml", [*overrides, "train.epochs=2"]), run_dir=tmp_path / "cut")
    resumed = train(resume=cut.run_dir, overrides=("train.epochs=3",))
    assert resumed.history[-1]["train_loss"] == result.history[-1]["train_loss"]


def test_prune_tol_waits_while_a_gamma_is_large(tmp_path: Path) -> None:
    conf = load_config(ZOO / "egnn_nbody_equality.yaml", [*tiny_overrides(tmp_path, epochs=2), "constraints.prune_tol=1e-6"])
    result = train(conf)
    assert "branches_pruned_at_epoch" not in result.metrics and not any(r.get("pruned") for r in result.history)


def test_stream_branch_reads_no_equivariant_feature() -> None:
    """``branch: stream`` (the authors' EGNO form): the feature branch is a function of the
    layer-0 inputs only and the coordinate branch of the current positions only, both bounded
    (batch norm + spectral norm); pruning removes them, and only the EGNN offers it."""
    from acezoo.archs.egnn import StreamCoordBranch, StreamFeatureBranch
    from acezoo.compiler import compile_model
    from acezoo.errors import ConfigError

    conf = load_config(ZOO / "egnn_nbody_equality.yaml", ["model.branch=stream"])
    model = compile_model(conf).eval()  # eval: no power iteration between the calls compared
    layer = model.net.layers[1]
    assert isinstance(layer.h.neq, StreamFeatureBranch) and isinstance(layer.x.neq, StreamCoordBranch)
    n, g = 6, torch.Generator().manual_seed(0)
    h, x, v = (torch.randn(n, s, generator=g) for s in (64, 3, 3))
    raw = torch.randn(n, 1 + 6, generator=g)
    with torch.no_grad():
        psi_h = layer.h.neq(h, x, v, None, None, None, raw)
        assert torch.equal(psi_h, layer.h.neq(h + 1.0, x, v * 2, None, None, None, raw))  # h, v unread
        psi_x = layer.x.neq(h, x, v, None, None, None, raw)
        assert torch.equal(psi_x, layer.x.neq(2 * h, x, -v, None, None, None, None))  # x only
        assert not torch.equal(psi_x, layer.x.neq(h, x + 1.0, v, None, None, None, raw))
    sn = [k for k in model.state_dict() if "parametrizations" in k]
    assert sn and all(".neq." in k for k in sn)
    assert not any("neq" in k for k in model.prune().state_dict())
    assert model.net._stream_branch_active()  # the layer-0 inputs are gathered only while a branch reads them
    assert not model.prune()._stream_branch_active()
    with model.equivariant_only():
        assert not model.net._stream_branch_active()
    with pytest.raises(ConfigError, match="branch"):
        load_config(ZOO / "se3t_nbody_equality.yaml", ["model.branch=stream"])
