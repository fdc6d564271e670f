"""The shared trainer: a real short run, every mode, exact resume, Ctrl-C, NaN, checkpoints."""
from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import pytest
import torch

import acezoo
from acezoo.cli import main
from acezoo.config.constraints import MODES
from acezoo.errors import CheckpointError, TrainingDiverged
from acezoo.training import TrainingInterrupted
from acezoo.training.checkpoint import load_run
from acezoo.training.trainer import build_data

from conftest import ZOO, copy_run, tiny_overrides

LINEAR_BASELINE_MSE = 0.0819  # published linear-dynamics baseline (method doc, section 6)


def test_short_equality_run_beats_linear_baseline(tmp_path: Path) -> None:
    """A CI-sized ACE run (full 3000/2000/2000 data, 4 epochs) beats the linear-dynamics baseline."""
    config = acezoo.load_config(
        ZOO / "egnn_nbody_equality.yaml", ["train.epochs=4", f"train.output_dir={tmp_path}", "train.progress=false"]
    )
    result = acezoo.train(config)
    m = result.metrics
    assert m["test"]["pruned"]["mse"] < LINEAR_BASELINE_MSE, m["test"]
    assert m["equivariance_error"]["pruned"] < 1e-5  # float32
    assert m["equivariance_error"]["full"] > 1e-3  # gamma is not 0 yet after 4 epochs
    assert all(abs(g) < 1.0 for g in m["gammas"].values())  # the constraint pulls every gamma down
    assert all(v > 0 for v in m["multipliers"].values())
    for key in ("train_loss", "val_eq_mse", "val_full_mse", "equivariance_error", "gamma/layers.0.x", "multiplier/layers.3.h"):
        assert key in result.history[-1]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_trains(tmp_path: Path, mode: str) -> None:
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", [*tiny_overrides(tmp_path), f"constraints.mode={mode}"])
    result = acezoo.train(config)
    last = result.history[-1]
    gammas = [k for k in last if k.startswith("gamma/")]
    assert (len(gammas) == 0) == (mode == "strict")
    assert any(k.startswith("multiplier/") for k in last) == (mode in ("equality", "tolerance", "resilient",
                                                                      "error_budget"))
    assert ("train_equivariance_defect" in last) == (mode in ("error_budget", "penalty"))
    assert any(k.startswith("slack/") for k in last) == (mode == "resilient")
    assert result.metrics["selected_on"] == ("val_full_mse" if mode in ("free", "resilient", "error_budget", "penalty")
                                             else "val_eq_mse")
    for name in ("config.yaml", "model.safetensors", "train_state.safetensors", "history.json", "metrics.json", "gamma_lambda.png"):
        assert (result.run_dir / name).is_file(), name


def _without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in rec.items() if k != "time_s"} for rec in history]


@pytest.mark.parametrize("dual", ["adam", "nupi"])
def test_ctrl_c_then_resume_continues_exactly(tmp_path: Path, dual: str) -> None:
    """Also under a cosine learning-rate schedule, which the resumed run must continue, and with
    each stateful dual optimiser (nuPI keeps the previous violation)."""
    overrides = [*tiny_overrides(tmp_path, epochs=3), "constraints.mode=resilient", "train.lr_schedule=cosine",
                 f"constraints.dual_optimizer={dual}", "constraints.dual_kp=50"]
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", overrides)
    data = build_data(config)
    straight = acezoo.train(config, run_dir=tmp_path / "straight", data=data)

    def interrupt(epoch: int, step: int) -> None:
        if epoch == 1 and step == 2:  # second epoch, mid-way
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        acezoo.train(config, run_dir=tmp_path / "cut", data=data, on_step=interrupt)
    assert info.value.epoch == 2 and info.value.step == 2
    assert (tmp_path / "cut" / "train_state.safetensors").is_file()
    resumed = acezoo.train(resume=tmp_path / "cut", data=data)

    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _without_time(straight.history) == _without_time(resumed.history)
    assert straight.metrics["slacks"] == resumed.metrics["slacks"]
    assert straight.metrics["multipliers"] == resumed.metrics["multipliers"]
    lr = config.train.lr
    assert [r["lr"] for r in straight.history] == pytest.approx(
        [lr, lr * (1 + math.cos(math.pi / 3)) / 2, lr * (1 + math.cos(2 * math.pi / 3)) / 2])


