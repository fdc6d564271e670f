"""The shared trainer (imported on first use: ``acezoo.training.checkpoint`` stays light).

:class:`~acezoo.training.trainer.Trainer` runs one training run, with
:class:`~acezoo.training.callbacks.Callback` objects around its loop. :func:`acezoo.run.train`
(``acezoo.train``) composes it with the hub's tracking and model card; this package does not
import the hub.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Trainer", "Callback", "TrainResult", "TrainingInterrupted", "build_data"]

_LAZY = {
    "Trainer": "acezoo.training.trainer",
    "Callback": "acezoo.training.callbacks",
    "TrainResult": "acezoo.training.trainer",
    "TrainingInterrupted": "acezoo.training.trainer",
    "build_data": "acezoo.training.trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
