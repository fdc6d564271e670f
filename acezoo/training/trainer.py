"""The shared primal-dual trainer used by every architecture.

Per epoch: primal-dual steps over shuffled mini-batches (see :mod:`acezoo.constraints`),
then validation of the equivariant-only model (gamma treated as 0) and of the full model,
the full model's equivariance error, and every gamma, multiplier and slack. Model selection
and early stopping use the equivariant-only validation loss by default (the full model's in
``free`` and ``resilient`` modes, whose deliverable is the full model; ``train.select_on``
chooses). At the end the selected weights are scored on the test split, pruned (branches
removed) and full.

:class:`Trainer` runs the loop; what happens around it is done by callbacks
(:mod:`acezoo.training.callbacks`): a checkpoint of the whole training state after every epoch
and on Ctrl-C, from which :meth:`Trainer.load_state` continues exactly (same batches, same random
numbers), pruning, early stopping and the progress bar; tracking and the model card are the hub's
(:func:`acezoo.run.train` adds them).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import inspect
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acezoo import registry
from acezoo.compiler import RelaxedModel, compile_model
from acezoo.config.schema import ZooConfig
from acezoo.constraints.engine import PrimalDual
from acezoo.data.bundle import DataBundle
from acezoo.errors import CheckpointError, ConfigError, TrainingDiverged
from acezoo.io.tree import load_tree, save_tree
from acezoo.symmetry import equivariance_error, symmetry_for
from acezoo.training import checkpoint as ckpt
from acezoo.training.allocator import keep_freed_memory
from acezoo.training.batches import collate, epoch_indices
from acezoo.training.callbacks import Callback, standard_callbacks
from acezoo.training.device import resolve_device
from acezoo.training.distributed import DistContext, shard
from acezoo.training.evaluate import evaluate, evaluate_pair, score
from acezoo.training.optimisation import build_engine, fused_default, gradient_clipper

__all__ = ["Trainer", "TrainResult", "TrainingInterrupted", "build_data", "new_run_dir", "selected_duals"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; a resumable checkpoint was written to ``run_dir``."""

    def __init__(self, run_dir: Path, epoch: int, step: int) -> None:
        super().__init__(f"interrupted at epoch {epoch}, step {step}; checkpoint in {run_dir}")
        self.run_dir, self.epoch, self.step = run_dir, epoch, step


@dataclass
class TrainResult:
    """What :func:`acezoo.run.train` returns."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    model: RelaxedModel = field(repr=False)
    final_state: dict[str, Any] | None = field(default=None, repr=False)


def build_data(config: ZooConfig, progress: bool = False) -> DataBundle:
    """Build the configured data set through the registry (``progress``: bars on long first builds,
    for builders that take a ``progress`` argument)."""
    builder = registry.get_dataset(config.data.dataset).builder
    if progress and "progress" in inspect.signature(builder).parameters:
        return builder(config.data, progress=True)
    return builder(config.data)


def _autocast_factory(device: torch.device, amp: bool) -> Callable[[], Any]:
    """A context factory: bfloat16 autocast on ``device`` when ``amp`` (else a no-op)."""
    if not amp:
        return contextlib.nullcontext
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError([("train.amp", f"{torch.cuda.get_device_name(device)} has no bfloat16 support; set "
                                         "train.amp=false")])
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _make_deterministic() -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def new_run_dir(config: ZooConfig) -> Path:
    """A new run directory ``<train.output_dir>/<name>-<timestamp>`` (not created)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(config.train.output_dir) / f"{config.name}-{stamp}"
    run_dir, k = base, 1
    while run_dir.exists():
        k += 1
        run_dir = base.with_name(f"{base.name}-{k}")
    return run_dir


def _select_key(config: ZooConfig) -> str:
    choice = config.train.select_on
    if choice == "auto":
        choice = "full" if config.constraints.mode in ("free", "resilient", "error_budget", "penalty") else "equivariant"
    return "val_full" if choice == "full" else "val_eq"


