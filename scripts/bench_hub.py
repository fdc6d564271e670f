#!/usr/bin/env python
"""Hub latency: how long the everyday commands take, each in a fresh Python process.

Times, in one run, interleaved (the order rotates every round so that machine noise falls
on every command alike), the wall time of a fresh process for:

- ``acezoo --help``, ``acezoo list``, ``acezoo list --pretrained``, ``acezoo info NAME``;
- ``python -c "import acezoo; acezoo.load(NAME)"`` (a shipped model, by its bare name);
- the same model registered into the local registry as ``bench-egnn`` with the alias ``bench``,
  loaded once before: ``acezoo.load("bench-egnn/VERSION")`` (a version never changes, so its
  local copy answers), ``acezoo.load("bench-egnn")`` (the latest version) and
  ``acezoo.load("bench-egnn@bench")`` (an alias): the embedded SQLite store says which version
  those mean (read directly, without MLflow), and the local copy answers;
- ``acezoo train egnn_nbody_equality`` up to its first epoch: the process is timed until it
  prints its banner (the line naming the model, written just before the first epoch starts,
  on a warm data cache), then killed and its run directory removed;
- ``python -c "import torch"``: the floor that any command which builds a model pays;
- ``python -c "pass"``: the interpreter's own start-up.

The first round warms the disk cache (and builds the N-body data cache) and is not counted.
It prints the median and the interquartile range per command, the target (1.5 s for the
commands that need no model; for the others, time over the ``import torch`` floor: 0.4 s to
load a model, 1.5 s to reach the first epoch of training), and which heavy modules each command
imported (MLflow, e3nn, torch_geometric, torch), checked in a separate process, and whether
Python's bytecode cache was on (``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__``: every
process compiles acezoo's modules again: up to about 0.1 s more per command that loads a model).
Nothing is asserted; the exit code is 0.

    ACEZOO_HOME=/tmp/acehome python scripts/bench_hub.py
    python scripts/bench_hub.py --repeats 15 --json hub.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.5  # commands that build no model: absolute
LOAD_OVER_TORCH_S = 0.4  # acezoo.load(NAME): over `import torch`
TRAIN_OVER_TORCH_S = 1.5  # acezoo train: its first epoch reached, over `import torch`
TRAIN_LABEL = "acezoo train egnn_nbody_equality (to its first epoch)"
FLOOR_LABEL = "import torch (floor)"
HEAVY = ("mlflow", "e3nn", "torch_geometric", "torch")


def register_bench_model(name: str) -> int:
    """Register shipped model ``name`` as ``bench-egnn@bench`` (idempotent) and load it once; its version.

    The latest version and the alias are loaded once too, so that their local copies exist
    even when ``bench-egnn`` has other versions in this registry."""
    code = ("import acezoo\nfrom acezoo.hub.pretrained import bundled\n"
            f"v = acezoo.register(bundled()[{name!r}], 'bench-egnn', alias='bench').version\n"
            "for spec in (f'bench-egnn/{v}', 'bench-egnn', 'bench-egnn@bench'):\n"
            "    acezoo.load(spec)\n"
            "print(v)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def commands(name: str, version: int) -> dict[str, list[str]]:
    """Label -> argv of every timed command."""
    py, cli = sys.executable, [sys.executable, "-m", "acezoo"]

    def load(spec: str) -> list[str]:
        return [py, "-c", f"import acezoo; acezoo.load({spec!r})"]

    return {
        "acezoo --help": [*cli, "--help"],
        "acezoo list": [*cli, "list"],
        "acezoo list --pretrained": [*cli, "list", "--pretrained"],
        f"acezoo info {name}": [*cli, "info", name],
        f"acezoo.load({name!r})": load(name),
        f"acezoo.load('bench-egnn/{version}') (registered, cached)": load(f"bench-egnn/{version}"),
        "acezoo.load('bench-egnn') (registered, latest)": load("bench-egnn"),
        "acezoo.load('bench-egnn@bench') (registered, alias)": load("bench-egnn@bench"),
        TRAIN_LABEL: [*cli, "train", "egnn_nbody_equality", "train.epochs=1", "train.tracking=false", "--no-progress"],
        FLOOR_LABEL: [py, "-c", "import torch"],
        "python (start-up)": [py, "-c", "pass"],
    }


def heavy_imports(argv: list[str]) -> list[str]:
    """The heavy modules a command imports (run in-process under ``runpy``)."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = {argv[1:]!r}\n"
        "try:\n"
        "    if sys.argv[0] == '-c':\n"
        "        exec(sys.argv[1])\n"
        "    else:\n"
        "        sys.argv = sys.argv[2:] if sys.argv[0] == '-m' else sys.argv\n"
        "        sys.argv.insert(0, 'acezoo')\n"
        "        runpy.run_module('acezoo', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
    return [m for m in last.split(",") if m in HEAVY]


