"""Run a study on Ray Tune: one trial per (contender, seed), resumable and fault tolerant.

- Ray: an embedded local cluster by default (``ray.init()``), or a running one (``address``).
- Each trial holds ``resources.cpus`` CPUs (and as many torch threads) or ``resources.gpus`` of a GPU.
- Storage (a folder shared by the nodes, or a URI): Tune keeps each trial's checkpoints there;
  a trial whose worker dies is retried from its last checkpoint on any node (up to
  ``max_failures`` times).
- Records: a finished trial's record is written to the storage by the trial itself and to
  ``<records>/results/`` by the driver. Running the study again trains only the trials without
  a record; an interrupted trial resumes from its newest checkpoint.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acezoo.errors import AcezooError, OptionError
from acezoo.studies.loader import Study, trial_overrides
from acezoo.studies.records import read_record, trial_key, write_record
from acezoo.studies.storage import Storage, resolve_storage

__all__ = ["StudyRun", "run_study", "plan_trials", "require_ray", "StudyInterrupted", "StudyFailed"]

EXTRA_HINT = 'acezoo study needs Ray Tune, an optional extra: pip install "acezoo[studies]"'


class StudyInterrupted(AcezooError):
    """Ctrl-C stopped the study; finished trials are recorded and the rest resume on the next run."""

    exit_code = 130


class StudyFailed(AcezooError):
    """Some trials failed more often than the study allows."""

    exit_code = 1


def require_ray() -> Any:
    """``ray`` with its Tune library, or an :class:`OptionError` naming the extra to install."""
    try:
        import ray
        import ray.tune  # noqa: F401
    except ImportError:
        raise OptionError(EXTRA_HINT) from None
    return ray


@dataclass
class StudyRun:
    """What one ``acezoo study`` run did."""

    trained: list[str]
    kept: list[str]
    failed: list[str]
    continued: list[str] = field(default_factory=list)  # final records taken from the study it continues


def plan_trials(study: Study, only: Sequence[str] = (), seeds: Sequence[int] | None = None) -> list[tuple[str, int]]:
    """The selected (contender, seed) pairs, seed-major: the first seed of every contender first."""
    names = [c.name for c in study.spec.contenders]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise OptionError(f"--only: no contender {', '.join(unknown)} in {study.source} (contenders: {', '.join(names)})")
    picked = [n for n in names if not only or n in only]
    return [(n, s) for s in (list(seeds) if seeds is not None else study.spec.seeds) for n in picked]


def _sync_records(study: Study, storage: Storage, trials: list[tuple[str, int]]) -> list[str]:
    """Copy records that reached the storage but not the records folder (a driver killed as a trial
    finished); returns the keys of every finished trial."""
    kept = []
    for name, seed in trials:
        key = trial_key(name, seed)
        if read_record(study.records, name, seed) is None:
            record = storage.read_record(key)
            if record is None:
                continue
            write_record(study.records, record)
        kept.append(key)
    return kept


def _record_writer(study: Study, total: int, progress: bool) -> Any:
    """A Tune callback on the driver: writes each finished trial's record and keeps a bar of trials."""
    import json

    from ray.tune import Callback
    from tqdm.auto import tqdm

    class RecordWriter(Callback):
        def __init__(self) -> None:
            self.bar = tqdm(total=total, desc=f"study {study.name}", unit="trial", disable=not progress,
                            dynamic_ncols=True)
            self.done: list[str] = []

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if "record" in result:
                record = json.loads(result["record"])
                write_record(study.records, record)
                self.done.append(result["trial"])
                self.bar.update(1)
                self.bar.write(f"{result['trial']}: best val {record['best_val']:.5g} (epoch {record['best_epoch']}), "
                               f"test pruned {record['test_pruned']:.5g} full {record['test_full']:.5g}, "
                               f"{record['wall_s']:.0f} s" + (f", resumed after epochs {record['resumed_after']}"
                                                              if record.get("resumed_after") else ""))
            elif "epoch" in result:
                self.bar.set_postfix({"trial": result.get("trial"), "epoch": int(result["epoch"])}, refresh=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.bar.write(f"{trial.config.get('key')}: failed on its worker; retried from its last checkpoint "
                           "while retries remain")

        def close(self) -> None:
            self.bar.close()

    return RecordWriter()


def _continue_earlier(study: Study, pending: list[tuple[str, int]],
                      log: Callable[[str], None]) -> tuple[list[str], dict[str, dict[str, object]]]:
    """Apply ``continues:``: write the earlier study's final records here; the trials that resume
    from the earlier study's last states ({key: {"source", "epochs", "from"}})."""
    from acezoo.studies.continuation import plan_continuations
    from acezoo.studies.loader import load_study

    if study.continues is None:
        return [], {}
    earlier = load_study(study.continues, check_trials=False)
    finals, resumes = [], {}
    for key, c in plan_continuations(study, earlier, pending).items():
        log(c.line(earlier.name))
        if c.kind == "final":
            write_record(study.records, {**c.record, "continued_from": f"{earlier.name}/{key}"})
            finals.append(key)
        elif c.kind == "resume":
            resumes[key] = {"source": c.source, "epochs": c.epochs, "from": f"{earlier.name}/{key}"}
    return finals, resumes


def run_study(study: Study, *, address: str | None = None, storage: str | Path | None = None,
              only: Sequence[str] = (), seeds: Sequence[int] | None = None, progress: bool = True,
              max_failures: int = 3, num_cpus: int | None = None,
              log: Callable[[str], None] = lambda line: None) -> StudyRun:
    """Train every selected trial of ``study`` that has no record yet (see the module docstring);
    ``log`` receives a line for each trial that continues an earlier study's (``continues:``)."""
    from acezoo.studies.trial import run_trial, trial_plan

    trials = plan_trials(study, only, seeds)
    storage_uri = resolve_storage(storage if storage is not None else study.records / "tune")
    store = Storage(storage_uri, study.name)
    kept = _sync_records(study, store, trials)
    pending = [(n, s) for n, s in trials if trial_key(n, s) not in kept]
    continued, resumes = _continue_earlier(study, pending, log)
    pending = [(n, s) for n, s in pending if trial_key(n, s) not in continued]
    if not pending:
        return StudyRun([], kept, [], continued)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our bar and lines, not Ray's tables as well
    ray = require_ray()
    from ray import tune

    from acezoo.config.loader import load_config
    from acezoo.studies.tracking import child_tags, close_parent_run, open_parent_run

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    spec = study.spec
    # tracking follows the trials' config: a parent MLflow run for the study, a child per trial
    parent = open_parent_run(study, load_config(study.base, trial_overrides(spec, *pending[0])), store)
    plan = trial_plan(
        str(study.base.resolve()),
        {trial_key(n, s): trial_overrides(spec, n, s) for n, s in pending},
        {c.name: list(c.overrides) for c in spec.contenders}, storage_uri, spec.name,
        spec.resources.cpus, spec.resources.gpus,
        {trial_key(n, s): child_tags(study, parent, trial_key(n, s)) for n, s in pending}, resumes)
    try:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
        where = f"--address {address}: cannot join that Ray cluster" if address else "cannot start a local Ray cluster"
        raise OptionError(f"{where} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    writer = _record_writer(study, len(pending), progress)
    resources = {"cpu": spec.resources.cpus, **({"gpu": spec.resources.gpus} if spec.resources.gpus else {})}
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(run_trial, plan=plan), resources),
        param_space={"key": tune.grid_search([trial_key(n, s) for n, s in pending])},
        tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=lambda trial: trial.config["key"],
                                    trial_name_creator=lambda trial: trial.config["key"]),
        run_config=tune.RunConfig(name=spec.name, storage_path=storage_uri, verbose=0, callbacks=[writer],
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    interrupted = False
    previous = signal.getsignal(signal.SIGINT)
    try:
        results = tuner.fit()
    except KeyboardInterrupt:
        interrupted = True
        results = None
    finally:
        writer.close()
        signal.signal(signal.SIGINT, previous)
        ray.shutdown()
    kept_now = _sync_records(study, store, trials)
    trained = [k for k in kept_now if k not in kept and k not in continued]
    failed = [trial_key(n, s) for n, s in pending if trial_key(n, s) not in kept_now]
    if parent is not None:
        from acezoo.studies.summary import summarise

        status = "KILLED" if interrupted else "FAILED" if failed else "FINISHED"
        close_parent_run(parent, summarise(study, seeds, only).markdown, status)
    if interrupted or (results is not None and failed and not results.errors):
        raise StudyInterrupted(f"study {spec.name} interrupted: {len(trained)} trials finished in this run, "
                               f"{len(failed)} left; run the same command again to resume them")
    if failed:
        raise StudyFailed(f"study {spec.name}: {len(failed)} trials failed ({', '.join(failed)}); "
                          f"their logs are under {storage_uri}/{spec.name}; run the same command again to retry them")
    return StudyRun(trained, kept, [], continued)