class Trainer:
    """One training run: its model, data, primal-dual engine and progress.

    ``Trainer(config, run_dir).fit()`` trains (``load_state`` first to continue a run), then
    :meth:`finish` scores the selected weights on the test split and writes ``metrics.json``.
    The trainer writes into ``run_dir`` but does not create it or its ``config.yaml``
    (:func:`acezoo.run.train` does both).

    Args:
        config: the validated config.
        run_dir: the run directory.
        data: a prebuilt data bundle (default: built from ``config.data``).
        progress: show a progress bar (default ``config.train.progress``; rank 0 only).
        callbacks: run after the standard ones (:func:`~acezoo.training.callbacks.standard_callbacks`),
            in this order; see :class:`~acezoo.training.callbacks.Callback`.
        dist: the process group under ``torchrun`` (default: one process).

    Attributes beside the arguments: ``model`` (the relaxed model), ``engine`` (the primal-dual
    engine), ``device``, ``history`` (one record per epoch), ``epoch`` (epochs completed),
    ``batch_in_epoch``, ``steps_per_epoch``, ``best`` (``{"value", "epoch"}`` of the selected
    epoch), ``bad_epochs`` (epochs since the selection metric last improved), ``pruned_at``,
    ``select_key``, ``wall`` (seconds trained), ``should_stop`` (set it to end training before the
    next epoch), ``tracking_run_id`` (kept in the checkpoint for a tracking callback).
    """

    def __init__(self, config: ZooConfig, run_dir: str | Path, *, data: DataBundle | None = None,
                 progress: bool | None = None, callbacks: Sequence[Callback] = (),
                 dist: DistContext | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        tc = config.train
        if tc.num_threads:
            torch.set_num_threads(tc.num_threads)
        self.dist = dist or DistContext()
        self.device = resolve_device(tc.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        if tc.keep_freed_memory and self.device.type == "cpu":
            keep_freed_memory()
        self.progress = (tc.progress if progress is None else progress) and self.dist.is_main
        _seed_everything(config.seed)
        if tc.deterministic:
            _make_deterministic()
        self.model = compile_model(config).to(self.device)  # config errors surface before data work
        self.autocast = _autocast_factory(self.device, tc.amp)
        self.forward = torch.compile(self.model, backend=tc.compile_backend) if tc.compile else self.model
        # validation scores the equivariant-only and the full model in one pass where the network can
        self.forward_both = None
        if self.model.has_forward_both:
            both = self.model.net.forward_both
            self.forward_both = torch.compile(both, backend=tc.compile_backend) if tc.compile else both
        self.data = data if data is not None else build_data(config, self.progress)
        self.steps_per_epoch = -(-len(self.data.train) // tc.batch_size)
        self.engine = self.build_engine()
        self.loader_gen = torch.Generator().manual_seed(config.seed)
        self.defect_gen = torch.Generator().manual_seed(config.seed + 7919)  # group elements (error_budget)
        self._n_local = 1.0
        self.symmetry = symmetry_for(config.model)
        self.eq_batch = collate(self.data.val, torch.arange(min(len(self.data.val), 100))).to(self.device)
        self.select_key = _select_key(config)
        # progress of the run
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0
        self.epoch_gen_state = self.loader_gen.get_state()
        self.partial = [0.0, 0.0, 0]  # loss sum, lagrangian sum, steps in the current epoch
        self.history: list[dict[str, Any]] = []
        self.best = {"value": float("inf"), "epoch": 0}
        self.bad_epochs = 0
        self.pruned_at = 0  # epoch after which the equality branches were pruned (constraints.prune_tol)
        self.wall = 0.0
        self.should_stop = False
        self.tracking_run_id: str | None = None
        self.callbacks: list[Callback] = [*standard_callbacks(config, self.progress), *callbacks]

    def build_engine(self, fused: bool | None = None) -> PrimalDual:
        """The primal-dual engine of this run (``fused``: one Adam kernel over every parameter, the
        same update to round-off; default where the device has it)."""
        if fused is None:
            fused = fused_default(self.device)
        return build_engine(self.model, self.config, self.config.train.epochs * self.steps_per_epoch, fused,
                            reduce_defect=self._mean_over_ranks)

    def _emit(self, hook: str, *args: Any) -> None:
        """Call ``hook`` of every callback, in order."""
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def describe(self) -> str:
        """One line: what is trained, on what, where it is written."""
        c, m = self.config, self.model
        counts = m.parameter_counts()
        n_full, n_eq = counts["full"], counts["pruned"]
        sizes = "/".join(str(len(d)) for d in (self.data.train, self.data.val, self.data.test))
        start = f", resuming after epoch {self.epoch}" if self.epoch or self.batch_in_epoch else ""
        return (f"{c.name}: {c.model.arch} ({n_full:,} params, {n_eq:,} when pruned, {len(m.named_gammas())} gammas), "
                f"{c.data.dataset} {sizes}, mode {c.constraints.mode}, {self.device}{start} -> {self.run_dir}")

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly (what ``train_state.safetensors`` holds)."""
        return {
            "format": 1,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "epoch_gen_state": self.epoch_gen_state,
            "loader_gen": self.loader_gen.get_state(),
            "defect_gen": self.defect_gen.get_state(),
            "partial": list(self.partial),
            "model": self.model.state_dict(),
            "engine": self.engine.state_dict(),
            "rng": _rng_state(),
            "history": json.dumps(self.history),
            "best": dict(self.best),
            "bad_epochs": self.bad_epochs,
            "pruned_at": self.pruned_at,
            "wall": self.wall,
            "mlflow_run_id": self.tracking_run_id,
        }

    def save_state(self) -> None:
        """Write :meth:`state` to the run directory (rank 0)."""
        if self.dist.is_main:
            save_tree(self.run_dir / ckpt.STATE_FILE, self.state())

    def save_checkpoint(self) -> None:
        """Write the resumable checkpoint: the training state, then the history (rank 0)."""
        self.save_state()
        if self.dist.is_main:
            ckpt.write_json(self.run_dir / ckpt.HISTORY_FILE, self.history)

    def load_state(self, path: str | Path) -> None:
        """Continue from a training state written by :meth:`save_state`."""
        path = Path(path)
        try:
            s = load_tree(path)
            self.model.load_state_dict(s["model"], strict=True)
            self.engine.load_state_dict(s["engine"])
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            raise CheckpointError(f"{path}: cannot resume from this training state ({exc})") from None
        self.epoch, self.batch_in_epoch = int(s["epoch"]), int(s["batch_in_epoch"])
        self.epoch_gen_state = s["epoch_gen_state"]
        self.loader_gen.set_state(s["loader_gen"])
        if "defect_gen" in s:
            self.defect_gen.set_state(s["defect_gen"])
        self.partial = [float(s["partial"][0]), float(s["partial"][1]), int(s["partial"][2])]
        self.history = json.loads(s["history"])
        self.best = {"value": float(s["best"]["value"]), "epoch": int(s["best"]["epoch"])}
        self.bad_epochs = int(s["bad_epochs"])
        self.pruned_at = int(s.get("pruned_at", 0))
        if self.pruned_at:
            self.engine.apply_pruning()
        self.wall = float(s["wall"])
        self.tracking_run_id = s.get("mlflow_run_id")
        _set_rng_state(s["rng"])

    # -- one epoch --------------------------------------------------------------------------
    def _clip(self) -> Callable[[], None] | None:
        return gradient_clipper(self.model, self.config.train.grad_clip)

    def _loss(self, batch: Any) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The task loss of one batch: forward under autocast when ``train.amp``, loss in float32.

        In ``error_budget`` and ``penalty`` modes also the equivariance defect of the full model for a random
        group element g, ``mean((f(g.x) - g.f(x))^2)`` in the loss's units (a second forward
        pass). It is a mean over samples, so the ranks' defects combine exactly; g (drawn from
        a generator seeded alike on every rank) moves no node to another position, since
        permutations are kept exactly by every per-node branch.
        """
        with self.autocast():
            pred = self.forward(batch)
            if self.engine.needs_defect:
                g = self.symmetry.sample(batch, self.defect_gen, permute=False)
                moved = self.forward(self.symmetry.act_input(batch, g))
        loss = self.data.task.loss(pred.float(), batch)
        if not self.engine.needs_defect:
            return loss
        target = self.symmetry.act_output(pred.float(), g)
        defect = (moved.float() - target).pow(2).mean()
        return loss, defect

    def _mean_over_ranks(self, defect: torch.Tensor) -> torch.Tensor:
        """This rank's defect -> the sample-weighted mean over all ranks."""
        if not self.dist.enabled:
            return defect
        total, count = self.dist.all_sum([float(defect) * self._n_local, self._n_local])
        return torch.tensor(total / max(count, 1e-12), dtype=defect.dtype, device=defect.device)

    def _sync_then(self, clip: Callable[[], None] | None, params: list[torch.nn.Parameter], n_local: float,
                   n_global: int) -> Callable[[], None]:
        """Between backward and the primal step: combine the ranks' gradients, then clip."""

        def hook() -> None:
            self.dist.sync_gradients(params, n_local, n_global)
            if clip is not None:
                clip()

        return hook

    def _set_lr(self) -> None:
        """The primal learning rate of this epoch (``train.lr_schedule``; derived from the epoch
        index alone, so a resumed run continues the same schedule)."""
        tc = self.config.train
        factor = 1.0 if tc.lr_schedule == "constant" else 0.5 * (1.0 + math.cos(math.pi * self.epoch / tc.epochs))
        for group in self.engine.primal.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor

    def run_epoch(self) -> tuple[float, float]:
        """The remaining steps of the current epoch (``on_step_end`` after each); then the epoch
        counts as completed. Returns its mean training loss and mean Lagrangian."""
        tc = self.config.train
        step_callbacks = [c for c in self.callbacks if type(c).on_step_end is not Callback.on_step_end]
        if self.batch_in_epoch == 0:
            self.epoch_gen_state = self.loader_gen.get_state()
        else:  # resuming mid-epoch: replay the same order, skip the batches already done
            self.loader_gen.set_state(self.epoch_gen_state)
        self.model.train()
        self._set_lr()
        clip = self._clip()
        params = [p for p in self.model.parameters() if p.requires_grad] + [self.engine.slack]
        for idx in epoch_indices(len(self.data.train), tc.batch_size, self.loader_gen, skip=self.batch_in_epoch):
            local = shard(idx, self.dist)
            weight = 1.0
            if len(local) == 0:  # a last global batch smaller than the world: contribute nothing
                local, weight = idx[:1], 0.0
            batch = collate(self.data.train, local)
            if self.device.type == "cuda":
                batch = batch.pin_memory()
            batch = batch.to(self.device, non_blocking=True)
            self._n_local = len(local) * weight
            hook = self._sync_then(clip, params, len(local) * weight, len(idx)) if self.dist.enabled else clip
            try:
                result = self.engine.step(lambda: self._loss(batch), hook)
                self.dist.average_buffers(self.model)
            except FloatingPointError as exc:
                raise TrainingDiverged(
                    f"training diverged at epoch {self.epoch + 1}, step {self.batch_in_epoch + 1}: {exc}. "
                    f"Gammas: {_fmt(self.model.gamma_values())}. Try a smaller train.lr or set train.grad_clip; "
                    f"the last good checkpoint is in {self.run_dir}."
                ) from None
            self.partial[0] += result.loss
            self.partial[1] += result.lagrangian
            self.partial[2] += 1
            self.batch_in_epoch += 1
            for callback in step_callbacks:
                callback.on_step_end(self, self.epoch, self.batch_in_epoch)
        n = max(1, self.partial[2])
        means = self.partial[0] / n, self.partial[1] / n
        self.epoch += 1
        self.batch_in_epoch = 0
        self.partial = [0.0, 0.0, 0]
        return means

    def validate(self) -> dict[str, Any]:
        """Validation metrics of the equivariant-only and the full model, the equivariance error,
        and every gamma, multiplier and slack (one history record's worth)."""
        task, dev, bs = self.data.task, self.device, max(500, self.config.train.batch_size)
        self.model.eval()
        net = self.forward  # the compiled model with `train.compile` (the same weights)
        blocks = self.model.relaxed_blocks().values()
        if all(b.equivariant_only for b in blocks):  # strict, or every branch pruned: one model
            val_eq = val_full = evaluate(net, self.data.val, task, dev, bs)
        elif self.forward_both is not None:
            val_eq, val_full = evaluate_pair(self.forward_both, self.data.val, task, dev, bs)
        else:
            with self.model.equivariant_only():
                val_eq = evaluate(net, self.data.val, task, dev, bs)
            val_full = evaluate(net, self.data.val, task, dev, bs)
        gen = torch.Generator().manual_seed(1234)
        with torch.no_grad():
            eq_err = equivariance_error(net, self.eq_batch, self.symmetry, gen)
        record: dict[str, Any] = {}
        record.update({f"val_eq_{k}": v for k, v in val_eq.items()})
        record.update({f"val_full_{k}": v for k, v in val_full.items()})
        record["equivariance_error"] = eq_err
        record.update({f"gamma/{k}": v for k, v in self.model.gamma_values().items()})
        record.update({f"multiplier/{k}": v for k, v in self.engine.multipliers().items()})
        record.update({f"slack/{k}": v for k, v in self.engine.slacks().items()})
        return record

    # -- the run ----------------------------------------------------------------------------
    def fit(self) -> None:
        """Train until ``train.epochs`` epochs are completed or ``should_stop`` is set.

        Raises:
            TrainingInterrupted: on Ctrl-C, after the callbacks' ``on_interrupt`` (the standard
                checkpointing writes a resumable checkpoint first).
            TrainingDiverged: on a non-finite loss, after the callbacks' ``on_failure``.
        """
        try:
            self._emit("on_fit_start")
            while self.epoch < self.config.train.epochs and not self.should_stop:
                record = self._epoch()
                self._emit("on_epoch_end", record)
        except KeyboardInterrupt:
            self._emit("on_interrupt")
            raise TrainingInterrupted(self.run_dir, self.epoch + 1, self.batch_in_epoch) from None
        except Exception as exc:
            self._emit("on_failure", exc)
            raise

    def _epoch(self) -> dict[str, Any]:
        """Train one epoch, validate when due, keep the best weights; the record is appended to the history."""
        tc = self.config.train
        start = time.perf_counter()
        train_loss, lagrangian = self.run_epoch()
        record: dict[str, Any] = {"epoch": self.epoch, "train_loss": train_loss, "lagrangian": lagrangian,
                                  "lr": self.engine.primal.param_groups[0]["lr"]}
        if self.pruned_at == self.epoch:
            record["pruned"] = True
        if self.engine.measured_defect() is not None:
            record["train_equivariance_defect"] = self.engine.measured_defect()
        if self.epoch % tc.eval_every == 0 or self.epoch == tc.epochs:
            record.update(self.validate())
            self._select(record[f"{self.select_key}_{self.data.task.metric}"])
        self.wall += time.perf_counter() - start
        record["time_s"] = self.wall
        self.history.append(record)
        return record

    def _select(self, value: float) -> None:
        """Model selection: keep the weights of the best validation ``value`` so far (rank 0 writes them)."""
        if value < self.best["value"]:
            self.best = {"value": value, "epoch": self.epoch}
            self.bad_epochs = 0
            if self.dist.is_main:
                ckpt.save_weights(self.run_dir / ckpt.WEIGHTS_FILE, self.model.state_dict())
        else:
            self.bad_epochs += self.config.train.eval_every

    def finish(self) -> dict[str, Any]:
        """Score the selected weights on the test split and write ``metrics.json`` and the plot
        (rank 0; the other ranks receive its metrics); then the callbacks' ``on_fit_end``.
        Returns the metrics."""
        try:
            self.dist.barrier()
            metrics = self._finish() if self.dist.is_main else None
            metrics = self.dist.broadcast(metrics)
            self._emit("on_fit_end", metrics)
        except Exception as exc:
            self._emit("on_failure", exc)
            raise
        return metrics

    def _duals(self, last: dict[str, Any]) -> dict[str, Any]:
        """The gammas, multipliers and slacks of the selected epoch (whose weights are scored on the
        test split), with ``duals_epoch`` saying which epoch that is; ``last_epoch`` holds ``last``,
        the values after the last epoch, where they differ."""
        chosen = selected_duals(self.history, self.best["epoch"]) if self.best["epoch"] else None
        if chosen is None:  # no epoch was selected (no validation improved): the run's last state
            return {**last, "duals_epoch": self.epoch}
        out = {**chosen, "duals_epoch": self.best["epoch"]}
        if chosen != last:
            out["last_epoch"] = {"epoch": self.epoch, **last}
        return out

    def _finish(self) -> dict[str, Any]:
        task, dev, bs = self.data.task, self.device, max(500, self.config.train.batch_size)
        last = {"gammas": self.model.gamma_values(), "multipliers": self.engine.multipliers(),
                "slacks": self.engine.slacks()}  # after the last epoch, before the selected weights return
        if (self.run_dir / ckpt.WEIGHTS_FILE).exists():
            ckpt.load_weights(self.model, self.run_dir / ckpt.WEIGHTS_FILE)
        metrics = {
            **score(self.model, self.data.test, task, self.symmetry, dev, bs),
            "selected_on": f"{self.select_key}_{task.metric}",
            "best_epoch": self.best["epoch"],
            "best_value": self.best["value"],
            "epochs_run": self.epoch,
            **({"branches_pruned_at_epoch": self.pruned_at} if self.pruned_at else {}),
            "mode": self.config.constraints.mode,
            **self._duals(last),
            "params": self.model.parameter_counts(),
            "wall_time_s": self.wall,
            "device": str(self.device),
        }
        if self.data.info.get("unit"):
            metrics["unit"] = self.data.info["unit"]  # of the test metric (e.g. meV for QM9 energies)
        if getattr(self.config.data, "standardised_target", False) and "std" in self.data.info:
            metrics["target_scale"] = {"mean": self.data.info["mean"], "std": self.data.info["std"]}
        ckpt.write_json(self.run_dir / ckpt.METRICS_FILE, metrics)
        if self.history:
            from acezoo.training.plots import plot_run

            plot_run(self.history, self.run_dir / ckpt.PLOT_FILE, title=self.config.name, metric=task.metric,
                     selected_epoch=self.best["epoch"], select_key=self.select_key,
                     pruned_epoch=self.pruned_at or None)
        return metrics


def selected_duals(history: list[dict[str, Any]], epoch: int) -> dict[str, dict[str, float]] | None:
    """``gammas``, ``multipliers`` and ``slacks`` as validated at ``epoch`` (from its history
    record, written when that epoch's weights were), or None when no validated record has it."""
    record = next((r for r in history if r.get("epoch") == epoch and any(k.startswith("val_") for k in r)), None)
    if record is None:
        return None
    return {f"{kind}s": {k.split("/", 1)[1]: v for k, v in record.items() if k.startswith(f"{kind}/")}
            for kind in ("gamma", "multiplier", "slack")}


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in values.items()) or "none"
