"""MLflow tracking of training runs.

One MLflow run per acezoo run: params are the flattened resolved config, per-epoch metrics
are the trainer's history records (losses, validation metrics, every gamma, multiplier and
slack, the equivariance error; step = epoch), and at the end the test metrics and the whole
checkpoint directory (including the gamma/lambda plot) are logged as artifacts under
``checkpoint/``. A resumed acezoo run continues the same MLflow run.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from acezoo._version import __version__
from acezoo.config.schema import ZooConfig
from acezoo.hub import store

__all__ = ["RunTracker", "flatten"]

_MAX_PARAM = 500  # MLflow's limit on a param value's length


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}`` (lists kept as values)."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


class RunTracker:
    """Logs one training run to MLflow (no-op when ``config.train.tracking`` is false)."""

    def __init__(self, config: ZooConfig, run_dir: Path, run_id: str | None = None) -> None:
        self.enabled = config.train.tracking
        self.run_id = run_id
        if not self.enabled:
            return
        mlflow = store.import_mlflow()
        self._entities = mlflow.entities
        self.uri = store.tracking_uri(config.train.tracking_uri)
        self.client = store.client(self.uri)
        with store.store_lock(self.uri):
            if self.run_id is None:
                exp = store.experiment_id(self.client, config.train.experiment)
                tags = {
                    "acezoo.version": __version__,
                    "acezoo.arch": config.model.arch,
                    "acezoo.dataset": config.data.dataset,
                    "acezoo.mode": config.constraints.mode,
                    "acezoo.run_dir": str(run_dir.resolve()),
                }
                run = self.client.create_run(exp, run_name=run_dir.name, tags=tags)
                self.run_id = run.info.run_id
                params = flatten(config.model_dump(mode="json"))
                self.client.log_batch(
                    self.run_id,
                    params=[self._entities.Param(k, str(v)[:_MAX_PARAM]) for k, v in sorted(params.items())],
                )
            else:
                self.client.update_run(self.run_id, status="RUNNING")

    def _log(self, values: dict[str, Any], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [
            self._entities.Metric(k, float(v), now, step)
            for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        ]
        with store.store_lock(self.uri):
            for i in range(0, len(metrics), 1000):
                self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_epoch(self, record: dict[str, Any]) -> None:
        """Log one history record at step = its epoch."""
        if self.enabled:
            self._log({k: v for k, v in record.items() if k != "epoch"}, step=int(record["epoch"]))

    def finish(self, metrics: dict[str, Any], run_dir: Path, status: str = "FINISHED") -> None:
        """Log the final metrics and the checkpoint directory, and close the run."""
        if not self.enabled:
            return
        final = {f"test/{which}/{k}": v for which, d in metrics["test"].items() for k, v in d.items()}
        final.update({f"equivariance_error/{k}": v for k, v in metrics["equivariance_error"].items()})
        final.update({f"params/{k}": v for k, v in metrics["params"].items()})
        final.update({k: metrics[k] for k in ("best_epoch", "best_value", "wall_time_s")})
        self._log(final, step=int(metrics.get("epochs_run", 0)))
        with store.store_lock(self.uri):
            self.client.log_artifacts(self.run_id, str(run_dir), artifact_path="checkpoint")
            self.client.set_terminated(self.run_id, status=status)

    def interrupted(self) -> None:
        """Mark the run as killed (it can be resumed)."""
        self._terminate("KILLED")

    def finish_failed(self) -> None:
        """Mark the run as failed (e.g. a NaN loss)."""
        self._terminate("FAILED")

    def _terminate(self, status: str) -> None:
        if self.enabled:
            with store.store_lock(self.uri):
                self.client.set_terminated(self.run_id, status=status)
