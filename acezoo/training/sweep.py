"""Resumable, parallel comparisons of named training *contenders* over several seeds.

A contender is a name and a list of ``key=value`` overrides of one base zoo config (e.g.
``strict: [constraints.mode=strict]``). Every (contender, seed) run gets a fixed run
directory ``<out>/runs/<contender>-s<seed>`` and, once finished, a result file
``<out>/results/<contender>-s<seed>.json``; so

- finished runs are kept and never trained again;
- an interrupted run (session ended, Ctrl-C, killed) resumes exactly from its last
  checkpoint (the trainer writes one after every epoch);
- any number of worker processes can share one study: each claims the next pending run with
  an exclusive claim file (holding its PID; a claim whose process is gone is taken over).

Run workers with :func:`launch_workers` (one thread each) and summarise with
:func:`summarise`, which selects on validation data only (the mean over seeds of each run's
best validation value of the selected model) and reports the test metric beside it.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Contender", "Sweep", "run_worker", "launch_workers", "collect", "summarise", "run_key"]


@dataclass(frozen=True)
class Contender:
    """One training recipe: a name and overrides of the sweep's base config."""

    name: str
    overrides: tuple[str, ...]
    note: str = ""


@dataclass
class Sweep:
    """A base config, shared overrides (budget, data), contenders and seeds, written to ``out``."""

    config: str
    contenders: list[Contender]
    seeds: list[int]
    out: str
    common: list[str] = field(default_factory=list)
    scale: float = 1.0
    unit: str = ""

    def save(self) -> None:
        """Write the plan to ``<out>/sweep.json`` (workers read it from there)."""
        Path(self.out).mkdir(parents=True, exist_ok=True)
        _atomic_write(Path(self.out) / "sweep.json", json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, out: str | Path) -> "Sweep":
        raw = json.loads((Path(out) / "sweep.json").read_text())
        raw["contenders"] = [Contender(c["name"], tuple(c["overrides"]), c.get("note", "")) for c in raw["contenders"]]
        return cls(**raw)

    def keys(self) -> list[tuple[Contender, int]]:
        """Every run, seed-major: the first seed of every contender comes first."""
        return [(c, s) for s in self.seeds for c in self.contenders]


def run_key(contender: str, seed: int) -> str:
    return f"{contender}-s{seed}"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(claims: Path, key: str) -> bool:
    """Take the exclusive claim on ``key``; a claim whose process is gone is taken over.

    The claim file appears with its owner's pid already in it (written to a private file, then
    hard-linked into place, which fails if the claim exists): a competing worker never reads an
    empty claim and mistakes it for a stale one.
    """
    claims.mkdir(parents=True, exist_ok=True)
    path = claims / f"{key}.pid"
    mine = claims / f".{key}.{os.getpid()}.tmp"
    mine.write_text(str(os.getpid()))
    try:
        for _ in range(2):
            try:
                os.link(mine, path)
                return True
            except FileExistsError:
                try:
                    pid = int(path.read_text() or "0")
                except (OSError, ValueError):
                    pid = 0
                if pid and _pid_alive(pid):
                    return False
                _remove_stale(path, pid)  # its worker is gone
        return False
    finally:
        mine.unlink(missing_ok=True)


def _remove_stale(path: Path, pid: int) -> None:
    """Remove the claim ``path`` of dead worker ``pid``, unless another worker has replaced it."""
    stale = path.with_name(f".{path.name}.{os.getpid()}.stale")
    try:
        os.rename(path, stale)  # atomic: exactly one competing worker moves the dead claim away
    except FileNotFoundError:
        return
    try:
        if int(stale.read_text() or "0") != pid:  # a live claim was moved by mistake: put it back
            try:
                os.link(stale, path)
            except FileExistsError:
                pass
    except (OSError, ValueError):
        pass
    finally:
        stale.unlink(missing_ok=True)


