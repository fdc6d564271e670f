"""The shared trainer (imported on first use: ``acezoo.training.checkpoint`` stays light)."""
from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["train", "TrainResult", "TrainingInterrupted"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("acezoo.training.trainer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
