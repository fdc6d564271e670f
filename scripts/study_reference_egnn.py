#!/usr/bin/env python
"""Study: the EGNN authors' model and training loop on acezoo's N-body data.

Both acezoo EGNNs (strict and ACE) select at about 0.0085 test MSE on charged N-body, while the
EGNN paper reports 0.0071. This study asks whether that gap lies in our model and trainer or in
the task itself: it trains the authors' formulation (``authors_egnn.AuthorsEGNNVel``) with the
authors' protocol (``main_nbody.py`` of vgsatorras/egnn: Adam, lr 5e-4, weight decay 1e-12,
batch 100, shuffled, no gradient clipping, no early stopping; validation and test every 5
epochs from epoch 0; the test MSE at the best validation epoch is the result) on the same
3000/2000/2000 trajectories acezoo's zoo configs use, one torch thread per seed.

It also prints the learned linear-dynamics baseline of the EGNN paper (``x + t v`` with ``t``
fitted by least squares on the training split; published: 0.0819), a check that the simulated
data match the published task.

Runs are resumable: each seed writes ``<out>/seed<S>/state.pt`` (weights, optimiser, shuffling
generator, history; saved atomically every ``--checkpoint-every`` epochs and read back with
``weights_only=True``) and, when done, ``result.json``. A finished seed is never re-run.

    python scripts/study_reference_egnn.py --seeds 0 1 2 3 --workers 2      # train, then summarise
    python scripts/study_reference_egnn.py --seeds 0 1 2 3 --summary         # the table so far
    python scripts/study_reference_egnn.py --seeds 0 --epochs 10 data.n_train=300 --out /tmp/ref
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from acezoo.config.loader import load_config
from acezoo.io.atomic import atomic_write, atomic_write_text
from acezoo.training.batches import collate, epoch_indices, eval_batches
from acezoo.studies.records import read_record
from acezoo.training.trainer import build_data
from authors_egnn import AuthorsEGNNVel  # scripts/authors_egnn.py (this script's folder is on sys.path)

ZOO = Path(__file__).resolve().parents[1] / "zoo_configs"
PUBLISHED = {"EGNN": 0.0071, "linear dynamics": 0.0819}


def build_nbody(overrides: list[str]) -> Any:
    """The data of ``egnn_nbody_strict.yaml`` with ``data.*`` overrides (a config error names the key)."""
    return build_data(load_config(ZOO / "egnn_nbody_strict.yaml", overrides))


@torch.no_grad()
def mse(model: nn.Module, dataset: Any, batch_size: int = 100) -> float:
    """Mean squared error over every coordinate of ``dataset`` (the authors' test loop: batches of 100)."""
    model.eval()
    total, count = 0.0, 0
    for batch in eval_batches(dataset, batch_size):
        err = (model(batch) - batch.y) ** 2
        total += float(err.sum())
        count += err.numel()
    return total / count


def linear_dynamics(data: Any) -> dict[str, float]:
    """The paper's linear-dynamics baseline ``x + t v``, ``t`` by least squares on the training split."""
    def arrays(ds: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = collate(ds, torch.arange(len(ds)))
        return b.pos.double(), b.vel.double(), b.y.double()

    x, v, y = arrays(data.train)
    t = float(((y - x) * v).sum() / (v * v).sum())
    out = {"t": t}
    for split in ("val", "test"):
        x, v, y = arrays(getattr(data, split))
        out[split] = float(((x + t * v - y) ** 2).mean())
    return out


def train_seed(seed: int, out: Path, epochs: int, eval_every: int, checkpoint_every: int,
               overrides: list[str]) -> dict[str, Any]:
    """Train (or resume, or return) one seed; returns its result record."""
    run = out / f"seed{seed}"
    result_path, state_path = run / "result.json", run / "state.pt"
    if result_path.exists():
        return json.loads(result_path.read_text())
    run.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    data = build_nbody(overrides)
    torch.manual_seed(seed)
    model = AuthorsEGNNVel(hidden=64, layers=4)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=1e-12)
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {"epoch": 0, "history": [], "best": None, "wall_s": 0.0}
    if state_path.exists():
        saved = torch.load(state_path, weights_only=True)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        gen.set_state(saved["gen"])
        state = json.loads(saved["meta"])
        print(f"seed {seed}: resumed at epoch {state['epoch']}", flush=True)

    def save() -> None:
        payload = {"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                   "meta": json.dumps(state)}
        atomic_write(state_path, lambda tmp: torch.save(payload, tmp))

    t_start = time.perf_counter() - state["wall_s"]
    while state["epoch"] < epochs:
        epoch = state["epoch"]
        model.train()
        total, n = 0.0, 0
        for idx in epoch_indices(len(data.train), 100, gen):
            if len(idx) < 100:  # drop_last=True, as the authors' train loader
                continue
            batch = collate(data.train, idx)
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(batch), batch.y)
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(idx), n + len(idx)
        record: dict[str, Any] = {"epoch": epoch, "train": total / max(n, 1)}
        if epoch % eval_every == 0:
            record["val"], record["test"] = mse(model, data.val), mse(model, data.test)
            best = state["best"]
            if best is None or record["val"] < best["val"]:
                state["best"] = {"epoch": epoch, "val": record["val"], "test": record["test"]}
        state["history"].append(record)
        state["epoch"] = epoch + 1
        state["wall_s"] = time.perf_counter() - t_start
        if state["epoch"] % checkpoint_every == 0 or state["epoch"] == epochs:
            save()
            b = state["best"]
            print(f"seed {seed}: epoch {state['epoch']}/{epochs}, train {record['train']:.5f}, best val "
                  f"{b['val']:.5f} (epoch {b['epoch']}), test there {b['test']:.5f}, {state['wall_s']:.0f} s", flush=True)
    result = {"seed": seed, "epochs": epochs, "overrides": overrides, "best_epoch": state["best"]["epoch"],
              "best_val": state["best"]["val"], "test_at_best": state["best"]["test"], "wall_s": state["wall_s"],
              "history": state["history"]}
    atomic_write_text(result_path, json.dumps(result))
    return result


def summary(out: Path, seeds: list[int], overrides: list[str]) -> str:
    """A markdown table of the finished seeds, with the linear-dynamics baseline on the same data."""
    rows, vals, tests = [], [], []
    for seed in seeds:
        path = out / f"seed{seed}" / "result.json"
        if not path.exists():
            rows.append(f"| {seed} | (not finished) | | | |")
            continue
        r = json.loads(path.read_text())
        vals.append(r["best_val"])
        tests.append(r["test_at_best"])
        rows.append(f"| {seed} | {r['best_val'] * 1e3:.2f} | {r['best_epoch']} | {r['test_at_best'] * 1e3:.2f} | "
                    f"{r['wall_s'] / 60:.0f} |")

    def ms(xs: list[float]) -> str:
        if not xs:
            return "-"
        sd = statistics.stdev(xs) * 1e3 if len(xs) > 1 else 0.0
        return f"{statistics.mean(xs) * 1e3:.2f} +- {sd:.2f}"

    lin = linear_dynamics(build_nbody(overrides))
    lines = [
        f"The EGNN authors' model and protocol on acezoo's N-body data ({', '.join(overrides) or 'zoo data'}); "
        "MSE x 1e-3, test at the best validation epoch.",
        "",
        "| seed | best val | best epoch | test | wall (min) |",
        "|---|---|---|---|---|",
        *rows,
        f"| mean +- std ({len(tests)} seeds) | {ms(vals)} | | {ms(tests)} | |",
        "",
        f"Linear dynamics (x + t v, t = {lin['t']:.4f} fitted on train): val {lin['val'] * 1e3:.2f}, "
        f"test {lin['test'] * 1e3:.2f} (published: {PUBLISHED['linear dynamics'] * 1e3:.1f}). "
        f"Published EGNN: {PUBLISHED['EGNN'] * 1e3:.1f}.",
    ]
    return "\n".join(lines)


def plot(out: Path, seeds: list[int], compare: Path | None, path: Path) -> None:
    """Validation and training MSE over epochs: the authors' model and loop (solid) and, from
    ``compare`` (a study's ``<records>/results/`` folder, e.g. of zoo_studies/ace-nbody.yaml), acezoo's strict
    runs of the same seeds (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, seed in enumerate(seeds):
        c = colours[i % len(colours)]
        path_ref = out / f"seed{seed}" / "result.json"
        if path_ref.exists():
            h = json.loads(path_ref.read_text())["history"]
            ev = [r for r in h if "val" in r]
            axes[0].plot([r["epoch"] for r in ev], [r["val"] for r in ev], lw=0.8, color=c,
                         label=f"authors' model + loop, seed {seed}")
            axes[1].plot([r["epoch"] for r in h], [r["train"] for r in h], lw=0.5, color=c)
        ours = read_record(compare.parent, "strict", seed) if compare else None  # compare: <records>/results
        if ours is not None:
            h = ours["history"]
            ev = [r for r in h if "val_eq_mse" in r]
            axes[0].plot([r["epoch"] for r in ev], [r["val_eq_mse"] for r in ev], lw=0.8, ls="--", color=c,
                         label=f"acezoo strict (zoo config), seed {seed}")
            axes[1].plot([r["epoch"] for r in h], [r["train_loss"] for r in h], lw=0.5, ls="--", color=c)
    axes[0].axhline(PUBLISHED["EGNN"], color="k", lw=0.8, ls=":", label="published EGNN (test)")
    axes[1].axhline(PUBLISHED["EGNN"], color="k", lw=0.8, ls=":")
    axes[0].set_title("validation MSE")
    axes[1].set_title("training MSE (epoch mean)")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylim(3e-4, 5e-2)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="data.KEY=VALUE overrides of egnn_nbody_strict.yaml's data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=2000, help="the ACE authors' N-body budget (default 2000)")
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--checkpoint-every", type=int, default=25)
    ap.add_argument("--workers", type=int, default=1, help="seeds trained side by side, one thread each")
    ap.add_argument("--out", type=Path, default=Path("docs/studies/nbody-egnn/reference-egnn"))
    ap.add_argument("--summary", action="store_true", help="only print the table of finished seeds")
    ap.add_argument("--plot", type=Path, default=None, help="write the curves (PNG) here")
    ap.add_argument("--compare", type=Path, default=None,
                    help="a study's <records>/results/ folder (e.g. docs/studies/nbody-egnn/ace-nbody/results) whose "
                    "strict-s<seed>.json runs join the plot (dashed)")
    ap.add_argument("--run-seed", type=int, default=None, help=argparse.SUPPRESS)  # one worker process
    args = ap.parse_args(argv)
    bad = [o for o in args.overrides if not o.startswith("data.") or "=" not in o]
    if bad:
        ap.error(f"only data.KEY=VALUE overrides are allowed, got {bad}")
    if args.run_seed is not None:
        train_seed(args.run_seed, args.out, args.epochs, args.eval_every, args.checkpoint_every, args.overrides)
        return 0
    if not args.summary:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        base = [sys.executable, __file__, *args.overrides, "--epochs", str(args.epochs), "--eval-every",
                str(args.eval_every), "--checkpoint-every", str(args.checkpoint_every), "--out", str(args.out)]
        pending = list(args.seeds)
        running: list[subprocess.Popen] = []
        status = 0
        while pending or running:
            while pending and len(running) < max(1, args.workers):
                running.append(subprocess.Popen([*base, "--run-seed", str(pending.pop(0))], env=env))
            time.sleep(1)
            for p in [p for p in running if p.poll() is not None]:
                status = max(status, p.returncode)
                running.remove(p)
        if status:
            return status
    table = summary(args.out, args.seeds, args.overrides)
    print(table)
    atomic_write_text(args.out / "results.md", table + "\n")
    if args.plot is not None:
        plot(args.out, args.seeds, args.compare, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