def _record(contender: Contender, seed: int, result: Any, wall: float) -> dict[str, Any]:
    m = result.metrics
    metric = next(iter(m["test"]["pruned"]))
    keep = ("epoch", "train_loss", "time_s")
    curves = [{k: v for k, v in rec.items() if k in keep or k.startswith(("val_", "gamma/", "multiplier/", "slack/"))
               or k == "equivariance_error"} for rec in result.history]
    return {
        "contender": contender.name, "seed": seed, "overrides": list(contender.overrides),
        "run_dir": str(result.run_dir), "metric": metric, "selected_on": m["selected_on"],
        "best_val": m["best_value"], "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
        "test_pruned": m["test"]["pruned"][metric], "test_full": m["test"]["full"][metric],
        "equivariance_error": m["equivariance_error"], "gammas": m["gammas"], "multipliers": m["multipliers"],
        "slacks": m["slacks"], "wall_s": m.get("wall_time_s", wall), "history": curves,
    }


def _diverged(sweep: Sweep, contender: Contender, seed: int, run_dir: Path, data: Any, message: str) -> dict[str, Any]:
    """The record of a run stopped by a non-finite loss: its best validated weights scored by
    the same rule (a zero-epoch resume from its last good checkpoint), or no score if it
    diverged before its first validation."""
    from acezoo.training.checkpoint import HISTORY_FILE, WEIGHTS_FILE
    from acezoo.run import train

    print(f"[{os.getpid()}] {run_key(contender.name, seed)}: diverged ({message.split('.')[0]})", flush=True)
    if (run_dir / WEIGHTS_FILE).exists():
        done = json.loads((run_dir / HISTORY_FILE).read_text())[-1]["epoch"]
        result = train(resume=run_dir, overrides=(f"train.epochs={done}",), data=data, progress=False)
        record = _record(contender, seed, result, 0.0)
    else:
        nan = float("nan")
        record = {"contender": contender.name, "seed": seed, "overrides": list(contender.overrides),
                  "run_dir": str(run_dir), "metric": "", "selected_on": "", "best_val": float("inf"),
                  "best_epoch": 0, "epochs_run": 0, "test_pruned": nan, "test_full": nan,
                  "equivariance_error": {}, "gammas": {}, "multipliers": {}, "slacks": {}, "wall_s": 0.0,
                  "history": []}
    record["diverged"] = message
    return record


def run_worker(out: str | Path, only: Sequence[str] = ()) -> int:
    """Train pending runs of the sweep in ``out`` until none is left; returns how many it ran.

    ``only``: restrict to these contender names.
    """
    from acezoo.config.loader import load_config
    from acezoo.training.checkpoint import STATE_FILE
    from acezoo.errors import TrainingDiverged
    from acezoo.run import build_data, train

    sweep = Sweep.load(out)
    out = Path(out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    data_cache: dict[str, Any] = {}
    done = 0
    for contender, seed in sweep.keys():
        if only and contender.name not in only:
            continue
        key = run_key(contender.name, seed)
        result_path = out / "results" / f"{key}.json"
        if result_path.exists() or not _claim(out / "claims", key):
            continue
        try:
            if result_path.exists():  # finished by another worker meanwhile
                continue
            run_dir = out / "runs" / key
            conf = load_config(sweep.config, [*sweep.common, *contender.overrides, f"seed={seed}",
                                              "train.progress=false"])
            data_key = conf.data.model_dump_json()
            if data_key not in data_cache:
                data_cache.clear()
                data_cache[data_key] = build_data(conf)
            t0 = time.perf_counter()
            try:
                if (run_dir / STATE_FILE).exists():
                    print(f"[{os.getpid()}] {key}: resuming", flush=True)
                    result = train(resume=run_dir, data=data_cache[data_key], progress=False)
                else:
                    print(f"[{os.getpid()}] {key}: training", flush=True)
                    result = train(conf, run_dir=run_dir, data=data_cache[data_key], progress=False)
                record = _record(contender, seed, result, time.perf_counter() - t0)
            except TrainingDiverged as exc:
                record = _diverged(sweep, contender, seed, run_dir, data_cache[data_key], str(exc))
            _atomic_write(result_path, json.dumps(record))
            print(f"[{os.getpid()}] {key}: best val {record['best_val']:.5g} (epoch {record['best_epoch']}), "
                  f"test pruned {record['test_pruned']:.5g} full {record['test_full']:.5g}, "
                  f"{record['wall_s']:.0f} s", flush=True)
            done += 1
        finally:
            (out / "claims" / f"{key}.pid").unlink(missing_ok=True)
    return done


def launch_workers(out: str | Path, workers: int, only: Sequence[str] = (), log: str | Path | None = None) -> int:
    """Run ``workers`` worker processes (one torch thread each) on the sweep in ``out``; wait
    for them. Returns the worst exit status."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "acezoo.training.sweep", str(out), *[f"--only={o}" for o in only]]
    sink = open(log, "a") if log else None  # noqa: SIM115 - closed below
    try:
        procs = [subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT if sink else None)
                 for _ in range(workers)]
        return max(p.wait() for p in procs)
    finally:
        if sink:
            sink.close()


def collect(out: str | Path, seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Every finished run of the sweep in ``out``, in plan order; ``seeds``: these seeds instead
    of the sweep's (e.g. seeds that another sweep into a copy trained and added)."""
    sweep = Sweep.load(out)
    if seeds is not None:
        sweep.seeds = list(seeds)
    runs = []
    for contender, seed in sweep.keys():
        path = Path(out) / "results" / f"{run_key(contender.name, seed)}.json"
        if path.exists():
            runs.append(json.loads(path.read_text()))
    return runs


def _mean_std(values: list[float], scale: float) -> str:
    values = [v * scale for v in values]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4g} +- {sd:.2g}"


