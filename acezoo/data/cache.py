"""A cache of generated arrays: one ``.npz`` per parameter set under the data home."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from acezoo.io.atomic import atomic_write
from acezoo.paths import data_home

__all__ = ["cache_path", "cached_arrays"]


def cache_path(kind: str, stem: str, key: dict[str, Any]) -> Path:
    """``<data home>/<kind>/<stem>_<digest>.npz`` where the digest hashes ``key`` (JSON)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return data_home() / kind / f"{stem}_{digest}.npz"


def cached_arrays(path: Path, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored at ``path``, or ``make()`` written there atomically (temp file, then rename)."""
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    arrays = make()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez(f, **arrays)

    atomic_write(path, write)
    return arrays
