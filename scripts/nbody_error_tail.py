#!/usr/bin/env python
"""How heavy-tailed is an N-body model's test error, and where do the worst trajectories come from?

For each run directory (a trained N-body model; its equivariant-only network, branches removed)
and each test split (``--split NAME=data.KEY=VALUE,...``: overrides of the run's data config),
prints the test MSE, the median per-trajectory MSE, the share of the total squared error carried
by the worst 1% and 5% of trajectories, the MSE without the worst 1%, and the mean smallest
particle distance at the input frame of the worst 1% against all trajectories.

    python scripts/nbody_error_tail.py study/egnn-draw-clip/nbody/runs/strict-s0 \\
        --split "authors'=data.draw=egnn_small" --split "zoo=data.draw=acezoo"
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from acezoo.compiler import strip_relaxed
from acezoo.config.loader import load_config
from acezoo.training.batches import collate
from acezoo.training.checkpoint import load_run
from acezoo.training.trainer import build_data


def tail_stats(net: torch.nn.Module, dataset) -> dict[str, float]:  # noqa: ANN001
    """Per-trajectory errors of ``net`` on ``dataset`` (every N-body item), summarised."""
    batch = collate(dataset, torch.arange(len(dataset)))
    with torch.no_grad():
        err = ((net(batch) - batch.y) ** 2).reshape(len(dataset), -1).mean(1).double().numpy()
    pos = batch.pos.reshape(len(dataset), -1, 3).double().numpy()
    n = pos.shape[1]
    dmin = np.min([np.linalg.norm(pos[:, i] - pos[:, j], axis=-1) for i in range(n) for j in range(i + 1, n)], axis=0)
    order = np.argsort(err)[::-1]
    k = max(1, len(err) // 100)
    return {"mse": err.mean(), "median": float(np.median(err)), "top1": err[order[:k]].sum() / err.sum(),
            "top5": err[order[:5 * k]].sum() / err.sum(), "mse_wo_top1": err[order[k:]].mean(),
            "dmin_top1": dmin[order[:k]].mean(), "dmin_all": dmin.mean()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories of trained N-body models")
    ap.add_argument("--split", action="append", default=[], metavar="NAME=data.KEY=VALUE,...",
                    help="a test split: a name and comma-separated data overrides (default: the run's own)")
    args = ap.parse_args(argv)
    splits = [(s.split("=", 1)[0], [o for o in s.split("=", 1)[1].split(",") if o]) for s in args.split] or [("own", [])]
    torch.set_num_threads(1)
    print("| run | test split | MSE x 1e-3 | median x 1e-3 | worst 1% share | worst 5% share | MSE without worst 1% | "
          "min distance at input, worst 1% / all |")
    print("|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        config, model = load_run(run)
        net = strip_relaxed(model.net).eval()
        for name, overrides in splits:
            cfg = load_config(run / "config.yaml", overrides) if overrides else config  # the data only
            s = tail_stats(net, build_data(cfg).test)
            print(f"| {run.name} | {name} | {s['mse'] * 1e3:.2f} | {s['median'] * 1e3:.2f} | {s['top1']:.2f} | "
                  f"{s['top5']:.2f} | {s['mse_wo_top1'] * 1e3:.2f} | {s['dmin_top1']:.2f} / {s['dmin_all']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
