"""Primal-dual training of the gammas (ACE)."""
from acezoo.constraints.engine import PrimalDual, StepResult

__all__ = ["PrimalDual", "StepResult"]
