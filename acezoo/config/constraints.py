"""The constraint budget: how each relaxed block's gamma is trained.

Modes (see the method page of the documentation, ``docs/site/method.md``):

- ``strict``     the equivariant model alone: the branch and gamma are removed at build time.
- ``equality``   ACE Algorithm 1: ``gamma_i = 0`` with a free-sign multiplier.
- ``tolerance``  ``|gamma_i| <= eps_i`` with a multiplier ``lambda_i >= 0``.
- ``resilient``  ACE Algorithm 2: ``|gamma_i| <= u_i`` with learned slack ``u_i >= 0``
                 and cost ``rho_i / 2 * u_i^2``.
- ``free``       gamma trained without constraint (a non-equivariant baseline).
- ``schedule``   gamma fixed by a 0 -> peak -> 0 schedule (Pertigkiozoglou et al. 2024),
                 evaluated at 0.
- ``error_budget`` gamma trained freely, subject to one data-dependent constraint on the
                 whole model: its measured equivariance defect on the training batches is
                 at most ``error_budget`` (multiplier ``lambda >= 0``).
- ``penalty``    gamma trained freely, with a fixed-weight equivariance penalty
                 ``penalty_weight * defect`` added to the loss (REMUL-style, Elhag et al. 2024):
                 the unconstrained counterpart of ``error_budget``.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from acezoo.config.base import StrictModel

__all__ = ["Mode", "MODES", "BlockOverride", "ConstraintBudget", "BlockBudget"]

Mode = Literal["strict", "equality", "tolerance", "resilient", "free", "schedule", "error_budget", "penalty"]
MODES: tuple[str, ...] = ("strict", "equality", "tolerance", "resilient", "free", "schedule", "error_budget", "penalty")


class BlockOverride(StrictModel):
    """Settings for the relaxed blocks whose name matches a pattern (unset fields inherit)."""

    mode: Mode | None = Field(None, description="Constraint mode of the matching blocks.")
    init_gamma: float | None = Field(None, description="Initial gamma of the matching blocks.")
    eps: float | None = Field(None, ge=0, description="Tolerance eps for `tolerance` mode.")
    rho: float | None = Field(None, gt=0, description="Slack cost rho for `resilient` mode.")


@dataclass(frozen=True)
class BlockBudget:
    """The resolved settings of one relaxed block."""

    mode: str
    init_gamma: float
    eps: float
    rho: float


class ConstraintBudget(StrictModel):
    """How the symmetry-breaking gammas are constrained during training."""

    mode: Mode = Field("equality", description="Constraint mode: " + ", ".join(MODES) + ".")
    init_gamma: float = Field(1.0, description="Initial value of every gamma (schedule: its peak).")
    rho: float = Field(1.0, gt=0, description="Resilient mode: slack cost rho/2 * ||u||^2.")
    eps: float = Field(0.01, ge=0, description="Tolerance mode: bound on |gamma_i|.")
    error_budget: float = Field(
        0.01,
        gt=0,
        description="error_budget mode: bound on the equivariance defect of the full model on the training "
        "batches, mean((f(g.x) - g.f(x))^2) for a random group element g each step (the loss's units).",
    )
    penalty_weight: float = Field(
        1.0,
        ge=0,
        description="penalty mode: weight alpha of the equivariance penalty alpha * mean((f(g.x) - g.f(x))^2) "
        "added to the loss (a random group element g each step; REMUL-style).",
    )
    penalty: float = Field(
        1.0,
        ge=0,
        description="Augmented-Lagrangian coefficient c: adds c/2 * h(gamma)^2 (for inequalities, "
        "c/2 * max(0, g(gamma))^2) to the primal objective. It vanishes at feasible points and keeps "
        "the primal-dual game bounded where the loss is flat in gamma; 0 gives ACE's Algorithms 1/2 verbatim.",
    )
    dual_optimizer: Literal["sgd", "adam", "nupi"] = Field(
        "adam",
        description="Dual ascent on the multipliers: plain `sgd` ascent, `adam`, or `nupi` (cooper's nuPI, a "
        "PI controller: lambda_t = dual_lr * (sum_s h_s + dual_kp * h_t), whose proportional term damps the "
        "oscillation of gamma around 0).",
    )
    dual_lr: float = Field(8e-4, gt=0, description="Learning rate of the dual optimiser.")
    gamma_lr: float | None = Field(
        None, gt=0, description="Learning rate of the primal optimiser on the gammas (null: train.lr). Under Adam "
        "gamma moves by about this much per step however large the multiplier, so it sets how fast gamma can reach 0.",
    )
    gamma_optimizer: Literal["adam", "sgd"] = Field(
        "adam",
        description="Primal optimiser of the gammas: `adam` (the primal Adam, shared with the weights: the paper's "
        "setting) or `sgd` (plain SGD at gamma_lr, default 1000 x train.lr, the weights staying on Adam: the "
        "`adamsgd` optimiser of the ACE authors' N-body code). Under SGD the multiplier pulls gamma by "
        "lr * lambda per step rather than by about lr, however large lambda grows.",
    )
    prune_tol: float | None = Field(
        None,
        gt=0,
        description="Equality blocks: once every equality gamma has |gamma| <= prune_tol at the end of an epoch, set "
        "them to 0 and remove their branches from training for the rest of the run (the constraint is met; the "
        "remaining budget trains the equivariant model alone). null: never (the branches stay to the end).",
    )
    dual_kp: float = Field(
        0.0, ge=0, description="`nupi`: proportional gain Kp (the integral gain is 1; Kp = 0 is plain `sgd` ascent)."
    )
    schedule_end: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Schedule mode: fraction of the training steps after which gamma stays 0; "
        "before it gamma = init_gamma * sin(pi * t / (schedule_end * T)).",
    )
    blocks: dict[str, BlockOverride] = Field(
        default_factory=dict,
        description="Per-block overrides keyed by block name or glob pattern "
        "(e.g. `layers.3.*: {mode: strict}` keeps the last layer strict).",
    )

    def resolve(self, block_names: list[str]) -> dict[str, BlockBudget]:
        """Resolve the settings of each named block; later patterns override earlier ones.

        Raises ``KeyError(pattern)`` for a pattern that matches no block.
        """
        for pattern in self.blocks:
            if not fnmatch.filter(block_names, pattern):
                raise KeyError(pattern)
        plan: dict[str, BlockBudget] = {}
        for name in block_names:
            fields = {"mode": self.mode, "init_gamma": self.init_gamma, "eps": self.eps, "rho": self.rho}
            for pattern, override in self.blocks.items():
                if fnmatch.fnmatchcase(name, pattern):
                    fields.update(override.model_dump(exclude_none=True))
            plan[name] = BlockBudget(**fields)
        return plan
