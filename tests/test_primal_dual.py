"""One primal and one dual step of the engine against ACE's Algorithms 1 and 2 by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from acezoo.compiler import RelaxedModel
from acezoo.config.constraints import BlockBudget, ConstraintBudget
from acezoo.constraints import PrimalDual
from acezoo.nn.relaxed import Relaxed


class Scale(nn.Module):
    """y = w * x (one weight), so dJ/dw and dJ/dgamma are easy to write by hand."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x


def toy_model(mode: str, gamma0: float, eps: float = 0.1, rho: float = 2.0, w: float = 0.5, v: float = -1.5) -> RelaxedModel:
    """f(x) = w x + gamma * v x with one relaxed block named ``b``."""
    net = nn.Module()
    net.b = Relaxed(Scale(w), Scale(v))
    net.b.gamma.data = torch.tensor(gamma0, dtype=torch.float64)
    net.forward = lambda x: net.b(x)  # type: ignore[method-assign]
    plan = {"b": BlockBudget(mode=mode, init_gamma=gamma0, eps=eps, rho=rho)}
    return RelaxedModel(net, arch="toy", plan=plan)


def sgd(lr: float):
    return lambda groups: torch.optim.SGD(groups, lr=lr)


X, Y = 2.0, 3.0  # one sample; J = (f(X) - Y)^2


def loss_fn(model: RelaxedModel):
    return lambda: (model(torch.tensor(X, dtype=torch.float64)) - Y) ** 2


def grads(w: float, v: float, gamma: float) -> tuple[float, float, float]:
    """dJ/dw, dJ/dv, dJ/dgamma of J = ((w + gamma v) X - Y)^2."""
    r = 2 * ((w + gamma * v) * X - Y)
    return r * X, r * gamma * X, r * v * X


def test_equality_step_matches_algorithm_1() -> None:
    eta_p, eta_d, w, v, g, lam = 0.01, 0.5, 0.5, -1.5, 0.8, 0.3
    model = toy_model("equality", g, w=w, v=v)
    engine = PrimalDual(model, ConstraintBudget(mode="equality", penalty=0.0, dual_optimizer="sgd", dual_lr=eta_d), sgd(eta_p))
    engine.problem.equality.multiplier.weight.data.fill_(lam)
    engine.step(loss_fn(model))

    dw, dv, dg = grads(w, v, g)
    g_new = g - eta_p * (dg + lam)  # gamma <- gamma - eta_p (dJ/dgamma + lambda)
    lam_new = lam + eta_d * g_new  # lambda <- lambda + eta_d gamma (no projection)
    assert model.net.b.eq.w.item() == pytest.approx(w - eta_p * dw, abs=1e-12)
    assert model.net.b.neq.w.item() == pytest.approx(v - eta_p * dv, abs=1e-12)
    assert model.gamma_values()["b"] == pytest.approx(g_new, abs=1e-12)
    assert engine.multipliers()["b"] == pytest.approx(lam_new, abs=1e-12)


def test_augmented_term_adds_c_times_violation_to_the_gamma_gradient() -> None:
    eta_p, eta_d, c, w, v, g, lam = 0.01, 0.5, 2.0, 0.5, -1.5, 0.8, 0.3
    model = toy_model("equality", g, w=w, v=v)
    budget = ConstraintBudget(mode="equality", penalty=c, dual_optimizer="sgd", dual_lr=eta_d)
    engine = PrimalDual(model, budget, sgd(eta_p))
    engine.problem.equality.multiplier.weight.data.fill_(lam)
    engine.step(loss_fn(model))
    g_new = g - eta_p * (grads(w, v, g)[2] + lam + c * g)
    assert model.gamma_values()["b"] == pytest.approx(g_new, abs=1e-12)
    assert engine.multipliers()["b"] == pytest.approx(lam + eta_d * g_new, abs=1e-12)


def test_equality_multiplier_is_not_projected() -> None:
    model = toy_model("equality", -0.8)
    engine = PrimalDual(model, ConstraintBudget(mode="equality", penalty=0.0, dual_optimizer="sgd", dual_lr=1.0), sgd(1e-6))
    engine.step(loss_fn(model))
    assert engine.multipliers()["b"] < 0  # free in sign: lambda = 0 + 1.0 * gamma ~ -0.8