def bytecode_cache() -> str:
    """Whether the timed processes read acezoo's modules from Python's bytecode cache."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return "on"
    spec = importlib.util.find_spec("acezoo")
    package = Path(spec.origin).parent if spec and spec.origin else None
    if package is not None and any((package / "__pycache__").glob("__init__.*.pyc")):
        return "read, not written (PYTHONDONTWRITEBYTECODE)"
    return "off (PYTHONDONTWRITEBYTECODE is set and acezoo has no __pycache__: compiled in every process)"


def time_once(argv: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


def time_to_first_epoch(argv: list[str]) -> float:
    """Seconds until ``acezoo train`` prints its banner (just before its first epoch); the process
    is then killed and its run directory removed."""
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*argv, "--run-dir", str(Path(tmp) / "run")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            if " params, " in line and " gammas), " in line:
                seconds = time.perf_counter() - t0
                proc.kill()
                proc.wait()
                return seconds
            seen.append(line)
        proc.wait()
        raise SystemExit(f"{' '.join(argv)} ended ({proc.returncode}) before its first epoch: {''.join(seen)[-500:]}")


def target_met(label: str, median: float, floor: float) -> str:
    """``yes``/``NO`` against the label's target (see the module docstring), ``-`` for the floors."""
    if label == FLOOR_LABEL or "start-up" in label:
        return "-"
    if label == TRAIN_LABEL:
        ok = median - floor <= TRAIN_OVER_TORCH_S
    elif label.startswith("acezoo.load("):
        ok = median - floor <= LOAD_OVER_TORCH_S
    else:
        ok = median <= TARGET_S
    return "yes" if ok else "NO"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="egnn-nbody-ace", help="shipped model for info and load")
    ap.add_argument("--repeats", type=int, default=9, help="timed rounds (after one warm-up round)")
    ap.add_argument("--json", help="also write the samples to this file")
    ap.add_argument("--record-dir", type=Path, default=None, help="write the docs' record here (hub.json)")
    args = ap.parse_args()
    cmds = commands(args.model, register_bench_model(args.model))
    labels = list(cmds)
    samples: dict[str, list[float]] = {k: [] for k in labels}
    for rnd in range(args.repeats + 1):
        order = labels[rnd % len(labels):] + labels[:rnd % len(labels)]
        for label in order:
            seconds = time_to_first_epoch(cmds[label]) if label == TRAIN_LABEL else time_once(cmds[label])
            if rnd:
                samples[label].append(seconds)
        print(f"\rround {rnd}/{args.repeats}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"fresh processes, {args.repeats} rounds after a warm-up; {os.cpu_count()} CPUs, load average {load:.2f}; "
          f"bytecode cache {bytecode_cache()}")
    floor = statistics.median(samples[FLOOR_LABEL])
    print(f"targets: {TARGET_S} s for commands that build no model; over `import torch` ({floor:.2f} s here): "
          f"{LOAD_OVER_TORCH_S} s for acezoo.load, {TRAIN_OVER_TORCH_S} s for acezoo train to reach its first epoch")
    columns = ["command", "median (s)", "IQR (s)", "over import torch (s)", "target met",
               f"imports of {', '.join(HEAVY)}"]
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    rows, table = {}, []
    for label in labels:
        xs = sorted(samples[label])
        q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
        med = statistics.median(xs)
        heavy = heavy_imports(cmds[label]) if label != TRAIN_LABEL else ["(not probed: it trains)"]
        over = f"{med - floor:+.2f}" if label == TRAIN_LABEL or label.startswith("acezoo.load(") else "-"
        table.append([f"`{label}`", f"{med:.2f}", f"{q[0]:.2f}-{q[2]:.2f}", over, target_met(label, med, floor),
                      ", ".join(heavy) or "none"])
        print("| " + " | ".join(table[-1]) + " |")
        rows[label] = {"samples": xs, "median": med, "heavy_imports": heavy}
    if args.record_dir is not None:
        from acezoo.benchmarking import bench_record, write_bench_record

        args.record_dir.mkdir(parents=True, exist_ok=True)
        machine = (f"fresh processes, {args.repeats} rounds after a warm-up; {os.cpu_count()} CPUs, load average "
                   f"{load:.2f}; bytecode cache {bytecode_cache()}")
        notes = [f"Targets: {TARGET_S} s for the commands that build no model; over `import torch`, "
                 f"{LOAD_OVER_TORCH_S} s for `acezoo.load` and {TRAIN_OVER_TORCH_S} s for `acezoo train` to reach its "
                 "first epoch (on a warm data cache)."]
        write_bench_record(args.record_dir / "hub.json", bench_record(
            "scripts/bench_hub.py", sys.argv[1:], columns, table, notes, machine=machine))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_average": load, "bytecode_cache": bytecode_cache(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
