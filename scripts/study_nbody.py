#!/usr/bin/env python
"""Study: strict vs schedule vs equality (ACE) EGNN on charged N-body, several seeds.

Any zoo config works as the base (``--config``) with any modes (``--modes``), e.g. the MoCap
configs with ``--modes strict equality resilient``.

Writes ``<out>/results.md`` (test MSE, mean +- std over seeds, of the pruned and the full
model), ``<out>/results.json`` (every run) and ``<out>/duals.png`` (gamma and lambda over
training for the first seed of every relaxed mode).

    python scripts/study_nbody.py --epochs 150 --seeds 0 1 2 --out study/nbody
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import acezoo
from acezoo.training.trainer import build_data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", nargs="+", default=["strict", "schedule", "equality"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--config", default="zoo_configs/egnn_nbody_equality.yaml", help="base config")
    ap.add_argument("--out", default="study/nbody")
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    runs = []
    data = None
    for mode in args.modes:
        for seed in args.seeds:
            overrides = [f"constraints.mode={mode}", f"seed={seed}", f"train.epochs={args.epochs}",
                         f"train.patience={args.epochs}", f"train.output_dir={out / 'runs'}", *args.overrides]
            config = acezoo.load_config(args.config, overrides)
            data = data or build_data(config)  # same data for every run
            t0 = time.perf_counter()
            result = acezoo.train(config, data=data)
            m = result.metrics
            runs.append({"mode": mode, "seed": seed, "run_dir": str(result.run_dir),
                         "test_pruned_mse": m["test"]["pruned"]["mse"], "test_full_mse": m["test"]["full"]["mse"],
                         "best_epoch": m["best_epoch"], "gammas": m["gammas"], "multipliers": m["multipliers"],
                         "equivariance_error_full": m["equivariance_error"]["full"],
                         "wall_s": time.perf_counter() - t0, "history": result.history})
            print(f"{mode:9s} seed {seed}: test MSE pruned {m['test']['pruned']['mse']:.5f} "
                  f"full {m['test']['full']['mse']:.5f} (best epoch {m['best_epoch']})", flush=True)
            (out / "results.json").write_text(json.dumps(runs, indent=1))

    sizes = "/".join(str(len(split)) for split in (data.train, data.val, data.test))
    lines = [f"{config.data.dataset}, {config.model.arch} ({config.model.model_dump_json()}), {args.epochs} epochs, "
             f"seeds {args.seeds}, {sizes} samples. Test MSE, mean +- std over seeds.", "",
             "| mode | pruned (equivariant) | full (with gamma) | best epoch |", "|---|---|---|---|"]
    for mode in args.modes:
        rs = [r for r in runs if r["mode"] == mode]
        def ms(key: str) -> str:
            vals = [r[key] for r in rs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            return f"{statistics.mean(vals):.5f} +- {sd:.5f}"
        lines.append(f"| {mode} | {ms('test_pruned_mse')} | {ms('test_full_mse')} | "
                     f"{statistics.mean(r['best_epoch'] for r in rs):.0f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(runs, out / "duals.png")
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'duals.png'}")
    return 0


def _plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    firsts = {}
    for r in runs:
        if r["mode"] != "strict" and r["mode"] not in firsts:
            firsts[r["mode"]] = r
    if not firsts:
        return
    fig, axes = plt.subplots(2, len(firsts), figsize=(4.5 * len(firsts), 6), squeeze=False)
    for col, (mode, r) in enumerate(firsts.items()):
        for row, kind in enumerate(("gamma", "multiplier")):
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
            if keys and row == 0:
                ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
