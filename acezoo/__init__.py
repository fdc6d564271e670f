"""acezoo: a config-compiled zoo of approximately equivariant networks trained with ACE.

Data flows one way: YAML -> :func:`load_config` -> :func:`compile_model` -> :func:`train`.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from acezoo._version import __version__
from acezoo.errors import AcezooError, CheckpointError, ConfigError, InputError, TrainingDiverged

if TYPE_CHECKING:  # the names below are imported on first use (``import acezoo`` stays light)
    from acezoo.compiler import RelaxedModel, compile_model
    from acezoo.config.base import ArchSpec, DatasetSpec
    from acezoo.config.constraints import ConstraintBudget
    from acezoo.config.loader import load_config
    from acezoo.config.schema import ZooConfig
    from acezoo.nn.relaxed import Relaxed
    from acezoo.inputs.atoms import molecules
    from acezoo.inputs.point_clouds import PointCloudBatch, point_cloud
    from acezoo.inputs.skeleton import mocap_input, mocap_skeleton
    from acezoo.registry import register_arch, register_dataset

_LAZY = {
    "RelaxedModel": "acezoo.compiler",
    "compile_model": "acezoo.compiler",
    "ArchSpec": "acezoo.config.base",
    "DatasetSpec": "acezoo.config.base",
    "ConstraintBudget": "acezoo.config.constraints",
    "load_config": "acezoo.config.loader",
    "ZooConfig": "acezoo.config.schema",
    "Relaxed": "acezoo.nn.relaxed",
    "register_arch": "acezoo.registry",
    "register_dataset": "acezoo.registry",
    "point_cloud": "acezoo.inputs.point_clouds",
    "PointCloudBatch": "acezoo.inputs.point_clouds",
    "mocap_input": "acezoo.inputs.skeleton",
    "mocap_skeleton": "acezoo.inputs.skeleton",
    "molecules": "acezoo.inputs.atoms",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use: ``import acezoo`` needs neither torch nor MLflow."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "point_cloud",
    "PointCloudBatch",
    "mocap_input",
    "mocap_skeleton",
    "molecules",
    "train",
    "load",
    "register",
    "list_models",
    "model_card",
    "AcezooError",
    "ConfigError",
    "CheckpointError",
    "InputError",
    "TrainingDiverged",
]


def train(config=None, **kwargs):  # noqa: ANN001, ANN003, ANN201 - lazy wrapper, see acezoo.run.train
    """Train ``config`` (a ``ZooConfig``), or continue ``resume=RUN_DIR``, with the shared trainer.

    Returns a ``TrainResult`` (``run_dir``, ``metrics``, ``history``, ``model``); see
    :func:`acezoo.run.train` for every option (``callbacks=`` adds
    :class:`acezoo.training.callbacks.Callback` objects to the :class:`acezoo.training.trainer.Trainer`).
    """
    from acezoo.run import train as _train

    return _train(config, **kwargs)


def load(name, **kwargs):  # noqa: ANN001, ANN003, ANN201 - lazy wrapper, see acezoo.hub.models.load
    """Load a registered or pretrained model by ``NAME``, ``NAME@alias`` or ``NAME/version``.

    Returns the pruned (exactly equivariant) network in eval mode; ``full=True`` gives the
    relaxed model; ``device=`` places it. ``model.acezoo_inputs`` says what it reads and returns
    (fields, shapes, units) and how to build its input; a missing or mis-shaped input field is an
    :class:`InputError` before any layer runs. See :func:`acezoo.hub.models.load`.
    """
    from acezoo.hub.models import load as _load

    return _load(name, **kwargs)


def register(checkpoint, name, alias=None, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """Register a checkpoint directory (or MLflow run id) as model ``name``; see :func:`acezoo.hub.models.register`."""
    from acezoo.hub.models import register as _register

    return _register(checkpoint, name, alias=alias, **kwargs)


def list_models(pattern="*", pretrained=False, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """Registered models matching ``pattern`` (``pretrained=True``: the models shipped with acezoo)."""
    from acezoo.hub.models import list_models as _list_models

    return _list_models(pattern, pretrained=pretrained, **kwargs)


def model_card(name, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """The model card of a registered model (what ``acezoo info NAME`` prints)."""
    from acezoo.hub.models import model_card as _model_card

    return _model_card(name, **kwargs)
