"""Trainer options for scale: bf16 autocast, torch.compile, deterministic mode, CUDA.

CUDA tests skip (with the reason) on machines without a GPU; `scripts/gpu_check.sh` runs them
on one.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import acezoo

from conftest import ZOO, tiny_overrides

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _train(tmp: Path, *extra: str, config: str = "egnn_nbody_equality.yaml") -> acezoo.training.trainer.TrainResult:
    overrides = [*tiny_overrides(tmp, epochs=1), "constraints.mode=resilient", *extra]
    return acezoo.train(acezoo.load_config(ZOO / config, overrides), keep_final_state=True)


def test_bf16_autocast_changes_the_forward_pass_but_not_the_dual_dtypes(tmp_path: Path) -> None:
    fp32 = _train(tmp_path / "a")
    bf16 = _train(tmp_path / "b", "train.amp=true")
    assert fp32.history[0]["train_loss"] != bf16.history[0]["train_loss"]  # autocast really ran
    assert abs(fp32.history[0]["train_loss"] - bf16.history[0]["train_loss"]) < 0.05 * fp32.history[0]["train_loss"]
    state = bf16.final_state
    assert state is not None and all(v.dtype == torch.float32 for v in state["weights"].values()
                                     if v.is_floating_point())  # (batch norms also count batches, int64)
    assert set(state["slacks"]) == set(fp32.final_state["slacks"])  # type: ignore[index]


def test_compiled_training_matches_eager(tmp_path: Path) -> None:
    eager = _train(tmp_path / "a").final_state
    compiled = _train(tmp_path / "b", "train.compile=true", "train.compile_backend=eager").final_state
    assert eager is not None and compiled is not None
    for name, value in eager["weights"].items():
        assert torch.allclose(compiled["weights"][name], value, atol=1e-6), name


def test_deterministic_mode_is_reproducible(tmp_path: Path) -> None:
    """Two runs agree bit for bit, and the flag really switches deterministic kernels on while
    training (CPU runs repeat anyway, so equal weights alone would not show that it does anything)."""
    seen: list[bool] = []
    overrides = [*tiny_overrides(tmp_path / "a", epochs=1), "constraints.mode=resilient", "train.deterministic=true"]
    try:
        assert not torch.are_deterministic_algorithms_enabled()
        a = acezoo.train(acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", overrides), keep_final_state=True,
                         on_step=lambda *_: seen.append(torch.are_deterministic_algorithms_enabled())).final_state
        b = _train(tmp_path / "b", "train.deterministic=true").final_state
    finally:
        torch.use_deterministic_algorithms(False)
    assert seen and all(seen), "train.deterministic=true did not enable deterministic algorithms during training"
    plain: list[bool] = []
    acezoo.train(acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp_path / "c", epochs=1)),
                 on_step=lambda *_: plain.append(torch.are_deterministic_algorithms_enabled()))
    assert plain and not any(plain), "deterministic algorithms were on without train.deterministic"
    assert a is not None and b is not None
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])


@needs_cuda
@pytest.mark.parametrize("amp", [False, True])
def test_cuda_training_with_and_without_amp(tmp_path: Path, amp: bool) -> None:
    result = _train(tmp_path, "train.device=cuda", f"train.amp={str(amp).lower()}")
    assert result.metrics["device"].startswith("cuda")
    assert result.metrics["equivariance_error"]["pruned"] < 1e-4
    assert next(result.model.parameters()).is_cuda


@needs_cuda
def test_cuda_and_cpu_agree_in_fp32(tmp_path: Path) -> None:
    cpu = _train(tmp_path / "cpu", "train.device=cpu", "train.deterministic=true").final_state
    gpu = _train(tmp_path / "gpu", "train.device=cuda", "train.deterministic=true").final_state
    torch.use_deterministic_algorithms(False)
    assert cpu is not None and gpu is not None
    for name, value in cpu["weights"].items():
        assert torch.allclose(gpu["weights"][name].cpu(), value, atol=1e-4, rtol=1e-3), name


@needs_cuda
@pytest.mark.parametrize("config", ["se3t_nbody_equality.yaml", "gcnn_digits_resilient.yaml"])
def test_other_architectures_train_on_cuda_with_amp(tmp_path: Path, config: str) -> None:
    small = {"se3t_nbody_equality.yaml": ["model.channels=8", "model.heads=2", "model.layers=1"],
             "gcnn_digits_resilient.yaml": ["model.channels=4"]}[config]
    overrides = ["train.epochs=1", f"train.output_dir={tmp_path}", "train.progress=false", "train.tracking=false",
                 "data.n_train=60", "data.n_val=20", "data.n_test=20", "train.device=cuda", "train.amp=true", *small]
    result = acezoo.train(acezoo.load_config(ZOO / config, overrides))
    assert result.metrics["equivariance_error"]["pruned"] < 1e-3


def test_compiled_validation_matches_eager(tmp_path: Path) -> None:
    """With ``train.compile`` the validation runs through the compiled model too: the same
    validation losses and equivariance errors as eager (the ``eager`` backend: same kernels)."""
    eager = _train(tmp_path / "a")
    compiled = _train(tmp_path / "b", "train.compile=true", "train.compile_backend=eager")
    for key, value in eager.history[-1].items():
        if key.startswith(("val_", "equivariance_error")):
            assert compiled.history[-1][key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_keep_freed_memory_is_set_once_where_the_c_library_is_glibc() -> None:
    import platform

    from acezoo.training.allocator import keep_freed_memory

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc
    assert keep_freed_memory() is glibc  # idempotent


@pytest.mark.parametrize("keep", [True, False])
def test_the_trainer_keeps_freed_memory_unless_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           keep: bool) -> None:
    import acezoo.training.trainer as trainer_module

    calls: list[bool] = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append(True) or True)
    _train(tmp_path, f"train.keep_freed_memory={str(keep).lower()}")
    assert calls == ([True] if keep else [])
