"""Settings of the shared primal-dual trainer."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from acezoo.config.base import StrictModel

__all__ = ["TrainConfig"]


class TrainConfig(StrictModel):
    """Optimisation, early stopping, device and output settings."""

    epochs: int = Field(100, ge=1, description="Maximum number of epochs.")
    batch_size: int = Field(100, ge=1, description="Graphs (samples) per mini-batch.")
    lr: float = Field(5e-4, gt=0, description="Learning rate of the Adam primal optimiser.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="Primal learning rate over epochs: `constant`, or `cosine` (lr * (1 + cos(pi e / epochs)) / 2 in "
        "epoch e = 0, 1, ...; the EGNN paper's QM9 schedule).",
    )
    weight_decay: float = Field(1e-12, ge=0, description="Adam weight decay (not applied to gammas/slacks).")
    grad_clip: float | None = Field(None, gt=0, description="Clip the primal gradient norm to this value.")
    patience: int | None = Field(
        50, ge=1, description="Stop after this many epochs without a better validation loss "
        "of the equivariant-only model (null: never stop early)."
    )
    select_on: Literal["auto", "equivariant", "full"] = Field(
        "auto",
        description="Model selection and early stopping on the validation loss of the equivariant-only "
        "model (gamma treated as 0; the paper's protocol) or of the full model; `auto`: full in `free` "
        "and `resilient` modes (whose deliverable keeps its symmetry breaking), equivariant otherwise.",
    )
    eval_every: int = Field(1, ge=1, description="Validate every this many epochs.")
    device: str = Field("auto", description="`auto` (CUDA if present, else CPU), `cpu`, `cuda` or `cuda:N`.")
    output_dir: str = Field("runs", description="Folder under which each run writes its checkpoint directory.")
    progress: bool = Field(True, description="Show a progress bar.")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default).")
    keep_freed_memory: bool = Field(
        True,
        description="On the CPU with glibc (Linux), keep freed memory in the process for the next step instead "
        "of returning it to the OS (`mallopt`: mmap threshold 32 MiB, trim threshold 256 MiB; process-wide): "
        "no page faults per step. false leaves the C library's defaults.",
    )
    tracking: bool = Field(True, description="Log the run to MLflow (params, per-epoch metrics, artifacts).")
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (e.g. http://mlflow.example:5000); null: $MLFLOW_TRACKING_URI, "
        "else an embedded SQLite store under the data home.",
    )
    experiment: str = Field("acezoo", min_length=1, description="MLflow experiment name.")
    tracking_grace_s: float = Field(
        30.0,
        ge=0,
        description="At the end of a run, how many seconds to keep retrying tracking updates the server has not "
        "taken yet (it may be restarting); what is still unsent then is named in a warning, and "
        "`acezoo sync RUN_DIR` uploads it later. Training itself never waits for the server.",
    )
    amp: bool = Field(
        False,
        description="Mixed precision: run the model's forward pass under bfloat16 autocast (CUDA with bf16 "
        "support, or CPU); the loss, the Lagrangian, multipliers and slacks stay float32.",
    )
    compile: bool = Field(
        False,
        description="Train and validate through `torch.compile(model)` (the same maths; float round-off "
        "differs). On the CPU it needs a C++ compiler; the first epoch pays the compilation (about 10-60 s).",
    )
    compile_backend: str = Field("inductor", min_length=1, description="`torch.compile` backend (e.g. inductor, "
                                 "aot_eager, eager).")
    deterministic: bool = Field(
        False,
        description="Deterministic kernels (`torch.use_deterministic_algorithms`, cuDNN deterministic, no "
        "benchmark); slower on GPU, and an error where an operation has no deterministic implementation.",
    )

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        ok = value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())
        if not ok:
            raise ValueError("must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return value
