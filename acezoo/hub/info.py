"""What the hub knows about one model version (no torch, no MLflow)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["ModelInfo", "info_from_tags"]


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


def info_from_tags(name: str, version: int, aliases: Iterable[str], tags: Mapping[str, str], run_id: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered version from its ``acezoo.*`` tags (as ``register`` writes them)."""
    num = lambda k: float(tags[k]) if k in tags else float("nan")  # noqa: E731
    return ModelInfo(
        name=name, version=int(version), aliases=list(aliases),
        arch=tags.get("acezoo.arch", ""), dataset=tags.get("acezoo.dataset", ""), mode=tags.get("acezoo.mode", ""),
        metric=tags.get("acezoo.metric", ""), test_pruned=num("acezoo.test_pruned"), test_full=num("acezoo.test_full"),
        params=int(tags.get("acezoo.params", 0)), run_id=run_id or "",
    )
