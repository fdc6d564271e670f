"""MLflow tracking of training runs in the embedded SQLite store."""
from __future__ import annotations

from pathlib import Path

import pytest

import acezoo
from acezoo.hub import store
from acezoo.training import TrainingInterrupted

from conftest import ZOO, tiny_overrides


def _tracked(tmp_path: Path, *extra: str) -> acezoo.ZooConfig:
    overrides = [o for o in tiny_overrides(tmp_path) if o != "train.tracking=false"]
    return acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", [*overrides, "train.experiment=test-tracking", *extra])


def _run_of(run_dir: Path):
    client = store.client()
    exp = client.get_experiment_by_name("test-tracking")
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`acezoo.run_dir` = '{run_dir.resolve()}'")
    assert len(runs) == 1
    return client, runs[0]


def test_run_is_tracked_with_params_metrics_and_artifacts(tmp_path: Path) -> None:
    result = acezoo.train(_tracked(tmp_path))
    client, run = _run_of(result.run_dir)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.hidden"] == "16" and run.data.params["constraints.mode"] == "equality"
    assert run.data.tags["acezoo.arch"] == "egnn"
    history = client.get_metric_history(run.info.run_id, "gamma/layers.0.x")
    assert [m.step for m in history] == [1, 2]
    assert history[-1].value == pytest.approx(result.history[-1]["gamma/layers.0.x"])
    for key in ("val_eq_mse", "multiplier/layers.1.h", "equivariance_error", "test/pruned/mse"):
        assert key in run.data.metrics, key
    names = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert {"checkpoint/model.safetensors", "checkpoint/README.md", "checkpoint/gamma_lambda.png"} <= names


def test_resumed_run_continues_the_same_mlflow_run(tmp_path: Path) -> None:
    config = _tracked(tmp_path, "train.epochs=2")

    def stop(epoch: int, step: int) -> None:
        if epoch == 1 and step == 1:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        acezoo.train(config, run_dir=tmp_path / "cut", on_step=stop)
    client, run = _run_of(tmp_path / "cut")
    assert run.info.status == "KILLED"
    acezoo.train(resume=tmp_path / "cut")
    client, run = _run_of(tmp_path / "cut")
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]


def test_model_card_is_written(tmp_path: Path) -> None:
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp_path, epochs=1))
    result = acezoo.train(config)
    card = (result.run_dir / "README.md").read_text()
    mse = result.metrics["test"]["pruned"]["mse"]
    assert f"{mse:.6g}" in card and "acezoo train config.yaml" in card and "License" in card
    assert "equality" in card and "Charged N-body" in card
    assert "trained with ACE in **equality** mode." in card


def test_model_card_of_a_strict_model_does_not_claim_ace(tmp_path: Path) -> None:
    config = acezoo.load_config(ZOO / "egnn_nbody_strict.yaml", tiny_overrides(tmp_path, epochs=1))
    card = (acezoo.train(config).run_dir / "README.md").read_text()
    assert "trained as the strict equivariant model" in card and "with ACE" not in card
