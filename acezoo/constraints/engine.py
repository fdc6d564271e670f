"""The ACE primal-dual engine, with cooper-optim as the Lagrangian machinery.

Per relaxed block ``i`` (see the method page of the documentation, ``docs/site/method.md``):

- equality   ``gamma_i = 0``,        multiplier ``lambda_i`` free in sign;
- tolerance  ``|gamma_i| - eps_i <= 0``, ``lambda_i >= 0``;
- resilient  ``|gamma_i| - u_i <= 0``,   ``lambda_i >= 0``, slack ``u_i >= 0`` with cost
  ``rho_i / 2 * u_i^2`` added to the objective;
- free       no constraint (gamma trained as an ordinary parameter);
- schedule   gamma not trained, set each step to ``g0 * sin(pi * t / (s * T))`` for
  ``t < s * T`` and 0 afterwards;
- error_budget  gamma trained freely; one global, data-dependent constraint
  ``E_batch[defect] - budget <= 0`` on the measured equivariance defect of the full model
  (``loss_fn`` returns ``(loss, defect)``), multiplier ``lambda >= 0``. The primal step sees
  this rank's differentiable defect; the dual step uses the defect averaged over every
  data-parallel rank (``reduce`` all-reduces its (sum, count)), from the same step.
- penalty    gamma trained freely; ``penalty_weight * defect`` is added to the objective (a
  fixed-weight equivariance penalty, REMUL-style; no multiplier).

The gammas share the primal Adam by default (the paper's setting); with
``gamma_optimizer: sgd`` they get their own plain SGD at ``gamma_lr`` (default 1000 x the
primal lr, the ACE authors' ``adamsgd``), so a step moves gamma by ``lr * (dJ/dgamma +
lambda)`` instead of about ``lr`` whatever the multiplier.

An optional augmented-Lagrangian term ``c/2 * h(gamma)^2`` (inequalities: the positive part
squared) is added to the primal objective only; it is zero at feasible points, so it moves no
solution, but it damps the bilinear game (primal and dual Adam on ``lambda * gamma`` alone
spiral outward, even with alternation). ``c = 0`` gives ACE's algorithms verbatim.

One iteration is cooper's *alternating* primal-dual step: a primal step on the Lagrangian
(theta, gamma and u together, then ``u <- max(0, u)``), then a dual step using the
constraint violations at the *new* primal point, then the projection ``lambda <- max(0,
lambda)`` of inequality multipliers. With SGD on both sides this is exactly ACE's
Algorithms 1 and 2; alternation (rather than simultaneous descent-ascent) keeps the
bilinear game bounded where the loss is flat in gamma. The constraints depend on gamma
only, so re-evaluating them at the new point costs nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

import cooper
import torch
from torch import nn

from acezoo.compiler import RelaxedModel
from acezoo.config.constraints import ConstraintBudget

__all__ = ["PrimalDual", "StepResult", "PrimalOptimizerFactory"]

PrimalOptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]


@dataclass
class StepResult:
    """What one primal-dual iteration measured (before its updates)."""

    loss: float
    lagrangian: float


class _GammaProblem(cooper.ConstrainedMinimizationProblem):
    """The constrained problem over the gammas; the loss comes from a closure."""

    def __init__(self, engine: "PrimalDual") -> None:
        super().__init__()
        self.engine = engine
        e = engine
        dense = lambda n, dtype: cooper.multipliers.DenseMultiplier(  # noqa: E731
            num_constraints=n, dtype=dtype, device=e.device
        )
        if e.eq_names:
            self.equality = cooper.Constraint(
                cooper.ConstraintType.EQUALITY, cooper.formulations.Lagrangian, multiplier=dense(len(e.eq_names), e.dtype)
            )
        if e.tol_names:
            self.tolerance = cooper.Constraint(
                cooper.ConstraintType.INEQUALITY, cooper.formulations.Lagrangian, multiplier=dense(len(e.tol_names), e.dtype)
            )
        if e.res_names:
            self.resilient = cooper.Constraint(
                cooper.ConstraintType.INEQUALITY, cooper.formulations.Lagrangian, multiplier=dense(len(e.res_names), e.dtype)
            )
        if e.budget_names:
            self.error = cooper.Constraint(
                cooper.ConstraintType.INEQUALITY, cooper.formulations.Lagrangian, multiplier=dense(1, e.dtype)
            )

    def compute_violations(self) -> cooper.CMPState:
        e = self.engine
        observed: dict[cooper.Constraint, cooper.ConstraintState] = {}
        if e.eq_names:
            observed[self.equality] = cooper.ConstraintState(violation=e._gammas(e.eq_names))
        if e.tol_names:
            observed[self.tolerance] = cooper.ConstraintState(violation=e._gammas(e.tol_names).abs() - e.eps)
        if e.res_names:
            observed[self.resilient] = cooper.ConstraintState(violation=e._gammas(e.res_names).abs() - e.slack)
        if e.budget_names and e._defect_global is not None:
            # the dual step of the alternating update: the (all-reduced) defect of this step
            observed[self.error] = cooper.ConstraintState(violation=(e._defect_global - e.error_budget).reshape(1))
        return cooper.CMPState(observed_constraints=observed)

    def compute_cmp_state(self, loss_fn: Callable[[], Any]) -> cooper.CMPState:
        e = self.engine
        out = loss_fn()
        loss, defect = out if isinstance(out, tuple) else (out, None)
        e._last_loss = loss.detach()
        objective = loss
        if e.res_names:
            objective = objective + 0.5 * (e.rho * e.slack.pow(2)).sum()
        if e.needs_defect:
            if defect is None:
                raise ValueError("error_budget and penalty modes need loss_fn to return (loss, equivariance defect)")
            e._defect_global = e.reduce_defect(defect.detach().to(e.dtype))
        if e.penalty_names:
            assert defect is not None
            objective = objective + e.penalty_weight * defect.to(objective.dtype)
        state = self.compute_violations()
        if e.budget_names:
            assert defect is not None
            local = (defect.to(e.dtype) - e.error_budget).reshape(1)
            state.observed_constraints[self.error] = cooper.ConstraintState(
                violation=local, strict_violation=(e._defect_global - e.error_budget).reshape(1))
        if e.penalty > 0:
            squares = [
                (cs.violation if c is getattr(self, "equality", None) else cs.violation.clamp_min(0)).pow(2).sum()
                for c, cs in state.observed_constraints.items() if c is not getattr(self, "error", None)
            ]
            objective = objective + 0.5 * e.penalty * sum(squares)
        state.loss = objective
        return state


class PrimalDual:
    """ACE's primal-dual optimiser over a :class:`RelaxedModel`.

    Args:
        model: the compiled model (its ``plan`` gives each block's mode).
        budget: the constraint budget (dual optimiser, dual lr, schedule).
        make_primal: builds the primal optimiser from parameter groups (weights, gammas,
            slacks); the trainer passes Adam, the unit tests SGD.
        total_steps: number of iterations of the whole run (for ``schedule`` mode).
        reduce_defect: maps this rank's measured defect to the mean over all ranks
            (``error_budget`` mode under data parallelism; default: the identity).
    """

    def __init__(
        self,
        model: RelaxedModel,
        budget: ConstraintBudget,
        make_primal: PrimalOptimizerFactory,
        total_steps: int = 1,
        reduce_defect: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.model = model
        self.budget = budget
        self.total_steps = max(1, total_steps)
        self.step_count = 0
        gammas = model.named_gammas()
        plan = model.plan
        by_mode = lambda m: [n for n in gammas if plan[n].mode == m]  # noqa: E731
        self.eq_names, self.tol_names, self.res_names = by_mode("equality"), by_mode("tolerance"), by_mode("resilient")
        self.free_names, self.sched_names = by_mode("free"), by_mode("schedule")
        self.budget_names = by_mode("error_budget")
        self.penalty_names = by_mode("penalty")
        self.penalty_weight = float(budget.penalty_weight)
        self.error_budget = float(budget.error_budget)
        self.reduce_defect = reduce_defect or (lambda d: d)
        self._defect_global: torch.Tensor | None = None
        self._gamma_params = gammas
        param = next(iter(model.parameters()), None)
        # multipliers and slacks stay in float32 (float64 when the model is float64)
        self.dtype = torch.float64 if param is not None and param.dtype == torch.float64 else torch.float32
        self.device = device = param.device if param is not None else torch.device("cpu")
        self.eps = torch.tensor([plan[n].eps for n in self.tol_names], dtype=self.dtype, device=device)
        self.rho = torch.tensor([plan[n].rho for n in self.res_names], dtype=self.dtype, device=device)
        self.slack = nn.Parameter(torch.zeros(len(self.res_names), dtype=self.dtype, device=device))
        self.penalty = float(budget.penalty)
        self._last_loss: torch.Tensor | None = None

        trained_gammas = [gammas[n] for n in self.eq_names + self.tol_names + self.res_names + self.free_names
                          + self.budget_names + self.penalty_names]
        groups: list[dict[str, Any]] = [{"params": model.weight_parameters(), "name": "weights"}]
        sgd_gammas = bool(trained_gammas) and budget.gamma_optimizer == "sgd"
        if trained_gammas and not sgd_gammas:
            gamma_group: dict[str, Any] = {"params": trained_gammas, "weight_decay": 0.0, "name": "gammas"}
            if budget.gamma_lr is not None:
                gamma_group["lr"] = budget.gamma_lr
            groups.append(gamma_group)
        if self.res_names:
            groups.append({"params": [self.slack], "weight_decay": 0.0, "name": "slacks"})
        self.primal = make_primal(groups)
        self.gamma_sgd: torch.optim.Optimizer | None = None
        if sgd_gammas:
            lr = budget.gamma_lr if budget.gamma_lr is not None else 1000.0 * float(self.primal.defaults["lr"])
            self.gamma_sgd = torch.optim.SGD(trained_gammas, lr=lr)
        primal_optimizers = [self.primal] + ([self.gamma_sgd] if self.gamma_sgd is not None else [])
        if self.res_names:
            self.primal.register_step_post_hook(self._project_slacks)
        self.problem = _GammaProblem(self)
        dual_params = list(self.problem.dual_parameters())
        if dual_params:
            if budget.dual_optimizer == "sgd":
                self.dual: torch.optim.Optimizer | None = torch.optim.SGD(dual_params, lr=budget.dual_lr, maximize=True)
            elif budget.dual_optimizer == "nupi":
                self.dual = cooper.optim.nuPI(dual_params, lr=budget.dual_lr, Kp=torch.tensor(budget.dual_kp),
                                              Ki=torch.tensor(1.0), maximize=True)
            else:
                self.dual = torch.optim.Adam(dual_params, lr=budget.dual_lr, maximize=True)
            self.optimizer: cooper.optim.CooperOptimizer = cooper.optim.AlternatingPrimalDualOptimizer(
                self.problem, primal_optimizers=primal_optimizers, dual_optimizers=self.dual
            )
        else:
            self.dual = None
            self.optimizer = cooper.optim.UnconstrainedOptimizer(self.problem, primal_optimizers=primal_optimizers)
        self._apply_schedule()

    # -- helpers ---------------------------------------------------------------------------
    @property
    def needs_defect(self) -> bool:
        """Whether ``loss_fn`` must also return the equivariance defect (error_budget, penalty)."""
        return bool(self.budget_names or self.penalty_names)

    def _gammas(self, names: list[str]) -> torch.Tensor:
        return torch.stack([self._gamma_params[n] for n in names]).to(self.dtype)

    def _project_slacks(self, *_: Any) -> None:
        with torch.no_grad():
            self.slack.clamp_(min=0.0)

    def schedule_value(self, step: int) -> float:
        """Gamma of ``schedule`` blocks at iteration ``step`` (before the peak scaling)."""
        end = self.budget.schedule_end * self.total_steps
        return math.sin(math.pi * step / end) if step < end else 0.0

    def _apply_schedule(self) -> None:
        if not self.sched_names:
            return
        value = self.schedule_value(self.step_count)
        with torch.no_grad():
            for n in self.sched_names:
                self._gamma_params[n].fill_(self.model.plan[n].init_gamma * value)

    # -- the iteration ---------------------------------------------------------------------
    def step(self, loss_fn: Callable[[], torch.Tensor], clip: Callable[[], None] | None = None) -> StepResult:
        """One primal-dual iteration on the loss returned by ``loss_fn()``.

        ``clip`` (optional) runs between the backward pass and the primal step (gradient
        clipping). Raises ``FloatingPointError`` on a non-finite loss, before any update.
        """
        if clip is None:
            roll = self.optimizer.roll(compute_cmp_state_kwargs={"loss_fn": self._checked(loss_fn)})
        else:
            roll = self._roll_with_clip(loss_fn, clip)
        self.step_count += 1
        self._apply_schedule()
        lagr = roll.primal_lagrangian_store.lagrangian
        return StepResult(float(self._last_loss), float(lagr.detach()) if lagr is not None else float("nan"))

    def _checked(self, loss_fn: Callable[[], Any]) -> Callable[[], Any]:
        def wrapped() -> Any:
            out = loss_fn()
            loss = out[0] if isinstance(out, tuple) else out
            if not torch.isfinite(loss.detach()).all():
                raise FloatingPointError(f"non-finite loss {float(loss.detach())}")
            return out

        return wrapped

    def _roll_with_clip(self, loss_fn: Callable[[], torch.Tensor], clip: Callable[[], None]) -> Any:
        """Cooper's alternating roll with a hook between backward and the primal step."""
        opt = self.optimizer
        opt.zero_grad()
        state = self.problem.compute_cmp_state(self._checked(loss_fn))
        primal_store = state.compute_primal_lagrangian()
        primal_store.backward()
        clip()
        opt.primal_step()
        dual_store = None
        if self.dual is not None:
            with torch.no_grad():
                new_state = self.problem.compute_violations()
            dual_store = new_state.compute_dual_lagrangian()
            dual_store.backward()
            opt.dual_step()
        return cooper.optim.RollOut(state.loss, state, primal_store, dual_store)

    def prune_feasible(self, tol: float) -> bool:
        """Prune the equality blocks if every equality gamma has ``|gamma| <= tol``: their gammas
        become 0 and stop training, and their branches are no longer evaluated (nor trained).
        Returns whether it pruned."""
        if not self.eq_names or any(abs(float(self._gamma_params[n].detach())) > tol for n in self.eq_names):
            return False
        self.apply_pruning()
        return True

    def apply_pruning(self) -> None:
        """Set the equality gammas to 0, freeze them and switch their blocks to equivariant-only."""
        blocks = self.model.relaxed_blocks()
        with torch.no_grad():
            for n in self.eq_names:
                self._gamma_params[n].zero_()
                self._gamma_params[n].requires_grad_(False)
                blocks[n].equivariant_only = True

    # -- read-outs -------------------------------------------------------------------------
    def multipliers(self) -> dict[str, float]:
        """Current multiplier of every constrained block."""
        out: dict[str, float] = {}
        for attr, names in (("equality", self.eq_names), ("tolerance", self.tol_names), ("resilient", self.res_names)):
            if names:
                values = getattr(self.problem, attr).multiplier.weight.detach().tolist()
                out.update(zip(names, values))
        if self.budget_names:
            out["error_budget"] = float(self.problem.error.multiplier.weight.detach()[0])
        return out

    def measured_defect(self) -> float | None:
        """The last measured equivariance defect (mean over ranks), in ``error_budget`` mode."""
        return None if self._defect_global is None else float(self._defect_global)

    def slacks(self) -> dict[str, float]:
        """Current slack ``u_i`` of every resilient block."""
        return dict(zip(self.res_names, self.slack.detach().tolist()))

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: optimisers, multipliers, slacks, step."""
        return {
            "step_count": self.step_count,
            "slack": self.slack.detach().clone(),
            "multipliers": self.problem.state_dict()["multipliers"],
            "primal": self.primal.state_dict(),
            **({"gamma_sgd": self.gamma_sgd.state_dict()} if self.gamma_sgd is not None else {}),
            "dual": _plain_enums(self.dual.state_dict()) if self.dual is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        with torch.no_grad():
            self.slack.copy_(state["slack"])
        self.problem.load_state_dict({"multipliers": state["multipliers"], "penalty_coefficients": {}})
        self.primal.load_state_dict(state["primal"])
        if self.gamma_sgd is not None and "gamma_sgd" in state:
            self.gamma_sgd.load_state_dict(state["gamma_sgd"])
        if self.dual is not None:
            dual = state["dual"]
            for saved, current in zip(dual["param_groups"], self.dual.param_groups):
                for key, value in current.items():  # e.g. nuPI's init_type: stored as its value
                    if isinstance(value, Enum):
                        saved[key] = type(value)(saved[key])
            self.dual.load_state_dict(dual)
        self._apply_schedule()


def _plain_enums(state: dict[str, Any]) -> dict[str, Any]:
    """An optimiser state dict with enum hyper-parameters replaced by their values (checkpoints
    store plain data only; :meth:`PrimalDual.load_state_dict` restores the enums)."""
    for group in state["param_groups"]:
        for key, value in group.items():
            if isinstance(value, Enum):
                group[key] = value.value
    return state
