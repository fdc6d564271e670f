#!/usr/bin/env python
"""Overhead benchmark: what ACE costs over a strict EGNN, on the charged N-body shape.

Measures, in one run, on one batch of 100 graphs x 5 nodes (fully connected, float32):

1. training step: ACE (``equality`` mode, relaxed EGNN, a full ``PrimalDual.step``: forward,
   backward, primal Adam step, dual step) vs the strict EGNN through the same engine (a plain
   Adam step); target ratio <= 1.3. Two reference contenders are timed in the same interleaved
   rounds: the strict EGNN in a bare ``zero_grad/forward/backward/Adam`` loop (the engine's own
   cost) and ``egnn-pytorch``'s ``EGNN_Network`` at the same width and depth (target: ours not
   slower). ``egnn-pytorch`` is optional and never a dependency of acezoo:
   ``pip install egnn-pytorch``; without it that row is skipped.
2. inference under ``torch.no_grad()``: the pruned model (``RelaxedModel.prune()``) vs the
   strict model with the same weights; target ratio <= 1.05.
3. N-body generation: ``simulate`` for 7000 trajectories (3000/2000/2000, frames 30 and 40,
   not the cache) vs a plain per-trajectory loop of ``integrate`` on a few trajectories.

Threads: 1 by default (``--threads 0`` keeps torch's default). On a small shared machine,
torch's OpenMP threads spin-wait for each other; when another multi-threaded process holds
a core, a 2-thread step can take tens of times longer than a 1-thread one. If you time with
several threads next to other work, set ``OMP_WAIT_POLICY=PASSIVE``.

Method: contenders run interleaved (the order rotates every round, so each takes each
position equally often); each sample is the mean time per call over enough calls to last
``--min-sample-ms``; the table gives the median and interquartile range per contender and
the ratio of medians. Nothing is asserted; the exit code is 0.

    ACEZOO_HOME=/tmp/acehome python scripts/bench_overhead.py
    python scripts/bench_overhead.py --repeats 50 --json bench.json
    python scripts/bench_overhead.py --device cuda --threads 0 --skip-gen
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch_geometric.data import Batch

from acezoo.archs.egnn import EGNNSpec
from acezoo.benchmarking import (
    Row, bench_record, ratio_table, stats_table, write_bench_record, Stats, Step, environment, inference_step, interleaved, print_ratios, print_stats, ratio_rows,
    synchronizer as _synchronizer,
)
from acezoo.benchmarking import plain_step as _plain_step
from acezoo.compiler import RelaxedModel, compile_model
from acezoo.config.constraints import ConstraintBudget
from acezoo.constraints.engine import PrimalDual
from acezoo.data.graphs import fully_connected_edge_index
from acezoo.data.nbody import NBodySpec, build_nbody
from acezoo.data.nbody_sim import NBodyParams, integrate, sample_initial_conditions, simulate
from acezoo.data.tensor_graphs import GraphTensorDataset

HIDDEN, LAYERS = 64, 4
N_GRAPHS, N_NODES = 100, 5
LR, WEIGHT_DECAY = 5e-4, 1e-12  # the N-body config's optimiser settings
SPLITS = {"train": 3000, "val": 2000, "test": 2000}
FRAMES = (30, 40)
NAIVE_ESTIMATE_S = 0.16  # the quoted per-trajectory cost of a naive simulation loop

REF_NOTE = """\
  ours vs egnn-pytorch (same dim 64, depth 4, input embedding, edge input q_i q_j, loss, Adam):
    their MLP widths are fixed multiples of dim: edge 130->260->64, node 128->128->64, coordinate
    64->256->1 (ours 130->64->64, 128->64->64, 64->64->1); EGNN_Network adds a LayerNorm on the
    features; dense 5x5 pairs per graph (i = j included) vs our 20 edges; ours adds the velocity
    term phi_v(h_i) v_i and averages coordinate messages (theirs sums)."""


# -- models and data ----------------------------------------------------------------------
def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=LR, weight_decay=WEIGHT_DECAY)


def make_batch(device: torch.device) -> Batch:
    """The first 100 training graphs of the standard charged N-body split (the data cache;
    simulated on first use)."""
    train = cast(GraphTensorDataset, build_nbody(NBodySpec()).train)
    return train.collate(list(range(N_GRAPHS))).to(device)


def build(mode: str, seed: int, device: torch.device) -> RelaxedModel:
    torch.manual_seed(seed)
    return compile_model(EGNNSpec(hidden=HIDDEN, layers=LAYERS), ConstraintBudget(mode=mode)).to(device)


def engine_step(model: RelaxedModel, mode: str, batch: Batch) -> Step:
    """One ``PrimalDual.step`` on the batch's MSE (equality: ACE; strict: a plain Adam step)."""
    engine = PrimalDual(model, ConstraintBudget(mode=mode), adam, total_steps=10_000)
    loss_fn = lambda: nn.functional.mse_loss(model(batch), batch.y)  # noqa: E731
    return lambda: engine.step(loss_fn)


