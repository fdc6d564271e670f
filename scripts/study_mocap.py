#!/usr/bin/env python
"""Study: strict vs equality vs resilient on CMU motion capture (EGNO protocol), several seeds.

Test MSE is reported x 1e-2, as published (EGNN 50.9, EGNO + ACE resilient 23.8). The plot
shows each block's gamma, multiplier and learned slack u over training: at a solution
u_i = lambda_i / rho, so a large slack marks a layer that needs to break the symmetry.

    python scripts/study_mocap.py --epochs 300 --seeds 0 1 2 --data ../shared/data/cmu_mocap_run.npz
"""
from __future__ import annotations

import argparse
import sys

from acezoo.training.study import add_study_arguments, run_study


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="egnn", help="zoo configs <arch>_mocap_<mode>.yaml are used")
    ap.add_argument("--data", help="path of cmu_mocap_run.npz (default: $ACEZOO_MOCAP)")
    add_study_arguments(ap, ["strict", "equality", "resilient"], [0, 1, 2], 300, "study/mocap")
    args = ap.parse_args()
    overrides = ([f"data.path={args.data}"] if args.data else []) + list(args.overrides)
    run_study(f"zoo_configs/{args.arch}_mocap_equality.yaml", args.modes, args.seeds, args.epochs, args.out,
              overrides, scale=100.0, scale_label=" (x 1e-2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
