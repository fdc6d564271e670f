"""The study's picture: validation curves, gammas and multipliers of one seed of every contender."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_curves"]


def plot_curves(records: list[dict[str, Any]], path: Path, names: Sequence[str] = ()) -> bool:
    """Validation metric of the pruned and the full model, mean |gamma| and mean multiplier over
    epochs for the first seed of every contender (or of ``names``), to ``path``. False: nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        return False
    first_seed = min(r["seed"] for r in records)
    runs = [r for r in records if r["seed"] == first_seed and r["history"] and (not names or r["contender"] in names)]
    if not runs:
        return False
    if names:
        runs.sort(key=lambda r: list(names).index(r["contender"]))
    metric = runs[0]["metric"]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    for r in runs:
        h = [rec for rec in r["history"] if f"val_eq_{metric}" in rec]
        ep = [rec["epoch"] for rec in h]
        line, = axes[0].plot(ep, [rec[f"val_eq_{metric}"] for rec in h], lw=1, label=r["contender"])
        if r["gammas"]:  # a relaxed model
            axes[1].plot(ep, [rec[f"val_full_{metric}"] for rec in h], lw=1, color=line.get_color())
            g = [[abs(v) for k, v in rec.items() if k.startswith("gamma/")] for rec in h]
            axes[2].plot(ep, [sum(x) / len(x) if x else float("nan") for x in g], lw=1, color=line.get_color())
            lam = [[v for k, v in rec.items() if k.startswith("multiplier/")] for rec in h]
            axes[3].plot(ep, [sum(x) / len(x) if x else float("nan") for x in lam], lw=1, color=line.get_color())
    for ax, title in zip(axes, (f"validation {metric}, pruned (equivariant)", f"validation {metric}, full",
                                "mean |gamma|", "mean multiplier")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
    for ax in axes[:3]:
        if ax.has_data():
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"seed {first_seed}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
