"""The charged N-body benchmark (Satorras et al. 2021) as an acezoo data set.

Predict the positions at frame ``frame_out`` (default 40) from the positions, velocities and
charges at frame ``frame_in`` (default 30). Each item is a ``Data`` with ``pos`` (5, 3),
``vel`` (5, 3), ``charge`` (5, 1), ``y`` (5, 3) and a fully connected ``edge_index``.
With ``field_strength > 0`` a constant external field acts on the charges and breaks the
rotation symmetry (the partially symmetric variant); translations stay a symmetry.

Simulations are cached as ``.npz`` files under ``<data home>/nbody/`` keyed by every
parameter that affects them.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from acezoo.config.base import DatasetSpec
from acezoo.data.bundle import DataBundle, RegressionTask
from acezoo.data.cache import cache_path, cached_arrays
from acezoo.data.graphs import fully_connected_edge_index
from acezoo.data.nbody_sim import NBodyParams, simulate
from acezoo.data.tensor_graphs import GraphTensorDataset
from acezoo.registry import register_dataset

__all__ = ["NBodySpec", "build_nbody", "load_split"]

_SPLIT_OFFSET = {"train": 1, "val": 2, "test": 3}


class NBodySpec(DatasetSpec):
    """Charged 5-particle system; predict positions 10 frames (1000 steps) ahead."""

    dataset: Literal["nbody_charged"] = "nbody_charged"
    n_train: int = Field(3000, ge=1, description="Training trajectories.")
    n_val: int = Field(2000, ge=1, description="Validation trajectories.")
    n_test: int = Field(2000, ge=1, description="Test trajectories.")
    frame_in: int = Field(30, ge=0, le=48, description="Input frame (a frame every 100 steps).")
    frame_out: int = Field(40, ge=1, le=49, description="Target frame.")
    seed: int = Field(0, ge=0, description="Data seed (each split derives its own from it).")
    field_strength: float = Field(0.0, ge=0, description="Strength of a constant external field on the charges (0: none).")
    field_direction: tuple[float, float, float] = Field(
        (0.0, 0.0, 1.0), description="Direction of the external field (normalised)."
    )

    @model_validator(mode="after")
    def _check(self) -> "NBodySpec":
        if self.frame_out <= self.frame_in:
            raise ValueError(f"frame_out ({self.frame_out}) must be after frame_in ({self.frame_in})")
        if math.hypot(*self.field_direction) == 0:
            raise ValueError("field_direction must be a non-zero vector")
        return self

    def params(self) -> NBodyParams:
        """Simulator parameters (the field vector is strength * unit direction)."""
        d = np.asarray(self.field_direction, dtype=float)
        field = tuple(float(c) for c in self.field_strength * d / np.linalg.norm(d))
        return NBodyParams(field=field)  # type: ignore[arg-type]


def _cache_path(params: NBodyParams, n: int, seed: int, frames: tuple[int, int]) -> Path:
    key = {"params": asdict(params), "n": n, "seed": seed, "frames": frames, "v": 1}
    return cache_path("nbody", f"charged_n{n}_s{seed}", key)


def load_split(spec: NBodySpec, split: str, progress: bool = False) -> dict[str, np.ndarray]:
    """Arrays ``pos_in, vel_in, pos_out, charge`` of one split (simulated once, then cached)."""
    n = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}[split]
    seed = spec.seed * 1000 + _SPLIT_OFFSET[split]
    frames = (spec.frame_in, spec.frame_out)
    params = spec.params()

    def make() -> dict[str, np.ndarray]:
        traj = simulate(n, seed=seed, params=params, frames=frames, progress=progress)
        return {"pos_in": traj.pos[:, 0], "vel_in": traj.vel[:, 0], "pos_out": traj.pos[:, 1], "charge": traj.charge}

    return cached_arrays(_cache_path(params, n, seed, frames), make)


def _to_dataset(arrays: dict[str, np.ndarray]) -> GraphTensorDataset:
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    fields = {
        "pos": as_t(arrays["pos_in"]),
        "vel": as_t(arrays["vel_in"]),
        "charge": as_t(arrays["charge"]),
        "y": as_t(arrays["pos_out"]),
    }
    return GraphTensorDataset(fields, fully_connected_edge_index(fields["pos"].shape[1]))


@register_dataset("nbody_charged", spec=NBodySpec)
def build_nbody(spec: NBodySpec, progress: bool = False) -> DataBundle:
    """Charged N-body (5 particles, frame 30 -> 40), optionally in an external field."""
    splits = {s: _to_dataset(load_split(spec, s, progress)) for s in ("train", "val", "test")}
    return DataBundle(
        splits["train"],
        splits["val"],
        splits["test"],
        RegressionTask(target="y", metric="mse"),
        info={"symmetric": spec.field_strength == 0.0},
    )
