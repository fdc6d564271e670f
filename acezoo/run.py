"""Training runs as ``acezoo train`` and :func:`acezoo.train` start them: the
:class:`~acezoo.training.trainer.Trainer` with the hub's callbacks (MLflow tracking, the model card).

The training package does not import the hub; this module composes the two.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from acezoo.config.schema import ZooConfig
from acezoo.data.bundle import DataBundle
from acezoo.errors import CheckpointError, TrackingUnavailable
from acezoo.hub.card import CardCallback
from acezoo.hub.tracking import TrackingCallback, check_server
from acezoo.training import checkpoint as ckpt
from acezoo.training.callbacks import Callback, StepFunction
from acezoo.training.distributed import DistContext, init_from_env
from acezoo.training.trainer import Trainer, TrainingInterrupted, TrainResult, build_data, new_run_dir

__all__ = ["train", "TrainResult", "TrainingInterrupted", "build_data"]


def train(
    config: ZooConfig | None = None,
    *,
    resume: str | Path | None = None,
    overrides: tuple[str, ...] = (),
    run_dir: str | Path | None = None,
    data: DataBundle | None = None,
    progress: bool | None = None,
    on_step: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    keep_final_state: bool = False,
    callbacks: Sequence[Callback] = (),
    tracking_tags: dict[str, str] | None = None,
    tracking_run_name: str | None = None,
) -> TrainResult:
    """Train ``config`` (or continue the run in ``resume``) and score it on the test split.

    Args:
        config: the validated config; omit when resuming.
        resume: a run directory to continue exactly from its last checkpoint; ``overrides``
            (``key=value``) are applied to its stored config (e.g. ``train.epochs=200``).
        run_dir: where to write (default ``<train.output_dir>/<name>-<timestamp>``).
        data: a prebuilt data bundle (default: built from ``config.data``).
        progress: show a progress bar (default ``config.train.progress``).
        on_step: called as ``on_step(epoch_index, batch_in_epoch)`` after every step.
        log: receives one line describing the run before training starts (rank 0 only).
        keep_final_state: also return the weights, multipliers and slacks after the last
            step (before the selected weights are reloaded) in ``TrainResult.final_state``.
        callbacks: more trainer callbacks (:class:`~acezoo.training.callbacks.Callback`), run
            after the standard ones, the model card's and tracking's, and ``on_step``.
        tracking_tags: extra tags of a new MLflow run (e.g. ``mlflow.parentRunId`` for a study's trial).
        tracking_run_name: the new MLflow run's name (default: the run directory's).

    Under ``torchrun`` (``WORLD_SIZE > 1``) every rank calls this; see
    :mod:`acezoo.training.distributed`.

    Tracking (``train.tracking``) never stops a run once it has started: see
    :mod:`acezoo.hub.tracking`.

    Raises:
        TrainingInterrupted: on Ctrl-C, after writing a resumable checkpoint.
        TrainingDiverged: on a NaN/inf loss.
        TrackingUnavailable: tracking is on and its server does not answer (checked before any
            data is built).
    """
    device_name = (config.train.device if config is not None else "auto")
    ctx = init_from_env(prefer_cuda=device_name != "cpu")
    try:
        tracking = TrackingCallback(tracking_tags, tracking_run_name)
        return _train(ctx, config, resume, overrides, run_dir, data, progress, on_step, log, keep_final_state,
                      callbacks, tracking)
    finally:
        ctx.close()


def _check_tracking(ctx: DistContext, config: ZooConfig) -> None:
    """Rank 0 checks the tracking store; every rank raises :class:`TrackingUnavailable` if it does not answer."""
    problem = None
    if ctx.is_main:
        try:
            check_server(config)
        except TrackingUnavailable as exc:
            problem = str(exc)
    problem = ctx.broadcast(problem)
    if problem:
        raise TrackingUnavailable(problem)


def _train(ctx: DistContext, config: ZooConfig | None, resume: str | Path | None, overrides: tuple[str, ...],
           run_dir: str | Path | None, data: DataBundle | None, progress: bool | None,
           on_step: Callable[[int, int], None] | None, log: Callable[[str], None] | None,
           keep_final_state: bool, callbacks: Sequence[Callback], tracking: TrackingCallback) -> TrainResult:
    if resume is not None:
        resume = Path(resume)
        state_path = resume / ckpt.STATE_FILE
        if not state_path.is_file():
            raise CheckpointError(f"{resume}: nothing to resume (no {ckpt.STATE_FILE})")
        config = ckpt.stored_config(resume, overrides)
    elif config is None:
        raise TypeError("train() needs a config (or resume=RUN_DIR)")
    _check_tracking(ctx, config)  # an unusable tracking server is reported before any data is built
    # the card is written before tracking uploads the run directory
    all_callbacks = [CardCallback(), tracking, *([StepFunction(on_step)] if on_step else []), *callbacks]
    if resume is not None:
        trainer = Trainer(config, resume, data=data, progress=progress, callbacks=all_callbacks, dist=ctx)
        trainer.load_state(state_path)
        if overrides and ctx.is_main:
            ckpt.write_config(resume, config)  # the stored config describes the whole run
    else:
        target = ctx.broadcast(Path(run_dir) if run_dir is not None else new_run_dir(config))
        # builds everything before writing
        trainer = Trainer(config, target, data=data, progress=progress, callbacks=all_callbacks, dist=ctx)
        if ctx.is_main:
            target.mkdir(parents=True, exist_ok=True)
            ckpt.write_config(target, config)
    if log is not None and ctx.is_main:
        log(trainer.describe() + (f" [{ctx.world_size} processes]" if ctx.enabled else ""))
    trainer.fit()
    final = None
    if keep_final_state:
        final = {"weights": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
                 "multipliers": trainer.engine.multipliers(), "slacks": trainer.engine.slacks()}
    metrics = trainer.finish()
    return TrainResult(trainer.run_dir, metrics, trainer.history, trainer.model, final)
