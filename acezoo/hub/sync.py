"""``acezoo sync RUN_DIR``: upload a run directory to a tracking server after the fact.

For a run whose tracking updates could not all be sent (the server was down at the end), or
one trained with ``train.tracking=false``. Sends what the server lacks: the params, the epochs
of ``history.json`` not logged yet, the final metrics of ``metrics.json``, the whole directory
as ``checkpoint/`` artifacts, and the status (``FINISHED``, or ``KILLED`` for a run that has no
``metrics.json`` yet). It continues the run's MLflow run when the server has it (the id in
``tracking.json``, or the ``acezoo.run_dir`` tag), else creates one; running it twice sends
nothing twice.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acezoo.config.loader import load_config
from acezoo.config.schema import ZooConfig
from acezoo.errors import AcezooError, CheckpointError, TrackingUnavailable
from acezoo.hub import store
from acezoo.hub.tracking import (epoch_values, final_values, log_metrics, log_params, metric_entities, params,
                                 read_note, run_tags, write_note)

__all__ = ["SyncReport", "sync_run"]

_CONFIG, _HISTORY, _METRICS = "config.yaml", "history.json", "metrics.json"


@dataclass
class SyncReport:
    """What :func:`sync_run` did."""

    uri: str
    experiment: str
    run_id: str
    created: bool  # a new MLflow run (the server had none for this directory)
    params: int  # params sent now
    epochs: int  # history records sent now (of ``total_epochs``)
    total_epochs: int
    final: bool  # the final metrics were sent now
    artifacts: int  # files uploaded
    status: str


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None


def _config(run_dir: Path) -> ZooConfig:
    if not (run_dir / _CONFIG).is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no {_CONFIG})")
    try:
        return load_config(run_dir / _CONFIG)
    except AcezooError as exc:
        raise CheckpointError(f"{run_dir / _CONFIG}: {exc}") from None


def _find_run(client: Any, uri: str, note: dict[str, Any], run_dir: Path, experiment: str) -> Any | None:
    if note.get("run_id") and note.get("tracking_uri") == uri:
        try:
            run = client.get_run(note["run_id"])
            if run.info.lifecycle_stage != "deleted":
                return run
        except Exception as exc:  # noqa: BLE001 - deleted on the server: look further
            if getattr(exc, "error_code", "") not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                raise
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    path = str(run_dir.resolve()).replace("'", "\\'")
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`acezoo.run_dir` = '{path}'",
                              order_by=["attributes.start_time ASC"], max_results=1)
    return runs[0] if runs else None


def sync_run(run_dir: str | Path, tracking_uri: str | None = None, experiment: str | None = None) -> SyncReport:
    """Send what the tracking server lacks of ``run_dir`` (see the module docstring).

    ``tracking_uri`` defaults to the one the run logged to (``tracking.json``), else the run's
    ``train.tracking_uri``, ``$MLFLOW_TRACKING_URI`` or the local store; ``experiment`` to the
    run's ``train.experiment``.
    """
    run_dir = Path(run_dir)
    config = _config(run_dir)
    history: list[dict[str, Any]] = _read_json(run_dir / _HISTORY, [])
    metrics: dict[str, Any] | None = _read_json(run_dir / _METRICS, None)
    note = read_note(run_dir)
    uri = tracking_uri or note.get("tracking_uri") or store.tracking_uri(config.train.tracking_uri)
    experiment = experiment or note.get("experiment") or config.train.experiment
    reason = store.probe(uri)
    if reason is not None:
        raise TrackingUnavailable(f"cannot use the MLflow tracking server {uri} ({reason}); nothing was sent. "
                                  "Start it, or name another with --tracking-uri")
    client = store.client(uri)
    with store.store_lock(uri):
        run = _find_run(client, uri, note, run_dir, experiment)
        created = run is None
        if run is None:
            exp = store.experiment_id(client, experiment)
            run = client.create_run(exp, run_name=run_dir.name, tags=run_tags(config, run_dir))
        run_id = run.info.run_id
        missing = {k: v for k, v in params(config).items() if k not in run.data.params}
        log_params(client, run_id, missing)
        logged = {m.step for m in client.get_metric_history(run_id, "train_loss")} if history else set()
    todo = [r for r in history if int(r["epoch"]) not in logged]
    batch = [m for r in todo for m in metric_entities(epoch_values(r), int(r["epoch"]))]
    final = metrics is not None and "best_value" not in run.data.metrics
    if final:
        batch += metric_entities(final_values(metrics), int(metrics.get("epochs_run", 0)))
    log_metrics(client, uri, run_id, batch)
    files = [p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
    status = "FINISHED" if metrics is not None else "KILLED"
    with store.store_lock(uri):
        client.log_artifacts(run_id, str(run_dir), artifact_path="checkpoint")
        client.set_terminated(run_id, status=status)
    write_note(run_dir, tracking_uri=uri, experiment=experiment, run_id=run_id, complete=True, unsent=[])
    return SyncReport(uri=uri, experiment=experiment, run_id=run_id, created=created, params=len(missing),
                      epochs=len(todo), total_epochs=len(history), final=final, artifacts=len(files), status=status)
