#!/usr/bin/env python
"""Benchmark: a training step of our SEGNN (strict and ACE) against our strict EGNN, and EGNO's.

N-body: one batch of 100 graphs x 5 nodes (the first 100 training graphs of the EGNN authors'
draw, the SEGNN configs' data), float32, one thread by default. Interleaved in the same rounds,
each contender's training step as the trainer runs it (zero_grad, forward, loss, backward, the
config's gradient clipping, fused Adam; every mode through the primal-dual engine, the dual step
included; :mod:`acezoo.training.optimisation`):

- EGNN, strict (``zoo_configs/egnn_nbody_strict.yaml``'s model);
- SEGNN, strict, fused kernels (``segnn_nbody_strict.yaml``);
- SEGNN, ACE (equality, the authors' branch: ``segnn_nbody_equality.yaml``);
- SEGNN, ACE with our bounded branch (``model.branch=bounded``), and with it 16 wide
  (``model.branch_hidden=16``, a quarter of the parameters): what a smaller branch costs;
- SEGNN, strict, e3nn's tensor products on the same parameters (``model.kernel=e3nn``);
- the authors' branch MLPs alone: the ACE model's eight branch MLPs on inputs of their width
  (one row per node), the same step (forward, a squared loss, backward, fused Adam). No implementation
  of the authors' ACE step can take less than the strict step plus this, so
  ``1 + (branch MLPs alone) / (SEGNN strict)`` bounds ACE / strict from below for that branch.

Targets (issue 32): SEGNN strict / EGNN strict <= 3; SEGNN ACE / SEGNN strict <= 1.3.
MoCap (when ``egno`` is registered): one batch of 12 training samples of the EGNO protocol,
EGNO strict and ACE (resilient, the config's) against the strict EGNN on the same 12 skeletons.

Before timing, it checks that the fused and e3nn kernels give the same outputs and gradients
(float64, the published size): the maximum absolute differences are printed.

    ACEZOO_HOME=/tmp/acehome python scripts/bench_segnn.py
    python scripts/bench_segnn.py --repeats 20 --json bench_segnn.json
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from acezoo import registry
from acezoo.benchmarking import (Row, Step, bench_record, environment, interleaved, print_ratios, print_stats, ratio_rows,
                                ratio_table, stats_table, synchronizer, write_bench_record)
from acezoo.archs.segnn import FlatBranch
from acezoo.compiler import RelaxedModel, compile_model
from acezoo.config.loader import load_config
from acezoo.training.allocator import keep_freed_memory
from acezoo.training.optimisation import build_engine, fused_default, gradient_clipper
from acezoo.training.trainer import build_data

ROOT = Path(__file__).resolve().parent.parent
NBODY_GRAPHS, MOCAP_SAMPLES = 100, 12


def config(name: str, *overrides: str) -> Any:
    return load_config(ROOT / "zoo_configs" / f"{name}.yaml", list(overrides))


def model_of(cfg: Any, seed: int, device: torch.device) -> RelaxedModel:
    torch.manual_seed(seed)
    return compile_model(cfg).to(device)


def step_of(cfg: Any, model: RelaxedModel, batch: Any, loss: Any) -> Step:
    """The trainer's training step of ``model`` under ``cfg``, in every mode (strict included): the
    primal-dual engine over Adam (fused where the device has it) and the config's gradient clipping."""
    engine = build_engine(model, cfg, total_steps=10_000)
    clip = gradient_clipper(model, cfg.train.grad_clip)
    return lambda: engine.step(lambda: loss(model(batch), batch), clip)


def branch_mlps_step(model: RelaxedModel, n_nodes: int, device: torch.device) -> Step:
    """A training step of ``model``'s branch MLPs alone (copies), on fixed random inputs of
    their widths, ``n_nodes`` rows each: the floor of what the branches add to a step."""
    mlps = nn.ModuleList([copy.deepcopy(m.mlp) for m in model.modules() if isinstance(m, FlatBranch)]).to(device)
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(n_nodes, mlp[0].in_features, generator=gen).to(device) for mlp in mlps]
    opt = torch.optim.Adam(mlps.parameters(), lr=1e-4, fused=fused_default(device))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        sum(mlp(x).square().mean() for mlp, x in zip(mlps, inputs)).backward()
        opt.step()

    return step


