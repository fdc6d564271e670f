"""scripts/study_rescore.py (a study's finished trials scored again: under input noise, on changed
data) and the record of a diverged study trial."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import yaml

from acezoo.config.loader import load_config
from acezoo.errors import TrainingDiverged
from acezoo.run import TrainResult, build_data, train
from acezoo.studies.loader import Study, load_study
from acezoo.studies.records import make_record, read_record, write_record
from acezoo.studies.storage import MARKER_FILE
from acezoo.training.callbacks import Callback

from conftest import ZOO, tiny_overrides

BASE = ZOO / "egnn_nbody_equality.yaml"
CONTENDERS = {"strict": ["constraints.mode=strict"],
              "bounded-sgd": ["model.branch=bounded", "constraints.gamma_optimizer=sgd"]}


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("study_rescore",
                                                  Path(__file__).parents[1] / "scripts" / "study_rescore.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _common(tmp_path: Path, epochs: int = 2) -> list[str]:
    return [o for o in tiny_overrides(tmp_path, epochs=epochs) if not o.startswith("train.output_dir")]


def _study(tmp_path: Path, records: Path, seeds: list[int], common: list[str] | None = None) -> Study:
    spec = {"name": "tiny", "base": str(BASE), "common": common or [],
            "contenders": [{"name": n, "overrides": o} for n, o in CONTENDERS.items()],
            "seeds": seeds, "records": str(records)}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_study(path, check_trials=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, TrainResult]]:
    """Every trial (2 contenders x seeds 0, 1) of a tiny study, trained once for the module."""
    tmp = tmp_path_factory.mktemp("finished")
    common = _common(tmp)
    data = build_data(load_config(BASE, common))
    results = {}
    for seed in (0, 1):
        for name, overrides in CONTENDERS.items():
            conf = load_config(BASE, [*common, *overrides, f"seed={seed}"])
            key = f"{name}-s{seed}"
            results[key] = train(conf, run_dir=tmp / "runs" / key, data=data, progress=False)
    return tmp, common, results


def _records(folder: Path, results: dict[str, TrainResult], run_dirs: dict[str, str] | None = None) -> Path:
    for key, result in results.items():
        name, _, seed = key.rpartition("-s")
        write_record(folder, make_record(name, int(seed), CONTENDERS[name], result.metrics, result.history,
                                         (run_dirs or {}).get(key, str(result.run_dir))))
    return folder


def test_rescore_scores_every_finished_run_on_changed_test_data(
        tmp_path: Path, finished: tuple[Path, list[str], dict[str, TrainResult]]) -> None:
    """--rescore: each finished trial's selected model on a larger test split; the study's own
    split (the first 30) reproduces the study's test figures."""
    script = _script()
    _, common, results = finished
    study = _study(tmp_path, _records(tmp_path / "records", results), [0, 1], common)
    script.rescore(study, ["strict", "bounded-sgd"], ["data.n_test=30"])
    cached = json.loads((study.records / "rescore.json").read_text())
    for key, result in results.items():
        assert cached[key]["data.n_test=30"] == pytest.approx(result.metrics["test"]["pruned"]["mse"], rel=1e-5)
    table = script.rescore(study, ["strict", "bounded-sgd"], ["data.n_test=45"])
    assert "with data.n_test=45 (45 samples)" in table
    assert "| strict | 2 |" in table and "| bounded-sgd | 2 |" in table
    assert "Paired bounded-sgd - strict over seeds [0, 1]" in table
    cached = json.loads((study.records / "rescore.json").read_text())
    assert set(cached["strict-s0"]) == {"data.n_test=30", "data.n_test=45"}  # earlier scores are kept
    again = script.rescore(study, ["strict", "bounded-sgd"], ["data.n_test=45"])  # from the cache
    assert again == table


def test_robustness_reports_the_seeds_asked_for(tmp_path: Path) -> None:
    """--robustness --seeds: the given seeds; without --seeds the study file's (scores come from
    the cache, so nothing is trained or scored here)."""
    script = _script()
    records = tmp_path / "records"
    for seed, score in ((0, 0.1), (1, 0.3)):
        write_record(records, {"contender": "strict", "seed": seed, "metric": "mse", "selected_on": "val_eq_mse",
                               "run_dir": str(tmp_path / "missing")})
    (records / "robustness.json").write_text(json.dumps({"strict-s0": {"0.1": 0.1}, "strict-s1": {"0.1": 0.3}}))
    study = _study(tmp_path, records, [0])
    assert "| strict | 1 | 0.1 +- 0 |" in script.robustness(study, ["strict"], [0.1])
    assert "| strict | 2 | 0.2 +- 0.14 |" in script.robustness(study, ["strict"], [0.1], seeds=[0, 1])


