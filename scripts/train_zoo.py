#!/usr/bin/env python
"""Train the pretrained zoo and bundle it into ``acezoo/pretrained/<name>/``.

Each entry trains a zoo config (or packages an existing run directory with ``--from-run``),
then copies its config, safetensors weights, metrics, history, plot and a model card that
states the real measured test metrics and the exact command that reproduces it.

    python scripts/train_zoo.py --epochs 300                       # train and bundle all
    python scripts/train_zoo.py --only egnn-nbody-ace --from-run egnn-nbody-ace=runs/xyz
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import acezoo
from acezoo.hub.card import write_card
from acezoo.hub.models import pretrained_dir
from acezoo.training import checkpoint as ckpt

ZOO = {
    "egnn-nbody-ace": "egnn_nbody_equality",
    "egnn-nbody-strict": "egnn_nbody_strict",
    "egnn-nbody-field-resilient": "egnn_nbody_field_resilient",
}
FILES = (ckpt.CONFIG_FILE, ckpt.WEIGHTS_FILE, ckpt.METRICS_FILE, ckpt.PLOT_FILE)  # history.json stays in the run


def bundle(name: str, run_dir: Path, command: str) -> Path:
    """Copy a finished run into the package and write its card."""
    config, _ = ckpt.load_run(run_dir)  # validates before anything is copied
    target = pretrained_dir() / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for fname in FILES:
        shutil.copyfile(run_dir / fname, target / fname)
    metrics = json.loads((run_dir / ckpt.METRICS_FILE).read_text())
    write_card(target, config, metrics, command=command)
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--only", nargs="+", choices=sorted(ZOO), help="bundle only these")
    ap.add_argument("--from-run", nargs="+", default=[], metavar="NAME=RUN_DIR", help="package an existing run")
    ap.add_argument("--out", default="zoo_runs", help="where new training runs are written")
    args = ap.parse_args()
    given = dict(item.split("=", 1) for item in args.from_run)
    for name in args.only or sorted(ZOO):
        zoo = ZOO[name]
        overrides = [f"train.epochs={args.epochs}", f"train.patience={args.epochs}"]
        command = f"acezoo train zoo_configs/{zoo}.yaml {' '.join(overrides)}"
        if name in given:
            run_dir = Path(given[name])
            stored = acezoo.load_config(run_dir / ckpt.CONFIG_FILE)
            every = f"train.eval_every={stored.train.eval_every} " if stored.train.eval_every != 1 else ""
            command = f"acezoo train zoo_configs/{zoo}.yaml train.epochs={stored.train.epochs} " \
                      f"train.patience={stored.train.patience} {every}seed={stored.seed}"
        else:
            config = acezoo.load_config(zoo, overrides)
            run_dir = acezoo.train(config, run_dir=Path(args.out) / name).run_dir
        target = bundle(name, run_dir, command)
        metrics = json.loads((target / ckpt.METRICS_FILE).read_text())
        print(f"{name}: test mse pruned {metrics['test']['pruned']['mse']:.5f}, full {metrics['test']['full']['mse']:.5f} "
              f"-> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
