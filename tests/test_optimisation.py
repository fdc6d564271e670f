"""The trainer's optimisation step as one builder (``acezoo.training.optimisation``): the trainer
and the benchmarks build the same engine and clipping from a config."""
from __future__ import annotations

import torch

from acezoo.compiler import compile_model
from acezoo.config.loader import load_config
from acezoo.training.optimisation import build_engine, fused_default, gradient_clipper

from conftest import ZOO


def test_the_engine_runs_adam_at_the_configs_rate_fused_on_cpu() -> None:
    cfg = load_config(ZOO / "egnn_nbody_equality.yaml", ["train.lr=0.003", "train.weight_decay=0.001"])
    model = compile_model(cfg)
    engine = build_engine(model, cfg, total_steps=10)
    assert fused_default(torch.device("cpu")) and not fused_default(torch.device("meta"))
    assert isinstance(engine.primal, torch.optim.Adam) and engine.primal.defaults["fused"] is True
    weights = next(g for g in engine.primal.param_groups if g["name"] == "weights")
    assert weights["lr"] == 0.003 and weights["weight_decay"] == 0.001
    assert build_engine(model, cfg, total_steps=10, fused=False).primal.defaults["fused"] is False


def test_the_clipper_bounds_the_gradient_norm_and_is_absent_without_a_bound() -> None:
    model = torch.nn.Linear(4, 3)
    assert gradient_clipper(model, None) is None
    clip = gradient_clipper(model, 0.5)
    (100.0 * model(torch.ones(2, 4))).sum().backward()
    norm = lambda: torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))  # noqa: E731
    assert norm() > 1.0
    clip()
    assert abs(float(norm()) - 0.5) < 1e-5
