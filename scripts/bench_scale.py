#!/usr/bin/env python
"""Benchmark: training throughput (graphs/s) at scale, printed as ratios from one run.

1. Data parallel on CPU: the ACE EGNN on charged N-body (global batch 100, equality mode),
   1 process vs ``--procs`` processes launched with ``torchrun`` (gloo), each doing the
   trainer's step: its shard of the global batch, forward, backward, weighted gradient
   all-reduce, primal and dual step. Each process uses ``--threads`` threads, so on a machine
   with fewer cores than ``procs x threads`` the processes compete (the script says so).
2. On a GPU (when CUDA is available): fp32 eager vs bf16 autocast vs ``torch.compile`` vs
   both, interleaved in the same rounds. Skipped, with the reason, otherwise.

    ACEZOO_HOME=/tmp/acehome python scripts/bench_scale.py
    python scripts/bench_scale.py --procs 4 --steps 200
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any

import torch
from torch import nn

from acezoo.archs.egnn import EGNNSpec
from acezoo.benchmarking import Row, environment, interleaved, print_ratios, print_stats, ratio_rows, synchronizer
from acezoo.compiler import compile_model
from acezoo.config.constraints import ConstraintBudget
from acezoo.constraints.engine import PrimalDual
from acezoo.data.nbody import NBodySpec, build_nbody
from acezoo.training.distributed import init_from_env, shard

GLOBAL_BATCH = 100


def _engine(device: torch.device, compiled: bool = False) -> tuple[nn.Module, PrimalDual, Any]:
    torch.manual_seed(0)
    model = compile_model(EGNNSpec(), ConstraintBudget(mode="equality")).to(device)
    engine = PrimalDual(model, ConstraintBudget(mode="equality"), lambda g: torch.optim.Adam(g, lr=5e-4),
                        total_steps=10_000)
    forward = torch.compile(model) if compiled else model
    return model, engine, forward


def worker(args: argparse.Namespace) -> None:
    """One rank of the data-parallel measurement (run under torchrun)."""
    torch.set_num_threads(args.threads)
    ctx = init_from_env(prefer_cuda=False)
    train = build_nbody(NBodySpec()).train
    model, engine, forward = _engine(torch.device("cpu"))
    params = [p for p in model.parameters() if p.requires_grad] + [engine.slack]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    batches = [order[i:i + GLOBAL_BATCH] for i in range(0, len(order) - GLOBAL_BATCH + 1, GLOBAL_BATCH)]

    def step(i: int) -> None:
        idx = batches[i % len(batches)]
        local = shard(idx, ctx)
        batch = train.collate(local)
        hook = (lambda: ctx.sync_gradients(params, len(local), len(idx))) if ctx.enabled else None
        engine.step(lambda: nn.functional.mse_loss(forward(batch), batch.y), hook)

    for i in range(args.warmup):
        step(i)
    ctx.barrier()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    ctx.barrier()
    elapsed = time.perf_counter() - t0
    if ctx.is_main:
        print(json.dumps({"procs": ctx.world_size, "graphs_per_s": args.steps * GLOBAL_BATCH / elapsed,
                          "step_ms": 1e3 * elapsed / args.steps}))
    ctx.close()


def data_parallel(args: argparse.Namespace) -> dict[int, dict[str, float]]:
    out = {}
    for procs in (1, args.procs):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs),
               __file__, "--worker", "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise SystemExit(f"torchrun with {procs} processes failed:\n{proc.stderr[-2000:]}")
        out[procs] = json.loads(lines[-1])
    return out


def gpu_variants(args: argparse.Namespace) -> dict[str, Any] | str:
    if not torch.cuda.is_available():
        return "no CUDA device on this machine"
    device = torch.device("cuda")
    batch = build_nbody(NBodySpec()).train.collate(list(range(GLOBAL_BATCH))).to(device)
    steps = {}
    for name, amp, compiled in (("fp32 eager", False, False), ("bf16 eager", True, False),
                                ("fp32 compiled", False, True), ("bf16 compiled", True, True)):
        _, engine, forward = _engine(device, compiled)
        ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

        def step(engine: PrimalDual = engine, forward: Any = forward, ctx: Any = ctx) -> None:
            def loss() -> torch.Tensor:
                with ctx():
                    pred = forward(batch)
                return nn.functional.mse_loss(pred.float(), batch.y)
            engine.step(loss)

        steps[name] = step
    stats = interleaved(steps, args.repeats, args.warmup, 0.05, synchronizer(device))
    print_stats(f"GPU training step ({torch.cuda.get_device_name(device)}), per call", stats)
    rows = [Row("GPU: bf16 / fp32 (eager)", "bf16 eager", "fp32 eager", "info"),
            Row("GPU: compiled / eager (fp32)", "fp32 compiled", "fp32 eager", "info"),
            Row("GPU: bf16 compiled / fp32 eager", "bf16 compiled", "fp32 eager", "info")]
    entries = ratio_rows(rows, stats)
    print_ratios(entries)
    return {"steps": {k: v.summary() for k, v in stats.items()}, "ratios": entries}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=2, help="processes of the data-parallel run (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20, help="GPU: interleaved samples per variant")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    torch.set_num_threads(args.threads)  # as in every worker process
    env = environment(torch.device("cpu"))
    print(f"acezoo scale benchmark: ACE EGNN (hidden 64, 4 layers, equality), charged N-body, global batch {GLOBAL_BATCH}")
    print("  " + ", ".join(f"{k} {v}" for k, v in env.items()))
    cores = os.cpu_count() or 1
    if args.procs * args.threads > cores:
        print(f"  note: {args.procs} processes x {args.threads} threads > {cores} cores: the processes compete")
    dp = data_parallel(args)
    print(f"\nData parallel on CPU (torchrun, gloo), {args.steps} timed steps after {args.warmup} warm-up")
    for procs, r in dp.items():
        print(f"  {procs} process{'es' if procs > 1 else ''}: {r['graphs_per_s']:8.1f} graphs/s  ({r['step_ms']:.1f} ms/step)")
    print(f"  throughput {args.procs} / 1 processes: {dp[args.procs]['graphs_per_s'] / dp[1]['graphs_per_s']:.3f}")
    gpu = gpu_variants(args)
    if isinstance(gpu, str):
        print(f"\nGPU variants (AMP, compile): skipped ({gpu})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "data_parallel": dp, "gpu": gpu}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