def plain_step(model: nn.Module, inputs: tuple[Any, ...], target: torch.Tensor) -> Step:
    """A bare training step: zero_grad, forward, MSE, backward, Adam."""
    return _plain_step(model, inputs, target, adam(model.parameters()))


class DenseEGNNRef(nn.Module):
    """``egnn_pytorch.EGNN_Network`` fed like our EGNN: node input ``|v|`` through a
    ``Linear(1, dim)`` embedding, edge input ``q_i q_j``, output the coordinates."""

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__()
        from egnn_pytorch import EGNN_Network

        self.embed = nn.Linear(1, dim)
        # fully connected (no neighbour selection), messages as wide as ours (m_dim = hidden),
        # sum-pooled messages as in our phi_h; EGNN_Network always adds a LayerNorm on features
        self.net = EGNN_Network(depth=depth, dim=dim, edge_dim=1, m_dim=dim, num_nearest_neighbors=0)

    def forward(self, pos: torch.Tensor, vel: torch.Tensor, charge: torch.Tensor) -> torch.Tensor:
        feats = self.embed(vel.norm(dim=-1, keepdim=True))  # (b, n, dim)
        edges = charge.unsqueeze(2) * charge.unsqueeze(1)  # (b, n, n, 1)
        _, coors = self.net(feats, pos, edges=edges)
        return coors


def egnn_pytorch_step(batch: Batch, seed: int, device: torch.device) -> tuple[Step, nn.Module] | str:
    """The reference's training step on the dense form of ``batch``, or why it is skipped."""
    torch.manual_seed(seed)
    try:
        ref = DenseEGNNRef(HIDDEN, LAYERS).to(device)
    except ImportError:
        return "egnn-pytorch is not installed; for this row: pip install egnn-pytorch (benchmark only)"
    dense = lambda t: t.reshape(N_GRAPHS, N_NODES, -1)  # noqa: E731
    inputs = (dense(batch.pos), dense(batch.vel), dense(batch.charge))
    return plain_step(ref, inputs, dense(batch.y)), ref


# -- the three comparisons ----------------------------------------------------------------
def bench_training(
    batch: Batch, args: argparse.Namespace, device: torch.device
) -> tuple[dict[str, Stats], list[Row], dict[str, int]]:
    """ACE and strict through the engine, strict in a bare loop, and egnn-pytorch if installed."""
    ace = build("equality", args.seed, device)
    strict = build("strict", args.seed, device)
    strict_plain = build("strict", args.seed, device)
    contenders: dict[str, Step] = {
        "ACE step (equality, engine)": engine_step(ace, "equality", batch),
        "strict step (engine)": engine_step(strict, "strict", batch),
        "strict step (bare Adam loop)": plain_step(strict_plain, (batch,), batch.y),
    }
    counts = {"strict EGNN": n_params(strict), "ACE EGNN (full, with branches and gammas)": n_params(ace),
              "ACE EGNN pruned": n_params(ace.prune())}
    ref = egnn_pytorch_step(batch, args.seed, device)
    rows = [
        Row("training: ACE / strict (same engine)", "ACE step (equality, engine)", "strict step (engine)", "<= 1.3"),
        Row("training: strict engine / bare Adam loop", "strict step (engine)", "strict step (bare Adam loop)", "info"),
    ]
    ours_vs_ref = Row("training: ours (strict, bare) / egnn-pytorch", "strict step (bare Adam loop)",
                      "egnn-pytorch EGNN_Network step", "<= 1.0")
    if isinstance(ref, str):
        ours_vs_ref.skipped = ref
    else:
        contenders["egnn-pytorch EGNN_Network step"] = ref[0]
        counts["egnn-pytorch EGNN_Network (+ Linear(1, 64) embedding)"] = n_params(ref[1])
    rows.append(ours_vs_ref)
    sync = _synchronizer(device)
    return interleaved(contenders, args.repeats, args.warmup, args.min_sample_ms / 1e3, sync), rows, counts


