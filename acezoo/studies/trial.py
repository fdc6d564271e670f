"""One study trial (one contender, one seed) as a Ray Tune function trainable.

The trial trains in a local scratch run directory and, after every epoch, reports that epoch's
metrics and the whole resumable run directory to Tune as its checkpoint (Tune persists it to
the study's storage). It starts from, in order: the checkpoint Tune hands back when it retries
the trial after its worker died; else the newest checkpoint of the same trial in the storage
(left by an interrupted earlier run of the study); else the last state of the same trial of the
study this one continues (``continues:``, see :mod:`acezoo.studies.continuation`); else from
scratch. The trainer resumes exactly (same batches, same random numbers), so a resumed trial
ends with the same weights as one that was never interrupted (bit for bit on one CPU thread).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from acezoo.studies.records import make_record
from acezoo.studies.storage import MARKER_FILE, Storage
from acezoo.training.callbacks import Callback

__all__ = ["run_trial", "TuneReporter", "trial_plan"]


def trial_plan(base: str, overrides_by_key: dict[str, list[str]], contender_overrides: dict[str, list[str]],
               storage: str, study: str, cpus: int, gpus: float,
               tracking_tags: dict[str, dict[str, str]] | None = None,
               continue_from: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything a trial needs, as plain data (sent to every Ray worker). ``continue_from``: the
    trials that start from an earlier study's last state, ``{key: {"source", "epochs", "from"}}``."""
    return {"base": base, "overrides": overrides_by_key, "contender_overrides": contender_overrides,
            "storage": storage, "study": study, "cpus": cpus, "gpus": gpus, "tracking_tags": tracking_tags or {},
            "continue_from": continue_from or {}}


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TuneReporter(Callback):
    """Reports every epoch's metrics and the run directory (its checkpoint) to Ray Tune."""

    def __init__(self, key: str, resumed_after: list[int]) -> None:
        self.key = key
        self.resumed_after = resumed_after

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        from ray import tune

        marker = {"key": self.key, "epoch": int(record["epoch"]), "resumed_after": self.resumed_after}
        (Path(trainer.run_dir) / MARKER_FILE).write_text(json.dumps(marker))
        tune.report({**_scalars(record), "trial": self.key}, checkpoint=tune.Checkpoint.from_directory(trainer.run_dir))


def _continue(source: dict[str, Any], key: str, run_dir: Path, conf: Any) -> list[int]:
    """Start ``run_dir`` from an earlier study's last state of the same trial, under this trial's
    config (the larger budget); its MLflow run is not continued (this trial tracks its own)."""
    from acezoo.io.tree import load_tree, save_tree
    from acezoo.run_layout import STATE_FILE
    from acezoo.training import checkpoint as ckpt

    shutil.copytree(source["source"], run_dir)
    ckpt.write_config(run_dir, conf)
    state = load_tree(run_dir / STATE_FILE)
    state["mlflow_run_id"] = None
    save_tree(run_dir / STATE_FILE, state)
    epochs = int(source["epochs"])
    (run_dir / MARKER_FILE).write_text(json.dumps({"key": key, "epoch": epochs, "resumed_after": []}))
    return [epochs]


def _start_from(storage: Storage, key: str, run_dir: Path, plan: dict[str, Any], conf: Any) -> list[int]:
    """Put the newest checkpoint of ``key`` into ``run_dir``; the epochs it resumed after (empty: fresh)."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        checkpoint.to_directory(str(run_dir))
    else:
        newest = storage.newest_checkpoint(key)
        if newest is None:
            source = plan.get("continue_from", {}).get(key)
            return _continue(source, key, run_dir, conf) if source else []
        storage.download(newest[0], run_dir)
    marker = json.loads((run_dir / MARKER_FILE).read_text())
    return [*marker.get("resumed_after", []), int(marker["epoch"])]


def _diverged_record(key: str, contender: str, seed: int, overrides: list[str], run_dir: Path, data: Any,
                     message: str, where: str) -> dict[str, Any]:
    """A trial stopped by a non-finite loss: its best validated weights scored by the same rule (a
    zero-epoch resume from its last good checkpoint), or no score if it diverged before its first validation."""
    from acezoo.run_layout import HISTORY_FILE, WEIGHTS_FILE
    from acezoo.run import train

    if (run_dir / WEIGHTS_FILE).exists():
        done = json.loads((run_dir / HISTORY_FILE).read_text())[-1]["epoch"]
        result = train(resume=run_dir, overrides=(f"train.epochs={done}",), data=data, progress=False)
        record = make_record(contender, seed, overrides, result.metrics, result.history, where)
    else:
        nan = float("nan")
        record = {"contender": contender, "seed": seed, "overrides": overrides, "run_dir": where, "metric": "",
                  "selected_on": "", "best_val": float("inf"), "best_epoch": 0, "epochs_run": 0, "test_pruned": nan,
                  "test_full": nan, "equivariance_error": {}, "gammas": {}, "multipliers": {}, "slacks": {},
                  "wall_s": 0.0, "history": [], "resumed_after": []}
    record["diverged"] = message
    return record


def run_trial(config: dict[str, Any], plan: dict[str, Any]) -> None:
    """The Tune trainable: ``config["key"]`` names the trial (``<contender>-s<seed>``) in ``plan``."""
    import torch
    from ray import tune

    from acezoo.config.loader import load_config
    from acezoo.errors import TrainingDiverged
    from acezoo.run import build_data, train

    key = config["key"]
    contender, _, seed_text = key.rpartition("-s")
    seed = int(seed_text)
    storage = Storage(plan["storage"], plan["study"])
    torch.set_num_threads(plan["cpus"])
    extra = [f"train.num_threads={plan['cpus']}", "train.progress=false",
             f"train.device={'cuda' if plan['gpus'] > 0 else 'cpu'}"]
    conf = load_config(plan["base"], [*plan["overrides"][key], *extra])
    data = build_data(conf)
    scratch = Path(tempfile.mkdtemp(prefix=f"acezoo-{key}-"))
    run_dir = scratch / key
    where = storage.trial_uri(key)
    try:
        resumed_after = _start_from(storage, key, run_dir, plan, conf)
        reporter = TuneReporter(key, resumed_after)
        tracking = {"tracking_tags": plan["tracking_tags"].get(key) or None, "tracking_run_name": key}
        try:
            if resumed_after:
                result = train(resume=run_dir, data=data, progress=False, callbacks=[reporter], **tracking)
            else:
                result = train(conf, run_dir=run_dir, data=data, progress=False, callbacks=[reporter], **tracking)
            record = make_record(contender, seed, plan["contender_overrides"][contender], result.metrics,
                                 result.history, where, resumed_after)
        except TrainingDiverged as exc:
            record = _diverged_record(key, contender, seed, plan["contender_overrides"][contender], run_dir, data,
                                      str(exc), where)
        if key in plan.get("continue_from", {}):
            record["continued_from"] = plan["continue_from"][key]["from"]
        storage.write_record(key, record)
        (run_dir / MARKER_FILE).write_text(json.dumps({"key": key, "epoch": record["epochs_run"],
                                                        "resumed_after": resumed_after, "finished": True}))
        tune.report({"trial": key, "finished": 1, "record": json.dumps(record)},
                    checkpoint=tune.Checkpoint.from_directory(str(run_dir)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
