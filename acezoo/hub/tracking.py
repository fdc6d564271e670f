"""MLflow tracking of training runs, which never costs a training run.

One MLflow run per acezoo run: params are the flattened resolved config, per-epoch metrics
are the trainer's history records (losses, validation metrics, every gamma, multiplier and
slack, the equivariance error; step = epoch), and at the end the test metrics and the whole
checkpoint directory (including the gamma/lambda plot) are logged as artifacts under
``checkpoint/``. A resumed acezoo run continues the same MLflow run.

Before any data is built, :func:`check_server` makes sure the store answers (within a few
seconds; else :class:`~acezoo.errors.TrackingUnavailable`, exit status 2). During the run every
call goes through an :class:`~acezoo.hub.outbox.Outbox`: the training loop never waits for the
server, and what the server does not take (it is down, restarting or slow) is kept and sent
when it answers again. At the end the tracker keeps trying for ``train.tracking_grace_s``
seconds; whatever is still unsent is named in a warning with the ``acezoo sync`` command that
uploads it from the run directory, which is complete in every case. ``tracking.json`` in the
run directory records the MLflow run id and whether the server has everything.

:class:`TrackingCallback` plugs a :class:`RunTracker` into the trainer.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shlex
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acezoo._version import __version__
from acezoo.config.schema import ZooConfig
from acezoo.errors import TrackingUnavailable
from acezoo.hub import store
from acezoo.hub.outbox import Item, Outbox
from acezoo.io.atomic import atomic_write_text
from acezoo.training.callbacks import Callback

if TYPE_CHECKING:
    from acezoo.training.trainer import Trainer

__all__ = ["RunTracker", "TrackingCallback", "flatten", "check_server", "read_note", "write_note", "run_tags", "params", "metric_entities",
           "epoch_values", "final_values", "log_params", "log_metrics", "summarize", "NOTE_FILE"]

logger = logging.getLogger(__name__)

NOTE_FILE = "tracking.json"
_MAX_PARAM = 500  # MLflow's limit on a param value's length
_INTERRUPT_GRACE_S = 5.0  # Ctrl-C: do not keep the user waiting long
# MLflow error codes of calls the server will never accept, however often they are retried
_PERMANENT = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "INVALID_STATE",
              "BAD_REQUEST", "PERMISSION_DENIED", "UNAUTHENTICATED", "NOT_FOUND"}


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}`` (lists kept as values)."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


# -- what is logged (shared with acezoo.hub.sync) ---------------------------------------------
def run_tags(config: ZooConfig, run_dir: Path) -> dict[str, str]:
    """The tags of a run's MLflow run."""
    return {
        "acezoo.version": __version__,
        "acezoo.arch": config.model.arch,
        "acezoo.dataset": config.data.dataset,
        "acezoo.mode": config.constraints.mode,
        "acezoo.run_dir": str(run_dir.resolve()),
    }


def params(config: ZooConfig) -> dict[str, str]:
    """The flattened config as MLflow params (values cut to MLflow's limit)."""
    return {k: str(v)[:_MAX_PARAM] for k, v in sorted(flatten(config.model_dump(mode="json")).items())}


def metric_entities(values: dict[str, Any], step: int, timestamp_ms: int | None = None) -> list[Any]:
    """MLflow ``Metric`` entities of the finite numbers in ``values``."""
    entities = store.import_mlflow().entities
    now = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return [
        entities.Metric(k, float(v), now, step)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    ]


def epoch_values(record: dict[str, Any]) -> dict[str, Any]:
    """One history record's metrics (its epoch is the step)."""
    return {k: v for k, v in record.items() if k != "epoch"}


