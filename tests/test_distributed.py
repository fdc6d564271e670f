"""Data-parallel training: two gloo processes on CPU (torchrun) against one process.

The two ranks must end with bitwise identical weights, multipliers and slacks, equal (to
float tolerance) to a single process that trains on the same global batches; only rank 0
writes the run directory.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import acezoo

from conftest import REPO, ZOO, tiny_overrides

WORKER = Path(__file__).with_name("dist_worker.py")


def _overrides(tmp: Path, batch: int, mode: str = "resilient", branch: str = "plain") -> list[str]:
    """``branch: plain``: no batch statistics, so two ranks equal one process to round-off (a
    bounded branch's batch norms normalise per rank, as torch's BatchNorm does)."""
    return [*tiny_overrides(tmp, epochs=2, n=40), f"train.batch_size={batch}", f"constraints.mode={mode}",
            f"model.branch={branch}",
            "train.num_threads=1", "train.grad_clip=1.0", "constraints.error_budget=0.001"]


def _run_two_ranks(out: Path, overrides: list[str]) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(WORKER), str(out), str(ZOO / "egnn_nbody_equality.yaml"), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "tests")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("mode", ["resilient", "error_budget"])
def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path: Path, mode: str) -> None:
    # 40 training graphs, global batch 14: steps of 14, 14 and 12 graphs (7/7, 7/7, 6/6 per rank)
    overrides = _overrides(tmp_path, batch=14, mode=mode)
    _run_two_ranks(tmp_path, overrides)
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    # resilient: 4 gamma constraints (2 layers x (x, h)) with slacks; error_budget: one data-dependent
    # constraint whose multiplier moves only through the all-reduced defect
    assert r0.keys() == r1.keys() and len(r0["slacks"]) == (4 if mode == "resilient" else 0)
    assert len(r0["multipliers"]) == (4 if mode == "resilient" else 1) and float(r0["multipliers"].abs().sum()) > 0
    for key in r0:
        assert torch.equal(r0[key], r1[key]), f"{key} differs between ranks"
    info0, info1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert info0 == info1 and info0["epochs"] == 2  # same run dir, same step count, metrics broadcast

    single = acezoo.train(acezoo.load_config(ZOO / "egnn_nbody_equality.yaml",
                                             [*overrides, f"train.output_dir={tmp_path / 'single'}"]),
                          keep_final_state=True).final_state
    assert single is not None
    for name, value in single["weights"].items():
        assert torch.allclose(r0[f"w/{name}"], value, atol=2e-5, rtol=1e-4), name
    assert torch.allclose(r0["multipliers"], torch.tensor(list(single["multipliers"].values()), dtype=torch.float64),
                          atol=1e-6)
    assert torch.allclose(r0["slacks"], torch.tensor(list(single["slacks"].values()), dtype=torch.float64), atol=1e-6)
    run = Path(info0["run_dir"])
    assert (run / "model.safetensors").is_file() and (run / "metrics.json").is_file()


def test_uneven_last_batch_smaller_than_the_world(tmp_path: Path) -> None:
    """40 graphs in global batches of 13: the last batch has 1 graph, so one rank gets none. With
    the bounded branch: its batch-norm running statistics are averaged, so the ranks stay equal."""
    _run_two_ranks(tmp_path, _overrides(tmp_path, batch=13, branch="bounded"))
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    assert all(torch.isfinite(v).all() for v in r0.values())
    assert any("running_mean" in k for k in r0)


def test_resume_with_a_changed_world_size(tmp_path: Path) -> None:
    """Train one epoch on two ranks, resume the second epoch in one process: same result as
    two epochs in one process."""
    overrides = [o for o in _overrides(tmp_path, batch=14) if not o.startswith("train.epochs")]
    _run_two_ranks(tmp_path, [*overrides, "train.epochs=1"])
    run = Path(json.loads((tmp_path / "rank0.json").read_text())["run_dir"])
    resumed = acezoo.train(resume=run, overrides=("train.epochs=2",), keep_final_state=True).final_state
    straight = acezoo.train(acezoo.load_config(ZOO / "egnn_nbody_equality.yaml",
                                               [*overrides, "train.epochs=2", f"train.output_dir={tmp_path / 'one'}"]),
                            keep_final_state=True).final_state
    assert resumed is not None and straight is not None
    for name, value in straight["weights"].items():
        assert torch.allclose(resumed["weights"][name], value, atol=2e-5, rtol=1e-4), name
    assert resumed["slacks"].keys() == straight["slacks"].keys()