def summarise(out: str | Path, baseline: str | None = "strict", seeds: Sequence[int] | None = None,
              only: Sequence[str] = ()) -> tuple[str, str | None]:
    """A markdown table of the sweep in ``out`` and the winning contender.

    The winner is the ACE contender (not ``baseline``, nor any contender whose runs hold no gamma,
    i.e. strict ones: a sweep with several protocols has one per protocol) with the lowest mean best
    validation value among those with every seed finished and selected on the same validation
    loss as the baseline (e.g. the equivariant model's; a contender selected on its full model
    is not comparable): validation data only.
    ``seeds`` / ``only``: restrict the table to these seeds / contenders.
    """
    sweep = Sweep.load(out)
    if seeds is not None:
        sweep.seeds = list(seeds)
    runs = [r for r in collect(out, sweep.seeds) if not only or r["contender"] in only]
    s = sweep.scale
    unit = f" ({sweep.unit})" if sweep.unit else ""
    lines = [f"| contender | seeds | best val{unit} (selection) | test, pruned{unit} | test, full{unit} | "
             "best epoch | wall s/run | final max abs gamma |", "|---|---|---|---|---|---|---|---|"]
    means: dict[str, float] = {}
    selected_on = {r["contender"]: r["selected_on"] for r in runs if r["selected_on"]}
    for c in sweep.contenders:
        rs = [r for r in runs if r["contender"] == c.name]
        if not rs:
            continue
        if len(rs) == len(sweep.seeds):
            means[c.name] = statistics.mean(r["best_val"] for r in rs)
        gam = max((abs(g) for r in rs for g in r["gammas"].values()), default=None)
        n_div = sum(1 for r in rs if r.get("diverged"))
        lines.append(
            f"| {c.name} | {len(rs)}{f' ({n_div} diverged)' if n_div else ''} | {_mean_std([r['best_val'] for r in rs], s)} | "
            f"{_mean_std([r['test_pruned'] for r in rs], s)} | {_mean_std([r['test_full'] for r in rs], s)} | "
            f"{statistics.mean(r['best_epoch'] for r in rs):.0f} | {statistics.mean(r['wall_s'] for r in rs):.0f} | "
            f"{'-' if gam is None else f'{gam:.3g}'} |")
    same_rule = selected_on.get(baseline) if baseline else None
    # strict contenders (no gamma in any run; a diverged run may stop before it records gammas)
    strict = {c.name for c in sweep.contenders
              if all(not r["gammas"] and not r.get("diverged") for r in runs if r["contender"] == c.name)}
    candidates = {k: v for k, v in means.items() if k != baseline and k not in strict and math.isfinite(v)
                  and (same_rule is None or selected_on.get(k) == same_rule)}
    winner = min(candidates, key=candidates.__getitem__) if candidates else None
    return "\n".join(lines), winner


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="One sweep worker: trains pending runs of the sweep in OUT.")
    ap.add_argument("out")
    ap.add_argument("--only", action="append", default=[])
    args = ap.parse_args(argv)
    run_worker(args.out, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