def test_trials_of_acezoo_study_are_scored_from_their_newest_checkpoint(
        tmp_path: Path, finished: tuple[Path, list[str], dict[str, TrainResult]],
        capsys: pytest.CaptureFixture[str]) -> None:
    """A record written by `acezoo study` names the trial's folder in the storage, not a run
    directory: the trial's newest checkpoint (the finished run) is scored. Noise 0 gives the
    study's test figure."""
    script = _script()
    _, common, results = finished
    results = {k: v for k, v in results.items() if k == "bounded-sgd-s0"}
    trial = tmp_path / "records" / "tune" / "tiny" / "bounded-sgd-s0"
    for epoch, source in ((1, None), (2, results["bounded-sgd-s0"].run_dir)):  # an older, broken checkpoint first
        folder = trial / f"checkpoint_00000{epoch - 1}"
        if source is None:
            folder.mkdir(parents=True)
        else:
            shutil.copytree(source, folder)
        (folder / MARKER_FILE).write_text(json.dumps({"key": "bounded-sgd-s0", "epoch": epoch, "resumed_after": []}))
    moved = tmp_path / "elsewhere" / "tiny" / "bounded-sgd-s0"  # the records folder was moved: found in <records>/tune
    records = _records(tmp_path / "records", results, {"bounded-sgd-s0": str(moved)})
    _study(tmp_path, records, [0, 1], common)
    assert main_rc(script, tmp_path, records, ["--robustness", "0", "--only", "bounded-sgd", "--seeds", "0"]) == 0
    cached = json.loads((records / "robustness.json").read_text())
    assert cached["bounded-sgd-s0"]["0"] == pytest.approx(results["bounded-sgd-s0"].metrics["test"]["pruned"]["mse"],
                                                          rel=1e-5)
    assert (records / "robustness.md").read_text().startswith("| contender | seeds | noise 0 |")
    assert "| bounded-sgd | 1 |" in capsys.readouterr().out

    # a contender the study does not have, an override of more than the data: exit 2, nothing scored
    assert main_rc(script, tmp_path, records, ["--robustness", "0.1", "--only", "nope"]) == 2
    assert main_rc(script, tmp_path, records, ["--rescore", "model.hidden=8"]) == 2
    err = capsys.readouterr().err
    assert "no contender nope" in err and "'model.hidden=8' is not allowed" in err
    assert not (records / "rescore.json").exists()


def main_rc(script: ModuleType, tmp_path: Path, records: Path, args: list[str]) -> int:
    return script.main([str(tmp_path / "tiny.yaml"), "--records", str(records), *args])


class _Poison(Callback):
    """Sets a weight to inf after ``epoch`` (after its checkpoint): the next step's loss is not finite."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        if record["epoch"] == self.epoch:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("inf"))


def test_a_diverged_trial_is_recorded_with_its_best_validated_weights(tmp_path: Path) -> None:
    """The Ray trial's record of a run stopped by a non-finite loss (acezoo/studies/trial.py): the
    weights validated before it diverged, scored by the same rule; no score when it diverged
    before its first validation."""
    from acezoo.studies.trial import _diverged_record

    common = _common(tmp_path, epochs=3)
    conf = load_config(BASE, [*common, "seed=0"])
    data = build_data(conf)
    reference = train(load_config(BASE, [*common, "seed=0", "train.epochs=1"]), run_dir=tmp_path / "reference",
                      data=data, progress=False)
    run_dir = tmp_path / "late"
    with pytest.raises(TrainingDiverged) as exc:
        train(conf, run_dir=run_dir, data=data, progress=False, callbacks=[_Poison(1)])
    record = _diverged_record("late-s0", "late", 0, ["x=1"], run_dir, data, str(exc.value), "store/late-s0")
    assert "non-finite loss" in record["diverged"] and record["run_dir"] == "store/late-s0"
    assert record["best_epoch"] == 1 and record["metric"] == "mse"
    assert record["test_pruned"] == reference.metrics["test"]["pruned"]["mse"]  # the epoch-1 weights, as scored then
    assert record["gammas"] == reference.metrics["gammas"]

    # diverged in its first epoch (an absurd learning rate): recorded, with no score
    early = load_config(BASE, [*common, "seed=0", "train.lr=1e6"])
    with pytest.raises(TrainingDiverged) as exc:
        train(early, run_dir=tmp_path / "early", data=data, progress=False)
    record = _diverged_record("early-s0", "early", 0, [], tmp_path / "early", data, str(exc.value), "store/early-s0")
    assert "non-finite loss" in record["diverged"] and record["metric"] == "" and record["best_val"] == float("inf")
    write_record(tmp_path / "records", record)  # a record like any other: the summary counts it as diverged
    assert read_record(tmp_path / "records", "early", 0)["diverged"] == record["diverged"]