def bench_inference(
    batch: Batch, args: argparse.Namespace, device: torch.device
) -> tuple[dict[str, Stats], list[Row], float]:
    """The pruned ACE model vs a strict model loaded with the same weights, under no_grad."""
    ace = build("equality", args.seed, device)
    pruned = ace.prune().eval()
    strict = build("strict", args.seed + 1, device).eval()
    strict.net.load_state_dict(pruned.state_dict())  # same weights: outputs must agree
    with torch.no_grad():
        diff = float((pruned(batch) - strict(batch)).abs().max())
    contenders = {"pruned inference": inference_step(pruned, batch), "strict inference": inference_step(strict, batch)}
    stats = interleaved(contenders, args.repeats, args.warmup, args.min_sample_ms / 1e3, _synchronizer(device))
    return stats, [Row("inference: pruned / strict (no_grad)", "pruned inference", "strict inference", "<= 1.05")], diff


def split_seed(split: str, data_seed: int = 0) -> int:
    return data_seed * 1000 + {"train": 1, "val": 2, "test": 3}[split]


def generate_all() -> None:
    """The three N-body splits through ``simulate`` (as the data set builds them, no cache)."""
    for split, n in SPLITS.items():
        simulate(n, seed=split_seed(split), params=NBodyParams(), frames=FRAMES)


def naive_loop(n_traj: int, seed: int) -> None:
    """``integrate`` called on one trajectory at a time."""
    pos0, vel0, charge = sample_initial_conditions(n_traj, seed, NBodyParams())
    for i in range(n_traj):
        integrate(pos0[i : i + 1], vel0[i : i + 1], charge[i : i + 1], NBodyParams(), frames=FRAMES)


