#!/usr/bin/env python
"""Benchmark: what ACE costs on the group CNN, and what the group structure costs over a plain CNN.

On one batch of the ``advection_2d`` task (50 fields of 17 x 17, the ``gcnn_advection_*``
model: p4, 8 channels per group element, 3 layers, 5 x 5 filters, dense head), interleaved in
the same rounds:

1. training step: ACE (``equality`` mode through the primal-dual engine: relaxed layers with
   their ordinary-conv branches, dual step) vs strict through the same engine; target <= 1.3;
2. inference under ``torch.no_grad()``: the pruned ACE model vs a strict model with the same
   weights; target <= 1.05;
3. the strict p4 model's training step (bare Adam loop) vs a plain CNN (ordinary ``Conv2d``,
   batch norm, ReLU, same depth, filters and head) with at least as many parameters.

Nothing is asserted; ratios of medians are printed. Threads: 1 by default.

    ACEZOO_HOME=/tmp/acehome python scripts/bench_gcnn.py
    python scripts/bench_gcnn.py --group D4 --repeats 30
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from acezoo.archs.gcnn import GCNNSpec
from acezoo.benchmarking import (
    Row, bench_record, ratio_table, stats_table, write_bench_record, Step, environment, inference_step, interleaved, print_ratios, print_stats, ratio_rows, synchronizer,
)
from acezoo.benchmarking import plain_step as _plain_step
from acezoo.compiler import RelaxedModel, compile_model
from acezoo.config.constraints import ConstraintBudget
from acezoo.constraints.engine import PrimalDual
from acezoo.data.advection import AdvectionSpec, build_advection
from acezoo.data.images import ImageBatch

BATCH, CHANNELS, LAYERS, KERNEL = 50, 8, 3, 5
LR = 3e-3


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def make_batch(device: torch.device) -> ImageBatch:
    data = build_advection(AdvectionSpec(wind=(1.0, 0.5)))
    return data.train.collate(list(range(BATCH))).to(device)


def spec(group: str) -> GCNNSpec:
    return GCNNSpec(group=group, channels=CHANNELS, layers=LAYERS, kernel_size=KERNEL, head="dense")


def build(group: str, mode: str, seed: int, device: torch.device) -> RelaxedModel:
    torch.manual_seed(seed)
    return compile_model(spec(group), ConstraintBudget(mode=mode)).to(device)


class PlainCNN(nn.Module):
    """Ordinary convolutions with the GCNN's depth, filter size, batch norm, ReLU and residual head."""

    def __init__(self, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(LAYERS):
            layers += [nn.Conv2d(c_in, width, KERNEL, padding=KERNEL // 2), nn.BatchNorm2d(width), nn.ReLU()]
            c_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 1, KERNEL, padding=KERNEL // 2)

    def forward(self, batch: ImageBatch) -> torch.Tensor:
        return batch.x + self.head(self.body(batch.x))


def matched_plain(target: int) -> PlainCNN:
    width = 1
    while n_params(PlainCNN(width)) < target:
        width += 1
    return PlainCNN(width)


def engine_step(model: RelaxedModel, mode: str, batch: ImageBatch) -> Step:
    engine = PrimalDual(model, ConstraintBudget(mode=mode), lambda p: torch.optim.Adam(p, lr=LR), total_steps=10_000)
    return lambda: engine.step(lambda: nn.functional.mse_loss(model(batch), batch.y))


def plain_step(model: nn.Module, batch: ImageBatch) -> Step:
    return _plain_step(model, (batch,), batch.y, torch.optim.Adam(model.parameters(), lr=LR))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", default="C4", choices=["C4", "D4"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--min-sample-ms", type=float, default=50.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--record-dir", type=Path, default=None,
                    help="write the docs' records here (gcnn-steps.json, gcnn-ratios.json)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    env = environment(device)
    name = {"C4": "p4", "D4": "p4m"}[args.group]
    print(f"acezoo GCNN benchmark: {name}, {CHANNELS} channels per group element, {LAYERS} layers, {KERNEL}x{KERNEL} "
          f"filters, dense head; batch of {BATCH} advection fields 17x17, float32")
    print("  " + ", ".join(f"{k} {v}" for k, v in env.items()))
    batch = make_batch(device)
    sync = synchronizer(device)

    ace, strict, strict_plain = (build(args.group, m, args.seed, device) for m in ("equality", "strict", "strict"))
    plain = matched_plain(n_params(strict)).to(device)
    counts = {f"strict {name}": n_params(strict), f"ACE {name} (full)": n_params(ace),
              f"ACE {name} pruned": n_params(ace.prune()), f"plain CNN ({plain.head.in_channels} channels)": n_params(plain)}
    print("\nParameters")
    for label, count in counts.items():
        print(f"  {label:40s} {count:9,d}")
    train = interleaved({
        "ACE step (equality, engine)": engine_step(ace, "equality", batch),
        "strict step (engine)": engine_step(strict, "strict", batch),
        f"strict {name} step (bare Adam loop)": plain_step(strict_plain, batch),
        "plain CNN step (bare Adam loop)": plain_step(plain, batch),
    }, args.repeats, args.warmup, args.min_sample_ms / 1e3, sync)
    print_stats("Training step (forward + backward + optimiser), per call", train, width=44)

    pruned = ace.prune().eval()
    twin = build(args.group, "strict", args.seed + 1, device).eval()
    twin.net.load_state_dict(pruned.state_dict())
    with torch.no_grad():
        diff = float((pruned(batch) - twin(batch)).abs().max())
    infer = interleaved({"pruned inference": inference_step(pruned, batch), "strict inference": inference_step(twin, batch)},
                        args.repeats, args.warmup, args.min_sample_ms / 1e3, sync)
    print_stats("Inference under torch.no_grad(), per call", infer, width=44)
    print(f"  (pruned and strict models share weights; max |output difference| = {diff:.2e})")

    entries = ratio_rows([
        Row("training: ACE / strict (same engine)", "ACE step (equality, engine)", "strict step (engine)", "<= 1.3"),
        Row(f"training: strict {name} / plain CNN (>= params)", f"strict {name} step (bare Adam loop)",
            "plain CNN step (bare Adam loop)", "info"),
    ], train) + ratio_rows([Row("inference: pruned / strict (no_grad)", "pruned inference", "strict inference",
                                "<= 1.05")], infer)
    print_ratios(entries)
    if args.record_dir is not None:
        script, given = "scripts/bench_gcnn.py", sys.argv[1:] if argv is None else argv
        args.record_dir.mkdir(parents=True, exist_ok=True)
        columns, rows = stats_table({**{f"training: {k}": v for k, v in train.items()},
                                     **{f"inference: {k}": v for k, v in infer.items()}})
        write_bench_record(args.record_dir / "gcnn-steps.json", bench_record(
            script, given, columns, rows, ["Parameters: " + "; ".join(f"{k} {v:,}" for k, v in counts.items()) + "."]))
        columns, rows = ratio_table(entries)
        write_bench_record(args.record_dir / "gcnn-ratios.json", bench_record(script, given, columns, rows))
        print(f"wrote the records to {args.record_dir}")
    if args.json is not None:
        report: dict[str, Any] = {"environment": env, "parameters": counts, "ratios": entries,
                                  "training": {k: v.summary() for k, v in train.items()},
                                  "inference": {k: v.summary() for k, v in infer.items()}}
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
