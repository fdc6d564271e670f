"""Scoring a trained model on perturbed inputs (``acezoo eval --perturb noise=SIGMA``).

``noise=SIGMA`` adds Gaussian noise ``N(0, SIGMA^2)`` to the inputs of one split:

- graph data sets (N-body, MoCap, QM9): the node fields ``pos`` and ``vel``, whichever exist.
  Derived inputs follow the noisy positions: MoCap's ``height`` feature is recomputed from
  them, and QM9's radius graphs are built from them when batching;
- image data sets (group CNN data): the pixels ``x``.

Targets, charges, atom types and edges are never perturbed. The noise is drawn once for the
whole split, in sample order, from one ``torch.Generator`` seeded with ``seed``, before any
batching: it does not depend on the batch size. For one seed every ``SIGMA`` scales the same
standard-normal draws, so results for several ``SIGMA`` differ by the noise level only.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils.data import Dataset

from acezoo.data.bundle import DataBundle, Task
from acezoo.data.images import ImageTensorDataset
from acezoo.data.mocap import SkeletonDataset, height_feature
from acezoo.data.ragged_graphs import RaggedGraphDataset
from acezoo.data.tensor_graphs import GraphTensorDataset
from acezoo.errors import OptionError
from acezoo.training.evaluate import evaluate

__all__ = [
    "Noise",
    "NOISE_FIELDS",
    "parse_perturbation",
    "check_seed",
    "perturb_dataset",
    "perturbed_metrics",
    "score_perturbed",
    "format_perturbed",
]

NOISE_FIELDS = ("pos", "vel")  # graph node fields that get noise, in drawing order
_ALLOWED = "allowed: noise=SIGMA, SIGMA a finite number >= 0 (e.g. noise=0.05)"
_SPLITS = ("train", "val", "test")

D = TypeVar("D", bound=Dataset)


@dataclass(frozen=True)
class Noise:
    """Gaussian input noise of standard deviation ``sigma``."""

    sigma: float

    @property
    def label(self) -> str:
        """How the perturbation is written on the command line, e.g. ``noise=0.05``."""
        return f"noise={self.sigma:g}"


def parse_perturbation(text: str) -> Noise:
    """The perturbation of one ``--perturb`` value; :class:`OptionError` names what is allowed."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq:
        raise OptionError(f"--perturb {text!r}: expected KEY=VALUE; {_ALLOWED}")
    if key != "noise":
        raise OptionError(f"--perturb {text!r}: unknown perturbation {key!r}; {_ALLOWED}")
    try:
        sigma = float(value)
    except ValueError:
        raise OptionError(f"--perturb {text!r}: {value.strip()!r} is not a number; {_ALLOWED}") from None
    if not math.isfinite(sigma) or sigma < 0:
        raise OptionError(f"--perturb {text!r}: SIGMA {value.strip()} is {'negative' if sigma < 0 else 'not finite'}; "
                          f"{_ALLOWED}")
    return Noise(abs(sigma))  # -0 -> 0


def check_seed(seed: int) -> int:
    """``seed`` when it is a valid ``--perturb-seed`` (an integer >= 0)."""
    if seed < 0:
        raise OptionError(f"--perturb-seed {seed}: must be an integer >= 0")
    return seed


