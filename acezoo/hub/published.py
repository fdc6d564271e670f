"""Published figures of the models the zoo reproduces, to set beside ours in model cards.

Each entry names the architecture, data set, constraint mode and protocol it applies to, the
figure as published (mean +- std over the paper's seeds, the paper's unit and scale) and its
source. Nothing here is measured by acezoo: these are the numbers the papers report.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PublishedFigure", "PUBLISHED", "published_for"]


@dataclass(frozen=True)
class PublishedFigure:
    """A figure as published: ``value +- std`` in ``unit`` (test metric), from ``source``."""

    arch: str
    dataset: str
    mode: str
    model: str
    value: float
    std: float | None
    unit: str
    source: str
    frames: int | None = None  # MoCap: the data set's `frames` (K) of the protocol it applies to

    def text(self) -> str:
        std = f" +- {self.std:g}" if self.std is not None else ""
        return f"{self.value:g}{std} {self.unit}"


_ACE = "Manolache, Chamon & Niepert, NeurIPS 2025 (ACE), as reported in secondary summaries of the paper"
_EGNO = "Xu et al., ICML 2024 (EGNO)"
_NBODY, _MOCAP = "test MSE", "test MSE x 1e-2 (last frame)"

PUBLISHED: tuple[PublishedFigure, ...] = (
    PublishedFigure("segnn", "nbody_charged", "strict", "SEGNN (Brandstetter et al. 2022), as in the ACE paper",
                    5.6e-3, 0.25e-3, _NBODY, _ACE),
    PublishedFigure("segnn", "nbody_charged", "equality", "SEGNN + ACE (pruned)", 3.8e-3, 0.17e-3, _NBODY, _ACE),
    PublishedFigure("segnn", "nbody_charged", "equality", "SEGNN + scheduled relaxation (Pertigkiozoglou et "
                    "al. 2024)", 4.9e-3, 0.18e-3, _NBODY, _ACE),
    PublishedFigure("egnn", "nbody_charged", "strict", "EGNN", 7.1e-3, None, _NBODY, "Satorras et al., ICML 2021"),
    PublishedFigure("egno", "mocap_run", "strict", "EGNO", 33.9, 1.7, _MOCAP, _EGNO, frames=5),
    PublishedFigure("egno", "mocap_run", "strict", "EGNO, re-run in the ACE paper", 35.3, 3.2, _MOCAP, _ACE, frames=5),
    PublishedFigure("egno", "mocap_run", "equality", "EGNO + ACE (equality)", 32.6, 1.6, _MOCAP, _ACE, frames=5),
    PublishedFigure("egno", "mocap_run", "resilient", "EGNO + ACE (resilient)", 23.8, 1.5, _MOCAP, _ACE, frames=5),
)


def published_for(arch: str, dataset: str, mode: str, frames: Any = None) -> list[PublishedFigure]:
    """The published figures for a model of ``arch`` on ``dataset`` in ``mode`` (and, for MoCap,
    the protocol's ``frames``); the strict figure is listed for every mode, as the baseline."""
    out = []
    for fig in PUBLISHED:
        if fig.arch != arch or fig.dataset != dataset or (fig.frames is not None and fig.frames != frames):
            continue
        if fig.mode in (mode, "strict"):
            out.append(fig)
    return out
