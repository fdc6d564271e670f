r"""A 2-D scalar field advected by a constant wind and diffused, solved exactly (numpy only).

Physics
-------
On the periodic unit square :math:`[0, 1)^2`, sampled on an ``N x N`` grid with pixel
``[..., i, j]`` at :math:`x = (i / N, j / N)`, the field obeys

.. math::

    \partial_t u = D \, \Delta u - w \cdot \nabla u ,

with diffusivity :math:`D \ge 0` and a constant wind :math:`w = (w_0, w_1)`; ``w_0`` is the
velocity along array axis -2 (rows, index ``i``) and ``w_1`` along axis -1 (columns, ``j``).
Each Fourier mode evolves independently, so for a time :math:`T` the solution is exact:

.. math::

    \hat u(k, T) = \exp\big((-D \lvert k \rvert^2 - i\, k \cdot w)\, T\big)\, \hat u(k, 0),
    \qquad k = 2 \pi \cdot \mathrm{fftfreq}(N, d = 1/N) \in 2\pi \mathbb Z^2 .

:func:`evolve` applies this multiplier with ``fft2`` / ``ifft2`` in float64 and returns the
real part as float32.

Properties
----------
* Mass: the :math:`k = 0` multiplier is 1, so the mean of every field is preserved.
* Semigroup: ``evolve(evolve(u, T1), T2) == evolve(u, T1 + T2)`` (to float round-off).
* Translations: the map commutes with periodic shifts (``np.roll``) for any ``D`` and ``w``.
* Pure advection: with ``D = 0`` and :math:`w T = (a, b) / N` for integers ``a, b``, the
  solution is ``np.roll(u0, (a, b), axis=(-2, -1))``.
* Rotations and flips: with ``w = 0`` the multiplier depends on :math:`\lvert k \rvert^2`
  only, which is invariant under the lattice symmetries :math:`(k_0, k_1) \mapsto (-k_1, k_0)`
  and :math:`k_1 \mapsto -k_1`, so ``u0 -> uT`` commutes with ``np.rot90`` and ``np.flip`` on
  the last two axes, to float round-off, for *every* grid size: the one asymmetric bin of
  ``fftfreq`` for even ``N`` (the Nyquist bin :math:`-N/2`, with no :math:`+N/2` partner) is
  mapped to itself by :math:`k \mapsto -k` modulo ``N`` and the multiplier is even in ``k``.
  With ``w != 0`` the map is only equivariant if the wind is transformed too
  (``rot90`` sends :math:`(w_0, w_1) \mapsto (-w_1, w_0)`, a flip of axis -1 sends
  :math:`w_1 \mapsto -w_1`); rotating the input alone does not rotate the output.
* Even grids and wind: the advection factor :math:`e^{-i k \cdot w T}` is odd in ``k``, and on
  an even grid the Nyquist modes have no partner, so taking the real part turns them into a
  standing wave damped by :math:`\cos(\pi N w_\alpha T)` (exact when :math:`N w T` is an
  integer). Odd grids have no Nyquist bin, which is why the default size is odd (33).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["DEFAULT_SIZE", "wavenumbers", "random_fields", "evolve", "simulate"]

DEFAULT_SIZE = 33


def wavenumbers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Angular wavenumbers ``(k0, k1)`` of an ``size x size`` grid, each ``(size, size)``, ``k = 2 pi m``."""
    k = 2.0 * np.pi * np.fft.fftfreq(size, d=1.0 / size)
    return np.meshgrid(k, k, indexing="ij")


def random_fields(n: int, size: int = DEFAULT_SIZE, seed: int = 0, smoothness: float = 2.0) -> np.ndarray:
    r"""``n`` smooth periodic Gaussian random fields, ``(n, size, size)`` float32.

    White noise is filtered by :math:`\exp(-\lvert 2\pi f \rvert^2 s^2 / 2)` with ``f`` in
    cycles per grid cell, i.e. convolved with a periodic Gaussian of standard deviation
    ``s = smoothness`` grid cells; each field is then shifted and scaled to zero mean and unit
    standard deviation. The noise comes from ``np.random.default_rng(seed)`` and is drawn field
    by field, so field ``i`` does not depend on ``n``.
    """
    if n < 0 or size < 2:
        raise ValueError(f"need n >= 0 and size >= 2, got n={n}, size={size}")
    if not smoothness > 0:
        raise ValueError(f"smoothness must be positive, got {smoothness}")
    noise = np.random.default_rng(seed).standard_normal((n, size, size))
    f0, f1 = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    filt = np.exp(-0.5 * (2.0 * np.pi * smoothness) ** 2 * (f0**2 + f1**2))
    u = np.fft.ifft2(np.fft.fft2(noise, axes=(-2, -1)) * filt, axes=(-2, -1)).real
    u = u - u.mean(axis=(-2, -1), keepdims=True)
    u = u / u.std(axis=(-2, -1), keepdims=True)
    return u.astype(np.float32)


def evolve(fields: np.ndarray, steps: int, dt: float, diffusivity: float,
           wind: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    r"""The exact solution at time ``T = steps * dt`` of :math:`u_t = D \Delta u - w \cdot \nabla u`.

    ``fields`` has shape ``(..., N, N)`` (any leading dims); returns float32 of the same shape.
    """
    u = np.asarray(fields, dtype=np.float64)
    if u.ndim < 2 or u.shape[-1] != u.shape[-2]:
        raise ValueError(f"fields must have shape (..., N, N) with square grids, got {u.shape}")
    if steps < 0 or dt < 0:
        raise ValueError(f"steps and dt must be non-negative, got steps={steps}, dt={dt}")
    if diffusivity < 0:
        raise ValueError(f"diffusivity must be non-negative (backward diffusion is ill-posed), got {diffusivity}")
    w0, w1 = (float(c) for c in wind)
    T = float(steps) * float(dt)
    k0, k1 = wavenumbers(u.shape[-1])
    multiplier = np.exp((-diffusivity * (k0**2 + k1**2) - 1j * (k0 * w0 + k1 * w1)) * T)
    out = np.fft.ifft2(np.fft.fft2(u, axes=(-2, -1)) * multiplier, axes=(-2, -1)).real
    return out.astype(np.float32)


def simulate(n: int, size: int = DEFAULT_SIZE, seed: int = 0, horizon: float = 1.0,
             diffusivity: float = 1e-3, wind: Sequence[float] = (0.0, 0.0),
             smoothness: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """``(u0, uT)``: :func:`random_fields` and their exact evolution over time ``horizon``.

    Both are ``(n, size, size)`` float32.
    """
    u0 = random_fields(n, size, seed, smoothness)
    return u0, evolve(u0, 1, horizon, diffusivity, wind)
