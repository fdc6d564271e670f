"""Trial records: one JSON file per finished trial, ``<records>/results/<contender>-s<seed>.json``.

A record holds what the summary needs (best validation value and epoch, test metric of the
pruned and the full model, gammas, multipliers, slacks) and how the trial ran (wall time, the
epochs it resumed after). Its per-epoch curves (the bulk: every validation value, gamma,
multiplier and slack of every epoch) go to ``<records>/histories/<key>.json.gz`` (gzip with a
fixed timestamp, so the same history gives the same bytes), named by the record's
``history_file``; :func:`read_record` puts them back. Files are written whole (temporary file,
then rename), so a reader never sees half of one.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from acezoo.io.atomic import atomic_write

__all__ = ["trial_key", "record_path", "write_record", "read_record", "collect", "make_record", "CURVE_KEYS",
           "HISTORY_DIR", "split_history"]

HISTORY_DIR = "histories"

#: per-epoch keys a record keeps from the run's history (the curves of the summary's plots)
CURVE_KEYS = ("epoch", "train_loss", "time_s", "equivariance_error")
_CURVE_PREFIXES = ("val_", "gamma/", "multiplier/", "slack/")


def trial_key(contender: str, seed: int) -> str:
    """``strict-s0``: the name of one trial's record and of its Tune trial directory."""
    return f"{contender}-s{seed}"


def record_path(records: str | Path, contender: str, seed: int) -> Path:
    return Path(records) / "results" / f"{trial_key(contender, seed)}.json"


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def split_history(records: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record``'s history to its gzip file under ``records``; the record without it, naming the file."""
    if "history" not in record:
        return record
    key = trial_key(record["contender"], int(record["seed"]))
    name = f"{HISTORY_DIR}/{key}.json.gz"
    _write_bytes(Path(records) / name, gzip.compress(json.dumps(record["history"]).encode(), mtime=0))
    return {**{k: v for k, v in record.items() if k != "history"}, "history_file": name}


def write_record(records: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically to its place under ``records`` (its history to its own gzip
    file, first); returns the record's path."""
    path = record_path(records, record["contender"], int(record["seed"]))
    _write_bytes(path, json.dumps(split_history(records, record)).encode())
    return path


def read_record(records: str | Path, contender: str, seed: int) -> dict[str, Any] | None:
    """The record of one trial with its history, or None if the trial has not finished."""
    path = record_path(records, contender, seed)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if "history_file" in record:
        record["history"] = json.loads(gzip.decompress((Path(records) / record.pop("history_file")).read_bytes()))
    return record


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
