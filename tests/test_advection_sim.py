"""Property tests for acezoo.data.advection_sim (exact spectral diffusion + constant wind)."""
from __future__ import annotations

import numpy as np
import pytest

from acezoo.data import advection_sim as adv

ATOL = 2e-5  # float32 output of unit-std fields


def _rot(u: np.ndarray, r: int = 1) -> np.ndarray:
    return np.rot90(u, r, axes=(-2, -1))


def _flip(u: np.ndarray) -> np.ndarray:
    return np.flip(u, axis=-1)


def test_random_fields_shape_normalisation_and_determinism() -> None:
    u = adv.random_fields(5, 33, seed=4, smoothness=2.0)
    assert u.shape == (5, 33, 33) and u.dtype == np.float32
    np.testing.assert_allclose(u.mean(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(u.std(axis=(1, 2)), 1.0, atol=1e-5)
    assert np.array_equal(u, adv.random_fields(5, 33, seed=4, smoothness=2.0))
    assert np.array_equal(u[:2], adv.random_fields(2, 33, seed=4, smoothness=2.0))
    assert not np.allclose(u, adv.random_fields(5, 33, seed=5, smoothness=2.0))
    # smoother fields have smaller neighbour differences
    rough = adv.random_fields(5, 33, seed=4, smoothness=0.5)
    assert np.abs(np.diff(u, axis=-1)).mean() < 0.5 * np.abs(np.diff(rough, axis=-1)).mean()


def test_simulate_shapes() -> None:
    u0, uT = adv.simulate(3, seed=1)
    assert u0.shape == uT.shape == (3, adv.DEFAULT_SIZE, adv.DEFAULT_SIZE)
    assert u0.dtype == uT.dtype == np.float32
    assert adv.DEFAULT_SIZE % 2 == 1
    assert np.array_equal(u0, adv.random_fields(3, adv.DEFAULT_SIZE, 1))
    assert np.abs(uT).max() < np.abs(u0).max()  # diffusion smooths


@pytest.mark.parametrize("wind", [(0.0, 0.0), (0.3, -0.7)])
def test_mass_is_conserved_and_diffusion_decays(wind: tuple[float, float]) -> None:
    u0 = adv.random_fields(4, 33, seed=2) + 0.25
    uT = adv.evolve(u0, steps=10, dt=0.05, diffusivity=2e-3, wind=wind)
    np.testing.assert_allclose(uT.mean(axis=(1, 2)), u0.mean(axis=(1, 2)), atol=1e-6)
    assert np.all((uT - 0.25).std(axis=(1, 2)) < (u0 - 0.25).std(axis=(1, 2)))


def test_zero_time_is_identity_and_semigroup() -> None:
    u0 = adv.random_fields(3, 33, seed=3)
    np.testing.assert_allclose(adv.evolve(u0, 0, 0.1, 1e-2, (0.4, 0.1)), u0, atol=1e-6)
    two = adv.evolve(adv.evolve(u0, 3, 0.1, 1e-3, (0.4, 0.1)), 2, 0.1, 1e-3, (0.4, 0.1))
    np.testing.assert_allclose(two, adv.evolve(u0, 5, 0.1, 1e-3, (0.4, 0.1)), atol=ATOL)


@pytest.mark.parametrize("size", [33, 32])
def test_pure_advection_is_an_integer_shift(size: int) -> None:
    u0 = adv.random_fields(3, size, seed=5)
    a, b = 3, -5
    wind = (a / size / 2.0, b / size / 2.0)  # T = 4 * 0.5 = 2
    uT = adv.evolve(u0, steps=4, dt=0.5, diffusivity=0.0, wind=wind)
    np.testing.assert_allclose(uT, np.roll(u0, (a, b), axis=(-2, -1)), atol=ATOL)


@pytest.mark.parametrize("wind", [(0.0, 0.0), (0.2, 0.45)])
def test_commutes_with_periodic_shifts(wind: tuple[float, float]) -> None:
    u0 = adv.random_fields(2, 33, seed=6)
    step = lambda u: adv.evolve(u, 1, 0.7, 1e-3, wind)  # noqa: E731
    np.testing.assert_allclose(step(np.roll(u0, (4, -9), axis=(-2, -1))),
                               np.roll(step(u0), (4, -9), axis=(-2, -1)), atol=ATOL)


@pytest.mark.parametrize("size", [33, 32])
def test_no_wind_commutes_with_rotations_and_flips(size: int) -> None:
    u0 = adv.random_fields(3, size, seed=7, smoothness=1.0)
    step = lambda u: adv.evolve(u, 2, 0.5, 5e-4)  # noqa: E731
    uT = step(u0)
    for r in range(4):
        for m in (0, 1):
            g = (lambda u, r=r, m=m: _rot(_flip(u) if m else u, r))
            np.testing.assert_allclose(step(g(u0)), g(uT), atol=ATOL)


def test_wind_breaks_rotation_symmetry_unless_the_wind_rotates() -> None:
    u0 = adv.random_fields(3, 33, seed=8)
    w = (0.12, 0.05)
    step = lambda u, wind: adv.evolve(u, 1, 1.0, 1e-3, wind)  # noqa: E731
    uT = step(u0, w)
    # rotating only the input does not rotate the output ...
    assert np.abs(step(_rot(u0), w) - _rot(uT)).max() > 0.1
    assert np.abs(step(_flip(u0), w) - _flip(uT)).max() > 0.1
    # ... but rotating the wind with it does: rot90 maps (w0, w1) -> (-w1, w0), flip w1 -> -w1
    np.testing.assert_allclose(step(_rot(u0), (-w[1], w[0])), _rot(uT), atol=ATOL)
    np.testing.assert_allclose(step(_flip(u0), (w[0], -w[1])), _flip(uT), atol=ATOL)


def test_bad_arguments() -> None:
    u0 = adv.random_fields(1, 9, seed=0)
    with pytest.raises(ValueError, match="diffusivity must be non-negative"):
        adv.evolve(u0, 1, 0.1, -1.0)
    with pytest.raises(ValueError, match="square grids"):
        adv.evolve(np.zeros((2, 8, 9)), 1, 0.1, 0.0)
    with pytest.raises(ValueError, match="smoothness must be positive"):
        adv.random_fields(1, 9, smoothness=0.0)
