"""The charged N-body benchmark (Satorras et al. 2021) as an acezoo data set.

Predict the positions at frame ``frame_out`` (default 40) from the positions, velocities and
charges at frame ``frame_in`` (default 30). Each item is a ``Data`` with ``pos`` (5, 3),
``vel`` (5, 3), ``charge`` (5, 1), ``y`` (5, 3) and a fully connected ``edge_index``.
With ``field_strength > 0`` a constant external field acts on the charges and breaks the
rotation symmetry (the partially symmetric variant); translations stay a symmetry.

``draw: egnn_small`` replays the initial conditions of the EGNN authors' own ``nbody_small`` set
(:mod:`acezoo.data.nbody_egnn_draw`) instead of drawing them from ``seed``.

Simulations are cached as ``.npz`` files under ``<data home>/nbody/`` keyed by every
parameter that affects them.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from acezoo.data.bundle import DataBundle, RegressionTask
from acezoo.data.cache import cache_path, cached_arrays
from acezoo.data.graphs import fully_connected_edge_index
from acezoo.data.nbody_egnn_draw import egnn_small_initial_conditions
from acezoo.data.nbody_sim import NBodyParams, integrate, simulate
from acezoo.data.specs import NBodySpec
from acezoo.data.tensor_graphs import GraphTensorDataset

__all__ = ["NBodySpec", "build_nbody", "load_split"]

_SPLIT_OFFSET = {"train": 1, "val": 2, "test": 3}


def _cache_path(params: NBodyParams, n: int, seed: int, frames: tuple[int, int], draw: str = "acezoo") -> Path:
    key = {"params": asdict(params), "n": n, "seed": seed, "frames": frames, "v": 1}
    if draw != "acezoo":
        key["draw"] = draw
        return cache_path("nbody", f"charged_{draw}_n{n}_s{seed}", key)
    return cache_path("nbody", f"charged_n{n}_s{seed}", key)


def load_split(spec: NBodySpec, split: str, progress: bool = False) -> dict[str, np.ndarray]:
    """Arrays ``pos_in, vel_in, pos_out, charge`` of one split (simulated once, then cached)."""
    n = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}[split]
    seed = spec.seed * 1000 + _SPLIT_OFFSET[split]
    frames = (spec.frame_in, spec.frame_out)
    params = spec.params()

    def make() -> dict[str, np.ndarray]:
        if spec.draw == "egnn_small":
            pos0, vel0, charge = egnn_small_initial_conditions(split, n)
            traj = integrate(pos0, vel0, charge, params, frames=frames, progress=progress)
        else:
            traj = simulate(n, seed=seed, params=params, frames=frames, progress=progress)
        return {"pos_in": traj.pos[:, 0], "vel_in": traj.vel[:, 0], "pos_out": traj.pos[:, 1], "charge": traj.charge}

    return cached_arrays(_cache_path(params, n, seed, frames, spec.draw), make)


def _to_dataset(arrays: dict[str, np.ndarray]) -> GraphTensorDataset:
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    fields = {
        "pos": as_t(arrays["pos_in"]),
        "vel": as_t(arrays["vel_in"]),
        "charge": as_t(arrays["charge"]),
        "y": as_t(arrays["pos_out"]),
    }
    return GraphTensorDataset(fields, fully_connected_edge_index(fields["pos"].shape[1]))


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
