r"""Charged N-body simulator (the EGNN protocol of Satorras et al., 2021).

Physics
-------
``n`` point particles in 3-D with unit masses and charges :math:`q_i \in \{-1, +1\}`
(each sign with probability 1/2) interact through a Coulomb-like force

.. math::

    F_i = \operatorname{clip}\Big( \sum_{j \ne i} q_i q_j
          \frac{x_i - x_j}{\lVert x_i - x_j \rVert^3} + q_i E,\ -c,\ c \Big),

where ``E`` is an optional constant external field (``NBodyParams.field``; zero by
default) and ``c = NBodyParams.force_clip`` (100) clips every Cartesian *component*
of the total force.  The field term is added **before** clipping.  Like charges
repel, opposite charges attract; the pair potential is :math:`U_{ij} = q_i q_j / r_{ij}`
and the field potential is :math:`-q_i E \cdot x_i` (see :func:`total_energy`).
There is no box and there are no walls.

Integration (the NRI / EGNN "leapfrog", i.e. kick-drift symplectic Euler) with
``dt = 0.001``::

    v <- v0 + dt * F(x0)                          # first kick
    for s = 1, 2, ...:
        x <- x + dt * v                           # drift: x is now the state at step s
        (store x, v if s is a frame step)
        v <- v + dt * F(x)                        # kick

so the stored velocity of frame ``s`` is the velocity that carried the particles from
step ``s - 1`` to step ``s`` (at step 0 it is the initial velocity, before any kick).

Frames
------
Frame ``k`` is the state at step ``k * sample_every``.  The steps visited are
``0 .. n_steps - 1`` (as in the reference code's ``for i in range(1, T)`` loop), so
``n_frames = (n_steps - 1) // sample_every + 1``: with the defaults
(``n_steps = 5000``, ``sample_every = 100``) **50 frames** are kept, at steps
0, 100, ..., 4900.  Frame 0 is the initial condition.  (The reference NRI/EGNN code
does not store the initial condition, so its frame ``k`` is our frame ``k + 1``;
the EGNN task "frame 30 -> frame 40" spans 1000 steps = 1.0 time units either way.)

Initial conditions
------------------
Positions are i.i.d. :math:`\mathcal N(0, 1)`; velocities have speed ``speed`` (0.5)
in a uniformly random direction (a standard normal 3-vector, normalised, times
``speed``).  All randomness comes from ``np.random.SeedSequence(seed)``, spawned into
two generators: one draws, per trajectory and in this order, the 3n position normals
then the 3n direction normals (one ``(n_traj, 2, n, 3)`` array, filled row-major);
the other draws one uniform per particle for the charge (``u < 1/2 -> -1``, else
``+1``).  Both fill sequentially, so trajectory ``k`` is the same whatever
``n_traj`` is (``simulate(10, s)`` restricted to its first 3 trajectories equals
``simulate(3, s)``).

Symmetry
--------
Without a field and while clipping does not bind, the dynamics are E(3)-equivariant:
rotating/reflecting and translating the initial positions (rotating the velocities)
rotates and translates the whole trajectory (up to floating-point round-off, which the
chaotic dynamics amplify over long runs).  Clipping acts per Cartesian component and is
therefore **not** rotation-equivariant when it binds (close encounters,
:math:`r \lesssim 0.1`); translations are always exact symmetries up to round-off.  A
nonzero field breaks rotation symmetry except for rotations that fix the field vector.

Implementation
--------------
All trajectories are integrated together in float64 NumPy: one set of batched array
operations per time step (loop over the ``n(n-1)/2`` particle pairs, each operation
over all trajectories at once; the internal layout is ``(n, 3, n_traj)``).  On a
2-core CPU, 7000 trajectories x 5000 steps take a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "NBodyParams",
    "Trajectories",
    "sample_initial_conditions",
    "integrate",
    "simulate",
    "coulomb_forces",
    "total_energy",
]


@dataclass(frozen=True)
class NBodyParams:
    """Parameters of the charged N-body simulation (defaults: the EGNN protocol)."""

    n_particles: int = 5
    dt: float = 0.001
    n_steps: int = 5000
    sample_every: int = 100
    speed: float = 0.5
    force_clip: float = 100.0
    field: tuple[float, float, float] = (0.0, 0.0, 0.0)  # constant external field vector

    @property
    def n_frames(self) -> int:
        """Number of frames in a full simulation: steps 0, sample_every, ... < n_steps."""
        return (self.n_steps - 1) // self.sample_every + 1


@dataclass
class Trajectories:
    """Simulated trajectories (float64).

    ``pos`` and ``vel`` have shape ``(n_traj, n_frames, n_particles, 3)``; ``charge``
    has shape ``(n_traj, n_particles, 1)`` with values in {-1, +1}.
    """

    pos: np.ndarray
    vel: np.ndarray
    charge: np.ndarray


def sample_initial_conditions(
    n_traj: int, seed: int, params: NBodyParams = NBodyParams()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``(pos0, vel0, charge)`` of shapes ``(n_traj, n, 3)``, ``(n_traj, n, 3)``,
    ``(n_traj, n, 1)`` (float64).  See the module docstring for the exact scheme."""
    if n_traj < 0:
        raise ValueError(f"n_traj must be >= 0, got {n_traj}")
    n = params.n_particles
    state_seq, charge_seq = np.random.SeedSequence(seed).spawn(2)
    rng_state = np.random.default_rng(state_seq)
    rng_charge = np.random.default_rng(charge_seq)
    z = rng_state.standard_normal((n_traj, 2, n, 3))
    pos0 = np.ascontiguousarray(z[:, 0])
    direction = z[:, 1]
    vel0 = params.speed * direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    charge = np.where(rng_charge.random((n_traj, n, 1)) < 0.5, -1.0, 1.0)
    return pos0, np.ascontiguousarray(vel0), charge


