"""Slow studies (``python -m pytest -m slow``): the full-length behaviour of the method."""
from __future__ import annotations

from pathlib import Path

import pytest

import acezoo

from conftest import ZOO


@pytest.mark.slow
def test_equality_constraints_drive_every_gamma_to_zero(tmp_path: Path) -> None:
    """300 epochs of ACE (equality) on N-body: the dual ascent brings every gamma to ~0.

    The full model then agrees with its pruned, exactly equivariant form.
    """
    config = acezoo.load_config(
        ZOO / "egnn_nbody_equality.yaml",
        ["train.epochs=300", "train.patience=300", f"train.output_dir={tmp_path}", "train.progress=false",
         "train.tracking=false", "train.num_threads=1"],
    )
    result = acezoo.train(config)
    last = result.history[-1]
    gammas = [abs(v) for k, v in last.items() if k.startswith("gamma/")]
    assert max(gammas) < 0.01, gammas
    assert last["equivariance_error"] < 1e-2
    pruned, full = result.metrics["test"]["pruned"]["mse"], result.metrics["test"]["full"]["mse"]
    assert abs(pruned - full) < 0.05 * pruned