def _noisy(t: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """``t`` plus ``sigma`` times standard-normal draws of ``t``'s shape (drawn on the CPU)."""
    if not t.is_floating_point():
        raise TypeError(f"cannot add noise to a tensor of dtype {t.dtype}")
    noise = torch.randn(t.shape, generator=generator, dtype=t.dtype)
    return t + sigma * noise.to(t.device)


def _noisy_fields(fields: dict[str, torch.Tensor], sigma: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A copy of ``fields`` with noise on those in :data:`NOISE_FIELDS` (there must be one)."""
    present = [k for k in NOISE_FIELDS if k in fields]
    if not present:
        raise OptionError(f"--perturb: this data set has none of the input fields {', '.join(NOISE_FIELDS)} to perturb")
    out = dict(fields)
    for k in present:
        out[k] = _noisy(fields[k], sigma, generator)
    return out


def perturb_dataset(dataset: D, sigma: float, seed: int = 0) -> D:
    """A copy of ``dataset`` (same type) with ``N(0, sigma^2)`` noise on its inputs; targets untouched.

    Supports :class:`GraphTensorDataset` (and :class:`SkeletonDataset`), :class:`RaggedGraphDataset`
    and :class:`ImageTensorDataset`; the input tensors are copied, ``dataset`` is not changed.
    """
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    generator = torch.Generator().manual_seed(seed)
    out = copy.copy(dataset)
    if isinstance(dataset, ImageTensorDataset):
        out.x = _noisy(dataset.x, sigma, generator)
    elif isinstance(dataset, GraphTensorDataset):
        out.fields = _noisy_fields(dataset.fields, sigma, generator)
        if isinstance(dataset, SkeletonDataset) and "height" in out.fields:
            out.fields["height"] = height_feature(out.fields["pos"])
    elif isinstance(dataset, RaggedGraphDataset):
        out.node_fields = _noisy_fields(dataset.node_fields, sigma, generator)
    else:
        raise OptionError(f"--perturb: data sets of type {type(dataset).__name__} cannot be perturbed")
    return out


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def perturbed_metrics(
    model: Any,
    dataset: Dataset,
    task: Task,
    noises: Sequence[Noise | float],
    seed: int = 0,
    device: torch.device | None = None,
    batch_size: int = 500,
) -> list[dict[str, Any]]:
    """One entry per noise level: ``{"noise", "seed", "pruned": metrics, "full": metrics}``.

    ``model`` is a :class:`acezoo.compiler.RelaxedModel`; ``pruned`` scores its equivariant
    part, ``full`` the model with its gammas.
    """
    device = device if device is not None else _model_device(model)
    model.eval()
    pruned = model.prune().eval()
    entries = []
    for noise in noises:
        sigma = noise.sigma if isinstance(noise, Noise) else float(noise)
        noisy = perturb_dataset(dataset, sigma, seed)
        entries.append({
            "noise": sigma,
            "seed": seed,
            "pruned": evaluate(pruned, noisy, task, device, batch_size),
            "full": evaluate(model, noisy, task, device, batch_size),
        })
    return entries


def score_perturbed(
    run: str | Path | nn.Module,
    sigmas: Sequence[Noise | float],
    split: str = "test",
    seed: int = 0,
    *,
    data: DataBundle | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Metrics of a run directory (or a loaded ``RelaxedModel``) on ``split`` under input noise.

    Returns ``{"split", "seed", "perturbed": [entry per sigma]}`` with the entries of
    :func:`perturbed_metrics`. A run directory builds its data from its stored config unless
    ``data`` is given; a model needs ``data``. ``batch_size`` (default: ``acezoo eval``'s)
    changes nothing but speed and memory.
    """
    from acezoo.training.checkpoint import load_run
    from acezoo.training.device import resolve_device
    from acezoo.training.trainer import build_data

    if split not in _SPLITS:
        raise ValueError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    if isinstance(run, (str, Path)):
        config, model = load_run(run)
        data = data if data is not None else build_data(config)
        batch_size = batch_size or max(500, config.train.batch_size)
        dev = resolve_device(str(device or "auto"))
        model = model.to(dev)
    else:
        if data is None:
            raise ValueError("score_perturbed(model, ...) needs data=<DataBundle>")
        model = run
        dev = torch.device(device) if device is not None else _model_device(model)
    entries = perturbed_metrics(model, getattr(data, split), data.task, sigmas, seed, dev, batch_size or 500)
    return {"split": split, "seed": seed, "perturbed": entries}


def format_perturbed(entries: Sequence[dict[str, Any]], split: str, unit: str | None = None) -> list[str]:
    """Lines like ``acezoo eval``'s metric lines, one per noise level and metric."""
    unit_text = f" [{unit}]" if unit else ""
    lines = []
    for e in entries:
        for name in e["pruned"]:
            lines.append(f"perturbed {Noise(e['noise']).label}: {split} {name}{unit_text}: "
                         f"pruned (equivariant) {e['pruned'][name]:.6g} | full (with gamma) {e['full'][name]:.6g}")
    return lines
