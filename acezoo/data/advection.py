"""``advection_2d``: predict a diffusing (and, optionally, wind-advected) 2-D field k steps ahead.

Input ``x`` is the field ``u(0)`` (1, N, N), target ``y`` is ``u(k dt)`` (1, N, N), both on the
periodic unit square (see :mod:`acezoo.data.advection_sim` for the exact spectral solution).
With ``wind = (0, 0)`` the map ``u(0) -> u(T)`` commutes with rotations by 90 degrees and
mirrors (a C4 / D4 symmetric task); a constant wind shifts the field in one direction and
breaks that symmetry (the partially symmetric variant). Generated with numpy, deterministic by
seed, cached under ``<data home>/advection/``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from acezoo.config.base import DatasetSpec
from acezoo.data.advection_sim import simulate
from acezoo.data.bundle import DataBundle, RegressionTask
from acezoo.data.cache import cache_path, cached_arrays
from acezoo.data.images import ImageTensorDataset
from acezoo.registry import register_dataset

__all__ = ["AdvectionSpec", "build_advection"]

_SPLIT_OFFSET = {"train": 1, "val": 2, "test": 3}


class AdvectionSpec(DatasetSpec):
    """Diffusion (+ constant wind) of a random smooth periodic field; predict k steps ahead."""

    dataset: Literal["advection_2d"] = "advection_2d"
    size: int = Field(17, ge=5, le=129, description="Grid points per side (odd sizes keep wind-free rot90 exact).")
    n_train: int = Field(800, ge=1, description="Training fields.")
    n_val: int = Field(200, ge=1, description="Validation fields.")
    n_test: int = Field(200, ge=1, description="Test fields.")
    steps: int = Field(10, ge=1, description="Steps ahead k: the target is u(k dt).")
    dt: float = Field(0.01, gt=0, description="Time step (the unit square is the domain).")
    diffusivity: float = Field(0.01, ge=0, description="Diffusion coefficient D.")
    wind: tuple[float, float] = Field(
        (0.0, 0.0),
        description="Constant wind (w_rows, w_cols) in domain lengths per unit time; (0, 0) is the C4/D4 symmetric task.",
    )
    smoothness: float = Field(1.5, gt=0, description="Width (grid cells) of the Gaussian filter of the initial fields.")
    seed: int = Field(0, ge=0, description="Data seed (each split derives its own from it).")


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


@register_dataset("advection_2d", spec=AdvectionSpec)
def build_advection(spec: AdvectionSpec, progress: bool = False) -> DataBundle:  # noqa: ARG001
    """2-D field under diffusion (+ constant wind), k steps ahead; wind breaks rot90 symmetry."""
    splits = []
    for split in ("train", "val", "test"):
        a = _split_arrays(spec, split)
        splits.append(ImageTensorDataset(torch.from_numpy(a["u0"])[:, None], torch.from_numpy(a["ut"])[:, None]))
    return DataBundle(*splits, RegressionTask(target="y", metric="mse"),
                      info={"symmetric": spec.wind == (0.0, 0.0)})