def test_resume_can_extend_training(tmp_path: Path) -> None:
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp_path, epochs=1))
    first = acezoo.train(config, run_dir=tmp_path / "run")
    more = acezoo.train(resume=first.run_dir, overrides=("train.epochs=2",))
    assert [r["epoch"] for r in more.history] == [1, 2]


def test_nan_loss_stops_with_clear_message(tmp_path: Path) -> None:
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp_path))
    data = build_data(config)
    data.train.fields["y"][0, 0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"training diverged at epoch 1, step \d+: non-finite loss nan.*train.lr"):
        acezoo.train(config, data=data, run_dir=tmp_path / "nan")


def test_cli_train_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "cli_run"
    code = main(["train", str(ZOO / "egnn_nbody_equality.yaml"), *tiny_overrides(tmp_path), "--run-dir", str(run)])
    out = capsys.readouterr().out
    assert code == 0 and f"run: {run}" in out and "test mse: pruned (equivariant)" in out
    assert main(["eval", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = json.loads((run / "metrics.json").read_text())
    assert report["test"]["pruned"]["mse"] == pytest.approx(metrics["test"]["pruned"]["mse"], rel=1e-5)
    assert report["test"]["full"]["mse"] == pytest.approx(metrics["test"]["full"]["mse"], rel=1e-5)


def test_cli_ctrl_c_exits_130(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import acezoo.run

    def fake_train(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise TrainingInterrupted(tmp_path / "r", 3, 7)

    monkeypatch.setattr(acezoo.run, "train", fake_train)
    code = main(["train", str(ZOO / "egnn_nbody_equality.yaml")])
    err = capsys.readouterr().err
    assert code == 130 and "checkpoint written to" in err and "acezoo train --resume" in err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp, epochs=1))
    return acezoo.train(config, run_dir=tmp / "run").run_dir


def test_load_run_round_trip(finished_run: Path) -> None:
    config, model = load_run(finished_run)
    assert config.name == "egnn_nbody_equality"
    assert set(model.named_gammas()) == {f"layers.{i}.{k}" for i in range(2) for k in "xh"}


@pytest.mark.parametrize("damage", ["truncated", "pickle", "shapes", "missing"])
def test_tampered_weights_fail_clearly(finished_run: Path, tmp_path: Path, damage: str) -> None:
    run = copy_run(finished_run, tmp_path / "copy")
    weights = run / "model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "pickle":
        marker = tmp_path / "executed"
        class Evil:
            def __reduce__(self):  # noqa: ANN204
                return (open, (str(marker), "w"))
        weights.write_bytes(pickle.dumps(Evil()))
    elif damage == "shapes":
        from safetensors.torch import load_file, save_file
        state = load_file(str(weights))
        key = next(k for k in state if k.endswith("weight"))
        state[key] = torch.zeros(3, 3)
        save_file(state, str(weights))
    else:
        weights.unlink()
    with pytest.raises(CheckpointError) as info:
        load_run(run)
    assert str(weights) in str(info.value)
    if damage == "pickle":
        assert not (tmp_path / "executed").exists()
    if damage == "shapes":
        assert "shape mismatch" in str(info.value)


def test_eval_of_missing_checkpoint_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err


def test_resume_overrides_are_stored_in_the_run_config(tmp_path: Path) -> None:
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp_path, epochs=1))
    run = acezoo.train(config, run_dir=tmp_path / "run").run_dir
    acezoo.train(resume=run, overrides=("train.epochs=2",))
    assert acezoo.load_config(run / "config.yaml").train.epochs == 2


def test_real_sigint_writes_a_checkpoint_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C as a real signal to `acezoo train`: exit 130, a resumable checkpoint, no traceback."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "sigint"
    cmd = [sys.executable, "-m", "acezoo", "train", str(ZOO / "egnn_nbody_equality.yaml"),
           *tiny_overrides(tmp_path, epochs=500), "--run-dir", str(run)]
    # a child inherits an ignored SIGINT (e.g. when the test run itself was started in the
    # background by a non-interactive shell); restore the default so Python installs its handler
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while not (run / "history.json").exists():  # at least one epoch done
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "checkpoint written to" in err and "Traceback" not in err
    assert not list(run.glob(".*.tmp"))  # nothing half-written
    resumed = acezoo.train(resume=run, overrides=("train.epochs=2",))
    assert (resumed.run_dir / "metrics.json").is_file()


