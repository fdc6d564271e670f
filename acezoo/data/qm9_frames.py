"""Reconstruct the frame of qm9pack's polarizability tensors from the molecules' geometry.

qm9pack ships each molecule's 3x3 polarizability tensor ``A`` in a molecule-fixed frame of its
own, not in the frame of the coordinates ``pos`` (see :mod:`acezoo.data.qm9`), and does not ship
the rotation between them. The tensors' frame matches a Gaussian-style *standard orientation*,
rebuilt here from the atomic numbers ``Z`` and positions ``r_a`` alone:

- origin at the centre of nuclear charge ``c = sum_a Z_a r_a / sum_a Z_a``;
- axes along the eigenvectors of the charge-weighted second moment
  ``S = sum_a Z_a (r_a - c)(r_a - c)^T``, ordered x = largest eigenvalue, z = smallest;
- signs: y and z point where the charge-weighted third moment ``sum_a Z_a ((r_a - c) . e)^3``
  is positive; x completes a right-handed frame.

With ``Q`` the matrix whose rows are those axes (in ``pos`` coordinates), the tensor in the
frame of ``pos`` is ``A_pos = Q^T A Q``. Because ``Q(R r) = Q(r) R^T`` for a rotation ``R``
(whenever the eigenvalues and third moments are non-degenerate), ``A_pos`` rotates as
``R A_pos R^T`` with the molecule: an equivariant target.

This is a reconstruction, not shipped data. Evidence (measured on QM9, see the README): the
traceless part of ``A_pos`` aligns with the traceless gyration tensor of the atoms (mean cosine
0.89, against 0.06 when ``A`` is read as if it were in the ``pos`` frame), and with a Thole-type
point-dipole model of the polarizability (mean cosine 0.95); the off-diagonal signs that the
sign rule fixes agree with that model for 78-90 % of the clearly non-zero entries, so some
off-diagonal signs are likely wrong. Molecules whose second-moment eigenvalues are nearly equal
(relative gap below ``min_gap``, about 1 % of QM9, e.g. symmetric tops) have no well-defined
axes and are flagged by :func:`standard_orientations`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["standard_orientations", "tensors_in_pos_frame"]


def _per_molecule_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (atoms, ...) over each molecule's atoms ``offsets[m]:offsets[m+1]``."""
    return np.add.reduceat(values, offsets[:-1], axis=0)


def standard_orientations(
    z: np.ndarray, pos: np.ndarray, offsets: np.ndarray, signs: str = "third_moment", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Axes ``Q`` (molecules, 3, 3), rows = x, y, z axes in ``pos`` coordinates, and the relative
    gap ``min_k (s_k - s_{k+1}) / s_1`` between the sorted second-moment eigenvalues ``s``.

    Args:
        z: (atoms,) atomic numbers (the charge weights).
        pos: (atoms, 3) positions.
        offsets: (molecules + 1,) molecule ``m`` owns atoms ``offsets[m]:offsets[m+1]`` (all non-empty).
        signs: ``third_moment`` (the rule above) or ``random`` (random y, z signs, seeded by
            ``seed``; a control for checking that the sign rule carries information).
    """
    if signs not in ("third_moment", "random"):
        raise ValueError(f"signs must be 'third_moment' or 'random', got {signs!r}")
    w = z.astype(np.float64)
    pos = pos.astype(np.float64)
    counts = np.diff(offsets)
    centre = _per_molecule_sum(w[:, None] * pos, offsets) / _per_molecule_sum(w, offsets)[:, None]
    r = pos - np.repeat(centre, counts, axis=0)
    moment = _per_molecule_sum(w[:, None, None] * r[:, :, None] * r[:, None, :], offsets)
    values, vectors = np.linalg.eigh(moment)  # ascending eigenvalues, eigenvectors in columns
    q = np.ascontiguousarray(np.swapaxes(vectors[:, :, ::-1], 1, 2))  # rows: largest .. smallest
    s = values[:, ::-1]
    gap = np.min(s[:, :-1] - s[:, 1:], axis=1) / np.maximum(s[:, 0], 1e-300)
    along = np.einsum("ad,akd->ak", r, np.repeat(q, counts, axis=0))  # coordinates on the axes
    third = _per_molecule_sum(w[:, None] * along**3, offsets)
    if signs == "random":
        third = np.random.default_rng(seed).standard_normal(third.shape)
    flip = np.where(third[:, 1:] < 0, -1.0, 1.0)
    q[:, 1:] *= flip[:, :, None]
    q[np.linalg.det(q) < 0, 0] *= -1.0
    return q, gap


def tensors_in_pos_frame(tensors: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """``A_pos = Q^T A Q`` for each molecule (``tensors``, ``axes``: (molecules, 3, 3))."""
    return np.einsum("mki,mkl,mlj->mij", axes, tensors, axes)