@pytest.mark.parametrize("g, lam, u", [(0.8, 0.3, 0.2), (-0.8, 0.3, 0.0), (0.05, 0.0, 0.5)])
def test_resilient_step_matches_algorithm_2(g: float, lam: float, u: float) -> None:
    eta_p, eta_d, rho, w, v = 0.1, 0.5, 2.0, 0.5, -1.5
    model = toy_model("resilient", g, rho=rho, w=w, v=v)
    engine = PrimalDual(model, ConstraintBudget(mode="resilient", penalty=0.0, dual_optimizer="sgd", dual_lr=eta_d), sgd(eta_p))
    engine.problem.resilient.multiplier.weight.data.fill_(lam)
    engine.slack.data.fill_(u)
    engine.step(loss_fn(model))

    _, _, dg = grads(w, v, g)
    g_new = g - eta_p * (dg + lam * math.copysign(1.0, g))
    u_new = max(0.0, u - eta_p * (rho * u - lam))
    lam_new = max(0.0, lam + eta_d * (abs(g_new) - u_new))
    assert model.gamma_values()["b"] == pytest.approx(g_new, abs=1e-12)
    assert engine.slacks()["b"] == pytest.approx(u_new, abs=1e-12)
    assert engine.multipliers()["b"] == pytest.approx(lam_new, abs=1e-12)


def test_projection_of_slack_and_multiplier() -> None:
    """A slack pushed below 0 and a multiplier pushed below 0 both land on 0."""
    eta_p, eta_d, rho = 1.0, 10.0, 2.0
    model = toy_model("resilient", 0.0, rho=rho)
    engine = PrimalDual(model, ConstraintBudget(mode="resilient", penalty=0.0, dual_optimizer="sgd", dual_lr=eta_d), sgd(eta_p))
    engine.slack.data.fill_(1.0)  # u - eta_p * rho * u = 1 - 2 = -1  -> projected to 0
    engine.step(lambda: torch.zeros((), dtype=torch.float64) * model(torch.tensor(1.0, dtype=torch.float64)))
    assert engine.slacks()["b"] == 0.0
    # lambda = max(0, 0 + eta_d (|gamma| - u)) with gamma = 0, u = 0 -> 0, never negative
    assert engine.multipliers()["b"] == 0.0
    # |gamma| - u < 0: the ascent step 0.1 + 10 * (0 - 0.4995) would make lambda negative
    budget = ConstraintBudget(mode="resilient", penalty=0.0, dual_optimizer="sgd", dual_lr=eta_d)
    engine = PrimalDual(model, budget, sgd(1e-3))
    engine.slack.data.fill_(0.5)
    engine.problem.resilient.multiplier.weight.data.fill_(0.1)
    engine.step(lambda: torch.zeros((), dtype=torch.float64) * model(torch.tensor(1.0, dtype=torch.float64)))
    assert engine.multipliers()["b"] == 0.0


def test_tolerance_step() -> None:
    eta_p, eta_d, eps, g, lam, w, v = 0.01, 0.5, 0.1, 0.8, 0.3, 0.5, -1.5
    model = toy_model("tolerance", g, eps=eps, w=w, v=v)
    engine = PrimalDual(model, ConstraintBudget(mode="tolerance", penalty=0.0, dual_optimizer="sgd", dual_lr=eta_d), sgd(eta_p))
    engine.problem.tolerance.multiplier.weight.data.fill_(lam)
    engine.step(loss_fn(model))
    _, _, dg = grads(w, v, g)
    g_new = g - eta_p * (dg + lam)
    assert model.gamma_values()["b"] == pytest.approx(g_new, abs=1e-12)
    assert engine.multipliers()["b"] == pytest.approx(max(0.0, lam + eta_d * (abs(g_new) - eps)), abs=1e-12)


def test_free_mode_has_no_dual_and_trains_gamma() -> None:
    eta_p, w, v, g = 0.01, 0.5, -1.5, 0.8
    model = toy_model("free", g, w=w, v=v)
    engine = PrimalDual(model, ConstraintBudget(mode="free"), sgd(eta_p))
    engine.step(loss_fn(model))
    assert engine.dual is None and engine.multipliers() == {}
    assert model.gamma_values()["b"] == pytest.approx(g - eta_p * grads(w, v, g)[2], abs=1e-12)


def test_schedule_goes_0_up_0_and_is_not_trained() -> None:
    model = toy_model("schedule", 0.7)
    engine = PrimalDual(model, ConstraintBudget(mode="schedule", schedule_end=0.5), sgd(0.1), total_steps=20)
    seen = [model.gamma_values()["b"]]
    for _ in range(20):
        engine.step(loss_fn(model))
        seen.append(model.gamma_values()["b"])
    assert seen[0] == 0.0 and max(seen) == pytest.approx(0.7, abs=1e-12)  # peak at step 5 of 10
    assert seen[5] == pytest.approx(0.7) and all(s == 0.0 for s in seen[10:])


