"""Where MLflow keeps runs and registered models, and how acezoo talks to it.

The tracking URI is, in order: an explicit argument (config ``train.tracking_uri`` or a CLI
option), ``$MLFLOW_TRACKING_URI``, else an embedded SQLite store at
``<data home>/mlflow/mlflow.db`` with artifacts under ``<data home>/mlflow/artifacts``.
MLflow's telemetry is switched off before MLflow is imported; nothing needs the network.

HTTP calls to a tracking server are bounded: unless set in the environment, MLflow's timeout is
lowered to 10 s and its retries to 2 (MLflow's own defaults, 120 s and 7 retries with backoff,
let one call to a server that is down hang for about 4 minutes). :func:`probe` checks a store
within a few seconds, whatever the URI.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acezoo.paths import data_home

__all__ = ["import_mlflow", "tracking_uri", "client", "store_lock", "experiment_id", "is_local_store", "is_remote",
           "probe", "describe_failure", "PROBE_TIMEOUT_S"]

PROBE_TIMEOUT_S = 6.0  # :func:`probe` gives up after this long
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",  # seconds per connect / read
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # pauses of 0 and about 2 s between the tries
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # no "View run at" lines from the tracking thread
}


def import_mlflow() -> Any:
    """Import MLflow with telemetry disabled and bounded HTTP calls (see the module docstring)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    retries = logging.getLogger("urllib3.connectionpool")  # "Retrying ..." lines; acezoo reports outages itself
    if retries.level == logging.NOTSET:
        retries.setLevel(logging.ERROR)

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


def is_remote(uri: str) -> bool:
    """True for a store reached over the network (an ``mlflow server``, a database server)."""
    return not uri.startswith(("sqlite:", "file:")) and "://" in uri


def describe_failure(exc: BaseException) -> str:
    """A short reason for a failed call to a store (MLflow's messages run to several lines)."""
    text = str(exc)
    low = text.lower()
    http = re.search(r"endpoint (\S+) failed with error code (\d+)", text)
    if http:
        path, code = http.group(1), int(http.group(2))
        hint = {
            401: "; check the credentials: MLFLOW_TRACKING_USERNAME and _PASSWORD, or MLFLOW_TRACKING_TOKEN",
            403: "; check the credentials, and that the server's --allowed-hosts names this address",
        }.get(code, "; is this an MLflow tracking server?" if code in (404, 405, 501) else "")
        return f"HTTP {code} for {path}{hint}"
    if "connection refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return f"no answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
    if "name or service not known" in low or "nodename nor servname" in low or "name resolution" in low:
        return "unknown host"
    if "remotedisconnected" in low or "connection aborted" in low or "connection reset" in low:
        return "the connection was closed"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first if len(first) <= 240 else first[:237] + "..."


def probe(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Check that the store at ``uri`` answers MLflow's API: ``None`` when it does, else a short reason.

    A remote store gets at most ``timeout_s`` seconds (the check runs in a daemon thread that
    is left behind if the server never answers); the local SQLite store is checked inline.
    """
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            client(uri).search_experiments(max_results=1)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            outcome.append(exc)

    if not is_remote(uri):
        attempt()
    else:
        thread = threading.Thread(target=attempt, name="acezoo-probe", daemon=True)
        thread.start()
        thread.join(timeout_s)
    if not outcome:
        return f"no answer within {timeout_s:g} s"
    return None if outcome[0] is None else describe_failure(outcome[0])


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
