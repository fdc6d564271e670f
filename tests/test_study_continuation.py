"""A study's ``continues:``: which trials of an earlier study continue under a larger budget
(resume from their last state), which are already final (they stopped early), and which must
train again (other settings, a budget-dependent schedule, no kept state), each with its reason."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from acezoo.studies.continuation import config_differences, plan_continuations
from acezoo.studies.loader import load_study
from acezoo.studies.records import make_record, write_record

ROOT = Path(__file__).resolve().parents[1]
BASE = str(ROOT / "zoo_configs" / "egnn_nbody_equality.yaml")
TINY = ["train.batch_size=20", "data.n_train=40", "data.n_val=20", "data.n_test=20", "model.hidden=8",
        "model.branch_hidden=8", "model.layers=1", "train.tracking=false", "train.eval_every=2"]
EPOCHS = 4


def _write_study(tmp_path: Path, name: str, common: list[str], **extra: object) -> Path:
    spec = {"name": name, "base": BASE, "common": common, "seeds": [0], "records": str(tmp_path / name),
            "contenders": [{"name": "ace", "overrides": ["constraints.mode=equality"]}],
            "report": {"baseline": None}, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-epoch study in the first runner's layout: a record and ``runs/ace-s0``."""
    from acezoo.run import train
    from acezoo.studies.loader import trial_overrides

    tmp = tmp_path_factory.mktemp("earlier")
    path = _write_study(tmp, "short", [*TINY, f"train.epochs={EPOCHS}"])
    study = load_study(path)
    from acezoo.config.loader import load_config

    conf = load_config(study.base, [*trial_overrides(study.spec, "ace", 0), "train.progress=false"])
    result = train(conf, run_dir=study.records / "runs" / "ace-s0", progress=False)
    write_record(study.records, make_record("ace", 0, ["constraints.mode=equality"], result.metrics, result.history,
                                            str(study.records / "runs" / "ace-s0")))
    return path


def test_the_earlier_state_is_named_by_an_absolute_path(tmp_path: Path, earlier: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The study's records are relative to where it runs; Ray workers run elsewhere."""
    monkeypatch.chdir(earlier.parent)
    spec = yaml.safe_load(earlier.read_text())
    spec["records"] = "short"  # relative, as in the zoo's study files
    relative = tmp_path / "short.yaml"
    relative.write_text(yaml.safe_dump(spec))
    study = load_study(_write_study(tmp_path, "long", [*TINY, "train.epochs=8"], continues=str(relative)))
    c = plan_continuations(study, load_study(relative), [("ace", 0)])["ace-s0"]
    assert c.kind == "resume" and Path(c.source).is_absolute() and Path(c.source).is_dir()


def _plan(tmp_path: Path, earlier: Path, common: list[str]):  # noqa: ANN202
    study = load_study(_write_study(tmp_path, "long", common, continues=str(earlier)))
    assert study.continues == earlier
    return plan_continuations(study, load_study(earlier), [("ace", 0)])["ace-s0"]


def test_a_trial_that_ran_its_whole_budget_resumes_from_its_last_state(tmp_path: Path, earlier: Path) -> None:
    c = _plan(tmp_path, earlier, [*TINY, "train.epochs=8", "train.num_threads=1"])  # threads change nothing computed
    assert (c.kind, c.epochs) == ("resume", EPOCHS)
    assert c.source == str(earlier.parent / "short" / "runs" / "ace-s0")
    assert "continues short/ace-s0 after epoch 4" in c.reason


def test_a_trial_that_stopped_early_is_final_under_the_larger_budget(tmp_path: Path, earlier: Path) -> None:
    records = earlier.parent / "short"
    path = records / "results" / "ace-s0.json"
    saved = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(saved), "epochs_run": EPOCHS - 1}))
        c = _plan(tmp_path, earlier, [*TINY, "train.epochs=8"])
    finally:
        path.write_text(saved)
    assert c.kind == "final" and c.record is not None and c.record["epochs_run"] == EPOCHS - 1
    assert "stopped early at epoch 3 of 4" in c.reason


def _stopped_early(earlier: Path, test):  # noqa: ANN001, ANN202
    """Run ``test()`` while the earlier trial's config says it had a budget of 6 epochs (patience 100):
    it stopped early at epoch 4."""
    records = earlier.parent / "short"
    path = records / "results" / "ace-s0.json"
    config = records / "runs" / "ace-s0" / "config.yaml"
    saved, saved_config = path.read_text(), config.read_text()
    try:
        assert f"epochs: {EPOCHS}" in saved_config and "patience: 100" in saved_config
        config.write_text(saved_config.replace(f"epochs: {EPOCHS}", "epochs: 6"))
        return test()
    finally:
        path.write_text(saved)
        config.write_text(saved_config)


