"""Plots of the dual dynamics: every gamma, multiplier and slack over training."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from acezoo.io.atomic import atomic_write

__all__ = ["plot_duals"]


def plot_duals(history: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Write a PNG with one panel each for gamma, multiplier and slack (those present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in ("gamma", "multiplier", "slack") if any(key.startswith(k + "/") for key in history[-1])]
    kinds = kinds or ["gamma"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        names = sorted({key[len(kind) + 1:] for rec in history for key in rec if key.startswith(kind + "/")})
        for name in names:
            pts = [(rec["epoch"], rec[f"{kind}/{name}"]) for rec in history if f"{kind}/{name}" in rec]
            if pts:
                ax.plot(*zip(*pts), label=name, lw=1.2)
        ax.set_xlabel("epoch")
        ax.set_title({"gamma": "gamma", "multiplier": "multiplier lambda", "slack": "slack u"}[kind])
        ax.axhline(0.0, color="0.6", lw=0.6)
        if names and kind == kinds[0]:
            ax.legend(fontsize=6, ncol=2)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
