"""Config schemas and loading: YAML -> omegaconf -> validated pydantic ``ZooConfig``."""
from acezoo.config.base import ArchSpec, DatasetSpec, StrictModel
from acezoo.config.constraints import MODES, BlockOverride, ConstraintBudget
from acezoo.config.train import TrainConfig

__all__ = ["ArchSpec", "DatasetSpec", "StrictModel", "MODES", "BlockOverride", "ConstraintBudget", "TrainConfig"]
