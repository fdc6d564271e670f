"""Where MLflow keeps runs and registered models, and how acezoo talks to it.

The tracking URI is, in order: an explicit argument (config ``train.tracking_uri`` or a CLI
option), ``$MLFLOW_TRACKING_URI``, else an embedded SQLite store at
``<data home>/mlflow/mlflow.db`` with artifacts under ``<data home>/mlflow/artifacts``.
MLflow's telemetry is switched off before MLflow is imported; nothing needs the network.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acezoo.paths import data_home

__all__ = ["import_mlflow", "tracking_uri", "client", "store_lock", "experiment_id", "is_local_store"]


def import_mlflow() -> Any:
    """Import MLflow with telemetry disabled."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)

    return mlflow


def _mlflow_home() -> Path:
    path = data_home() / "mlflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI to use (see the module docstring)."""
    if explicit:
        return explicit
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{_mlflow_home() / 'mlflow.db'}"


def is_local_store(uri: str) -> bool:
    """True for the embedded SQLite store (which acezoo serialises writers to)."""
    return uri.startswith("sqlite:")


def artifact_root() -> Path:
    path = _mlflow_home() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive inter-process lock around writes to a local SQLite store.

    SQLite allows one writer at a time and MLflow creates the schema on first use; two
    processes doing either at once can fail with "database is locked" or race the schema
    migration. A remote ``mlflow server`` serialises on its own, so no lock is taken there.
    """
    if not is_local_store(uri):
        yield
        return
    import fcntl

    with open(_mlflow_home() / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def client(uri: str | None = None) -> Any:
    """An ``MlflowClient`` for the resolved tracking URI (also used as registry URI)."""
    mlflow = import_mlflow()
    resolved = tracking_uri(uri)
    with store_lock(resolved):  # the first use of a SQLite store creates its schema
        c = mlflow.MlflowClient(tracking_uri=resolved, registry_uri=resolved)
        if is_local_store(resolved):
            c.search_experiments(max_results=1)
    return c


def experiment_id(c: Any, name: str) -> str:
    """The id of experiment ``name``, created if missing (local artifacts under the data home)."""
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    uri = c.tracking_uri if hasattr(c, "tracking_uri") else tracking_uri()
    location = (artifact_root() / name).as_uri() if is_local_store(uri) else None
    try:
        return c.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another process
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id
