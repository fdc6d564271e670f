"""Convolutions along a short time axis in Fourier space (EGNO's temporal layers), and a
sinusoidal embedding of the frame index.

:class:`SpectralTimeConv` maps ``u`` of shape ``(B, K, *S, C_in)`` (``B`` independent sequences of
``K`` frames, ``S`` spatial axes that it does not touch, ``C_in`` channels) to ``(B, K, *S, C_out)``::

    u_hat[f]   = sum_k u[k] exp(-2 pi i f k / K)                f = 0 .. M - 1
    out_hat[f] = u_hat[f] W[f]                                  W[f]: complex (C_in, C_out)
    out[k]     = irfft(out_hat, K)[k]                           the other K // 2 + 1 - M modes: 0

with ``M = min(modes, K // 2 + 1)`` (a real FFT of ``K`` frames has ``K // 2 + 1`` modes; irfft takes
the real part of the zero-frequency term, and of the Nyquist term when ``K`` is even). It is linear
in ``u`` and acts on the time and channel axes only, so it commutes with any linear map of a
spatial axis: with ``S = (3,)`` holding the components of vectors, ``conv(u R^T) = conv(u) R^T`` for
every 3x3 matrix ``R`` (rotations, reflections). Every sequence ``b`` is convolved on its own (a
node permutation permutes the output alike).
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SpectralTimeConv", "time_embedding"]


class SpectralTimeConv(nn.Module):
    """Linear temporal convolution keeping the lowest ``modes`` Fourier modes (see the module
    docstring); input ``(B, K, *S, in_channels)``, output ``(B, K, *S, out_channels)``.

    The complex weights are stored as a real ``(modes, in_channels, out_channels, 2)`` parameter,
    initialised uniformly in ``[0, init_scale)`` (real and imaginary parts).
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int, init_scale: float | None = None) -> None:
        super().__init__()
        if modes < 1:
            raise ValueError(f"modes must be >= 1, got {modes}")
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, modes
        self.init_scale = 1.0 / (in_channels * out_channels) if init_scale is None else init_scale
        self.weight = nn.Parameter(torch.empty(modes, in_channels, out_channels, 2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.uniform_(0.0, self.init_scale)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        frames = u.shape[1]
        used = min(self.modes, frames // 2 + 1)
        # the FFT runs in float32 at least (no half-precision FFT of odd lengths on GPUs)
        work = u if u.dtype in (torch.float32, torch.float64) else u.float()
        spatial = work.shape[2:-1]
        flat = work.reshape(work.shape[0], frames, -1, self.in_channels)  # (B, K, S, C_in)
        spectrum = torch.fft.rfft(flat, dim=1)[:, :used]  # (B, M, S, C_in)
        weight = torch.view_as_complex(self.weight[:used].to(work.dtype).contiguous())  # (M, C_in, C_out)
        mixed = torch.einsum("bmsc,mco->bmso", spectrum, weight)
        out = torch.fft.irfft(mixed, n=frames, dim=1)  # (B, K, S, C_out)
        return out.reshape(work.shape[0], frames, *spatial, self.out_channels).to(u.dtype)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"


def time_embedding(frames: int, width: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None,
                   max_period: float = 10_000.0) -> torch.Tensor:
    """``(frames, width)`` sinusoidal embedding of the frame index ``k = 0 .. frames - 1``:
    ``[sin(k w_0), .., sin(k w_{J-1}), cos(k w_0), .., cos(k w_{J-1})]`` with ``J = width // 2`` and
    ``w_j = max_period^(-j / (J - 1))`` (``w_0 = 1`` when ``J = 1``); an odd ``width`` ends with a zero
    column."""
    half = width // 2
    k = torch.arange(frames, dtype=torch.float64, device=device).unsqueeze(1)
    rate = math.log(max_period) / max(half - 1, 1)
    freq = torch.exp(-rate * torch.arange(half, dtype=torch.float64, device=device))
    angle = k * freq
    parts = [torch.sin(angle), torch.cos(angle)]
    if width % 2:
        parts.append(torch.zeros(frames, 1, dtype=torch.float64, device=device))
    return torch.cat(parts, dim=1).to(dtype)