def first_batch(cfg: Any, n: int, device: torch.device) -> tuple[Any, Any]:
    bundle = build_data(cfg)
    batch = bundle.train.collate(list(range(n))).to(device)
    return batch, bundle.task.loss


def kernel_check(batch: Any) -> dict[str, float]:
    """Max |fused - e3nn| of the output and of every gradient, published size, float64."""
    for key in ("pos", "vel", "charge", "y"):
        batch[key] = batch[key].double()
    out = {}
    for mode in ("strict", "equality"):
        models = []
        for kernel in ("fused", "e3nn"):
            cfg = config(f"segnn_nbody_{'strict' if mode == 'strict' else 'equality'}", f"model.kernel={kernel}")
            models.append(model_of(cfg, 0, torch.device("cpu")).double())
        models[1].load_state_dict(models[0].state_dict())
        results = []
        for m in models:
            m.zero_grad()
            pred = m(batch)
            nn.functional.mse_loss(pred, batch.y).backward()
            results.append((pred.detach(), [p.grad.clone() for p in m.parameters() if p.grad is not None]))
        out[f"{mode}: output"] = float((results[0][0] - results[1][0]).abs().max())
        out[f"{mode}: gradients"] = max(float((a - b).abs().max()) for a, b in zip(results[0][1], results[1][1]))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    report: dict[str, Any] = {"environment": environment(device)}
    print("acezoo SEGNN / EGNO benchmark: training steps, float32, contenders interleaved (order rotating per round)")
    print("  " + ", ".join(f"{k} {v}" for k, v in report["environment"].items()))

    egnn_cfg = config("egnn_nbody_strict", "data.draw=egnn_small", "data.frame_in=31", "data.frame_out=41")
    cpu_batch, loss = first_batch(egnn_cfg, NBODY_GRAPHS, torch.device("cpu"))
    batch = cpu_batch.to(device)
    if not args.skip_check:
        check = kernel_check(cpu_batch.clone())
        print("\nFused vs e3nn kernels, same parameters, float64 (max absolute difference)")
        for k, v in check.items():
            print(f"  {k:28s} {v:.3e}")
        report["kernel_check"] = check

    contenders = {
        "EGNN, strict": egnn_cfg,
        "SEGNN, strict (fused)": config("segnn_nbody_strict"),
        "SEGNN, ACE (authors' branch)": config("segnn_nbody_equality"),
        "SEGNN, ACE (bounded branch)": config("segnn_nbody_equality", "model.branch=bounded"),
        "SEGNN, ACE (bounded branch, 16 wide)": config("segnn_nbody_equality", "model.branch=bounded",
                                                       "model.branch_hidden=16"),
        "SEGNN, strict (e3nn kernel)": config("segnn_nbody_strict", "model.kernel=e3nn"),
    }
    steps, params = {}, {}
    for label, cfg in contenders.items():
        model = model_of(cfg, args.seed, device)
        steps[label] = step_of(cfg, model, batch, loss)
        params[label] = model.parameter_counts()["full"]
        if label == "SEGNN, ACE (authors' branch)":
            floor = "SEGNN, authors' branch MLPs alone"
            steps[floor] = branch_mlps_step(model, batch.num_nodes, device)
            params[floor] = sum(p.numel() for m in model.modules() if isinstance(m, FlatBranch) for p in m.parameters())
    rows = [Row("SEGNN strict / EGNN strict", "SEGNN, strict (fused)", "EGNN, strict", "<= 3"),
            Row("SEGNN ACE (authors) / SEGNN strict", "SEGNN, ACE (authors' branch)", "SEGNN, strict (fused)", "<= 1.3"),
            Row("SEGNN ACE (bounded) / SEGNN strict", "SEGNN, ACE (bounded branch)", "SEGNN, strict (fused)", "<= 1.3"),
            Row("SEGNN ACE (bounded, 16 wide) / SEGNN strict", "SEGNN, ACE (bounded branch, 16 wide)",
                "SEGNN, strict (fused)", "info"),
            Row("authors' branch MLPs alone / SEGNN strict", "SEGNN, authors' branch MLPs alone",
                "SEGNN, strict (fused)", "info"),
            Row("SEGNN e3nn kernel / fused kernel", "SEGNN, strict (e3nn kernel)", "SEGNN, strict (fused)", "info")]

    if "egno" in registry.architectures() and not args.skip_egno:
        mocap = {"EGNN, strict (MoCap)": config("egnn_mocap_strict"),
                 "EGNO, strict": config("egno_mocap_strict"), "EGNO, ACE (resilient)": config("egno_mocap_resilient")}
        for label, cfg in mocap.items():
            mbatch, mloss = first_batch(cfg, MOCAP_SAMPLES, device)
            model = model_of(cfg, args.seed, device)
            steps[label] = step_of(cfg, model, mbatch, mloss)
            params[label] = model.parameter_counts()["full"]
        rows += [Row("EGNO strict / EGNN strict (MoCap)", "EGNO, strict", "EGNN, strict (MoCap)", "info"),
                 Row("EGNO ACE / EGNO strict", "EGNO, ACE (resilient)", "EGNO, strict", "info")]

    print("\nParameters (full model)")
    for label, n in params.items():
        print(f"  {label:38s} {n:9,d}")
    stats = interleaved(steps, args.repeats, args.warmup, args.min_sample_ms / 1e3, synchronizer(device))
    print_stats(f"Training step, per call (N-body: {NBODY_GRAPHS} graphs; MoCap: {MOCAP_SAMPLES} samples)", stats,
                width=38)
    entries = ratio_rows(rows, stats)
    print_ratios(entries, width=46)
    report.update(parameters=params, steps={k: v.summary() for k, v in stats.items()}, ratios=entries)
    return {**report, "stats": stats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's default)")
    ap.add_argument("--repeats", type=int, default=10, help="interleaved samples per contender")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-sample-ms", type=float, default=200.0, help="each sample times calls lasting at least this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-check", action="store_true", help="skip the fused-vs-e3nn check")
    ap.add_argument("--skip-egno", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--record-dir", type=Path, default=None,
                    help="write the docs' records here (segnn-kernels.json, segnn-steps.json, segnn-ratios.json)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the trainer does by default (train.keep_freed_memory)
    report = run(args)
    if args.json is not None:
        args.json.write_text(json.dumps({k: v for k, v in report.items() if k != "stats"}, indent=1))
        print(f"\nwrote {args.json}")
    if args.record_dir is not None:
        write_records(args.record_dir, report, sys.argv[1:] if argv is None else argv)
    return 0


def write_records(folder: Path, report: dict[str, Any], argv: list[str]) -> None:
    """The docs' tables of this run: kernel check, steps (with parameters) and ratios."""
    script = "scripts/bench_segnn.py"
    folder.mkdir(parents=True, exist_ok=True)
    if "kernel_check" in report:
        rows = [[k, f"{v:.3e}"] for k, v in report["kernel_check"].items()]
        write_bench_record(folder / "segnn-kernels.json", bench_record(
            script, argv, ["fused vs e3nn kernels, float64", "max absolute difference"], rows))
    stats = report["stats"]
    columns, rows = stats_table(stats, {k: {"parameters": f"{n:,}"} for k, n in report["parameters"].items()})
    write_bench_record(folder / "segnn-steps.json", bench_record(
        script, argv, columns, rows, [f"A training step per call (N-body: {NBODY_GRAPHS} graphs; MoCap: "
                                      f"{MOCAP_SAMPLES} samples), one thread, contenders interleaved."]))
    columns, rows = ratio_table(report["ratios"])
    write_bench_record(folder / "segnn-ratios.json", bench_record(script, argv, columns, rows))
    print(f"wrote the records to {folder}")


if __name__ == "__main__":
    sys.exit(main())
