"""A cache of generated arrays: one ``.npz`` per parameter set under the data home."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return arrays
