"""The initial conditions of the EGNN authors' ``nbody_small`` data set, replayed.

Satorras et al. (2021) generated their charged N-body set with ``generate_dataset.py --num-train
10000 --seed 43 --sufix small``: NumPy's legacy global generator seeded with 43, then 10000
training, 2000 validation and 2000 test simulations in that order, each drawing, in this order,

1. the charges, ``choice([-1, 0, 1], size=(5, 1), p=[1/2, 0, 1/2])`` (5 uniforms),
2. the positions, ``randn(3, 5) * loc_std`` with ``loc_std = 1``, reflected into the box
   ``[-5, 5]`` once (velocity components flipped where a coordinate was reflected),
3. the velocity directions, ``randn(3, 5)``, each particle's scaled to speed 0.5,
4. observation noise, ``randn(49, 3, 5)`` twice, multiplied by ``noise_var = 0`` (drawn all
   the same, so it moves the stream on).

:func:`egnn_small_initial_conditions` makes the same calls on a ``numpy.random.RandomState(43)``
and so yields the same initial conditions (the training script used the first 3000 training
simulations). Integrated with :func:`acezoo.data.nbody_sim.integrate` (the same scheme and
constants), they give the authors' trajectories up to float round-off, which the chaotic
dynamics amplify over thousands of steps in some trajectories. The authors store the first frame
after 100 steps, so their frames 30 and 40 are frames 31 and 41 here.
"""
from __future__ import annotations

import numpy as np

__all__ = ["EGNN_SMALL_SIZES", "EGNN_SMALL_SEED", "egnn_small_initial_conditions"]

EGNN_SMALL_SEED = 43
EGNN_SMALL_SIZES = {"train": 10_000, "val": 2_000, "test": 2_000}
_N, _SPEED, _BOX, _SAVED_FRAMES = 5, 0.5, 5.0, 49


def _one_draw(rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    charge = rs.choice(np.array([-1.0, 0.0, 1.0]), size=(_N, 1), p=[0.5, 0.0, 0.5])
    loc = rs.randn(3, _N)  # loc_std = 1
    vel = rs.randn(3, _N)
    vel = vel * _SPEED / np.sqrt((vel**2).sum(axis=0)).reshape(1, -1)
    over, under = loc > _BOX, loc < -_BOX
    loc[over], vel[over] = 2 * _BOX - loc[over], -np.abs(vel[over])
    loc[under], vel[under] = -2 * _BOX - loc[under], np.abs(vel[under])
    rs.randn(_SAVED_FRAMES, 3, _N)  # position noise (times 0)
    rs.randn(_SAVED_FRAMES, 3, _N)  # velocity noise (times 0)
    return loc.T, vel.T, charge


def egnn_small_initial_conditions(split: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pos0, vel0, charge)`` of the first ``n`` simulations of ``split`` (train, val or test),
    shapes ``(n, 5, 3)``, ``(n, 5, 3)``, ``(n, 5, 1)``, float64."""
    if split not in EGNN_SMALL_SIZES:
        raise ValueError(f"split must be one of {sorted(EGNN_SMALL_SIZES)}, got {split!r}")
    if not 0 <= n <= EGNN_SMALL_SIZES[split]:
        raise ValueError(f"the {split} split of nbody_small has {EGNN_SMALL_SIZES[split]} simulations, asked for {n}")
    rs = np.random.RandomState(EGNN_SMALL_SEED)
    skip = {"train": 0, "val": EGNN_SMALL_SIZES["train"],
            "test": EGNN_SMALL_SIZES["train"] + EGNN_SMALL_SIZES["val"]}[split]
    for _ in range(skip):
        _one_draw(rs)
    draws = [_one_draw(rs) for _ in range(n)]
    pos0 = np.stack([d[0] for d in draws]) if draws else np.zeros((0, _N, 3))
    vel0 = np.stack([d[1] for d in draws]) if draws else np.zeros((0, _N, 3))
    charge = np.stack([d[2] for d in draws]) if draws else np.zeros((0, _N, 1))
    return np.ascontiguousarray(pos0), np.ascontiguousarray(vel0), charge