def test_error_budget_lowers_the_measured_equivariance_defect(tmp_path: Path) -> None:
    """The data-dependent constraint works: on the external-field data (where breaking the
    symmetry pays) its multiplier grows while the defect exceeds the budget, the defect falls,
    and the full model ends clearly more equivariant than the same model trained freely."""
    base = [*tiny_overrides(tmp_path, epochs=8, n=100), "train.batch_size=10", "constraints.dual_lr=0.2",
            "constraints.error_budget=1e-4"]
    config = ZOO / "egnn_nbody_field_resilient.yaml"
    budget = acezoo.train(acezoo.load_config(config, [*base, "constraints.mode=error_budget"]))
    free = acezoo.train(acezoo.load_config(config, [*base, "constraints.mode=free"]))
    h = budget.history
    assert h[-1]["multiplier/error_budget"] > h[0]["multiplier/error_budget"] > 0
    assert h[-1]["train_equivariance_defect"] < 0.2 * h[0]["train_equivariance_defect"]
    assert budget.metrics["equivariance_error"]["full"] < 0.8 * free.metrics["equivariance_error"]["full"]


@pytest.mark.parametrize("branch", ["plain", "stream"])
def test_validation_in_one_pass_records_what_two_passes_do(tmp_path: Path, branch: str) -> None:
    """The trainer scores the equivariant-only and the full model with the network's
    ``forward_both`` (one pass, the first layer shared); the record equals two separate passes."""
    from acezoo.config.loader import load_config
    from acezoo.training.trainer import Trainer

    config = load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp_path) + [f"model.branch={branch}"])
    trainer = Trainer(config, tmp_path / "run", progress=False)
    assert trainer.forward_both is not None
    trainer.run_epoch()
    one_pass = trainer.validate()
    trainer.forward_both = None  # the generic path: two passes
    two_passes = trainer.validate()
    assert one_pass == two_passes
    assert one_pass["val_eq_mse"] != one_pass["val_full_mse"]


def test_eval_scores_on_a_larger_test_split(finished_run: Path, capsys: pytest.CaptureFixture) -> None:
    """`acezoo eval RUN data.n_test=N` scores the trained model on N test samples (also after
    options); the run's own split is its first 30, so data.n_test=30 reproduces the stored metric."""
    assert main(["eval", str(finished_run), "--json", "data.n_test=30"]) == 0
    same = json.loads(capsys.readouterr().out)
    stored = json.loads((finished_run / "metrics.json").read_text())
    assert same["test"]["pruned"]["mse"] == pytest.approx(stored["test"]["pruned"]["mse"], rel=1e-5)
    assert main(["eval", str(finished_run), "data.n_test=45"]) == 0
    out = capsys.readouterr().out
    assert "split: test (45 samples, data.n_test=45)" in out
    assert main(["eval", str(finished_run), "--json", "data.n_test=45"]) == 0
    larger = json.loads(capsys.readouterr().out)
    assert larger["samples"] == 45 and larger["overrides"] == ["data.n_test=45"]
    assert larger["test"]["pruned"]["mse"] != pytest.approx(stored["test"]["pruned"]["mse"], rel=1e-6)


@pytest.mark.parametrize(("override", "message"), [
    ("model.hidden=3", "allowed: data.KEY=VALUE"),
    ("data.dataset=qm9", "scored on the data set it was trained for"),
    ("data.no_such_key=1", "data.no_such_key"),
    ("data.n_test=-5", "data.n_test"),
])
def test_eval_rejects_overrides_that_change_the_model_or_break_the_config(
        finished_run: Path, capsys: pytest.CaptureFixture, override: str, message: str) -> None:
    assert main(["eval", str(finished_run), override]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert message in err, err
    if override == "data.n_test=-5":
        assert str(finished_run / "config.yaml") in err  # the error names the run's config file
