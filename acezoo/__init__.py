"""acezoo: a config-compiled zoo of approximately equivariant networks trained with ACE.

Data flows one way: YAML -> :func:`load_config` -> :func:`compile_model` -> :func:`train`.
"""
from acezoo._version import __version__
from acezoo.compiler import RelaxedModel, compile_model
from acezoo.config.base import ArchSpec, DatasetSpec
from acezoo.config.constraints import ConstraintBudget
from acezoo.config.loader import load_config
from acezoo.config.schema import ZooConfig
from acezoo.errors import AcezooError, CheckpointError, ConfigError, TrainingDiverged
from acezoo.nn.relaxed import Relaxed
from acezoo.registry import register_arch, register_dataset

__all__ = [
    "__version__",
    "ArchSpec",
    "DatasetSpec",
    "ConstraintBudget",
    "ZooConfig",
    "Relaxed",
    "RelaxedModel",
    "compile_model",
    "load_config",
    "register_arch",
    "register_dataset",
    "train",
    "AcezooError",
    "ConfigError",
    "CheckpointError",
    "TrainingDiverged",
]


def train(config=None, **kwargs):  # noqa: ANN001, ANN003, ANN201 - lazy wrapper, see acezoo.training.train
    """Train ``config`` (a ``ZooConfig``), or continue ``resume=RUN_DIR``, with the shared trainer.

    Returns a ``TrainResult`` (``run_dir``, ``metrics``, ``history``, ``model``); see
    :func:`acezoo.training.trainer.train` for every option.
    """
    from acezoo.training.trainer import train as _train

    return _train(config, **kwargs)
