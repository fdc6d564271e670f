"""Interleaved timing and reporting shared by the benchmark scripts under ``scripts/``.

Contenders run interleaved (the order rotates every round, so each takes each position
equally often); each sample is the mean time per call over enough calls to last a minimum
time; reports give the median and interquartile range per contender and ratios of medians.
Nothing here asserts a time: these machines are noisy, so benchmarks print ratios measured
side by side in one run.
"""
from __future__ import annotations

import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "Stats", "Row", "Step", "synchronizer", "interleaved", "ratio_rows", "print_stats", "print_ratios",
    "environment", "cpu_model", "ms", "peak_rss_reset", "peak_rss_kib", "plain_step", "inference_step",
    "target_met", "stats_table", "ratio_table", "bench_record", "write_bench_record",
]

Step = Callable[[], Any]


@dataclass
class Stats:
    """Per-call seconds of one contender: one entry per interleaved sample."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr(self) -> tuple[float, float]:
        if len(self.samples) < 2:
            return self.median, self.median
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return q1, q3

    def summary(self) -> dict[str, Any]:
        q1, q3 = self.iqr
        return {"median_s": self.median, "q1_s": q1, "q3_s": q3, "n": len(self.samples)}


@dataclass
class Row:
    """One comparison: contender ``a`` over contender ``b``."""

    label: str
    a: str
    b: str
    target: str = ""
    skipped: str = ""


def synchronizer(device: torch.device) -> Callable[[], None]:
    """A function that waits for queued device work (a no-op on CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _time_calls(fn: Step, calls: int, sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - t0) / calls


def _calls_per_sample(fn: Step, min_sample_s: float, sync: Callable[[], None]) -> int:
    one = statistics.median(_time_calls(fn, 1, sync) for _ in range(3))
    return max(1, math.ceil(min_sample_s / one))


def interleaved(
    contenders: dict[str, Step], repeats: int, warmup: int, min_sample_s: float, sync: Callable[[], None]
) -> dict[str, Stats]:
    """Time every contender ``repeats`` times, interleaved, the order rotating each round."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    calls = {name: _calls_per_sample(contenders[name], min_sample_s, sync) for name in names}
    stats = {name: Stats() for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            stats[name].samples.append(_time_calls(contenders[name], calls[name], sync))
    return stats


def plain_step(model: torch.nn.Module, inputs: tuple[Any, ...], target: torch.Tensor,
               optimizer: torch.optim.Optimizer) -> Step:
    """A bare training step: zero_grad, forward on ``inputs``, MSE to ``target``, backward, step."""

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(*inputs), target).backward()
        optimizer.step()

    return step


def inference_step(model: torch.nn.Module, *inputs: Any) -> Step:
    """A forward pass under ``torch.no_grad()``."""

    def step() -> None:
        with torch.no_grad():
            model(*inputs)

    return step


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f}"


def print_stats(title: str, stats: dict[str, Stats], width: int = 42) -> None:
    print(f"\n{title}")
    print(f"  {'contender':{width}s} {'median ms':>9s} {'IQR ms':>19s} {'samples':>7s}")
    for name, s in stats.items():
        q1, q3 = s.iqr
        print(f"  {name:{width}s} {ms(s.median):>9s} {ms(q1)} - {ms(q3).strip():<8s} {len(s.samples):7d}")


def ratio_rows(rows: list[Row], stats: dict[str, Stats]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        entry: dict[str, Any] = {"comparison": row.label, "a": row.a, "b": row.b, "target": row.target}
        if row.skipped:
            entry["skipped"] = row.skipped
        else:
            entry["ratio"] = stats[row.a].median / stats[row.b].median
        out.append(entry)
    return out


def print_ratios(entries: list[dict[str, Any]], width: int = 46) -> None:
    print("\nRatios of medians")
    print(f"  {'comparison':{width}s} {'ratio':>7s} {'target':>8s}")
    for e in entries:
        if "skipped" in e:
            print(f"  {e['comparison']:{width}s} {'skipped':>7s} {e['target']:>8s}   ({e['skipped']})")
        else:
            print(f"  {e['comparison']:{width}s} {e['ratio']:7.3f} {e['target']:>8s}")


def cpu_model() -> str:
    """The CPU's name with its family and model numbers (``/proc/cpuinfo``; virtual machines often
    report a generic name, and the numbers still tell the generation), else ``platform.processor()``.

    Ratios between kernels of different kinds (matrix products against memory-bound gathers and
    element-wise products) differ between CPU generations, so every record names its CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read().split("\n\n", 1)[0]
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def environment(device: torch.device) -> dict[str, Any]:
    return {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset"),
            "device": str(device), "machine": platform.machine(), "cpu": cpu_model(), "cpus": os.cpu_count()}


