"""The run's plot: what to read a training run from, one panel per quantity.

Panels, each over epochs (integer ticks) with the selected epoch marked by a vertical line:

- loss: the training loss and the validation score (the selection metric) of the
  equivariant-only and the full model, log scale;
- equivariance defect: the full model's relative equivariance error on a fixed validation
  batch, ``|f(g.x) - g.f(x)| / |f(x)|`` (and the measured training defect in ``error_budget``
  and ``penalty`` modes), log scale;
- ``|gamma|`` of every relaxed block, log scale (a gamma of exactly 0, e.g. after pruning, is
  left out of the log axis; the pruning epoch is marked);
- the multipliers ``lambda`` and, in ``resilient`` mode, the slacks ``u``, each on its own panel.

Blocks are told apart by colour (their layer, along a colour map) and line style (the block
within the layer: ``x`` solid, ``h`` dashed, ...), with a legend.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from acezoo.io.atomic import atomic_write

__all__ = ["plot_run", "run_figure"]

_STYLES = ("-", "--", ":", "-.")


def _series(history: list[dict[str, Any]], key: str, f: Callable[[float], float] = float) -> tuple[list, list]:
    pts = [(rec["epoch"], f(rec[key])) for rec in history if key in rec]
    return [p[0] for p in pts], [p[1] for p in pts]


def _names(history: list[dict[str, Any]], kind: str) -> list[str]:
    return sorted({key[len(kind) + 1:] for rec in history for key in rec if key.startswith(kind + "/")},
                  key=_block_order)


def _block_order(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in name.split("."))


def _styler(names: list[str]) -> Callable[[str], dict[str, Any]]:
    """Colour by the block's layer (its name without the last part), line style by the last part."""
    import matplotlib

    groups = sorted({n.rpartition(".")[0] for n in names}, key=_block_order)
    leaves = sorted({n.rpartition(".")[2] for n in names})
    cmap = matplotlib.colormaps["viridis" if len(groups) > 10 else "tab10"]

    def style(name: str) -> dict[str, Any]:
        group, _, leaf = name.rpartition(".")
        k = groups.index(group)
        colour = cmap(k / max(1, len(groups) - 1) * 0.9) if len(groups) > 10 else cmap(k % 10)
        return {"color": colour, "linestyle": _STYLES[leaves.index(leaf) % len(_STYLES)], "lw": 1.3}

    return style


def run_figure(history: list[dict[str, Any]], metric: str = "mse", selected_epoch: int | None = None,
               select_key: str = "val_eq", title: str = "", pruned_epoch: int | None = None) -> Any:
    """The matplotlib figure of a run's ``history`` (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels: list[tuple[str, Callable[[Any], None]]] = []

    def loss(ax: Any) -> None:
        ax.plot(*_series(history, "train_loss"), color="black", lw=1.4, label="training loss")
        for key, label, style in ((f"val_eq_{metric}", f"validation {metric}, equivariant-only", "-"),
                                  (f"val_full_{metric}", f"validation {metric}, full", "--")):
            xs, ys = _series(history, key)
            if xs:
                bold = key.startswith(select_key)
                ax.plot(xs, ys, color="tab:blue" if "eq" in key else "tab:orange", linestyle=style,
                        lw=2.0 if bold else 1.2, label=label + (" (selects)" if bold else ""))
        ax.set_yscale("log")
        ax.set_title("loss")

    panels.append(("loss", loss))
    if any("equivariance_error" in r or "train_equivariance_defect" in r for r in history):
        def defect(ax: Any) -> None:
            for key, label, colour in (("equivariance_error", "full model, validation batch (relative)", "tab:red"),
                                       ("train_equivariance_defect", "training batches (loss units)", "tab:purple")):
                xs, ys = _series(history, key)
                keep = [(x, y) for x, y in zip(xs, ys) if y > 0]
                if keep:
                    ax.plot(*zip(*keep), color=colour, lw=1.3, label=label)
            ax.set_yscale("log")
            ax.set_title("equivariance defect")

        panels.append(("defect", defect))
    for kind, title_, log in (("gamma", "|gamma| per block", True),
                              ("multiplier", "multiplier lambda per block", False),
                              ("slack", "slack u per block", False)):
        names = _names(history, kind)
        if not names:
            continue

        def draw(ax: Any, kind: str = kind, names: list[str] = names, log: bool = log, title_: str = title_) -> None:
            style = _styler(names)
            for name in names:
                xs, ys = _series(history, f"{kind}/{name}", abs if log else float)
                pts = [(x, y) for x, y in zip(xs, ys) if not log or y > 0]
                if pts:
                    ax.plot(*zip(*pts), label=name, **style(name))
            if log:
                ax.set_yscale("log")
            else:
                ax.axhline(0.0, color="0.6", lw=0.6)
            ax.set_title(title_)

        panels.append((kind, draw))
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.6 * rows), squeeze=False)
    epochs = [r["epoch"] for r in history if "epoch" in r]
    for ax, (name, draw_panel) in zip(axes.flat, panels):
        draw_panel(ax)
        for line in ax.get_lines():  # a series of a few points (e.g. validated once) shows its points
            if len(line.get_xdata()) <= 3 and not line.get_label().startswith("_"):  # not the zero line
                line.set_marker("o")
                line.set_markersize(3)
        ax.set_xlabel("epoch")
        if epochs:  # one epoch axis for every panel, the validated-only series included
            ax.set_xlim(min(epochs) - 0.5 if len(epochs) < 4 else min(epochs), max(epochs) + (0.5 if len(epochs) < 4 else 0))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if selected_epoch:
            ax.axvline(selected_epoch, color="0.3", lw=0.9, linestyle=":", label=f"selected epoch {selected_epoch}")
        if pruned_epoch and name == "gamma":
            ax.axvline(pruned_epoch, color="tab:red", lw=0.9, linestyle="-.",
                       label=f"pruned after epoch {pruned_epoch}")
        handles = ax.get_legend_handles_labels()[0]
        if handles:
            ax.legend(fontsize=6, ncol=2 if len(handles) > 8 else 1)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_run(history: list[dict[str, Any]], path: Path, title: str = "", metric: str = "mse",
             selected_epoch: int | None = None, select_key: str = "val_eq", pruned_epoch: int | None = None) -> Path:
    """Write :func:`run_figure` as a PNG to ``path`` (atomically)."""
    fig = run_figure(history, metric, selected_epoch, select_key, title, pruned_epoch)  # selects the Agg backend
    import matplotlib.pyplot as plt

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path