def _pair_indices(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def _forces_internal(
    x: np.ndarray,
    qq: list[np.ndarray],
    pairs: list[tuple[int, int]],
    qE: np.ndarray | None,
    clip: float,
) -> np.ndarray:
    """Forces in the internal layout: ``x`` is ``(n, 3, B)``, ``qq[p]`` is ``(B,)``,
    ``qE`` is ``(n, 3, B)`` or None.  Returns ``(n, 3, B)``."""
    F = np.zeros_like(x) if qE is None else qE.copy()
    for p, (i, j) in enumerate(pairs):
        d = x[i] - x[j]  # (3, B)
        r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        c = qq[p] / (r2 * np.sqrt(r2))
        f = c * d
        F[i] += f
        F[j] -= f
    if np.isfinite(clip):
        np.clip(F, -clip, clip, out=F)
    return F


def _field_vector(params: NBodyParams) -> np.ndarray | None:
    E = np.asarray(params.field, dtype=np.float64)
    if E.shape != (3,):
        raise ValueError(f"field must be a 3-vector, got shape {E.shape}")
    return None if not np.any(E) else E


def coulomb_forces(pos: np.ndarray, charge: np.ndarray, params: NBodyParams = NBodyParams()) -> np.ndarray:
    """Clipped forces ``(..., n, 3)`` for positions ``(..., n, 3)`` and charges ``(..., n, 1)``
    (the same function the integrator uses, including the field and clipping)."""
    pos = np.asarray(pos, dtype=np.float64)
    batch = pos.shape[:-2]
    n = pos.shape[-2]
    x = pos.reshape(-1, n, 3).transpose(1, 2, 0)
    q = np.broadcast_to(np.asarray(charge, dtype=np.float64), batch + (n, 1)).reshape(-1, n)
    pairs = _pair_indices(n)
    qq = [q[:, i] * q[:, j] for i, j in pairs]
    E = _field_vector(params)
    qE = None if E is None else q.T[:, None, :] * E[None, :, None]
    F = _forces_internal(np.ascontiguousarray(x), qq, pairs, qE, params.force_clip)
    return F.transpose(2, 0, 1).reshape(pos.shape)


def total_energy(
    pos: np.ndarray, vel: np.ndarray, charge: np.ndarray, field: Sequence[float] = (0.0, 0.0, 0.0)
) -> np.ndarray:
    """Kinetic + Coulomb (+ field) energy, shape ``(...)`` for inputs ``(..., n, 3)``:
    ``sum_i |v_i|^2 / 2 + sum_{i<j} q_i q_j / r_ij - sum_i q_i E . x_i``."""
    pos = np.asarray(pos, dtype=np.float64)
    vel = np.asarray(vel, dtype=np.float64)
    q = np.asarray(charge, dtype=np.float64)[..., 0]
    if q.ndim < pos.ndim - 1:  # broadcast charges over a frame axis
        q = np.expand_dims(q, axis=tuple(range(q.ndim - 1, pos.ndim - 2)))
    kin = 0.5 * (vel**2).sum(axis=(-1, -2))
    n = pos.shape[-2]
    pot = np.zeros(pos.shape[:-2])
    for i, j in _pair_indices(n):
        r = np.linalg.norm(pos[..., i, :] - pos[..., j, :], axis=-1)
        pot = pot + q[..., i] * q[..., j] / r
    E = np.asarray(field, dtype=np.float64)
    ext = -(q * (pos @ E)).sum(axis=-1)
    return kin + pot + ext


def _check_frames(frames: Sequence[int] | None, params: NBodyParams) -> list[int]:
    n_frames = params.n_frames
    if frames is None:
        return list(range(n_frames))
    out = [int(k) for k in frames]
    if len(out) == 0:
        raise ValueError("frames must not be empty")
    for k in out:
        if not 0 <= k < n_frames:
            raise ValueError(f"frame {k} out of range [0, {n_frames}) for {params}")
    return out


def integrate(
    pos0: np.ndarray,
    vel0: np.ndarray,
    charge: np.ndarray,
    params: NBodyParams = NBodyParams(),
    frames: Sequence[int] | None = None,
    progress: bool = False,
) -> Trajectories:
    """Integrate given initial conditions (batched over trajectories).

    ``pos0``/``vel0``: ``(n_traj, n, 3)``; ``charge``: ``(n_traj, n, 1)`` (or
    ``(n_traj, n)``).  ``frames`` selects frame indices (frame ``k`` = step
    ``k * sample_every``; default: all ``params.n_frames``), returned in the given
    order (repeats allowed); integration stops at the last needed frame.
    """
    pos0 = np.asarray(pos0, dtype=np.float64)
    vel0 = np.asarray(vel0, dtype=np.float64)
    charge = np.asarray(charge, dtype=np.float64)
    if charge.ndim == 2:
        charge = charge[..., None]
    if pos0.ndim != 3 or pos0.shape[-1] != 3:
        raise ValueError(f"pos0 must have shape (n_traj, n, 3), got {pos0.shape}")
    B, n, _ = pos0.shape
    if n != params.n_particles:
        raise ValueError(f"pos0 has {n} particles but params.n_particles = {params.n_particles}")
    if vel0.shape != pos0.shape or charge.shape != (B, n, 1):
        raise ValueError(f"shape mismatch: pos0 {pos0.shape}, vel0 {vel0.shape}, charge {charge.shape}")
    if params.sample_every < 1 or params.n_steps < 1:
        raise ValueError("n_steps and sample_every must be >= 1")
    frame_list = _check_frames(frames, params)

    wanted = sorted(set(frame_list))
    slot = {k: s for s, k in enumerate(wanted)}
    buf_x = np.empty((len(wanted), n, 3, B))
    buf_v = np.empty((len(wanted), n, 3, B))

    # Internal layout (n, 3, B): each per-pair op runs over all trajectories.
    x = np.ascontiguousarray(pos0.transpose(1, 2, 0))
    v = np.ascontiguousarray(vel0.transpose(1, 2, 0))
    q = charge[..., 0].T  # (n, B)
    pairs = _pair_indices(n)
    qq = [np.ascontiguousarray(q[i] * q[j]) for i, j in pairs]
    E = _field_vector(params)
    qE = None if E is None else np.ascontiguousarray(q[:, None, :] * E[None, :, None])
    dt, clip, every = float(params.dt), float(params.force_clip), int(params.sample_every)

    if 0 in slot:
        buf_x[slot[0]] = x
        buf_v[slot[0]] = v
    last_step = wanted[-1] * every
    if last_step > 0:
        v += dt * _forces_internal(x, qq, pairs, qE, clip)
        steps = range(1, last_step + 1)
        if progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc="n-body", unit="step")
        for s in steps:
            x += dt * v
            if s % every == 0 and s // every in slot:
                buf_x[slot[s // every]] = x
                buf_v[slot[s // every]] = v
            if s == last_step:
                break
            v += dt * _forces_internal(x, qq, pairs, qE, clip)

    idx = [slot[k] for k in frame_list]
    # (F, n, 3, B) -> (B, F, n, 3)
    pos = np.ascontiguousarray(buf_x[idx].transpose(3, 0, 1, 2))
    vel = np.ascontiguousarray(buf_v[idx].transpose(3, 0, 1, 2))
    return Trajectories(pos=pos, vel=vel, charge=charge.copy())


def simulate(
    n_traj: int,
    seed: int,
    params: NBodyParams = NBodyParams(),
    frames: Sequence[int] | None = None,
    progress: bool = False,
) -> Trajectories:
    """Draw ``n_traj`` random initial conditions from ``seed`` and integrate them.

    Returns :class:`Trajectories` with ``pos``/``vel`` of shape
    ``(n_traj, len(frames) or params.n_frames, n_particles, 3)``.  Deterministic in
    ``seed``; trajectory ``k`` does not depend on ``n_traj``.
    """
    pos0, vel0, charge = sample_initial_conditions(n_traj, seed, params)
    return integrate(pos0, vel0, charge, params, frames=frames, progress=progress)
