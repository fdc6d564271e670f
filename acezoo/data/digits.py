"""scikit-learn's handwritten digits (8x8, 1797 images; bundled with scikit-learn, no download).

Two data sets:

- ``digits_rot``: every image (train, validation and test) is rotated by a random multiple of
  90 degrees (``transform: rot90``) and also mirrored at random (``rot90_flip``). The label
  does not change, so the task is exactly invariant under C4 (or D4). A 6 and a rotated 9 are
  then the same picture: no classifier can tell them apart.
- ``digits_upright``: no transformation anywhere. A C4-invariant model must still treat a 6
  and a 9 alike and loses information; a relaxed model can learn the orientation.

Images are scaled to [0, 1] and optionally upsampled (nearest neighbour, ``upsample``); the
split is a fixed random permutation (``seed``), 1000 / 297 / 500 by default.
"""
from __future__ import annotations


import numpy as np
import torch

from acezoo.data.bundle import ClassificationTask, DataBundle
from acezoo.data.images import ImageTensorDataset
from acezoo.data.specs import DigitsSpec, UprightDigitsSpec
from acezoo.errors import AcezooError

__all__ = ["DigitsSpec", "UprightDigitsSpec", "build_digits", "load_digit_images"]


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """``(images (1797, 8, 8) float32 in [0, 1], labels (1797,) int64)``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise AcezooError("the digits data sets need scikit-learn: pip install scikit-learn") from exc
    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def _transform(images: np.ndarray, rng: np.random.Generator, flips: bool) -> np.ndarray:
    out = np.empty_like(images)
    rots = rng.integers(0, 4, len(images))
    mirror = rng.integers(0, 2, len(images)) if flips else np.zeros(len(images), dtype=int)
    for i, (img, r, m) in enumerate(zip(images, rots, mirror)):
        out[i] = np.rot90(img[:, ::-1] if m else img, int(r))
    return out


def build_digits(spec: DigitsSpec | UprightDigitsSpec) -> DataBundle:
    images, labels = load_digit_images()
    total = spec.n_train + spec.n_val + spec.n_test  # <= len(images): the spec checks it
    rng = np.random.default_rng(spec.seed)
    order = rng.permutation(len(images))[:total]
    images, labels = images[order], labels[order]
    if isinstance(spec, DigitsSpec):
        images = _transform(images, rng, flips=spec.transform == "rot90_flip")
    if spec.upsample > 1:
        images = images.repeat(spec.upsample, axis=1).repeat(spec.upsample, axis=2)
    x = torch.from_numpy(np.ascontiguousarray(images))[:, None]
    y = torch.from_numpy(labels)
    cuts = np.cumsum([spec.n_train, spec.n_val])
    splits = [ImageTensorDataset(a, b) for a, b in zip(x.tensor_split(cuts.tolist()), y.tensor_split(cuts.tolist()))]
    symmetric = isinstance(spec, DigitsSpec)
    return DataBundle(*splits, ClassificationTask(), info={"symmetric": symmetric, "classes": 10})


def build_digits_rot(spec: DigitsSpec, progress: bool = False) -> DataBundle:  # noqa: ARG001
    """Handwritten digits (scikit-learn), randomly rotated by 90-degree steps (and mirrored)."""
    return build_digits(spec)


def build_digits_upright(spec: UprightDigitsSpec, progress: bool = False) -> DataBundle:  # noqa: ARG001
    """Handwritten digits (scikit-learn) as written: orientation matters (6 vs 9)."""
    return build_digits(spec)