def final_values(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics of ``metrics.json`` logged at the end of a run."""
    final = {f"test/{which}/{k}": v for which, d in metrics["test"].items() for k, v in d.items()}
    final.update({f"equivariance_error/{k}": v for k, v in metrics["equivariance_error"].items()})
    final.update({f"params/{k}": v for k, v in metrics["params"].items()})
    final.update({k: metrics[k] for k in ("best_epoch", "best_value", "wall_time_s")})
    return final


def log_params(client: Any, run_id: str, values: dict[str, str]) -> None:
    """Log params in requests of at most 100 (MLflow's limit)."""
    entities = store.import_mlflow().entities
    items = [entities.Param(k, v) for k, v in values.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def log_metrics(client: Any, uri: str, run_id: str, metrics: list[Any]) -> None:
    """Log ``metrics`` in requests of at most 1000 (MLflow's limit)."""
    with store.store_lock(uri):
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i : i + 1000])


def is_missing(exc: BaseException) -> bool:
    """True when MLflow says the run (or experiment) does not exist."""
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _permanent(exc: BaseException) -> bool:
    return getattr(exc, "error_code", "") in _PERMANENT or isinstance(exc, (TypeError, ValueError, KeyError))


# -- the note in the run directory ------------------------------------------------------------
def read_note(run_dir: Path) -> dict[str, Any]:
    """The run directory's ``tracking.json`` (empty when there is none or it is unreadable)."""
    try:
        note = json.loads((run_dir / NOTE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def write_note(run_dir: Path, **fields: Any) -> None:
    atomic_write_text(run_dir / NOTE_FILE, json.dumps(fields, indent=2) + "\n")


# -- start-up check ---------------------------------------------------------------------------
def check_server(config: ZooConfig) -> None:
    """Raise :class:`TrackingUnavailable` when tracking is on and its store does not answer."""
    if not config.train.tracking:
        return
    uri = store.tracking_uri(config.train.tracking_uri)
    reason = store.probe(uri)
    if reason is None:
        return
    if config.train.tracking_uri:
        source = "train.tracking_uri"
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        source = "$MLFLOW_TRACKING_URI"
    else:
        source = "the local store under $ACEZOO_HOME"
    raise TrackingUnavailable(
        f"cannot use the MLflow tracking {'server' if store.is_remote(uri) else 'store'} {uri} ({reason}). "
        f"Start it or correct {source}, "
        f"or train without tracking: train.tracking=false"
    )


# -- the tracker ------------------------------------------------------------------------------
class RunTracker:
    """Logs one training run to MLflow (no-op when ``config.train.tracking`` is false).

    Every method returns at once except :meth:`finish`, :meth:`interrupted` and
    :meth:`finish_failed`, which wait (at most ``train.tracking_grace_s``) for the queue to drain.
    """

    def __init__(self, config: ZooConfig, run_dir: Path, run_id: str | None = None,
                 tags: dict[str, str] | None = None, run_name: str | None = None) -> None:
        self.enabled = config.train.tracking
        self._extra_tags = dict(tags or {})  # e.g. mlflow.parentRunId: the run is a study's trial
        self._run_name = run_name
        self.run_dir = run_dir
        self._run_id = run_id
        self.unsent: list[str] = []
        if not self.enabled:
            return
        store.import_mlflow()
        self.uri = store.tracking_uri(config.train.tracking_uri)
        self.experiment = config.train.experiment
        self.grace_s = config.train.tracking_grace_s
        note = read_note(run_dir)
        if self._run_id is None and note.get("tracking_uri") == self.uri:
            self._run_id = note.get("run_id")  # a run killed before its first checkpoint
        self.client = store.client(self.uri)
        self._config = config
        self._token = uuid.uuid4().hex  # finds the run if a create_run's answer was lost
        self._create_tried = False
        self._params_sent = False
        self._note_lock = threading.Lock()
        self._closed = False
        self._outbox = Outbox(lambda ms: log_metrics(self.client, self.uri, self._require_run(), ms),
                              permanent=_permanent, on_down=self._on_down, on_up=self._on_up)
        if self._run_id is None:
            self._outbox.put(Item("the run and its params", send=self._create))
        else:
            self._outbox.put(Item("the run's status", send=self._reopen))

    @property
    def run_id(self) -> str | None:
        """The MLflow run id (``None`` until the server has created the run)."""
        return self._run_id

    # -- calls made by the sending thread --------------------------------------------------------
    def _require_run(self) -> str:
        if self._run_id is None:
            raise ValueError("no MLflow run to log to (creating it failed)")
        return self._run_id

    def _create(self) -> None:
        with store.store_lock(self.uri):
            if self._run_id is None:
                exp = store.experiment_id(self.client, self.experiment)
                if self._create_tried:  # the last try may have created it before failing
                    found = self.client.search_runs([exp], filter_string=f"tags.`acezoo.launch` = '{self._token}'")
                    self._run_id = found[0].info.run_id if found else None
                if self._run_id is None:
                    self._create_tried = True
                    tags = {**run_tags(self._config, self.run_dir), **self._extra_tags, "acezoo.launch": self._token}
                    self._run_id = self.client.create_run(exp, run_name=self._run_name or self.run_dir.name,
                                                          tags=tags).info.run_id
                self._note(complete=False)
            if not self._params_sent:
                log_params(self.client, self._run_id, params(self._config))
                self._params_sent = True

    def _reopen(self) -> None:
        try:
            with store.store_lock(self.uri):
                self.client.update_run(self._run_id, status="RUNNING")
        except Exception as exc:
            if not is_missing(exc):
                raise
            logger.warning("tracking: run %s is not on %s; logging the resumed run as a new MLflow run", self._run_id, self.uri)
            self._run_id = None
            self._create()

    def _terminate(self, status: str) -> None:
        with store.store_lock(self.uri):
            self.client.set_terminated(self._require_run(), status=status)

    def _upload(self, run_dir: Path) -> None:
        with store.store_lock(self.uri):
            self.client.log_artifacts(self._require_run(), str(run_dir), artifact_path="checkpoint")

    def _on_down(self, exc: BaseException) -> None:
        logger.warning("tracking server %s is not answering (%s); training goes on, and the tracking updates are "
                       "kept and sent when it answers again", self.uri, store.describe_failure(exc))

    def _on_up(self) -> None:
        logger.warning("tracking server %s answers again; sending the updates kept meanwhile", self.uri)

    def _note(self, complete: bool, unsent: list[str] | None = None) -> None:
        with self._note_lock:
            if self._closed and unsent is None:
                return
            write_note(self.run_dir, tracking_uri=self.uri, experiment=self.experiment, run_id=self._run_id,
                       complete=complete, unsent=unsent or [])

    # -- called by the trainer -------------------------------------------------------------------
    def log_epoch(self, record: dict[str, Any]) -> None:
        """Queue one history record at step = its epoch."""
        if self.enabled:
            epoch = int(record["epoch"])
            self._outbox.put(Item(f"epoch {epoch}", metrics=metric_entities(epoch_values(record), epoch)))

    def finish(self, metrics: dict[str, Any], run_dir: Path, status: str = "FINISHED") -> None:
        """Send the final metrics, the checkpoint directory and the status; wait for the queue."""
        if not self.enabled:
            return
        step = int(metrics.get("epochs_run", 0))
        self._outbox.put(Item("the final metrics", metrics=metric_entities(final_values(metrics), step)))
        self._outbox.put(Item("the checkpoint artifacts", send=lambda: self._upload(run_dir)))
        self._outbox.put(Item("the run's status", send=lambda: self._terminate(status)))
        self._close(self.grace_s)

    def interrupted(self) -> None:
        """Mark the run as killed (it can be resumed)."""
        if self.enabled:
            self._outbox.put(Item("the run's status", send=lambda: self._terminate("KILLED")))
            self._close(min(self.grace_s, _INTERRUPT_GRACE_S))

    def finish_failed(self) -> None:
        """Mark the run as failed (e.g. a NaN loss)."""
        if self.enabled:
            self._outbox.put(Item("the run's status", send=lambda: self._terminate("FAILED")))
            self._close(self.grace_s)

    def _close(self, grace_s: float) -> None:
        left = self._outbox.close(grace_s)
        refused = [what for what, _ in self._outbox.refused]
        self.unsent = _dedup(refused + left)
        with self._note_lock:
            self._closed = True
        self._note(complete=not self.unsent, unsent=self.unsent)
        if not self.unsent:
            return
        if left:
            error = self._outbox.last_error
            reason = (store.describe_failure(error) if error is not None
                      else f"no answer within train.tracking_grace_s = {grace_s:g} s")
        else:
            reason = "; ".join(sorted({why for _, why in self._outbox.refused}))
        logger.warning(
            "tracking: %s could not be sent to %s (%s). The run directory is complete; upload it when the server "
            "answers: acezoo sync %s --tracking-uri %s",
            summarize(self.unsent), self.uri, reason, shlex.quote(str(self.run_dir)), shlex.quote(self.uri))


class TrackingCallback(Callback):
    """Tracks a training run with a :class:`RunTracker` on rank 0 (a no-op tracker when
    ``train.tracking`` is false): every epoch's record, the end (final metrics, the run directory,
    FINISHED), Ctrl-C (KILLED) or a failure (FAILED). A resumed run continues its MLflow run (the
    id is kept in the trainer's checkpoint as ``trainer.tracking_run_id``)."""

    def __init__(self, tags: dict[str, str] | None = None, run_name: str | None = None) -> None:
        self.tracker: RunTracker | None = None
        self.tags, self.run_name = tags, run_name  # for a new MLflow run (e.g. a study's child run)

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.dist.is_main:
            self.tracker = RunTracker(trainer.config, trainer.run_dir, trainer.tracking_run_id, self.tags,
                                      self.run_name)
            trainer.tracking_run_id = self.tracker.run_id

    def on_step_end(self, trainer: Trainer, epoch: int, batch_in_epoch: int) -> None:
        if self.tracker is not None:  # the run id, once the server has created the run, goes into the checkpoints
            trainer.tracking_run_id = self.tracker.run_id

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.tracker is not None:
            self.tracker.log_epoch(record)

    def on_interrupt(self, trainer: Trainer) -> None:
        if self.tracker is not None:
            tracker, self.tracker = self.tracker, None
            tracker.interrupted()

    def on_failure(self, trainer: Trainer, exc: BaseException) -> None:
        if self.tracker is not None:
            tracker, self.tracker = self.tracker, None
            tracker.finish_failed()

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self.tracker is not None:
            tracker, self.tracker = self.tracker, None
            tracker.finish(metrics, trainer.run_dir)


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def summarize(whats: list[str]) -> str:
    """``["epoch 3", "epoch 4", "the final metrics"]`` -> ``"the metrics of epochs 3-4 and the final metrics"``."""
    epochs = sorted(int(w.split()[1]) for w in whats if w.startswith("epoch "))
    parts: list[str] = []
    if epochs:
        ranges, start, prev = [], epochs[0], epochs[0]
        for e in epochs[1:] + [None]:  # type: ignore[list-item]
            if e is not None and e == prev + 1:
                prev = e
                continue
            ranges.append(f"{start}" if start == prev else f"{start}-{prev}")
            if e is not None:
                start = prev = e
        parts.append(f"the metrics of epoch{'s' if len(epochs) > 1 else ''} {', '.join(ranges)}")
    parts += [w for w in whats if not w.startswith("epoch ")]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
