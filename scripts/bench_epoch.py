#!/usr/bin/env python
"""Benchmark: one N-body EGNN epoch on one thread, the original EGNN code vs the current one.

The real trainer path (the public ``acezoo.training.trainer.Trainer``: the primal-dual engine,
the batching, the loss; no callbacks beyond the standard ones, progress off, ``train.num_threads=1``) on the standard
charged N-body data (3000/2000/2000 trajectories of 5 particles, fully connected graphs),
``zoo_configs/egnn_nbody_{strict,equality}.yaml``. Per round, for each mode and each
implementation: one training epoch (``Trainer.run_epoch``: 30 steps of batch 100) and one validation
(``Trainer.validate``: the equivariant-only model and, with relaxed blocks, the full model on the 2000
validation graphs, plus the equivariance error on 100 graphs; ``current`` and ``compiled`` score
both models in one pass, ``EGNN.forward_both``, whose first layer's equivariant part they share,
and the check compares it with one pass per model).

``original`` is the EGNN forward code and the evaluation loop as they were before the
optimisation (kept verbatim below and patched in while it runs: gathers ``h[row]``,
``h[col]``, one ``Linear(2 hidden + 1 + edge_dim, hidden)`` per edge, torch_geometric
``scatter``; validation in forward passes of 500 graphs, the trainer's batch size, one pass per
model); ``current``
is the installed ``acezoo`` (``acezoo.archs.egnn``, ``acezoo.training.evaluate``). The
trainers start from the same seed (same weights, same batches); before timing, original and
current outputs and gradients on the same weights are compared (max absolute difference,
equivariant-only and full) and, after the warm-up epoch, their training losses. Rounds
alternate which implementation runs first; the table gives medians over the rounds and the
ratio to the original.

``compiled`` (``--no-compiled`` skips it) is the current code with ``train.compile=true``
(``torch.compile``, inductor: training and validation compiled; it needs a C++ compiler, and the
warm-up epoch pays the compilation); its outputs and gradients are compared with eager ones on
the same weights. ``--allocator default`` runs every row with the C library's malloc thresholds
instead of ``train.keep_freed_memory`` (run the script once with each to compare).

The original trainer built its primal Adam unfused (about ten small ops per parameter tensor);
the current one uses ``fused=True`` (one kernel, the same update to float round-off), so the
``original`` row rebuilds its engine with the unfused Adam.

``reference`` (strict table; ``--no-reference`` skips it): a minimal re-implementation of the
EGNN authors' layer (``E_GCL_vel`` / ``EGNN_vel`` of vgsatorras/egnn, ``models/gcl.py``,
``n_body_system/model.py``: edge input ``[h_i, h_j, |d|^2, q_i q_j, |d0|^2]``, recurrent
features, velocity term, clamped coordinate messages) at the same width and depth, trained
in a bare ``zero_grad / forward / MSE / backward / Adam`` loop on batches drawn like the
trainer's and validated in batches of 100 like their test loop (no branches, no engine): what
an unrelaxed EGNN epoch costs in plain PyTorch.

    ACEZOO_HOME=/tmp/acehome OMP_NUM_THREADS=1 python scripts/bench_epoch.py
    python scripts/bench_epoch.py --rounds 9 --modes equality --json epoch.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch_geometric.utils import scatter

import acezoo.training.trainer as trainer_module
from acezoo.archs import egnn as E
from acezoo.benchmarking import environment
from acezoo.config.loader import load_config
from acezoo.training.batches import collate, epoch_indices, eval_batches
from acezoo.training.trainer import Trainer, build_data
from authors_egnn import AuthorsEGNNVel  # scripts/authors_egnn.py (this script's folder is on sys.path)

ZOO = Path(__file__).resolve().parents[1] / "zoo_configs"
IMPLS = ("original", "current")
LABELS = {"original": "original EGNN code", "current": "current EGNN code",
          "compiled": "current, train.compile",
          "reference": "authors' EGNN_vel, bare Adam"}


# -- the original EGNN forward code (before the node-wise first layer and EdgeGraph) ------------
def _orig_coord_forward(self, h, x, v, m, diff, row):  # noqa: ANN001, ANN202
    trans = diff * self.phi_x(m)
    agg = scatter(trans, row, dim=0, dim_size=x.shape[0], reduce=self.agg)
    return agg if self.phi_v is None else agg + self.phi_v(h) * v


def _orig_feature_forward(self, h, x, v, m, diff, row):  # noqa: ANN001, ANN202
    agg = scatter(m, row, dim=0, dim_size=h.shape[0], reduce="sum")
    return self.phi_h(torch.cat([h, agg], dim=-1))


def _orig_layer_forward(self, h, x, v, edge_index, edge_attr, graph=None):  # noqa: ANN001, ANN202
    row, col = edge_index
    diff = x[row] - x[col]
    radial = (diff * diff).sum(-1, keepdim=True)
    parts = [h[row], h[col], radial] + ([edge_attr] if edge_attr is not None else [])
    m = self.phi_e(torch.cat(parts, dim=-1))
    if self.gate is not None:
        m = m * self.gate(m)
    x_new = x if self.x is None else x + self.x(h, x, v, m, diff, row)
    h_new = h + self.h(h, x, v, m, diff, row)
    return h_new, x_new


def _orig_edge_inputs(self, batch, graph=None):  # noqa: ANN001, ANN202
    if self.spec.edge_input == "charge_product":
        row, col = batch.edge_index
        return batch.charge[row] * batch.charge[col]
    if self.spec.edge_input == "edge_attr":
        return batch.edge_attr
    return None


def _orig_egnn_forward(self, batch):  # noqa: ANN001, ANN202
    node, v = self.node_inputs(batch)
    edge_attr = self.edge_inputs(batch)
    h, x = self.embed(node), batch.pos
    for layer in self.layers:
        h, x = layer(h, x, v, batch.edge_index, edge_attr)
    if self.readout is None:
        return x
    nodes = batch.batch if getattr(batch, "batch", None) is not None else torch.zeros(
        h.shape[0], dtype=torch.long, device=h.device)
    return self.readout(h, nodes)


@torch.no_grad()
def _orig_evaluate(model, dataset, task, device, batch_size=500):  # noqa: ANN001, ANN202
    """The original ``acezoo.training.evaluate.evaluate``: forward passes of ``batch_size``."""
    sums: dict[str, list[float]] = {}
    for batch in eval_batches(dataset, batch_size):
        batch = batch.to(device, non_blocking=True)
        for name, (total, count) in task.metric_sums(model(batch), batch).items():
            acc = sums.setdefault(name, [0.0, 0])
            acc[0] += total
            acc[1] += count
    return {name: total / count for name, (total, count) in sums.items()}


_ORIGINAL = [
    (trainer_module, "evaluate", _orig_evaluate),
    (E.CoordUpdate, "forward", _orig_coord_forward),
    (E.FeatureUpdate, "forward", _orig_feature_forward),
    (E.EGNNLayer, "forward", _orig_layer_forward),
    (E.EGNN, "edge_inputs", _orig_edge_inputs),
    (E.EGNN, "forward", _orig_egnn_forward),
]


@contextlib.contextmanager
def original_egnn() -> Iterator[None]:
    """Run the original EGNN forward code and evaluation inside the block (patched, restored after)."""
    saved = [(cls, name, vars(cls)[name]) for cls, name, _ in _ORIGINAL]
    for cls, name, fn in _ORIGINAL:
        setattr(cls, name, fn)
    try:
        yield
    finally:
        for cls, name, fn in saved:
            setattr(cls, name, fn)


def implementation(impl: str) -> contextlib.AbstractContextManager[None]:
    return original_egnn() if impl == "original" else contextlib.nullcontext()


def use_unfused_adam(trainer: Trainer) -> None:
    """The original trainer's primal Adam (``fused=False``): the trainer's engine rebuilt as
    ``Trainer.__init__`` builds it, with that flag."""
    trainer.engine = trainer.build_engine(fused=False)


class AuthorsRun:
    """The authors' model trained in a bare Adam loop on the trainer's batches."""

    def __init__(self, trainer: Trainer) -> None:
        tc = trainer.config.train
        torch.manual_seed(trainer.config.seed)
        self.model = AuthorsEGNNVel(trainer.config.model.hidden, trainer.config.model.layers)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.data, self.batch_size = trainer.data, tc.batch_size
        self.gen = torch.Generator().manual_seed(trainer.config.seed)

    def epoch(self) -> None:
        self.model.train()
        for idx in epoch_indices(len(self.data.train), self.batch_size, self.gen):
            batch = collate(self.data.train, idx)
            self.opt.zero_grad()
            loss = nn.functional.mse_loss(self.model(batch), batch.y)
            loss.backward()
            self.opt.step()

    @torch.no_grad()
    def validate(self) -> None:
        self.model.eval()
        for batch in eval_batches(self.data.val, self.batch_size):  # their test loader: batches of 100
            nn.functional.mse_loss(self.model(batch), batch.y)


# -- the runs ----------------------------------------------------------------------------------
def make_trainer(mode: str, data: Any, out: Path, compiled: bool = False, keep_memory: bool = True) -> Trainer:
    overrides = ["train.num_threads=1", "train.tracking=false", "train.progress=false", "train.epochs=1000",
                 "train.device=cpu", f"train.compile={str(compiled).lower()}",
                 f"train.keep_freed_memory={str(keep_memory).lower()}",
                 "train.grad_clip=null"]  # the recipes the targets were set on: no gradient clipping
    if mode == "equality":  # the recipe the speed target was set on: plain branch (no batch statistics, whose
        # stateful power iterations would make the same-weights checks differ), Adam dynamics, no pruning
        overrides += ["model.branch=plain", "constraints.dual_optimizer=adam", "constraints.gamma_lr=null",
                      "constraints.prune_tol=null"]
    config = load_config(ZOO / f"egnn_nbody_{mode}.yaml", overrides)
    return Trainer(config, out, data=data, progress=False)


def trainer_epoch(trainer: Trainer) -> float:
    """One training epoch as ``fit`` runs it (without validation); returns its mean training loss."""
    loss, _ = trainer.run_epoch()
    return loss


@torch.no_grad()
def output_difference(trainer: Trainer) -> dict[str, float]:
    """Max |original - current| of the outputs on 500 validation graphs, same weights."""
    model = trainer.model.eval()
    batch = collate(trainer.data.val, torch.arange(min(500, len(trainer.data.val))))
    out: dict[str, float] = {}
    settings = [("equivariant-only", True)] + ([("full", False)] if model.relaxed_blocks() else [])
    for label, eq_only in settings:
        with model.equivariant_only(eq_only):
            with original_egnn():
                old = model(batch)
            new = model(batch)
        out[label] = float((old - new).abs().max())
        out[f"{label} (scale max|out|)"] = float(old.abs().max())
    return out


def _gradients(trainer: Trainer, forward: Any, batch: Any) -> list[torch.Tensor]:
    """The gradients of ``loss(forward(batch))`` w.r.t. every parameter of ``trainer.model`` (zeros
    where none), left cleared on the model."""
    model = trainer.model
    model.zero_grad()
    trainer.data.task.loss(forward(batch), batch).backward()
    grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    model.zero_grad()
    return grads


def _max_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def gradient_difference(trainer: Trainer) -> float:
    """Max |original - current| over the gradients of one training batch's loss, same weights."""
    model = trainer.model.train()
    batch = collate(trainer.data.train, torch.arange(100))
    grads = []
    for impl in IMPLS:
        with implementation(impl):
            grads.append(_gradients(trainer, model, batch))
    return _max_difference(*grads)


