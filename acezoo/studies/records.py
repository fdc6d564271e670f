"""Trial records: one JSON file per finished trial, ``<records>/results/<contender>-s<seed>.json``.

A record holds what the summary needs (best validation value and epoch, test metric of the
pruned and the full model, gammas, multipliers, slacks, the validation curves) and how the
trial ran (wall time, the epochs it resumed after). Records are written whole (temporary
file, then rename), so a reader never sees half of one.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["trial_key", "record_path", "write_record", "read_record", "collect", "make_record", "CURVE_KEYS"]

#: per-epoch keys a record keeps from the run's history (the curves of the summary's plots)
CURVE_KEYS = ("epoch", "train_loss", "time_s", "equivariance_error")
_CURVE_PREFIXES = ("val_", "gamma/", "multiplier/", "slack/")


def trial_key(contender: str, seed: int) -> str:
    """``strict-s0``: the name of one trial's record and of its Tune trial directory."""
    return f"{contender}-s{seed}"


def record_path(records: str | Path, contender: str, seed: int) -> Path:
    return Path(records) / "results" / f"{trial_key(contender, seed)}.json"


def write_record(records: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically to its place under ``records``; returns the path."""
    path = record_path(records, record["contender"], int(record["seed"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)
    return path


def read_record(records: str | Path, contender: str, seed: int) -> dict[str, Any] | None:
    path = record_path(records, contender, seed)
    return json.loads(path.read_text()) if path.is_file() else None


def collect(records: str | Path, contenders: Iterable[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Every finished trial of ``contenders`` x ``seeds``, seed-major (the plan's order)."""
    names = list(contenders)
    found = []
    for seed in seeds:
        for name in names:
            record = read_record(records, name, seed)
            if record is not None:
                found.append(record)
    return found


def make_record(contender: str, seed: int, overrides: Sequence[str], metrics: dict[str, Any],
                history: list[dict[str, Any]], run_dir: str, resumed_after: Sequence[int] = ()) -> dict[str, Any]:
    """The record of a finished trial from its trainer's metrics and history."""
    metric = next(iter(metrics["test"]["pruned"]))
    curves = [{k: v for k, v in rec.items() if k in CURVE_KEYS or k.startswith(_CURVE_PREFIXES)} for rec in history]
    return {
        "contender": contender, "seed": seed, "overrides": list(overrides), "run_dir": run_dir, "metric": metric,
        "selected_on": metrics["selected_on"], "best_val": metrics["best_value"], "best_epoch": metrics["best_epoch"],
        "epochs_run": metrics["epochs_run"], "test_pruned": metrics["test"]["pruned"][metric],
        "test_full": metrics["test"]["full"][metric], "equivariance_error": metrics["equivariance_error"],
        "gammas": metrics["gammas"], "multipliers": metrics["multipliers"], "slacks": metrics["slacks"],
        "wall_s": metrics.get("wall_time_s", 0.0), "history": curves, "resumed_after": list(resumed_after),
    }
