"""``advection_2d``: predict a diffusing (and, optionally, wind-advected) 2-D field k steps ahead.

Input ``x`` is the field ``u(0)`` (1, N, N), target ``y`` is ``u(k dt)`` (1, N, N), both on the
periodic unit square (see :mod:`acezoo.data.advection_sim` for the exact spectral solution).
With ``wind = (0, 0)`` the map ``u(0) -> u(T)`` commutes with rotations by 90 degrees and
mirrors (a C4 / D4 symmetric task); a constant wind shifts the field in one direction and
breaks that symmetry (the partially symmetric variant). Generated with numpy, deterministic by
seed, cached under ``<data home>/advection/``.
"""
from __future__ import annotations


import numpy as np
import torch

from acezoo.data.advection_sim import simulate
from acezoo.data.bundle import DataBundle, RegressionTask
from acezoo.data.cache import cache_path, cached_arrays
from acezoo.data.images import ImageTensorDataset
from acezoo.data.specs import AdvectionSpec

__all__ = ["AdvectionSpec", "build_advection"]

_SPLIT_OFFSET = {"train": 1, "val": 2, "test": 3}


def _split_arrays(spec: AdvectionSpec, split: str) -> dict[str, np.ndarray]:
    n = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}[split]
    seed = spec.seed * 1000 + _SPLIT_OFFSET[split]
    horizon = spec.steps * spec.dt
    key = {"size": spec.size, "n": n, "seed": seed, "horizon": horizon, "D": spec.diffusivity,
           "wind": list(spec.wind), "smoothness": spec.smoothness, "v": 1}

    def make() -> dict[str, np.ndarray]:
        u0, ut = simulate(n, size=spec.size, seed=seed, horizon=horizon, diffusivity=spec.diffusivity,
                          wind=spec.wind, smoothness=spec.smoothness)
        return {"u0": u0, "ut": ut}

    return cached_arrays(cache_path("advection", f"field_n{n}_s{seed}", key), make)


def build_advection(spec: AdvectionSpec, progress: bool = False) -> DataBundle:  # noqa: ARG001
    """2-D field under diffusion (+ constant wind), k steps ahead; wind breaks rot90 symmetry."""
    splits = []
    for split in ("train", "val", "test"):
        a = _split_arrays(spec, split)
        splits.append(ImageTensorDataset(torch.from_numpy(a["u0"])[:, None], torch.from_numpy(a["ut"])[:, None]))
    return DataBundle(*splits, RegressionTask(target="y", metric="mse"),
                      info={"symmetric": spec.wind == (0.0, 0.0)})