def compiled_differences(trainer: Trainer) -> dict[str, float]:
    """Max |compiled - eager| of the outputs on 500 validation graphs and of one training batch's
    gradients, same weights (``trainer.forward`` is the compiled model, ``trainer.model`` eager)."""
    model = trainer.model
    out: dict[str, float] = {}
    val = collate(trainer.data.val, torch.arange(min(500, len(trainer.data.val))))
    model.eval()
    settings = [("equivariant-only", True)] + ([("full", False)] if model.relaxed_blocks() else [])
    with torch.no_grad():
        for label, eq_only in settings:
            with model.equivariant_only(eq_only):
                out[label] = float((trainer.forward(val) - model(val)).abs().max())
    model.train()
    batch = collate(trainer.data.train, torch.arange(100))
    out["gradients"] = _max_difference(_gradients(trainer, trainer.forward, batch), _gradients(trainer, model, batch))
    return out


def one_pass_difference(trainer: Trainer) -> float:
    """Max |one pass - two passes| over the validation record (metrics of the equivariant-only and
    the full model): ``forward_both`` against one forward pass per model, same weights."""
    one = trainer.validate()
    both, trainer.forward_both = trainer.forward_both, None
    try:
        two = trainer.validate()
    finally:
        trainer.forward_both = both
    return max(abs(one[k] - two[k]) for k in one if k.startswith("val_"))


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_mode(mode: str, data: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    names = list(IMPLS) + (["compiled"] if args.compiled else [])
    keep = args.allocator == "keep"
    trainers = {impl: make_trainer(mode, data, out / f"{mode}-{impl}", impl == "compiled", keep) for impl in names}
    use_unfused_adam(trainers["original"])
    trainers["original"].forward_both = None  # the original validation: one pass per model
    first = trainers["original"]
    same_init = all(torch.equal(a, b) for t in trainers.values()
                    for a, b in zip(first.model.state_dict().values(), t.model.state_dict().values()))
    checks: dict[str, Any] = {"same initial weights": same_init, "output max abs diff": output_difference(first),
                              "gradient max abs diff": gradient_difference(first)}
    if "compiled" in trainers:
        checks["compiled"] = compiled_differences(trainers["compiled"])
    if mode == "equality":
        checks["one-pass validation"] = one_pass_difference(trainers["current"])
    authors = AuthorsRun(first) if args.reference and mode == "strict" else None
    # warm-up epoch (not timed); the trainers see the same batches from the same weights
    losses = {}
    for impl, trainer in trainers.items():
        with implementation(impl):
            losses[impl] = trainer_epoch(trainer)
            trainer.validate()
    checks["first-epoch train loss"] = losses
    checks["first-epoch loss rel diff"] = abs(losses["original"] - losses["current"]) / abs(losses["original"])
    if "compiled" in losses:
        checks["first-epoch loss rel diff, compiled"] = abs(losses["compiled"] - losses["current"]) / abs(losses["current"])
    if authors is not None:
        authors.epoch()
        authors.validate()
    samples: dict[str, dict[str, list[float]]] = {impl: {"epoch": [], "validate": []} for impl in trainers}
    if authors is not None:
        samples["reference"] = {"epoch": [], "validate": []}
    for r in range(args.rounds):
        order = list(samples) if r % 2 == 0 else list(samples)[::-1]
        for impl in order:
            if impl == "reference":
                assert authors is not None
                samples[impl]["epoch"].append(timed(authors.epoch))
                samples[impl]["validate"].append(timed(authors.validate))
                continue
            trainer = trainers[impl]
            with implementation(impl):
                samples[impl]["epoch"].append(timed(lambda: trainer_epoch(trainer)))
                samples[impl]["validate"].append(timed(trainer.validate))
    medians = {impl: {k: statistics.median(v) for k, v in s.items()} for impl, s in samples.items()}
    for m in medians.values():
        m["total"] = m["epoch"] + m["validate"]
    return {"checks": checks, "medians": medians, "samples": samples}


def print_mode(mode: str, result: dict[str, Any]) -> None:
    med = result["medians"]
    print(f"\n{mode}: one epoch (30 steps of 100 graphs) and one validation, median seconds over rounds")
    print(f"  {'implementation':30s} {'train epoch':>11s} {'validation':>10s} {'total':>8s} {'total / original':>17s}")
    for impl, m in med.items():
        print(f"  {LABELS[impl]:30s} {m['epoch']:11.3f} {m['validate']:10.3f} {m['total']:8.3f} "
              f"{m['total'] / med['original']['total']:17.3f}")
    o, c = med["original"], med["current"]
    print(f"  ratios current / original: train epoch {c['epoch'] / o['epoch']:.3f}, "
          f"validation {c['validate'] / o['validate']:.3f}, total {c['total'] / o['total']:.3f}")
    if "compiled" in med:
        k = med["compiled"]
        print(f"  ratios compiled / original: train epoch {k['epoch'] / o['epoch']:.3f}, "
              f"validation {k['validate'] / o['validate']:.3f}, total {k['total'] / o['total']:.3f}")
    if "reference" in med:
        print(f"  current strict / authors' EGNN_vel: train epoch {c['epoch'] / med['reference']['epoch']:.3f}, "
              f"validation {c['validate'] / med['reference']['validate']:.3f}, "
              f"total {c['total'] / med['reference']['total']:.3f}")
    ch = result["checks"]
    diffs = ", ".join(f"{k} {v:.2e}" for k, v in ch["output max abs diff"].items())
    print(f"  same weights -> outputs, max |original - current|: {diffs}")
    print(f"  same weights -> gradients of one batch, max |original - current|: {ch['gradient max abs diff']:.2e}")
    if "compiled" in ch:
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in ch["compiled"].items())
        print(f"  same weights, compiled vs eager current, max abs difference: {diffs}")
    if "one-pass validation" in ch:
        print(f"  validation of both models in one pass vs one pass each (current), max abs difference "
              f"of the metrics: {ch['one-pass validation']:.2e}")
    losses = ch["first-epoch train loss"]
    print(f"  first epoch from the same seed: train loss original {losses['original']:.6g}, current "
          f"{losses['current']:.6g} (relative difference {ch['first-epoch loss rel diff']:.1e})"
          + (f", compiled {losses['compiled']:.6g} (relative to current {ch['first-epoch loss rel diff, compiled']:.1e})"
             if "compiled" in losses else ""))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", nargs="+", default=["strict", "equality"], choices=["strict", "equality"])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per implementation (after one warm-up)")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip the authors' EGNN_vel row (strict table)")
    ap.add_argument("--no-compiled", dest="compiled", action="store_false",
                    help="skip the `train.compile` row (it needs a C++ compiler and compiles for about a minute)")
    ap.add_argument("--allocator", choices=["keep", "default"], default="keep",
                    help="keep: the trainer's default `train.keep_freed_memory` (glibc keeps freed memory); "
                    "default: the C library's own thresholds, for every row (run the script once with each)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers to this file")
    ap.add_argument("--record-dir", type=Path, default=None,
                    help="write the docs' records here (epoch-strict.json, epoch-equality.json)")
    return ap.parse_args(argv)


