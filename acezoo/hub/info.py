"""What the hub knows about one model version (no torch, no MLflow)."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ModelInfo"]


@dataclass
class ModelInfo:
    """One registered model version (``version`` 0 and alias ``pretrained``: a model shipped with acezoo)."""

    name: str
    version: int
    aliases: list[str] = field(default_factory=list)
    arch: str = ""
    dataset: str = ""
    mode: str = ""
    metric: str = ""
    test_pruned: float = float("nan")
    test_full: float = float("nan")
    params: int = 0
    run_id: str = ""
    unit: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"
