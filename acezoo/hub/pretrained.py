"""The pretrained models shipped inside the package, read straight from their folders.

Each ``acezoo/pretrained/NAME/`` holds a checkpoint (``config.yaml``, ``model.safetensors``,
``metrics.json``) and its model card (``README.md``). Listing them, printing a card and
loading one by its bare name need neither MLflow nor a registry: this module reads JSON and
YAML only (no torch), so ``acezoo list --pretrained`` and ``acezoo info NAME`` answer at once.
"""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import yaml

from acezoo.hub.info import ModelInfo
from acezoo.run_layout import CARD_FILE, CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE

__all__ = ["pretrained_dir", "bundled", "pretrained_info", "list_pretrained", "pretrained_card", "PRETRAINED_ALIAS"]

PRETRAINED_ALIAS = "pretrained"


def pretrained_dir() -> Path:
    """The folder of pretrained checkpoints shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "pretrained"


def bundled() -> dict[str, Path]:
    """Every shipped model's folder, by name."""
    root = pretrained_dir()
    return {p.name: p for p in sorted(root.iterdir()) if (p / WEIGHTS_FILE).is_file()} if root.is_dir() else {}


def pretrained_info(name: str, folder: Path | None = None) -> ModelInfo:
    """The :class:`ModelInfo` of shipped model ``name`` (in ``folder``, default its package folder),
    from its config and metrics files."""
    folder = folder or bundled()[name]
    config = yaml.safe_load((folder / CONFIG_FILE).read_text())
    metrics = json.loads((folder / METRICS_FILE).read_text())
    test = metrics.get("test", {})
    metric = next(iter(test.get("pruned", {})), "")
    return ModelInfo(
        name=name, version=0, aliases=[PRETRAINED_ALIAS], arch=config["model"]["arch"],
        dataset=config["data"]["dataset"], mode=config["constraints"]["mode"], metric=metric,
        test_pruned=float(test["pruned"][metric]) if metric else float("nan"),
        test_full=float(test["full"][metric]) if metric else float("nan"),
        params=int(metrics.get("params", {}).get("pruned", 0)), unit=metrics.get("unit", ""),
    )


def list_pretrained(pattern: str = "*") -> list[ModelInfo]:
    """The shipped models whose name matches the glob ``pattern``."""
    return [pretrained_info(n, folder) for n, folder in bundled().items() if fnmatch.fnmatchcase(n, pattern)]


def pretrained_card(name: str) -> str:
    """The model card of shipped model ``name``, with a header line saying where it comes from."""
    from acezoo.hub.card_inputs import with_inputs_section

    folder = bundled()[name]
    card = folder / CARD_FILE
    header = f"<!-- {name}: pretrained, shipped with acezoo ({folder}) -->\n"
    return header + with_inputs_section(card.read_text() if card.is_file() else "(no model card)\n", folder)
