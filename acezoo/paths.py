"""Where acezoo keeps things on disk.

The *data home* holds cached data sets (and, later, the local model registry). It is
``$ACEZOO_HOME`` when set, else the user's cache directory (``~/.cache/acezoo`` on Linux).
"""
from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

__all__ = ["data_home", "repo_zoo_configs_dir"]


def data_home() -> Path:
    """Return the data home directory (created if missing)."""
    root = os.environ.get("ACEZOO_HOME")
    path = Path(root).expanduser() if root else Path(user_cache_dir("acezoo"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_zoo_configs_dir() -> Path:
    """The ``zoo_configs/`` folder of the source tree this package was imported from."""
    return Path(__file__).resolve().parent.parent / "zoo_configs"
