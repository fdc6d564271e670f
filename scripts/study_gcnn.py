#!/usr/bin/env python
"""Study: the group CNN (p4) in strict, equality, resilient and free modes, on four tasks.

- ``digits_rot``: digits rotated by random multiples of 90 degrees (exactly C4-invariant);
- ``digits_upright``: digits as written (orientation can matter: 6 vs 9);
- ``advection_sym``: a diffusing field, no wind (exactly C4-equivariant);
- ``advection_wind``: the same with a constant wind (the symmetry is broken).

For each task it trains every mode with several seeds (same data, same budget), then writes
``<out>/<task>/results.md`` and ``duals.png`` (per-layer gamma, multiplier and slack over
training) and a summary ``<out>/summary.md`` with the test metric of the pruned and the full
model (classification: error in percent; advection: MSE) and the final |gamma| per layer.

    python scripts/study_gcnn.py --epochs 40 --seeds 0 1 2 train.num_threads=1
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from acezoo.training.study import add_study_arguments, run_study, runs_by_mode, metric_mean_std

TASKS: dict[str, tuple[str, list[str], float, str]] = {
    "digits_rot": ("zoo_configs/gcnn_digits_equality.yaml", ["data.dataset=digits_rot"], 100.0, " (% error)"),
    "digits_upright": ("zoo_configs/gcnn_digits_equality.yaml", ["data.dataset=digits_upright"], 100.0, " (% error)"),
    "advection_sym": ("zoo_configs/gcnn_advection_equality.yaml", ["data.wind=[0.0,0.0]"], 1.0, ""),
    "advection_wind": ("zoo_configs/gcnn_advection_equality.yaml", [], 1.0, ""),
}


def summary(results: dict[str, tuple[list[dict[str, Any]], float, str]], modes: list[str]) -> str:
    lines = ["| task | mode | test, pruned | test, full | final mean abs gamma per layer |", "|---|---|---|---|---|"]
    for task, (runs, scale, label) in results.items():
        for mode, rs in runs_by_mode(runs, modes):
            gammas = ", ".join(f"{k} {statistics.mean(abs(r['gammas'][k]) for r in rs):.3f}"
                               for k in rs[0]["gammas"]) or "-"
            lines.append(f"| {task}{label} | {mode} | {metric_mean_std(rs, 'test_pruned', scale)} | "
                         f"{metric_mean_std(rs, 'test_full', scale)} | {gammas} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    add_study_arguments(ap, ["strict", "equality", "resilient", "free"], [0, 1, 2], 40, "study/gcnn")
    args = ap.parse_args()
    results = {}
    for task in args.tasks:
        config, extra, scale, label = TASKS[task]
        print(f"== {task}", flush=True)
        runs = run_study(config, args.modes, args.seeds, args.epochs, Path(args.out) / task,
                         [*extra, *args.overrides], scale=scale, scale_label=label)
        results[task] = (runs, scale, label)
    table = (f"Group CNN (p4), {args.epochs} epochs, seeds {args.seeds}; mean +- std over seeds.\n\n"
             + summary(results, args.modes) + "\n")
    Path(args.out, "summary.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
