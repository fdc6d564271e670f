"""The committed study records, converted to study files, give the same tables as the retired sweep runner.

``tests/data/legacy_study_tables.json`` holds each table as the retired runner
(``acezoo/training/sweep.py`` and ``scripts/study_ace.py``) computed it from these records,
just before it was removed; ``acezoo study --summary`` must reproduce every one, and name the
same winner (selected on validation data only).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from acezoo.studies.loader import load_study
from acezoo.studies.summary import summarise

ROOT = Path(__file__).resolve().parents[1]
LEGACY = json.loads((ROOT / "tests" / "data" / "legacy_study_tables.json").read_text())
STUDIES = sorted((ROOT / "zoo_studies").glob("*.yaml"))


def test_every_legacy_table_has_a_study_file() -> None:
    names = {load_study(p, check_trials=False).name for p in STUDIES}
    assert set(LEGACY) <= names


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_converted_study_reproduces_the_legacy_table(name: str, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """On the records that existed at the conversion (a live study gains records since)."""
    monkeypatch.chdir(ROOT)  # study files name their records relative to the repository root
    study = load_study(ROOT / "zoo_studies" / f"{name}.yaml", check_trials=False)
    (tmp_path / "results").mkdir()
    (tmp_path / "histories").mkdir()
    for file in LEGACY[name]["record_files"]:
        shutil.copy(study.records / "results" / file, tmp_path / "results" / file)
        history = study.records / "histories" / f"{Path(file).stem}.json.gz"
        shutil.copy(history, tmp_path / "histories" / history.name)
    # a sample-efficiency study may plan more seeds since; its base rows would then read more seeds of
    # its base study, so it is summarised on the seeds of those records
    seeds = (sorted({int(Path(file).stem.rsplit("-s", 1)[1]) for file in LEGACY[name]["record_files"]})
             if study.spec.report.samples is not None else None)
    summary = summarise(dataclasses.replace(study, records=tmp_path), seeds)
    assert LEGACY[name]["table"] in summary.markdown
    assert summary.winner == LEGACY[name]["winner"]


def test_committed_records_keep_their_histories_in_gzip_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records stay small (the working tree stops growing by the per-epoch curves) and read back whole."""
    monkeypatch.chdir(ROOT)
    results = sorted(ROOT.glob("docs/studies/**/results/*.json"))
    assert results
    for path in results:
        raw = json.loads(path.read_text())
        assert "history" not in raw and raw["history_file"].endswith(".json.gz"), path
        assert path.stat().st_size < 64_000, path
    study = load_study(ROOT / "zoo_studies" / "segnn-nbody.yaml", check_trials=False)
    from acezoo.studies.records import read_record

    record = read_record(study.records, "strict", 0)
    assert record is not None and record["history"][-1]["epoch"] == record["epochs_run"]
