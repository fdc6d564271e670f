"""Callbacks of the :class:`~acezoo.training.trainer.Trainer`: the hooks, and the standard ones.

A callback subclasses :class:`Callback` and overrides the hooks it needs (every hook is a no-op).
The trainer calls its callbacks in list order, the standard ones first (:func:`standard_callbacks`:
checkpointing, pruning, early stopping, the progress bar), so a callback's
:meth:`~Callback.on_epoch_end` and :meth:`~Callback.on_interrupt` find the checkpoint of that
epoch on disk. A callback stops training by setting ``trainer.should_stop = True`` (checked at
the top of each epoch); the selected weights are then scored as after the last epoch.

This module imports nothing heavy (no torch): the hub defines its callbacks against it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acezoo.config.schema import ZooConfig
    from acezoo.training.trainer import Trainer

__all__ = ["Callback", "Checkpointing", "Pruning", "EarlyStopping", "StepFunction", "standard_callbacks"]


class Callback:
    """The hooks of a training run; every one is a no-op here."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch of :meth:`Trainer.fit` (also when it resumes a run)."""

    def on_step_end(self, trainer: Trainer, epoch: int, batch_in_epoch: int) -> None:
        """After every primal-dual step: ``epoch`` is the 0-based index of the epoch in progress,
        ``batch_in_epoch`` the number of its steps done."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After an epoch: ``record`` is the last entry of ``trainer.history``, and the resumable
        checkpoint of the epoch (training state and history) is in ``trainer.run_dir``."""

    def on_interrupt(self, trainer: Trainer) -> None:
        """On Ctrl-C during :meth:`Trainer.fit`, after the resumable checkpoint is written."""

    def on_failure(self, trainer: Trainer, exc: BaseException) -> None:
        """When :meth:`Trainer.fit` or :meth:`Trainer.finish` raises ``exc`` (e.g. a non-finite
        loss); the exception propagates after the callbacks."""

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After :meth:`Trainer.finish` scored the selected weights on the test split; ``metrics``
        as written to ``metrics.json``."""


class Checkpointing(Callback):
    """Writes the resumable checkpoint (training state and history) after every epoch and on Ctrl-C."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.save_checkpoint()

    def on_interrupt(self, trainer: Trainer) -> None:
        trainer.save_checkpoint()


class Pruning(Callback):
    """``constraints.prune_tol``: after the last step of an epoch (before its validation), prune
    the equality branches once every equality gamma has ``|gamma| <= tol``."""

    def __init__(self, tol: float) -> None:
        self.tol = tol

    def on_step_end(self, trainer: Trainer, epoch: int, batch_in_epoch: int) -> None:
        if trainer.pruned_at or batch_in_epoch < trainer.steps_per_epoch:
            return
        if trainer.engine.prune_feasible(self.tol):
            trainer.pruned_at = epoch + 1  # the epoch's record says "pruned"


class EarlyStopping(Callback):
    """``train.patience``: stop once the selection metric has not improved for ``patience`` epochs."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_fit_start(self, trainer: Trainer) -> None:
        self._check(trainer)  # a resumed run that had already run out of patience

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._check(trainer)

    def _check(self, trainer: Trainer) -> None:
        if trainer.bad_epochs >= self.patience:
            trainer.should_stop = True


class StepFunction(Callback):
    """Calls ``fn(epoch, batch_in_epoch)`` after every step (the ``on_step`` argument of ``train``)."""

    def __init__(self, fn: Callable[[int, int], None]) -> None:
        self.fn = fn

    def on_step_end(self, trainer: Trainer, epoch: int, batch_in_epoch: int) -> None:
        self.fn(epoch, batch_in_epoch)


def standard_callbacks(config: ZooConfig, progress: bool) -> list[Callback]:
    """The callbacks every :class:`Trainer` runs ahead of its own, in this order: checkpointing,
    pruning (``constraints.prune_tol``), early stopping (``train.patience``), the progress bar."""
    callbacks: list[Callback] = [Checkpointing()]
    if config.constraints.prune_tol is not None:
        callbacks.append(Pruning(config.constraints.prune_tol))
    if config.train.patience is not None:
        callbacks.append(EarlyStopping(config.train.patience))
    if progress:
        from acezoo.training.progress import ProgressBar

        callbacks.append(ProgressBar())
    return callbacks