def peak_rss_reset() -> bool:
    """Reset this process's peak resident set size (Linux ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib() -> int | None:
    """Peak resident set size of this process since the last reset, in KiB (Linux ``VmHWM``)."""
    try:
        with open("/proc/self/status") as f:
            match = re.search(r"VmHWM:\s+(\d+)", f.read())
    except OSError:
        return None
    return int(match.group(1)) if match else None


# -- records: what the docs' benchmark tables are generated from ---------------------------------
_TARGET = re.compile(r"^\s*(<=|<|>=|>)\s*([0-9.eE+-]+)\s*$")


def target_met(value: float, target: str) -> str:
    """``yes``/``NO`` for a target such as ``<= 1.3``; ``-`` when the target is not a bound (``info``)."""
    m = _TARGET.match(target)
    if not m:
        return "-"
    op, bound = m.group(1), float(m.group(2))
    ok = {"<=": value <= bound, "<": value < bound, ">=": value >= bound, ">": value > bound}[op]
    return "yes" if ok else "NO"


def stats_table(stats: dict[str, Stats], extra: dict[str, dict[str, str]] | None = None) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of per-contender timings: median and IQR in ms, samples, then ``extra`` columns."""
    extra = extra or {}
    extra_cols = list(next(iter(extra.values()), {}))
    rows = []
    for name, st in stats.items():
        q1, q3 = st.iqr
        rows.append([name, f"{st.median * 1e3:.2f}", f"{q1 * 1e3:.2f}-{q3 * 1e3:.2f}", str(len(st.samples)),
                     *(extra.get(name, {}).get(c, "") for c in extra_cols)])
    return ["contender", "median (ms)", "IQR (ms)", "samples", *extra_cols], rows


def ratio_table(entries: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of ratio entries (:func:`ratio_rows`): the ratio, its target and whether it is met."""
    rows = []
    for e in entries:
        if "skipped" in e:
            rows.append([e["comparison"], f"skipped ({e['skipped']})", e["target"], "-"])
        else:
            rows.append([e["comparison"], f"{e['ratio']:.3f}", e["target"], target_met(e["ratio"], e["target"])])
    return ["comparison", "ratio of medians", "target", "met"], rows


def bench_record(script: str, argv: list[str], columns: list[str], rows: list[list[str]],
                 notes: list[str] | tuple[str, ...] = (), machine: str | None = None) -> dict[str, Any]:
    """A benchmark record: the command that measured it, when and where, and one table.

    ``scripts/build_docs.py`` renders the docs' benchmark tables from these records."""
    if machine is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        machine = (f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} CPUs, load average {load:.2f}, "
                   f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    return {"script": script, "command": " ".join(["python", script, *argv]), "date": time.strftime("%Y-%m-%d"),
            "machine": machine, "columns": list(columns), "rows": [list(r) for r in rows], "notes": list(notes)}


def write_bench_record(path: os.PathLike[str] | str, record: dict[str, Any]) -> None:
    """Write ``record`` as JSON, atomically."""
    import json

    from acezoo.io.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
