"""Continue an earlier study's trials under a larger epoch budget (the study file's ``continues:``).

A trial of this study and the trial of the same contender and seed in the earlier study are
the same run up to the earlier one's end when their resolved configs differ only in the budget,
``train.epochs`` and ``train.patience`` (each at least the earlier one's; a null patience never
stops), and in settings that do not change what is computed (threads, device, progress,
tracking, output folder), and nothing in training depends on the budget (a constant learning
rate, no ``schedule`` constraint mode, the earlier budget a multiple of ``train.eval_every``
so that its last epoch was not an extra validation). Then:

- an earlier trial that stopped early under the same patience, or diverged, stops at the
  same epoch here: its record is final here too (``final``), as is one that ran the same budget;
- one that ran its whole budget (a larger ``train.epochs`` here), or stopped early (a larger
  ``train.patience`` here), continues exactly from its last training state (``resume``), as if
  it had been started with this budget (bit for bit on one thread).

A final verdict needs only the earlier record and study file (the settings of a trial whose state
is not kept, e.g. in a fresh clone, are rebuilt from that file, whose contender overrides the
record must match); a resume needs the earlier trial's last training state. Where the earlier
trial is missing, the state a resume needs is gone, or the configs differ, the trial trains from
scratch and the reason is reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from acezoo.studies.loader import Study, trial_overrides
from acezoo.studies.records import read_record, trial_key

__all__ = ["Continuation", "plan_continuations", "NEUTRAL_KEYS", "state_folder"]

#: config keys compared configs ignore: the budget (judged on its own) and those that do not
#: change what a run computes
NEUTRAL_KEYS = frozenset({"train.epochs", "train.patience", "train.num_threads", "train.progress", "train.device",
                          "train.output_dir", "train.tracking", "train.tracking_uri", "train.experiment",
                          "train.tracking_grace_s"})


@dataclass(frozen=True)
class Continuation:
    """How one trial of the study starts from the earlier study's trial of the same key."""

    key: str
    kind: Literal["final", "resume", "scratch"]
    reason: str
    source: str = ""        # the earlier trial's last run directory (an absolute local path)
    epochs: int = 0         # epochs the earlier trial ran
    record: dict[str, Any] | None = None  # the earlier record (kind final)

    def line(self, earlier: str) -> str:
        """What ``acezoo study`` prints for this trial; a ``scratch`` trial is trained by this study
        (from its own last state here, if it has one), not thrown away."""
        if self.kind == "scratch":
            return f"{self.key}: not continued from {earlier} ({self.reason}); trained here"
        return f"{self.key}: {self.kind} ({self.reason})"


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The dotted keys (outside :data:`NEUTRAL_KEYS`) whose values differ between two config dumps."""
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in set(fa) | set(fb) if k not in NEUTRAL_KEYS and fa.get(k) != fb.get(k))


def state_folder(earlier: Study, key: str) -> str | None:
    """The earlier trial's last run directory: its newest Tune checkpoint in the earlier study's
    storage (``<records>/tune``), else ``<records>/runs/<key>`` (the layout of the first study
    runner); None where neither holds a training state."""
    from acezoo.run_layout import STATE_FILE
    from acezoo.studies.storage import Storage

    tune = earlier.records / "tune"
    if tune.is_dir():
        newest = Storage(str(tune), earlier.name).newest_checkpoint(key)
        if newest is not None and (Path(newest[0]) / STATE_FILE).is_file():
            return newest[0]
    legacy = earlier.records / "runs" / key
    return str(legacy.resolve()) if (legacy / STATE_FILE).is_file() else None  # absolute: workers run elsewhere


def _stored_epoch(folder: str) -> int:
    from acezoo.io.tree import load_tree
    from acezoo.run_layout import STATE_FILE

    return int(load_tree(Path(folder) / STATE_FILE)["epoch"])


def _plan_one(study: Study, earlier: Study, contender: str, seed: int) -> Continuation:
    from acezoo.config.loader import load_config
    from acezoo.training.checkpoint import stored_config

    key = trial_key(contender, seed)
    where = f"{earlier.name}/{key}"
    if contender not in {c.name for c in earlier.spec.contenders}:
        return Continuation(key, "scratch", f"{earlier.name} has no contender {contender}")
    record = read_record(earlier.records, contender, seed)
    if record is None:
        why = "has not finished" if seed in earlier.spec.seeds else f"is not a trial of it (its seeds: {earlier.spec.seeds})"
        return Continuation(key, "scratch", f"{where} {why}")
    folder = state_folder(earlier, key)
    if folder is None and list(record.get("overrides", [])) != list(earlier.spec.contender(contender).overrides):
        return Continuation(key, "scratch", f"{where}: its last training state is not kept here, and its record's "
                                            "overrides are no longer its study file's")
    ours = load_config(study.base, trial_overrides(study.spec, contender, seed))
    # without the state (a fresh clone: the Tune storage is not committed), the earlier study file,
    # whose contender overrides the record confirms, says what it ran; a final verdict needs no more
    theirs = (stored_config(folder) if folder is not None
              else load_config(earlier.base, trial_overrides(earlier.spec, contender, seed)))
    differ = config_differences(ours.model_dump(mode="json"), theirs.model_dump(mode="json"))
    if differ:
        return Continuation(key, "scratch", f"{where} was trained with other settings ({', '.join(differ)})")
    old, new = theirs.train.epochs, ours.train.epochs
    p_old, p_new = _patience(theirs), _patience(ours)
    if new < old:
        return Continuation(key, "scratch", f"{where} had the larger budget ({old} epochs against {new})")
    if p_new < p_old:
        return Continuation(key, "scratch", f"{where} had more patience ({theirs.train.patience} against "
                                            f"{ours.train.patience})")
    if new > old and ours.train.lr_schedule != "constant":
        return Continuation(key, "scratch", f"train.lr_schedule={ours.train.lr_schedule} depends on the budget")
    if new > old and ours.constraints.mode == "schedule":
        return Continuation(key, "scratch", "constraints.mode=schedule depends on the budget")
    ran = int(record["epochs_run"])
    src = folder or ""
    kept = "" if folder else " (its state is not kept here: its settings are its study file's)"
    if new > old and ran == old and old % ours.train.eval_every:
        return Continuation(key, "scratch", f"its budget ({old}) is not a multiple of train.eval_every "
                                            f"({ours.train.eval_every}): its last epoch was an extra validation")
    if "diverged" in record:
        return Continuation(key, "final", f"{where} diverged at epoch {ran}: the same here{kept}", src, ran, record)
    if ran < old and p_new == p_old:
        return Continuation(key, "final", f"{where} stopped early at epoch {ran} of {old}: the same under {new} "
                                          f"with the same patience{kept}", src, ran, record)
    if ran == old and new == old:
        return Continuation(key, "final", f"{where} ran its {old} epochs: the same budget here{kept}", src,
                            ran, record)
    if folder is None:
        return Continuation(key, "scratch", f"{where}: its last training state is not kept here")
    if _stored_epoch(folder) != ran:
        return Continuation(key, "scratch", f"{where}: its kept state is not its last epoch")
    why = "with more patience" if ran < old else f"to {new} epochs"
    return Continuation(key, "resume", f"continues {where} after epoch {ran}, {why}", folder, ran)


def _patience(config: Any) -> float:
    """``train.patience`` (None: never stops early)."""
    return math.inf if config.train.patience is None else float(config.train.patience)


def plan_continuations(study: Study, earlier: Study, trials: list[tuple[str, int]]) -> dict[str, Continuation]:
    """How each (contender, seed) of ``trials`` starts, keyed by trial key."""
    return {trial_key(c, s): _plan_one(study, earlier, c, s) for c, s in trials}
