#!/usr/bin/env python
"""Study: strict vs schedule vs equality (ACE) EGNN on charged N-body, several seeds.

Writes ``<out>/results.md`` (test MSE, mean +- std over seeds, of the pruned and the full
model), ``<out>/results.json`` (every run) and ``<out>/duals.png`` (gamma, multiplier and
slack over training for the first seed of every relaxed mode). Any zoo config works as the
base (``--config``) with any modes (``--modes``).

    python scripts/study_nbody.py --epochs 300 --seeds 0 1 2 --out study/nbody
"""
from __future__ import annotations

import argparse
import sys

from acezoo.training.study import add_study_arguments, run_study


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="zoo_configs/egnn_nbody_equality.yaml", help="base config")
    add_study_arguments(ap, ["strict", "schedule", "equality"], [0, 1, 2], 150, "study/nbody")
    args = ap.parse_args()
    run_study(args.config, args.modes, args.seeds, args.epochs, args.out, args.overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
