"""The study runner behind scripts/study_*.py."""
from __future__ import annotations

import json
from pathlib import Path

from acezoo.training.study import run_study

from conftest import ZOO, tiny_overrides


def test_run_study_writes_table_json_and_plot(tmp_path: Path) -> None:
    overrides = [o for o in tiny_overrides(tmp_path, epochs=1) if not o.startswith("train.epochs")]
    runs = run_study(ZOO / "egnn_nbody_equality.yaml", ["strict", "resilient"], [0, 1], 1, tmp_path / "study", overrides)
    assert [(r["mode"], r["seed"]) for r in runs] == [("strict", 0), ("strict", 1), ("resilient", 0), ("resilient", 1)]
    table = (tmp_path / "study" / "results.md").read_text()
    assert "| strict |" in table and "| resilient |" in table and "+-" in table
    assert len(json.loads((tmp_path / "study" / "results.json").read_text())) == 4
    assert (tmp_path / "study" / "duals.png").stat().st_size > 10_000
    assert set(runs[2]["slacks"]) == set(runs[2]["gammas"])  # resilient: one slack per block
