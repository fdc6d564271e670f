"""scripts/study_reference_egnn.py: the EGNN authors' model and training loop on our N-body data."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).parents[1] / "scripts"
TINY = ["data.n_train=100", "data.n_val=20", "data.n_test=20"]


@pytest.fixture(scope="module")
def study():
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location("study_reference_egnn", SCRIPTS / "study_reference_egnn.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_authors_model_is_e3_equivariant_at_init(study) -> None:
    """The reference model rotates, reflects and translates with its input (the per-component clamp
    does not bind at initialisation)."""
    from acezoo.training.batches import collate

    torch.manual_seed(0)
    data = study.build_nbody(TINY)
    batch = collate(data.val, torch.arange(8))
    model = study.AuthorsEGNNVel(hidden=16, layers=2).double().eval()
    for k in ("pos", "vel", "charge", "y"):
        setattr(batch, k, getattr(batch, k).double())
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    q[:, 0] *= -1 if torch.det(q) > 0 else 1  # a reflection too
    shift = torch.randn(3, dtype=torch.float64)
    out = model(batch)
    batch.pos, batch.vel = batch.pos @ q.T + shift, batch.vel @ q.T
    assert torch.allclose(model(batch), out @ q.T + shift, atol=1e-10)


def test_resumed_run_repeats_an_uninterrupted_one(study, tmp_path: Path) -> None:
    """Stopping after 2 epochs and resuming to 4 gives the same history as 4 epochs in one go."""
    whole = study.train_seed(0, tmp_path / "whole", epochs=4, eval_every=2, checkpoint_every=2, overrides=TINY)
    study.train_seed(0, tmp_path / "split", epochs=2, eval_every=2, checkpoint_every=2, overrides=TINY)
    (tmp_path / "split" / "seed0" / "result.json").unlink()  # as if stopped after the epoch-2 checkpoint
    resumed = study.train_seed(0, tmp_path / "split", epochs=4, eval_every=2, checkpoint_every=2, overrides=TINY)
    assert resumed["history"] == whole["history"]
    assert [h["epoch"] for h in whole["history"]] == [0, 1, 2, 3]
    assert "val" in whole["history"][2] and "val" not in whole["history"][1]
    assert whole["test_at_best"] == whole["history"][whole["best_epoch"]]["test"]
    # a finished seed is read back, not re-run
    again = study.train_seed(0, tmp_path / "whole", epochs=4, eval_every=2, checkpoint_every=2, overrides=TINY)
    assert again == json.loads((tmp_path / "whole" / "seed0" / "result.json").read_text())


def test_linear_dynamics_baseline_fits_the_time_step(study) -> None:
    """x + t v with t by least squares: t is below the 1.0 time units between the frames (the
    particles decelerate on average) and beats both t = 0 and t = 1 on the test split."""
    data = study.build_nbody(["data.n_train=300", "data.n_val=50", "data.n_test=200"])
    lin = study.linear_dynamics(data)
    assert 0.5 < lin["t"] < 1.0
    from acezoo.training.batches import collate

    b = collate(data.test, torch.arange(len(data.test)))
    for t in (0.0, 1.0):
        assert lin["test"] < float(((b.pos + t * b.vel - b.y) ** 2).mean())


def test_summary_lists_unfinished_seeds(study, tmp_path: Path) -> None:
    study.train_seed(1, tmp_path, epochs=1, eval_every=1, checkpoint_every=1, overrides=TINY)
    table = study.summary(tmp_path, [1, 2], TINY)
    assert "| 2 | (not finished) |" in table
    assert "mean +- std (1 seeds)" in table and "Linear dynamics" in table


def test_error_tail_statistics(study) -> None:
    """scripts/nbody_error_tail.py: the shares of the worst trajectories, on a 'no motion' model."""
    spec = importlib.util.spec_from_file_location("nbody_error_tail", SCRIPTS / "nbody_error_tail.py")
    tail = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tail)
    data = study.build_nbody(["data.n_train=1", "data.n_val=1", "data.n_test=300"])

    class Static(torch.nn.Module):
        def forward(self, batch):  # noqa: ANN001, ANN202
            return batch.pos

    s = tail.tail_stats(Static(), data.test)
    from acezoo.training.batches import collate

    b = collate(data.test, torch.arange(300))
    assert s["mse"] == pytest.approx(float(((b.pos - b.y) ** 2).double().mean()), rel=1e-6)
    assert 0.01 < s["top1"] < s["top5"] < 1.0  # 3 and 15 of 300 trajectories
    assert s["mse_wo_top1"] < s["mse"] and s["median"] < s["mse"]
    assert 0 < s["dmin_top1"] and 0 < s["dmin_all"]
