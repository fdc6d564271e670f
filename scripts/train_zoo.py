#!/usr/bin/env python
"""Train the pretrained zoo and bundle it into ``acezoo/pretrained/<name>/``.

Every model is a zoo config plus the overrides listed in :data:`ZOO` (its budget, and the
protocol where it differs from the config's default). Each one is trained (resumably: a run
directory ``<out>/<name>`` that holds an interrupted run is continued, a finished one is
reused), then its config, safetensors weights, metrics and plot are copied into the package
with a model card that states the real measured test metrics and the exact command that
reproduces the model. Names follow ``<arch>-<task>-<mode>``.

    python scripts/train_zoo.py --list                         # what would be trained
    python scripts/train_zoo.py --only gcnn-digits-ace         # train (or finish) and bundle
    python scripts/train_zoo.py --workers 2                    # everything, 2 runs side by side
    python scripts/train_zoo.py --only egnn-nbody-ace --from-run egnn-nbody-ace=runs/xyz
    python scripts/train_zoo.py --recard                       # restate the cards' constraints line, nothing retrained
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the N-body budget of the ACE study (README "Does ACE pay off?"): validation every 5 epochs
NBODY = ("train.epochs=500", "train.eval_every=5", "train.patience=150")
MOCAP = ("train.epochs=3000", "train.eval_every=5", "train.patience=200")
# the published budget (`zoo_studies/segnn-nbody-2000.yaml`, which continues segnn-nbody's trials;
# its strict trials stopped early within 500 epochs, so they are the same runs under either budget)
SEGNN_PUBLISHED = ("train.epochs=2000", "train.eval_every=5", "train.patience=150")


@dataclass(frozen=True)
class ZooModel:
    """A pretrained model: the zoo config it is trained from and the overrides of its budget/protocol."""

    config: str
    overrides: tuple[str, ...] = ()
    #: the float type the bundled weights are stored in: ``float16`` halves the largest models
    #: (their card's test figures are re-measured with the stored weights)
    weights_dtype: str = "float32"

    def command(self) -> str:
        return " ".join(["acezoo train", f"zoo_configs/{self.config}.yaml", *self.overrides])


QM9 = ("train.epochs=40",)  # the QM9 study's budget (README "Results: QM9"), qm9_small
# the converged budget of the EGNN's QM9 ACE study (README "QM9 (HOMO, qm9_small), EGNN"): strict's
# validation curve has flattened well before epoch 300
QM9_CONVERGED = ("train.epochs=300", "train.lr_schedule=cosine", "train.patience=40")

# in training order: cheapest first
ZOO: dict[str, ZooModel] = {
    "gcnn-digits-ace": ZooModel("gcnn_digits_equality"),
    # its strict counterpart, as in the digits ACE study: the equality config in strict mode
    "gcnn-digits-strict": ZooModel("gcnn_digits_equality", ("constraints.mode=strict",)),
    "gcnn-digits-upright-resilient": ZooModel("gcnn_digits_resilient", ("data.dataset=digits_upright",)),
    "gcnn-advection-resilient": ZooModel("gcnn_advection_resilient"),
    "egnn-nbody-ace": ZooModel("egnn_nbody_equality", NBODY),
    "egnn-nbody-strict": ZooModel("egnn_nbody_strict", NBODY),
    "egnn-nbody-field-resilient": ZooModel("egnn_nbody_field_resilient", NBODY),
    "egnn-mocap-resilient": ZooModel("egnn_mocap_resilient", (*MOCAP, "model.node_features=[height]")),
    "egnn-mocap-strict": ZooModel("egnn_mocap_strict", (*MOCAP, "model.node_features=[height]")),
    # E(3) protocol (|v| only): the pruned model is exactly E(3)-equivariant (ACE study: beats strict
    # there); `egnn-mocap-e3-strict` is its strict counterpart under the same protocol: the study's
    # `e3-strict`, the equality config in strict mode (the stream branch setting changes the initialisation)
    "egnn-mocap-ace": ZooModel("egnn_mocap_equality", MOCAP),
    "egnn-mocap-e3-strict": ZooModel("egnn_mocap_equality", ("constraints.mode=strict", *MOCAP)),
    # seed 0 of the converged QM9 study (`zoo_studies/ace300-rerun-qm9.yaml`, 300 epochs, cosine), whose strict
    # contender is the equality config in strict mode (the branch setting changes the initialisation)
    "egnn-qm9-strict": ZooModel("egnn_qm9_equality", ("constraints.mode=strict", *QM9_CONVERGED)),
    "egnn-qm9-ace": ZooModel("egnn_qm9_equality", QM9_CONVERGED),
    # seed 0 of the SE(3)-Transformer ACE study (`zoo_studies/ace-se3t-nbody.yaml`), whose strict contender is
    # the equality config in strict mode (the branch setting changes the initialisation)
    "se3t-nbody-strict": ZooModel("se3t_nbody_equality", ("constraints.mode=strict", *NBODY)),
    "se3t-nbody-ace": ZooModel("se3t_nbody_equality", NBODY),
    "se3t-nbody-field-resilient": ZooModel("se3t_nbody_field_resilient", NBODY),
    # seed 0 of the SE(3)-Transformer's QM9 study (`zoo_studies/ace-se3t-qm9.yaml`, the EGNN's converged budget),
    # whose strict contender is the equality config in strict mode
    "se3t-qm9-strict": ZooModel("se3t_qm9_equality", ("constraints.mode=strict", *QM9_CONVERGED)),
    "se3t-qm9-ace": ZooModel("se3t_qm9_equality", QM9_CONVERGED),
    "se3t-qm9polar-ace": ZooModel("se3t_qm9_polar_equality", QM9),
    "se3t-mocap-resilient": ZooModel("se3t_mocap_resilient", (*MOCAP, "model.node_features=[height]")),
    "se3t-mocap-strict": ZooModel("se3t_mocap_strict", (*MOCAP, "model.node_features=[height]")),
    # seed 0 of the SEGNN N-body study at the published budget (`zoo_studies/segnn-nbody-2000.yaml`),
    # whose strict contender is the equality config in strict mode (the branch setting changes the
    # initialisation)
    "segnn-nbody-strict": ZooModel("segnn_nbody_equality", ("constraints.mode=strict", *SEGNN_PUBLISHED)),
    "segnn-nbody-ace": ZooModel("segnn_nbody_equality", SEGNN_PUBLISHED, weights_dtype="float16"),
    # seed 0 of the EGNO MoCap study (`zoo_studies/egno-mocap.yaml`, the configs' published budget)
    # (1.2-1.3 M parameters each: stored in float16 to keep the bundle within its 20 MiB)
    "egno-mocap-strict": ZooModel("egno_mocap_equality", ("constraints.mode=strict",), weights_dtype="float16"),
    "egno-mocap-ace": ZooModel("egno_mocap_equality", weights_dtype="float16"),
    # seed 0 of the study's `resilient-rho0.01` contender: the resilient config's slack (rho = 0.01,
    # chosen on validation), same resolved config as this command
    "egno-mocap-resilient": ZooModel("egno_mocap_resilient", weights_dtype="float16"),
}


def store_narrow(bundle_dir: Path, metrics: dict, dtype: str) -> dict:
    """Store ``bundle_dir``'s weights as ``dtype`` and re-measure the test metrics with them.

    Returns ``metrics`` with ``test`` and ``equivariance_error`` measured on the stored weights
    (loaded back as float32), the trained ones under ``test_as_trained``, and ``weights_dtype``.
    """
    import torch
    from safetensors.torch import load_file

    from acezoo.run_layout import WEIGHTS_FILE
    from acezoo.symmetry import symmetry_for
    from acezoo.training.checkpoint import load_run, save_weights
    from acezoo.training.evaluate import score
    from acezoo.training.trainer import build_data

    narrow = getattr(torch, dtype)
    state = load_file(str(bundle_dir / WEIGHTS_FILE))
    save_weights(bundle_dir / WEIGHTS_FILE, {k: v.to(narrow) if v.is_floating_point() else v for k, v in state.items()})
    config, model = load_run(bundle_dir)
    data = build_data(config, progress=False)
    measured = score(model, data.test, data.task, symmetry_for(config.model), torch.device("cpu"),
                     max(500, config.train.batch_size))
    return {**metrics, "test": measured["test"], "equivariance_error": measured["equivariance_error"],
            "test_as_trained": metrics["test"], "weights_dtype": dtype}


#: where and how a run ran, not what it computes: a package resets them to the schema's defaults, so
#: that a model trained by a study worker (one thread, ``device: cpu``) does not pin whoever retrains
#: from its config to that machine
PLACEMENT_FIELDS = ("device", "num_threads", "output_dir", "progress")


def portable(config: Any) -> Any:
    """``config`` with the :data:`PLACEMENT_FIELDS` of ``train`` at their defaults."""
    fields = type(config.train).model_fields
    train = config.train.model_copy(update={k: fields[k].default for k in PLACEMENT_FIELDS})
    return config.model_copy(update={"train": train})


def bundle(name: str, run_dir: Path, command: str, weights_dtype: str = "float32") -> Path:
    """Copy a finished run into the package and write its card (weights stored as ``weights_dtype``)."""
    from acezoo.hub.card import write_card
    from acezoo.hub.pretrained import pretrained_dir
    from acezoo.run_layout import METRICS_FILE, PLOT_FILE, WEIGHTS_FILE
    from acezoo.training.checkpoint import load_run, write_config

    config, _ = load_run(run_dir)  # validates before anything is copied
    config = portable(config)
    target = pretrained_dir() / name
    tmp = target.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_config(tmp, config)
    for fname in (WEIGHTS_FILE, METRICS_FILE, PLOT_FILE):
        if (run_dir / fname).is_file():
            shutil.copyfile(run_dir / fname, tmp / fname)
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    if weights_dtype != "float32":
        metrics = store_narrow(tmp, metrics, weights_dtype)
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    write_card(tmp, config, metrics, command=command)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def recard(name: str) -> Path:
    """Restate a packaged model's ``- constraints:`` card line from its stored config and metrics
    (the rest of the card, its notes included, and the weights are left as they are)."""
    from acezoo.hub.card import constraints_line
    from acezoo.hub.pretrained import pretrained_dir
    from acezoo.io.atomic import atomic_write_text
    from acezoo.run_layout import CARD_FILE, METRICS_FILE
    from acezoo.training.checkpoint import stored_config

    folder = pretrained_dir() / name
    metrics = json.loads((folder / METRICS_FILE).read_text())
    line = constraints_line(stored_config(folder), metrics)
    card = (folder / CARD_FILE).read_text().splitlines(keepends=True)
    at = [i for i, old in enumerate(card) if old.startswith("- constraints:")]
    if len(at) != 1:
        raise SystemExit(f"{folder / CARD_FILE}: expected one '- constraints:' line, found {len(at)}")
    card[at[0]] = line + "\n"
    return atomic_write_text(folder / CARD_FILE, "".join(card))


def train_one(name: str, out: Path) -> Path:
    """Train ``name`` into ``out/name`` (continue it if interrupted, reuse it if finished)."""
    import acezoo
    from acezoo.run_layout import METRICS_FILE, STATE_FILE

    model = ZOO[name]
    run_dir = out / name
    if (run_dir / METRICS_FILE).is_file():
        return run_dir
    if (run_dir / STATE_FILE).is_file():
        return acezoo.train(resume=run_dir, progress=False).run_dir
    config = acezoo.load_config(model.config, [*model.overrides, "train.tracking=false"])
    return acezoo.train(config, run_dir=run_dir, progress=False).run_dir


def summary(name: str) -> str:
    from acezoo.hub.pretrained import pretrained_info

    i = pretrained_info(name)
    unit = f" {i.unit}" if i.unit else ""
    return f"{name}: test {i.metric}{unit} pruned {i.test_pruned:.5g}, full {i.test_full:.5g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=sorted(ZOO), help="bundle only these")
    ap.add_argument("--list", action="store_true", help="print every model and its command")
    ap.add_argument("--from-run", nargs="+", default=[], metavar="NAME=RUN_DIR",
                    help="package an existing run (trained with the model's exact command)")
    ap.add_argument("--out", default="zoo_runs", help="where training runs are written")
    ap.add_argument("--workers", type=int, default=1, help="models trained side by side, one thread each")
    ap.add_argument("--recard", action="store_true",
                    help="only restate each packaged card's constraints line from its stored config and metrics")
    args = ap.parse_args()
    names = args.only or list(ZOO)
    if args.recard:
        for name in names:
            print(f"{name}: {recard(name)}")
        return 0
    if args.list:
        for name in names:
            print(f"{name:32s} {ZOO[name].command()}")
        return 0
    given = dict(item.split("=", 1) for item in args.from_run)
    if args.workers > 1:  # one process per model, `workers` at a time, one thread each
        todo = [n for n in names if n not in given]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        running: list[subprocess.Popen] = []
        for name in todo:
            while len(running) >= args.workers:
                running[0].wait()
                running = [p for p in running if p.poll() is None]
            running.append(subprocess.Popen([sys.executable, __file__, "--only", name, "--out", args.out], env=env))
        for p in running:
            p.wait()
        names = [n for n in names if n in given]
    import torch

    if os.environ.get("OMP_NUM_THREADS") == "1":
        torch.set_num_threads(1)
    for name in names:
        run_dir = Path(given[name]) if name in given else train_one(name, Path(args.out))
        bundle(name, run_dir, ZOO[name].command(), ZOO[name].weights_dtype)
        print(summary(name), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
