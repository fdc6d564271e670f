"""The epoch progress bar of a training run (tqdm), as a trainer callback."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from acezoo.training.callbacks import Callback

if TYPE_CHECKING:
    from acezoo.training.trainer import Trainer

__all__ = ["ProgressBar", "postfix"]


class ProgressBar(Callback):
    """One bar over the epochs: the training loss, the selection metric and max |gamma| of the last epoch."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.bar = tqdm(total=trainer.config.train.epochs, initial=trainer.epoch, desc=trainer.config.name,
                        unit="epoch", dynamic_ncols=True)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(postfix(record, trainer.data.task.metric, trainer.select_key), refresh=False)

    def on_interrupt(self, trainer: Trainer) -> None:
        self._close()

    def on_failure(self, trainer: Trainer, exc: BaseException) -> None:
        self._close()

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def postfix(record: dict[str, Any], metric: str, select_key: str) -> dict[str, str]:
    """The bar's postfix for one history record."""
    out = {"loss": f"{record['train_loss']:.4g}"}
    if f"{select_key}_{metric}" in record:
        out["val"] = f"{record[f'{select_key}_{metric}']:.4g}"
    gammas = [abs(v) for k, v in record.items() if k.startswith("gamma/")]
    if gammas:
        out["max|gamma|"] = f"{max(gammas):.3g}"
    return out
