#!/usr/bin/env python
"""Benchmark: our SE(3)-Transformer (e3nn) against ``se3-transformer-pytorch``, on the N-body shape.

One batch of 100 graphs x 5 nodes (fully connected, the first 100 training graphs of the
charged N-body split, float32). For each size (features of degree <= 1 and <= 2) it times,
interleaved in the same rounds, a training step (zero_grad, forward, MSE, backward, Adam):

- ours, strict (the equivariant network alone);
- ours, ACE (``equality`` mode through the primal-dual engine: relaxed layers, dual step);
- ours, strict, widened to at least the reference's parameter count (its radial networks
  are much larger than ours at the same channels, degrees, heads and depth);
- ``se3-transformer-pytorch``'s ``SE3Transformer`` (lucidrains) at the same channels per
  degree, degrees, heads and depth, fed the same inputs (``|v|`` as type 0, ``v`` as type 1,
  ``q_i q_j`` as an edge token, output ``x + type-1 head``). Installed for the benchmark only:
  ``pip install se3-transformer-pytorch``; without it those rows are skipped.

It prints parameter counts, per-step times, the ratios (target: ours >= 3x faster on CPU, i.e.
ours / theirs <= 0.33) and the peak memory of each contender's training steps: on CPU the
growth of the process's peak resident set (``VmHWM``) during 5 steps, measured in a fresh
subprocess per contender, from before the model is built (so it counts the model, optimiser
state, activations and caches); on CUDA ``torch.cuda.max_memory_allocated``.

    ACEZOO_HOME=/tmp/acehome python scripts/bench_se3.py
    python scripts/bench_se3.py --degrees 1 --repeats 5 --json bench_se3.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch_geometric.data import Batch

from acezoo.archs.se3_transformer import SE3TransformerSpec
from acezoo.benchmarking import (
    Row, bench_record, ratio_table, write_bench_record, Step, environment, interleaved, peak_rss_kib, peak_rss_reset, print_ratios, print_stats, ratio_rows,
    synchronizer,
)
from acezoo.benchmarking import plain_step as _plain_step
from acezoo.compiler import compile_model
from acezoo.config.constraints import ConstraintBudget
from acezoo.constraints.engine import PrimalDual
from acezoo.data.nbody import NBodySpec, build_nbody
from acezoo.data.tensor_graphs import GraphTensorDataset

N_GRAPHS, N_NODES = 100, 5
CHANNELS, HEADS, LAYERS = 16, 4, 3
LR = 1e-3
MEMORY_STEPS = 5


def make_batch(device: torch.device) -> Batch:
    train = cast(GraphTensorDataset, build_nbody(NBodySpec()).train)
    return train.collate(list(range(N_GRAPHS))).to(device)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def ours(degree: int, mode: str, seed: int, device: torch.device, channels: int = CHANNELS) -> nn.Module:
    torch.manual_seed(seed)
    spec = SE3TransformerSpec(channels=channels, heads=HEADS, layers=LAYERS, max_degree=degree)
    return compile_model(spec, ConstraintBudget(mode=mode)).to(device)


def matched_channels(degree: int, target_params: int) -> int:
    """The fewest channels per degree (a multiple of the heads) giving ours >= ``target_params``."""
    channels = CHANNELS
    while n_params(ours(degree, "strict", 0, torch.device("cpu"), channels)) < target_params:
        channels += HEADS * 4
    return channels


class TheirsOnNBody(nn.Module):
    """``se3_transformer_pytorch.SE3Transformer`` fed like ours: ``|v|`` (type 0) and ``v``
    (type 1) through per-channel embeddings, the edge token ``q_i q_j > 0``, output ``x + f_1``."""

    def __init__(self, degree: int) -> None:
        super().__init__()
        from se3_transformer_pytorch import SE3Transformer

        self.scalar_in = nn.Linear(1, CHANNELS)
        self.vector_in = nn.Parameter(torch.randn(CHANNELS))
        self.net = SE3Transformer(
            dim=CHANNELS, heads=HEADS, dim_head=CHANNELS // HEADS, depth=LAYERS, input_degrees=2,
            num_degrees=degree + 1, output_degrees=2, reduce_dim_out=True, attend_self=False,
            num_edge_tokens=2, edge_dim=4,
        )

    def forward(self, pos: torch.Tensor, vel: torch.Tensor, charge: torch.Tensor) -> torch.Tensor:
        feats = {"0": self.scalar_in(vel.norm(dim=-1, keepdim=True))[..., None],
                 "1": self.vector_in[:, None] * vel[..., None, :]}
        edges = ((charge * charge.transpose(1, 2)) > 0).long()  # (b, n, n)
        mask = torch.ones(pos.shape[:2], dtype=torch.bool, device=pos.device)
        return pos + self.net(feats, pos, mask, edges=edges, return_type=1)


def theirs(degree: int, seed: int, device: torch.device) -> nn.Module | str:
    torch.manual_seed(seed)
    try:
        return TheirsOnNBody(degree).to(device)
    except ImportError:
        return "se3-transformer-pytorch is not installed: pip install se3-transformer-pytorch (benchmark only)"


def dense(batch: Batch) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    d = lambda t: t.reshape(N_GRAPHS, N_NODES, -1)  # noqa: E731
    return (d(batch.pos), d(batch.vel), d(batch.charge)), d(batch.y)


def plain_step(model: nn.Module, inputs: tuple[Any, ...], target: torch.Tensor) -> Step:
    return _plain_step(model, inputs, target, torch.optim.Adam(model.parameters(), lr=LR))


def ace_step(model: nn.Module, batch: Batch) -> Step:
    engine = PrimalDual(model, ConstraintBudget(mode="equality"), lambda p: torch.optim.Adam(p, lr=LR),
                        total_steps=10_000)
    return lambda: engine.step(lambda: nn.functional.mse_loss(model(batch), batch.y))


def contender(name: str, degree: int, seed: int, device: torch.device, batch: Batch,
              wide: int = 0) -> tuple[Step, nn.Module] | str:
    """The training step of one contender (and its model), or why it is skipped."""
    if name in ("ours-strict", "ours-wide"):
        model = ours(degree, "strict", seed, device, wide if name == "ours-wide" else CHANNELS)
        return plain_step(model, (batch,), batch.y), model
    if name == "ours-ace":
        model = ours(degree, "equality", seed, device)
        return ace_step(model, batch), model
    ref = theirs(degree, seed, device)
    if isinstance(ref, str):
        return ref
    inputs, target = dense(batch)
    return plain_step(ref, inputs, target), ref


LABELS = {"ours-strict": "ours, strict", "ours-ace": "ours, ACE (equality, engine)",
          "theirs": "se3-transformer-pytorch", "ours-wide": "ours, strict, as many parameters"}


def probe_memory(name: str, degree: int, seed: int, device: torch.device, wide: int) -> dict[str, Any]:
    """Peak memory of building one contender and running ``MEMORY_STEPS`` training steps, in a
    fresh process: the model, its optimiser state, activations and any caches it builds."""
    batch = make_batch(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    elif not peak_rss_reset() or peak_rss_kib() is None:
        return {"skipped": "no /proc/self/clear_refs or VmHWM on this system"}
    before = peak_rss_kib() or 0
    made = contender(name, degree, seed, device, batch, wide)
    if isinstance(made, str):
        return {"skipped": made}
    step, _ = made
    for _ in range(MEMORY_STEPS):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return {"peak_mib": (torch.cuda.max_memory_allocated(device) - base) / 2**20, "how": "cuda max allocated"}
    return {"peak_mib": ((peak_rss_kib() or 0) - before) / 1024,
            "how": "growth of peak RSS: build + steps"}


def memory_table(degree: int, args: argparse.Namespace, wide: int) -> dict[str, dict[str, Any]]:
    out = {}
    for name in LABELS:
        if name == "ours-wide" and not wide:
            continue
        cmd = [sys.executable, __file__, "--probe", name, "--degrees", str(degree), "--device", args.device,
               "--threads", str(args.threads), "--seed", str(args.seed), "--wide", str(wide)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        out[name] = json.loads(lines[-1]) if proc.returncode == 0 and lines else {
            "skipped": f"probe failed: {proc.stderr.strip().splitlines()[-1:]}"}
    return out


def _print_memory(memory: dict[str, dict[str, Any]]) -> None:
    if not memory:
        return
    print(f"\nPeak memory: build + {MEMORY_STEPS} training steps (fresh process per contender)")
    for name, m in memory.items():
        value = f"{m['peak_mib']:9.1f} MiB  ({m['how']})" if "peak_mib" in m else f"skipped: {m['skipped']}"
        print(f"  {LABELS[name]:46s} {value}")
    if "peak_mib" in memory.get("ours-strict", {}) and "peak_mib" in memory.get("theirs", {}):
        ratio = memory["ours-strict"]["peak_mib"] / max(memory["theirs"]["peak_mib"], 1e-9)
        print(f"  ours strict / se3-transformer-pytorch: {ratio:.3f}")


def run_degree(degree: int, args: argparse.Namespace, device: torch.device, batch: Batch) -> dict[str, Any]:
    print(f"\n=== features of degree <= {degree}: {CHANNELS} channels per degree, {HEADS} heads, {LAYERS} layers ===")
    steps, counts, skipped = {}, {}, {}
    wide = 0
    for name in LABELS:
        if name == "ours-wide":
            if "theirs" in skipped or args.no_wide:
                continue
            wide = matched_channels(degree, counts[LABELS["theirs"]])
            LABELS[name] = f"ours, strict, {wide} channels (>= their params)"
        made = contender(name, degree, args.seed, device, batch, wide)
        if isinstance(made, str):
            skipped[name] = made
            continue
        steps[LABELS[name]], model = made
        counts[LABELS[name]] = n_params(model)
        if name == "ours-ace":
            counts["ours, ACE pruned"] = n_params(cast(Any, model).prune())
    print("Parameters")
    for label, count in counts.items():
        print(f"  {label:46s} {count:9,d}")
    if args.memory_only:
        memory = memory_table(degree, args, wide)
        _print_memory(memory)
        return {"parameters": counts, "memory": memory}
    stats = interleaved(steps, args.repeats, args.warmup, args.min_sample_ms / 1e3, synchronizer(device))
    print_stats("Training step (forward + backward + optimiser), per call", stats, width=46)
    rows = [Row(f"deg<={degree}: ours strict / se3-transformer-pytorch", LABELS["ours-strict"], LABELS["theirs"],
                "<= 0.33", skipped.get("theirs", "")),
            Row(f"deg<={degree}: ours ACE / se3-transformer-pytorch", LABELS["ours-ace"], LABELS["theirs"],
                "info", skipped.get("theirs", "")),
            Row(f"deg<={degree}: ours ACE / ours strict", LABELS["ours-ace"], LABELS["ours-strict"], "info")]
    if wide:
        rows.append(Row(f"deg<={degree}: ours {wide} channels / se3-transformer-pytorch", LABELS["ours-wide"],
                        LABELS["theirs"], "info"))
    entries = ratio_rows(rows, stats)
    print_ratios(entries, width=52)
    memory = memory_table(degree, args, wide) if not args.skip_memory else {}
    _print_memory(memory)
    return {"parameters": counts, "steps": {k: v.summary() for k, v in stats.items()}, "ratios": entries,
            "memory": memory, "skipped": skipped}


def write_records(folder: Path, argv: list[str], degrees: dict[int, dict[str, Any]]) -> None:
    """The docs' tables of this run: per degree and contender the parameters, the step time and the
    peak memory; the ratios of every degree."""
    script = "scripts/bench_se3.py"
    folder.mkdir(parents=True, exist_ok=True)
    rows, ratios = [], []
    for degree, result in degrees.items():
        by_label = {label: name for name, label in LABELS.items()}
        for label, count in result["parameters"].items():
            step = result.get("steps", {}).get(label)
            name = by_label.get(label) or ("ours-wide" if "channels (>=" in label else "")
            memory = result.get("memory", {}).get(name, {})
            rows.append([f"<= {degree}", label, f"{count:,}", f"{step['median_s'] * 1e3:.1f}" if step else "-",
                         f"{memory['peak_mib']:.0f}" if "peak_mib" in memory else "-"])
        ratios += ratio_table(result.get("ratios", []))[1]
    write_bench_record(folder / "se3t-steps.json", bench_record(
        script, argv, ["degrees", "contender", "parameters", "step, median (ms)", "peak memory (MiB)"], rows,
        [f"A training step (forward, backward, Adam) on one batch of {N_GRAPHS} N-body graphs of {N_NODES} nodes; "
         f"peak memory of a fresh process building the model and taking {MEMORY_STEPS} steps."]))
    write_bench_record(folder / "se3t-ratios.json", bench_record(script, argv, ratio_table([])[0], ratios))
    print(f"wrote the records to {folder}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--degrees", nargs="+", type=int, default=[1, 2], help="largest feature degrees to compare")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=10, help="interleaved samples per contender")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-sample-ms", type=float, default=0.0, help="each sample times calls lasting at least this")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory table")
    ap.add_argument("--no-wide", action="store_true", help="skip ours at their parameter count")
    ap.add_argument("--wide", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--record-dir", type=Path, default=None,
                    help="write the docs' records here (se3t-steps.json, se3t-ratios.json)")
    ap.add_argument("--probe", choices=list(LABELS), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")  # the reference warns about deprecated torch APIs on every call
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.probe:
        print(json.dumps(probe_memory(args.probe, args.degrees[0], args.seed, device, args.wide)))
        return 0
    env = environment(device)
    print(f"acezoo SE(3)-Transformer benchmark: batch of {N_GRAPHS} graphs x {N_NODES} nodes (N-body), float32")
    print("  " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(f"  repeats {args.repeats}, warmup {args.warmup}; contenders interleaved, order rotating per round")
    batch = make_batch(device)
    report = {"environment": env, "degrees": {d: run_degree(d, args, device, batch) for d in args.degrees}}
    if args.record_dir is not None:
        write_records(args.record_dir, sys.argv[1:] if argv is None else argv, report["degrees"])
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
