#!/usr/bin/env python
"""One-off: turn the committed study folders of the retired sweep runner (``sweep.json`` plus
one record per trial under ``results/``) into study files ``zoo_studies/<name>.yaml``.

The records stay where they are and as they are (``acezoo study --summary`` reads them); the
study file names the folder in ``records:``. The seeds are those of the folder's published
table (its ``results.md`` header). Run from the repository root:

    python scripts/convert_sweeps.py            # writes zoo_studies/*.yaml
"""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import yaml

# what each task of scripts/study_ace.py asked (the descriptions of the study files)
ASKS = {
    "nbody": "EGNN on charged N-body: strict against every ACE recipe (branch x dual dynamics, pruning, the "
             "fixed-weight penalty); which gives the best equivariant model?",
    "nbody-samples": "EGNN on charged N-body: strict against the ACE default with 1000, 5000 and 9000 training "
                     "trajectories (3000 comes from the nbody study).",
    "se3t-nbody": "SE(3)-Transformer on charged N-body: strict against the ACE default.",
    "se3t-nbody-samples": "SE(3)-Transformer on charged N-body: strict against the ACE default with 5000 and 9000 "
                          "training trajectories.",
    "qm9": "EGNN on QM9 (HOMO energy): strict against the ACE default.",
    "se3t-qm9": "SE(3)-Transformer on QM9 (HOMO energy) at the EGNN's converged budget: strict against the ACE default.",
    "mocap": "EGNN on CMU motion capture: strict, equality and resilient under the E(3)-strict and the published "
             "(height) protocols, with several branches and dual dynamics.",
    "digits": "p4 group CNN on rotated digits: strict against every ACE recipe.",
    "advection": "p4 group CNN on advection: strict against every ACE recipe.",
    "segnn-nbody": "SEGNN on charged N-body (the paper's N-body model): strict, ACE with the authors' recipe, ACE "
                   "with our EGNN winner's recipe.",
    "segnn-nbody-samples": "SEGNN on charged N-body: strict against ACE (the authors' recipe) with 5000 and 9000 "
                           "training trajectories.",
    "egno-mocap": "EGNO on CMU motion capture (the paper's MoCap model, the EGNO protocol): strict, equality "
                  "and resilient.",
}
GROUPS = {
    "ace": "", "ace-clip": " With gradient norms clipped at 1.", "ace-rerun": " A rerun with more seeds.",
    "ace300": " At 300 epochs with a cosine schedule.", "ace300-rerun": " At 300 epochs, cosine, more seeds.",
    "egnn-draw": " On the EGNN authors' data draw (egnn_small, frames 31 -> 41).",
    "egnn-draw-clip": " On the EGNN authors' data draw, gradient norms clipped at 1.",
    "frames31": " Predicting frame 41 from frame 31.", "segnn": "", "egno": "",
}
SAMPLE_MODEL = {"nbody-samples": "EGNN", "se3t-nbody-samples": "SE(3)-Transformer", "segnn-nbody-samples": "SEGNN"}
DROP = ("train.output_dir=",)


def study_name(folder: Path) -> str:
    group, task = folder.parent.name, folder.name
    return task if task.startswith(group) else f"{group}-{task}"


def published_seeds(folder: Path, planned: list[int]) -> list[int]:
    md = folder / "results.md"
    if md.exists():
        match = re.search(r"seeds (\[[0-9, ]*\])", md.read_text().splitlines()[0])
        if match:
            return ast.literal_eval(match.group(1))
    found = sorted({int(p.stem.rsplit("-s", 1)[1]) for p in (folder / "results").glob("*.json")})
    return found or planned


def convert(folder: Path) -> dict:
    sweep = json.loads((folder / "sweep.json").read_text())
    task = folder.name
    spec: dict = {
        "name": study_name(folder),
        "description": ASKS.get(task, task) + GROUPS.get(folder.parent.name, ""),
        "base": sweep["config"],
        "common": [o for o in sweep["common"] if not o.startswith(DROP)],
        "contenders": [{"name": c["name"], "overrides": list(c["overrides"]),
                        **({"note": c["note"]} if c.get("note") else {})} for c in sweep["contenders"]],
        "seeds": published_seeds(folder, sweep["seeds"]),
        "report": {"scale": sweep["scale"], "unit": sweep["unit"], "baseline": None if task == "mocap" else "strict"},
        "records": str(folder),
    }
    if task in SAMPLE_MODEL:
        base = folder.parent / task.replace("-samples", "")
        names = {c["name"] for c in json.loads((base / "sweep.json").read_text())["contenders"]}
        mapping = {k: v for k, v in {"strict": "strict", "bounded-nupi-prune": "ace", "ace-authors": "ace"}.items()
                   if k in names}
        spec["report"] = {"scale": sweep["scale"], "unit": sweep["unit"], "baseline": None,
                          "samples": {"base_records": str(base), "base_size": 3000, "base_contenders": mapping,
                                      "model": SAMPLE_MODEL[task]}}
    return spec


def main() -> int:
    out = Path("zoo_studies")
    out.mkdir(exist_ok=True)
    for sweep in sorted(Path("docs/studies").rglob("sweep.json")):
        spec = convert(sweep.parent)
        path = out / f"{spec['name']}.yaml"
        path.write_text(f"# converted from {sweep} by scripts/convert_sweeps.py\n"
                        + yaml.safe_dump(spec, sort_keys=False, width=110, default_flow_style=None))
        print(f"{sweep.parent} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
