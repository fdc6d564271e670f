"""Multi-seed comparisons of constraint modes (the engine behind ``scripts/study_*.py``).

``run_study`` trains one base zoo config in several modes and seeds on the same data and
writes ``results.json`` (every run), ``results.md`` (test metric mean +- std per mode, pruned
and full) and ``duals.png`` (per-block gamma, multiplier and slack over training, first seed
of each relaxed mode).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from acezoo.config.loader import load_config
from acezoo.run import build_data, train

__all__ = ["run_study", "results_table", "plot_study", "mean_std", "add_study_arguments", "runs_by_mode",
           "metric_mean_std"]


def add_study_arguments(ap: argparse.ArgumentParser, modes: Sequence[str], seeds: Sequence[int], epochs: int,
                        out: str) -> argparse.ArgumentParser:
    """The options every study script shares: ``--modes``, ``--seeds``, ``--epochs``, ``--out``
    and trailing ``key=value`` overrides for every run (the defaults are the study's)."""
    ap.add_argument("--modes", nargs="+", default=list(modes))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(seeds))
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--out", default=out)
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    return ap


def run_study(
    config: str | Path,
    modes: Sequence[str],
    seeds: Sequence[int],
    epochs: int,
    out: str | Path,
    overrides: Sequence[str] = (),
    scale: float = 1.0,
    scale_label: str = "",
) -> list[dict[str, Any]]:
    """Train ``config`` in every mode and seed; write results.json/.md and duals.png to ``out``.

    Runs already in ``out/results.json`` with the same mode, seed and epochs are kept and not
    trained again, so an interrupted study continues where it stopped.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = {(r["mode"], r["seed"]): r for r in _previous_runs(out / "results.json", epochs)}
    runs: list[dict[str, Any]] = []
    data = None
    first = None
    for mode in modes:
        for seed in seeds:
            conf = load_config(config, [f"constraints.mode={mode}", f"seed={seed}", f"train.epochs={epochs}",
                                        f"train.patience={epochs}", f"train.output_dir={out / 'runs'}", *overrides])
            first = first or conf
            if (mode, seed) in done:
                runs.append(done[(mode, seed)])
                print(f"{mode:9s} seed {seed}: kept from {out / 'results.json'}", flush=True)
                continue
            data = data or build_data(conf)  # the same data for every run
            t0 = time.perf_counter()
            result = train(conf, data=data)
            m = result.metrics
            metric = next(iter(m["test"]["pruned"]))
            runs.append({"mode": mode, "seed": seed, "run_dir": str(result.run_dir), "metric": metric,
                         "test_pruned": m["test"]["pruned"][metric], "test_full": m["test"]["full"][metric],
                         "best_epoch": m["best_epoch"], "gammas": m["gammas"], "multipliers": m["multipliers"],
                         "slacks": m["slacks"], "wall_s": time.perf_counter() - t0, "history": result.history,
                         "epochs": epochs})
            print(f"{mode:9s} seed {seed}: test {metric} pruned {runs[-1]['test_pruned'] * scale:.4f} "
                  f"full {runs[-1]['test_full'] * scale:.4f}{scale_label} (best epoch {m['best_epoch']})", flush=True)
            (out / "results.json").write_text(json.dumps(runs, indent=1))
    assert first is not None
    data = data or build_data(first)
    sizes = "/".join(str(len(s)) for s in (data.train, data.val, data.test))
    header = (f"{first.data.dataset}, {first.model.arch} ({first.model.model_dump_json()}), {epochs} epochs, "
              f"seeds {list(seeds)}, {sizes} samples. Test {runs[0]['metric']}{scale_label}, mean +- std over seeds.")
    table = header + "\n\n" + results_table(runs, modes, scale) + "\n"
    (out / "results.md").write_text(table)
    print(table)
    plot_study(runs, out / "duals.png")
    return runs


def _previous_runs(path: Path, epochs: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    runs = json.loads(path.read_text())
    return [r for r in runs if r.get("epochs", len(r.get("history", []))) == epochs]


def mean_std(values: list[float]) -> str:
    """``mean +- sample std`` (std 0 for one value), 4 and 2 significant digits."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4g} +- {sd:.2g}"


def runs_by_mode(runs: list[dict[str, Any]], modes: Sequence[str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(mode, its runs)`` in the order of ``modes``, skipping modes without runs."""
    for mode in modes:
        rs = [r for r in runs if r["mode"] == mode]
        if rs:
            yield mode, rs


def metric_mean_std(rs: list[dict[str, Any]], key: str, scale: float = 1.0) -> str:
    """``mean +- std`` over runs of ``r[key] * scale`` (e.g. ``key="test_pruned"``)."""
    return mean_std([r[key] * scale for r in rs])


def results_table(runs: list[dict[str, Any]], modes: Sequence[str], scale: float = 1.0) -> str:
    """Markdown table: mode, pruned and full test metric (mean +- std), mean best epoch."""
    lines = ["| mode | pruned (equivariant) | full (with gamma) | best epoch |", "|---|---|---|---|"]
    for mode, rs in runs_by_mode(runs, modes):
        lines.append(f"| {mode} | {metric_mean_std(rs, 'test_pruned', scale)} | {metric_mean_std(rs, 'test_full', scale)} | "
                     f"{statistics.mean(r['best_epoch'] for r in rs):.0f} |")
    return "\n".join(lines)


def plot_study(runs: list[dict[str, Any]], path: Path) -> None:
    """Per-block gamma, multiplier and slack over training for the first seed of each relaxed mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    firsts: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r["mode"] != "strict":
            firsts.setdefault(r["mode"], r)
    if not firsts:
        return
    kinds = ("gamma", "multiplier", "slack")
    fig, axes = plt.subplots(len(kinds), len(firsts), figsize=(4.5 * len(firsts), 9), squeeze=False)
    for col, (mode, r) in enumerate(firsts.items()):
        for row, kind in enumerate(kinds):
            ax = axes[row][col]
            keys = sorted({k for rec in r["history"] for k in rec if k.startswith(kind + "/")})
            for k in keys:
                ax.plot([rec["epoch"] for rec in r["history"]], [rec.get(k, float("nan")) for rec in r["history"]],
                        lw=1, label=k.split("/", 1)[1])
            ax.set_title(f"{mode}: {kind}")
            ax.set_xlabel("epoch")
            if not keys:
                ax.text(0.5, 0.5, f"no {kind}s in {mode} mode", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
            elif row == 0:
                ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
