"""Safe, atomic file I/O (``load_tree`` / ``save_tree`` import torch on first use)."""
from __future__ import annotations

from importlib import import_module
from typing import Any

from acezoo.io.atomic import atomic_write, atomic_write_text

__all__ = ["atomic_write", "atomic_write_text", "load_tree", "save_tree"]


def __getattr__(name: str) -> Any:
    if name in ("load_tree", "save_tree"):
        return getattr(import_module("acezoo.io.tree"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