def _flat_game(primal: str, budget: ConstraintBudget, lr: float) -> tuple[RelaxedModel, PrimalDual]:
    """J = (0.5 x - 1)^2 whatever gamma (the branch outputs 0): bilinear in (gamma, lambda)."""
    net = nn.Module()
    net.b = Relaxed(Scale(0.5), Scale(0.0))
    net.b.neq.w.requires_grad_(False)
    net.forward = lambda x: net.b(x)  # type: ignore[method-assign]
    model = RelaxedModel(net, plan={"b": BlockBudget("equality", 1.0, 0.0, 1.0)})
    make = (lambda gs: torch.optim.SGD(gs, lr=lr)) if primal == "sgd" else (lambda gs: torch.optim.Adam(gs, lr=lr))
    return model, PrimalDual(model, budget, make)


@pytest.mark.parametrize("dual", ["sgd", "adam"])
@pytest.mark.parametrize("primal", ["sgd", "adam"])
def test_bounded_when_loss_is_flat_in_gamma(primal: str, dual: str) -> None:
    """J does not depend on gamma (branch output is 0): the game is bilinear in (gamma, lambda).

    Simultaneous gradient descent-ascent spirals outward here; the engine's alternating
    updates must keep gamma and lambda bounded over many steps.
    """
    torch.manual_seed(0)
    model, engine = _flat_game(primal, ConstraintBudget(mode="equality", dual_optimizer=dual, dual_lr=0.05), 0.05)
    x = torch.tensor(1.0, dtype=torch.float64)
    peak_g, peak_l = 0.0, 0.0
    for _ in range(5000):
        engine.step(lambda: (model(x) - 1.0) ** 2)
        peak_g = max(peak_g, abs(model.gamma_values()["b"]))
        peak_l = max(peak_l, abs(engine.multipliers()["b"]))
    assert peak_g < 3.0 and peak_l < 3.0, (peak_g, peak_l)
    assert math.isfinite(peak_g) and math.isfinite(peak_l)


def test_simultaneous_gda_would_diverge_on_the_same_problem() -> None:
    """The contrast that makes the previous test meaningful: plain simultaneous GDA grows."""
    g, lam, lr = 1.0, 0.0, 0.05
    for _ in range(5000):
        g, lam = g - lr * lam, lam + lr * g
    assert math.hypot(g, lam) > 3.0


def _flat_game_gammas(dual: str, kp: float = 0.0, steps: int = 2000) -> list[float]:
    """gamma over ``steps`` of Adam (primal) on the bilinear game of the previous tests, no penalty."""
    budget = ConstraintBudget(mode="equality", dual_optimizer=dual, dual_lr=0.01, dual_kp=kp, penalty=0.0)
    model, engine = _flat_game("adam", budget, 0.01)
    x = torch.tensor(1.0, dtype=torch.float64)
    gammas = []
    for _ in range(steps):
        engine.step(lambda: (model(x) - 1.0) ** 2)
        gammas.append(model.gamma_values()["b"])
    return gammas


def test_nupi_proportional_term_damps_the_gamma_oscillation() -> None:
    """Adam on gamma moves it by ~lr per step whatever the multiplier, so an integral (Adam or
    SGD) dual overshoots far past 0; nuPI's proportional term lambda ~ Kp * gamma pulls it back
    as soon as it crosses."""
    adam = _flat_game_gammas("adam")
    nupi = _flat_game_gammas("nupi", kp=100.0)
    assert max(abs(g) for g in adam[-200:]) > 0.5  # still swinging after 2000 steps
    assert min(adam) < -1.0
    assert max(abs(g) for g in nupi[-200:]) < 1e-6  # settled at 0
    assert min(nupi) > -0.5
    assert _flat_game_gammas("nupi", kp=0.0, steps=50) == _flat_game_gammas("sgd", steps=50)  # Kp = 0 is SGD


def test_gamma_lr_sets_the_primal_step_of_the_gammas_only() -> None:
    model = toy_model("equality", 0.8)
    engine = PrimalDual(model, ConstraintBudget(mode="equality", gamma_lr=0.3), sgd(0.01))
    lrs = {g["name"]: g["lr"] for g in engine.primal.param_groups}
    assert lrs == {"weights": 0.01, "gammas": 0.3}
    default = PrimalDual(toy_model("equality", 0.8), ConstraintBudget(mode="equality"), sgd(0.01))
    assert {g["name"]: g["lr"] for g in default.primal.param_groups} == {"weights": 0.01, "gammas": 0.01}