def bench_generation(args: argparse.Namespace) -> dict[str, Any]:
    """Batched 7000-trajectory generation and the naive loop, alternating, per trajectory."""
    total = sum(SPLITS.values())
    per_round = max(1, args.naive_traj // args.gen_repeats)
    batched, naive = Stats(), Stats()
    for r in range(args.gen_repeats):
        jobs: list[tuple[Stats, Step, int]] = [
            (batched, generate_all, total),
            (naive, lambda: naive_loop(per_round, seed=10_000 + r), per_round),  # new trajectories each round
        ]
        for stats, job, n_traj in jobs if r % 2 == 0 else jobs[::-1]:
            t0 = time.perf_counter()
            job()
            stats.samples.append((time.perf_counter() - t0) / n_traj)
    return {
        "n_traj": total,
        "batched_total_s": batched.median * total,
        "batched_per_traj": batched.summary(),
        "naive_per_traj": naive.summary(),
        "naive_traj_timed": per_round * args.gen_repeats,
        "naive_total_estimate_s": naive.median * total,
        "quoted_estimate_s": NAIVE_ESTIMATE_S * total,
    }


# -- report -------------------------------------------------------------------------------
def print_generation(gen: dict[str, Any]) -> None:
    b, n = gen["batched_per_traj"], gen["naive_per_traj"]
    print("\nN-body generation (simulate, 3000/2000/2000 trajectories, frames 30 and 40, no cache)")
    print(f"  batched simulate, 7000 trajectories: {gen['batched_total_s']:.2f} s "
          f"({b['median_s'] * 1e3:.3f} ms/trajectory, {b['n']} runs)")
    print(f"  naive loop (integrate one trajectory at a time), {gen['naive_traj_timed']} trajectories: "
          f"{n['median_s']:.3f} s/trajectory (IQR {n['q1_s']:.3f} - {n['q3_s']:.3f}) "
          f"-> {gen['naive_total_estimate_s']:.0f} s for 7000")
    print(f"  speed-up over the measured naive loop: x{gen['naive_total_estimate_s'] / gen['batched_total_s']:.0f}; "
          f"over the quoted 7000 x {NAIVE_ESTIMATE_S} s = {gen['quoted_estimate_s']:.0f} s: "
          f"x{gen['quoted_estimate_s'] / gen['batched_total_s']:.0f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="torch device (default cpu)")
    ap.add_argument("--repeats", type=int, default=50, help="interleaved samples per contender")
    ap.add_argument("--warmup", type=int, default=10, help="untimed calls per contender first")
    ap.add_argument("--min-sample-ms", type=float, default=50.0, help="each sample times calls lasting at least this")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gen-repeats", type=int, default=2, help="rounds of (batched 7000, naive chunk) generation")
    ap.add_argument("--naive-traj", type=int, default=50, help="trajectories of the naive loop, over all rounds")
    ap.add_argument("--skip-gen", action="store_true", help="skip the N-body generation benchmark")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers to this file")
    ap.add_argument("--record-dir", type=Path, default=None,
                    help="write the docs' records here (egnn-overhead-steps.json, egnn-overhead-ratios.json)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    env = environment(device)
    print("acezoo overhead benchmark: EGNN (hidden 64, 4 layers), batch of 100 graphs x 5 nodes, float32")
    print("  " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(f"  repeats {args.repeats}, warmup {args.warmup}, each sample >= {args.min_sample_ms:g} ms of calls; "
          "contenders interleaved, order rotating per round")

    torch.manual_seed(args.seed)
    batch = make_batch(device)
    print(f"  batch: {batch.num_graphs} graphs, {batch.num_nodes} nodes, {batch.edge_index.shape[1]} edges "
          f"(fully connected, {fully_connected_edge_index(N_NODES).shape[1]} per graph)")

    train_stats, train_rows, counts = bench_training(batch, args, device)
    print("\nParameters")
    for name, count in counts.items():
        print(f"  {name:56s} {count:8d}")
    print_stats("Training step (forward + backward + optimiser), per call", train_stats)
    infer_stats, infer_rows, diff = bench_inference(batch, args, device)
    print_stats("Inference under torch.no_grad(), per call", infer_stats)
    print(f"  (pruned and strict models share weights; max |output difference| = {diff:.2e})")

    entries = ratio_rows(train_rows, train_stats) + ratio_rows(infer_rows, infer_stats)
    print_ratios(entries)
    if "egnn-pytorch EGNN_Network step" in train_stats:
        print(REF_NOTE)

    gen = None if args.skip_gen else bench_generation(args)
    if gen is not None:
        print_generation(gen)

    if args.record_dir is not None:
        write_records(args.record_dir, sys.argv[1:] if argv is None else argv, train_stats, infer_stats, counts, entries, gen)
    if args.json is not None:
        report = {
            "environment": env,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "parameters": counts,
            "training": {k: v.summary() for k, v in train_stats.items()},
            "inference": {k: v.summary() for k, v in infer_stats.items()},
            "pruned_vs_strict_max_abs_diff": diff,
            "ratios": entries,
            "generation": gen,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return 0


def write_records(folder: Path, argv: list[str], train: dict[str, Stats], infer: dict[str, Stats],
                  counts: dict[str, int], entries: list[dict[str, Any]], gen: dict[str, Any] | None) -> None:
    """The docs' tables of this run: steps (training, then inference), ratios, N-body generation."""
    script = "scripts/bench_overhead.py"
    folder.mkdir(parents=True, exist_ok=True)
    columns, rows = stats_table({**{f"training: {k}": v for k, v in train.items()},
                                 **{f"inference: {k}": v for k, v in infer.items()}})
    write_bench_record(folder / "egnn-overhead-steps.json", bench_record(
        script, argv, columns, rows, ["Parameters: " + "; ".join(f"{k} {v:,}" for k, v in counts.items()) + "."]))
    columns, rows = ratio_table(entries)
    write_bench_record(folder / "egnn-overhead-ratios.json", bench_record(script, argv, columns, rows))
    if gen is not None:
        rows = [["batched simulate, 7000 trajectories", f"{gen['batched_total_s']:.2f} s"],
                [f"naive loop, one trajectory at a time ({gen['naive_traj_timed']} timed)",
                 f"{gen['naive_total_estimate_s'] / 7000:.3f} s per trajectory"],
                ["speed-up of the batched simulation", f"x{gen['naive_total_estimate_s'] / gen['batched_total_s']:.0f}"]]
        write_bench_record(folder / "nbody-generation.json", bench_record(
            script, argv, ["N-body generation (3000/2000/2000 trajectories, frames 30 and 40, no cache)", "time"], rows))
    print(f"wrote the records to {folder}")


if __name__ == "__main__":
    sys.exit(main())
