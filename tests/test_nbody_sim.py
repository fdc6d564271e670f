"""Tests for acezoo.data.nbody_sim (charged N-body simulator, EGNN protocol)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from acezoo.data import nbody_sim as ns

NBodyParams = ns.NBodyParams

SHORT = NBodyParams(n_steps=1001, sample_every=100)  # 11 frames, steps 0..1000


def _orthogonal(rng: np.random.Generator, reflect: bool) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((3, 3)))
    Q = Q * np.sign(np.diag(R))
    if np.linalg.det(Q) < 0:
        Q[:, 0] *= -1
    if reflect:
        Q = Q @ np.diag([1.0, 1.0, -1.0])
    return Q


def _unclipped(traj: "ns.Trajectories", pos0, vel0, q, params: NBodyParams) -> np.ndarray:
    """Mask of trajectories on which force clipping never changed anything."""
    free = ns.integrate(pos0, vel0, q, replace(params, force_clip=np.inf))
    return np.all(traj.pos == free.pos, axis=(1, 2, 3)) & np.all(traj.vel == free.vel, axis=(1, 2, 3))


# --------------------------------------------------------------------------- basics


def test_shapes_dtypes_charges_speeds() -> None:
    p = NBodyParams()
    assert p.n_frames == 50
    tr = ns.simulate(20, seed=0, params=replace(p, n_steps=501))
    assert tr.pos.shape == (20, 6, 5, 3) and tr.vel.shape == (20, 6, 5, 3)
    assert tr.charge.shape == (20, 5, 1)
    for a in (tr.pos, tr.vel, tr.charge):
        assert a.dtype == np.float64
    assert set(np.unique(tr.charge)) == {-1.0, 1.0}
    np.testing.assert_allclose(np.linalg.norm(tr.vel[:, 0], axis=-1), 0.5, rtol=0, atol=1e-12)
    pos0, vel0, q = ns.sample_initial_conditions(20, 0, p)
    assert np.array_equal(tr.pos[:, 0], pos0) and np.array_equal(tr.vel[:, 0], vel0)
    assert np.array_equal(tr.charge, q)
    assert np.all(np.isfinite(tr.pos)) and np.all(np.isfinite(tr.vel))


def test_charge_and_position_statistics() -> None:
    pos0, vel0, q = ns.sample_initial_conditions(4000, 1)
    assert abs(q.mean()) < 0.05
    assert abs(pos0.mean()) < 0.02 and abs(pos0.std() - 1.0) < 0.02
    d = vel0 / np.linalg.norm(vel0, axis=-1, keepdims=True)
    assert np.abs(d.mean(axis=(0, 1))).max() < 0.03  # isotropic directions


def test_determinism_and_prefix_independence() -> None:
    p = replace(SHORT, n_steps=301)
    a = ns.simulate(10, seed=3, params=p)
    b = ns.simulate(10, seed=3, params=p)
    c = ns.simulate(10, seed=4, params=p)
    for x, y in ((a.pos, b.pos), (a.vel, b.vel), (a.charge, b.charge)):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.pos, c.pos)
    d = ns.simulate(3, seed=3, params=p)  # trajectory k does not depend on n_traj
    assert np.array_equal(d.pos, a.pos[:3]) and np.array_equal(d.vel, a.vel[:3])
    assert np.array_equal(d.charge, a.charge[:3])


def test_frames_subset_matches_full_run() -> None:
    p = replace(NBodyParams(), n_steps=2001)  # 21 frames
    full = ns.simulate(8, seed=0, params=p)
    for frames in ((3, 7), (20,), (0,), (12, 2, 12, 0)):
        sub = ns.simulate(8, seed=0, params=p, frames=frames)
        assert sub.pos.shape == (8, len(frames), 5, 3)
        assert np.array_equal(sub.pos, full.pos[:, list(frames)])
        assert np.array_equal(sub.vel, full.vel[:, list(frames)])
    with pytest.raises(ValueError):
        ns.simulate(2, seed=0, params=p, frames=(21,))
    with pytest.raises(ValueError):
        ns.simulate(2, seed=0, params=p, frames=())


def test_progress_bar_runs() -> None:
    a = ns.simulate(2, seed=0, params=SHORT, frames=(2,), progress=True)
    b = ns.simulate(2, seed=0, params=SHORT, frames=(2,))
    assert np.array_equal(a.pos, b.pos)


def test_forces_newton_third_law_and_clip() -> None:
    pos0, _, q = ns.sample_initial_conditions(50, 2)
    F = ns.coulomb_forces(pos0, q, replace(NBodyParams(), force_clip=np.inf))
    np.testing.assert_allclose(F.sum(axis=1), 0.0, atol=1e-9 * max(1.0, np.abs(F).max()))
    # two like charges at distance 1 along x: repel with unit force
    x = np.array([[[0.0, 0, 0], [1.0, 0, 0]]])
    F2 = ns.coulomb_forces(x, np.ones((1, 2, 1)), NBodyParams(n_particles=2))
    np.testing.assert_allclose(F2[0], [[-1.0, 0, 0], [1.0, 0, 0]])
    close = np.array([[[0.0, 0, 0], [0.01, 0, 0]]])
    F3 = ns.coulomb_forces(close, np.array([[[1.0], [-1.0]]]), NBodyParams(n_particles=2))
    np.testing.assert_allclose(F3[0], [[100.0, 0, 0], [-100.0, 0, 0]])


# --------------------------------------------------------------------------- symmetry


@pytest.mark.parametrize("reflect", [False, True])
def test_e3_equivariance(reflect: bool) -> None:
    rng = np.random.default_rng(10 + reflect)
    Q = _orthogonal(rng, reflect)
    t = 3.0 * rng.standard_normal(3)
    pos0, vel0, q = ns.sample_initial_conditions(100, 7, SHORT)
    a = ns.integrate(pos0, vel0, q, SHORT)
    b = ns.integrate(pos0 @ Q.T + t, vel0 @ Q.T, q, SHORT)
    # clipping is per component, hence not rotation-equivariant where it binds:
    # test on trajectories where it never bound in either run.
    ok = _unclipped(a, pos0, vel0, q, SHORT) & _unclipped(b, pos0 @ Q.T + t, vel0 @ Q.T, q, SHORT)
    assert ok.sum() >= 50
    np.testing.assert_allclose(b.pos[ok], a.pos[ok] @ Q.T + t, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.vel[ok], a.vel[ok] @ Q.T, rtol=0, atol=1e-9)
    # where clipping binds, equivariance is visibly broken (at least for some)
    err = np.abs(b.pos - (a.pos @ Q.T + t)).max(axis=(1, 2, 3))
    assert (~ok).sum() > 0 and err[~ok].max() > 1e-3


def test_translation_equivariance_even_with_clipping() -> None:
    pos0, vel0, q = ns.sample_initial_conditions(50, 8, SHORT)
    t = np.array([0.25, -0.5, 1.0])  # exact in binary: translation is exact up to round-off
    a = ns.integrate(pos0, vel0, q, SHORT)
    b = ns.integrate(pos0 + t, vel0, q, SHORT)
    ok = _unclipped(a, pos0, vel0, q, SHORT)
    assert (~ok).sum() > 0  # includes trajectories where clipping binds
    # difference only from round-off, amplified by close encounters: loose but honest
    np.testing.assert_allclose(b.pos[ok], a.pos[ok] + t, rtol=0, atol=1e-9)


def test_field_breaks_rotation_equivariance() -> None:
    p = replace(SHORT, field=(0.0, 0.0, 1.5), force_clip=np.inf)
    pos0, vel0, q = ns.sample_initial_conditions(60, 9, p)
    a = ns.integrate(pos0, vel0, q, p)
    clip_ok = _unclipped(a, pos0, vel0, q, replace(p, force_clip=100.0))

    rng = np.random.default_rng(0)
    Q = _orthogonal(rng, reflect=False)
    b = ns.integrate(pos0 @ Q.T, vel0 @ Q.T, q, p)
    err = np.abs(b.pos - a.pos @ Q.T).max(axis=(1, 2, 3))
    assert np.median(err) > 0.05  # generic rotation: large error

    # a rotation about the field axis composed with a reflection x -> -x fixes E
    th = 0.7
    Rz = np.array([[np.cos(th), -np.sin(th), 0.0], [np.sin(th), np.cos(th), 0.0], [0.0, 0.0, 1.0]])
    Qz = Rz @ np.diag([-1.0, 1.0, 1.0])
    tz = np.array([1.0, -2.0, 0.5])
    c = ns.integrate(pos0 @ Qz.T + tz, vel0 @ Qz.T, q, p)
    ok = clip_ok & _unclipped(c, pos0 @ Qz.T + tz, vel0 @ Qz.T, q, replace(p, force_clip=100.0))
    assert ok.sum() >= 30
    np.testing.assert_allclose(c.pos[ok], a.pos[ok] @ Qz.T + tz, rtol=0, atol=1e-9)

    # and the field does change the dynamics
    a0 = ns.integrate(pos0, vel0, q, replace(p, field=(0.0, 0.0, 0.0)))
    assert np.median(np.abs(a0.pos[:, -1] - a.pos[:, -1]).max(axis=(1, 2))) > 0.1


def test_energy_error_is_first_order_in_dt() -> None:
    """Kick-drift leapfrog: energy error O(dt) on encounters where clipping is inactive."""
    pos0, vel0, q = ns.sample_initial_conditions(60, 3)
    drift = {}
    for dt, steps in ((1e-3, 501), (1e-4, 5001)):  # same physical time 0.5
        p = NBodyParams(dt=dt, n_steps=steps, sample_every=(steps - 1) // 10, force_clip=np.inf)
        tr = ns.integrate(pos0, vel0, q, p)
        e = ns.total_energy(tr.pos, tr.vel, tr.charge)
        drift[dt] = np.abs(e - e[:, :1]).max(axis=1)
    pc = NBodyParams(n_steps=501, sample_every=50)
    ok = _unclipped(ns.integrate(pos0, vel0, q, pc), pos0, vel0, q, pc)
    assert ok.sum() >= 30
    assert np.median(drift[1e-4][ok]) < 1e-3
    ratio = np.median(drift[1e-3][ok]) / np.median(drift[1e-4][ok])
    assert 8.0 < ratio < 12.0


# --------------------------------------------------------------------------- task sanity


def test_linear_baseline_mse_plausible() -> None:
    """x40 ~ x30 + v30 * t with t = 10 frames * 100 steps * 0.001 = 1.0.

    Measured (frame k = step 100k): MSE(t=1) ~ 0.114 on 7000 trajectories (0.09..0.12
    over 500-trajectory seeds); with the least-squares t (~0.73; EGNN's linear model
    learns t, initialised at 0.7) MSE ~ 0.086, close to the published 0.0819.
    """
    tr = ns.simulate(500, seed=0, frames=(30, 40))
    x30, v30, x40 = tr.pos[:, 0], tr.vel[:, 0], tr.pos[:, 1]
    mse = float(((x30 + v30 * 1.0 - x40) ** 2).mean())
    assert 0.07 < mse < 0.16, mse
    r = x40 - x30
    t_opt = float((v30 * r).sum() / (v30 * v30).sum())
    mse_opt = float(((x30 + t_opt * v30 - x40) ** 2).mean())
    assert 0.6 < t_opt < 0.9, t_opt
    assert 0.055 < mse_opt < 0.11, mse_opt