def write_record(folder: Path, argv: list[str], mode: str, result: dict[str, Any]) -> None:
    """The docs' table of one mode: median seconds per implementation and the ratio to the original."""
    from acezoo.benchmarking import bench_record, write_bench_record

    med, checks = result["medians"], result["checks"]
    rows = [[LABELS[impl], f"{m['epoch']:.3f}", f"{m['validate']:.3f}", f"{m['total']:.3f}",
             f"{m['total'] / med['original']['total']:.3f}"] for impl, m in med.items()]
    notes = ["Same weights, outputs max |original - current|: "
             + ", ".join(f"{k} {v:.2e}" for k, v in checks["output max abs diff"].items())
             + f"; gradients of one batch: {checks['gradient max abs diff']:.2e}."]
    if "compiled" in checks:
        notes.append("Compiled vs eager, max abs difference: "
                     + ", ".join(f"{k} {v:.2e}" for k, v in checks["compiled"].items()) + ".")
    folder.mkdir(parents=True, exist_ok=True)
    write_bench_record(folder / f"epoch-{mode}.json", bench_record(
        "scripts/bench_epoch.py", argv,
        ["implementation", "train epoch (s)", "validation (s)", "total (s)", "total / original"], rows, notes))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    print("acezoo epoch benchmark: EGNN (hidden 64, 4 layers) on charged N-body, 1 thread, CPU")
    print("  " + ", ".join(f"{k} {v}" for k, v in environment(torch.device("cpu")).items()))
    print(f"  allocator: {'train.keep_freed_memory (glibc keeps freed memory)' if args.allocator == 'keep' else 'C library defaults'}")
    config = load_config(ZOO / "egnn_nbody_strict.yaml")
    t0 = time.perf_counter()
    data = build_data(config)
    print(f"  data: {len(data.train)}/{len(data.val)}/{len(data.test)} graphs (built or loaded in "
          f"{time.perf_counter() - t0:.1f} s); {args.rounds} rounds, order alternating")
    report: dict[str, Any] = {"environment": environment(torch.device("cpu")), "rounds": args.rounds,
                              "allocator": args.allocator, "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            result = bench_mode(mode, data, args, Path(tmp))
            print_mode(mode, result)
            if args.record_dir is not None:
                write_record(args.record_dir, sys.argv[1:] if argv is None else argv, mode, result)
            report["modes"][mode] = result
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