def test_a_trial_that_stopped_early_resumes_under_more_patience(tmp_path: Path, earlier: Path) -> None:
    c = _stopped_early(earlier, lambda: _plan(tmp_path, earlier, [*TINY, "train.epochs=6", "train.patience=200"]))
    assert (c.kind, c.epochs) == ("resume", EPOCHS) and "with more patience" in c.reason, c.reason
    c = _stopped_early(earlier, lambda: _plan(tmp_path, earlier, [*TINY, "train.epochs=6", "train.patience=null"]))
    assert c.kind == "resume", c.reason
    c = _stopped_early(earlier, lambda: _plan(tmp_path, earlier, [*TINY, "train.epochs=6", "train.patience=100"]))
    assert c.kind == "final" and "same patience" in c.reason, c.reason
    c = _stopped_early(earlier, lambda: _plan(tmp_path, earlier, [*TINY, "train.epochs=6", "train.patience=50"]))
    assert c.kind == "scratch" and "more patience" in c.reason, c.reason


@pytest.mark.parametrize("change, words", [
    (["model.hidden=16"], "model.hidden"),
    (["train.lr_schedule=cosine"], "lr_schedule"),
    (["train.epochs=2"], "larger budget"),
    (["train.eval_every=3"], "train.eval_every"),
])
def test_a_trial_with_other_settings_trains_again_and_says_why(tmp_path: Path, earlier: Path, change: list[str],
                                                               words: str) -> None:
    c = _plan(tmp_path, earlier, [*TINY, "train.epochs=8", *change])
    assert c.kind == "scratch" and words in c.reason, c.reason


def test_without_the_earlier_state_the_trial_trains_again(tmp_path: Path, earlier: Path) -> None:
    state = earlier.parent / "short" / "runs" / "ace-s0" / "train_state.safetensors"
    moved = state.with_suffix(".moved")
    state.rename(moved)
    try:
        c = _plan(tmp_path, earlier, [*TINY, "train.epochs=8"])
    finally:
        moved.rename(state)
    assert c.kind == "scratch" and "last training state is not kept" in c.reason


def test_without_the_earlier_state_a_final_trial_is_judged_from_its_record(tmp_path: Path, earlier: Path) -> None:
    """A fresh clone has the committed records but not the Tune storage: a trial that would end
    the same way is still final (its settings rebuilt from the earlier study file), unless the
    record's overrides show that file has changed since."""
    state = earlier.parent / "short" / "runs" / "ace-s0" / "train_state.safetensors"
    moved = state.with_suffix(".moved")
    state.rename(moved)
    try:
        c = _plan(tmp_path, earlier, [*TINY, f"train.epochs={EPOCHS}"])
        assert c.kind == "final" and "not kept here" in c.reason and c.record is not None, c.reason
        assert c.record["epochs_run"] == EPOCHS
        spec = yaml.safe_load(earlier.read_text())
        spec["contenders"][0]["overrides"] = ["constraints.mode=equality", "train.lr=0.002"]
        edited = tmp_path / "edited.yaml"
        edited.write_text(yaml.safe_dump(spec))
        study = load_study(_write_study(tmp_path, "long2", [*TINY, f"train.epochs={EPOCHS}"], continues=str(edited)))
        c = plan_continuations(study, load_study(edited), [("ace", 0)])["ace-s0"]
        assert c.kind == "scratch" and "no longer its study file's" in c.reason, c.reason
    finally:
        moved.rename(state)


def test_a_seed_the_earlier_study_never_planned_is_named_as_such(tmp_path: Path, earlier: Path) -> None:
    study = load_study(_write_study(tmp_path, "long", [*TINY, "train.epochs=8"], continues=str(earlier)))
    c = plan_continuations(study, load_study(earlier), [("ace", 3)])["ace-s3"]
    assert c.kind == "scratch" and "is not a trial of it (its seeds: [0])" in c.reason, c.reason


def test_a_trial_that_does_not_continue_is_logged_as_trained_here(tmp_path: Path, earlier: Path) -> None:
    """Its line must not read as if its own kept state were thrown away: it is trained by this
    study (resuming its own last state where it has one), not continued from the earlier one."""
    study = load_study(_write_study(tmp_path, "long", [*TINY, "train.epochs=8"], continues=str(earlier)))
    c = plan_continuations(study, load_study(earlier), [("ace", 3)])["ace-s3"]
    assert c.line("short") == ("ace-s3: not continued from short (short/ace-s3 is not a trial of it "
                               "(its seeds: [0])); trained here"), c.line("short")


def test_config_differences_ignore_what_changes_nothing_computed() -> None:
    a = {"train": {"epochs": 5, "num_threads": 1, "lr": 1e-3}, "model": {"hidden": 8}}
    b = {"train": {"epochs": 9, "num_threads": None, "lr": 2e-3}, "model": {"hidden": 8}}
    assert config_differences(a, b) == ["train.lr"]
