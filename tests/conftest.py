"""Shared fixtures: an isolated data home, and tiny configs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
ZOO = REPO / "zoo_configs"


@pytest.fixture(scope="session", autouse=True)
def _acezoo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session uses its own data home (unless ACEZOO_TEST_HOME reuses a cache)."""
    home = os.environ.get("ACEZOO_TEST_HOME") or str(tmp_path_factory.mktemp("acezoo_home"))
    os.environ["ACEZOO_HOME"] = home
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return Path(home)


def tiny_overrides(tmp_path: Path, epochs: int = 2, n: int = 60) -> list[str]:
    """Overrides that make a zoo config train in a second or two."""
    return [
        f"train.epochs={epochs}",
        f"train.output_dir={tmp_path / 'runs'}",
        "train.batch_size=20",
        "train.progress=false",
        "train.tracking=false",
        f"data.n_train={n}",
        f"data.n_val={n // 2}",
        f"data.n_test={n // 2}",
        "model.hidden=16",
        "model.branch_hidden=16",
        "model.layers=2",
    ]


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a run directory (for tests that damage one)."""
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst
