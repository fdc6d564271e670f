"""`acezoo study`: bad study files are refused before anything runs (exit 2, the file and the
field named, no traceback, nothing written); the schema; the summary of committed records."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from acezoo.cli import main
from acezoo.studies.loader import load_study

ROOT = Path(__file__).resolve().parents[1]
BASE = str(ROOT / "zoo_configs" / "egnn_nbody_equality.yaml")


def _study(tmp_path: Path, **changes: object) -> Path:
    spec = {"name": "tiny", "base": BASE, "common": ["train.epochs=2"],
            "contenders": [{"name": "strict", "overrides": ["constraints.mode=strict"]},
                           {"name": "ace", "overrides": ["constraints.mode=equality"]}],
            "seeds": [0, 1], "records": str(tmp_path / "records")}
    spec.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("changes, field, words", [
    ({"contenders": [{"name": "strict", "overrides": ["constraints.mode=sideways"]}]},
     "contenders[0].overrides (strict)", "constraints.mode"),
    ({"common": ["train.epochz=2"]}, "common", "epochz"),
    ({"seeds": [0, 0]}, "seeds", "distinct"),
    ({"base": "zoo_configs/no_such.yaml"}, "base", "no such config"),
    ({"contenders": [{"name": "a b", "overrides": []}]}, "contenders[0].name", "pattern"),
    ({"contenders": [{"name": "x", "overrides": ["constraints.mode"]}]}, "contenders[0].overrides", "key=value"),
    ({"selection": "test"}, "selection", "best_val"),
    ({"resources": {"cpus": 0}}, "resources.cpus", "greater than or equal to 1"),
    ({"contendrs": []}, "contendrs", "contenders"),
    ({"status": "superseded"}, "", "superseded_by"),
    ({"continues": "no_such_study.yaml"}, "continues", "no such study file"),
])
def test_bad_study_file_exits_2_naming_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      changes: dict, field: str, words: str) -> None:
    path = _study(tmp_path, **changes)
    assert main(["study", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and field in err and words in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "records").exists()  # nothing written


def test_bad_study_file_from_the_real_command(tmp_path: Path) -> None:
    path = _study(tmp_path, contenders=[{"name": "strict", "overrides": ["constraints.mode=sideways"]}])
    proc = subprocess.run([sys.executable, "-m", "acezoo", "study", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and str(path) in proc.stderr and "constraints.mode" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_without_ray_the_study_command_names_the_extra(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    assert main(["study", str(_study(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert 'pip install "acezoo[studies]"' in err and "Traceback" not in err


def test_summary_without_records_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["study", str(_study(tmp_path)), "--summary"]) == 2
    assert "no finished trial" in capsys.readouterr().err


def test_study_schema_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "study"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"base", "contenders", "seeds", "selection", "resources"} <= set(schema["properties"])


def test_every_zoo_study_validates_with_every_trial_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    studies = sorted((ROOT / "zoo_studies").glob("*.yaml"))
    assert studies
    for path in studies:
        study = load_study(path)  # builds every contender's zoo config
        if study.records.parts[0] != "studies":  # studies not run yet record under the git-ignored studies/
            assert study.records.is_dir(), f"{path}: records folder {study.records} is missing"
        if study.spec.superseded_by:
            assert (ROOT / "zoo_studies" / f"{study.spec.superseded_by}.yaml").is_file(), path


def test_summary_writes_tables_json_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    out = tmp_path / "segnn"
    for folder in ("results", "histories"):
        shutil.copytree(ROOT / "docs/studies/nbody-segnn/segnn-nbody" / folder, out / folder)
    assert main(["study", str(ROOT / "zoo_studies/segnn-nbody.yaml"), "--summary", "--records", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| ace-authors | 3 |" in printed and "Paired by seed against strict" in printed
    data = json.loads((out / "summary.json").read_text())
    paired = {r["contender"]: r for r in data["paired"]}
    assert paired["ace-authors"]["seeds"] == [0, 1, 2] and 0 <= paired["ace-authors"]["sign_test_p"] <= 1
    assert (out / "results.md").read_text().startswith("segnn-nbody:") and (out / "curves.png").stat().st_size > 0


def test_training_evaluation_and_loading_never_import_ray(tmp_path: Path) -> None:
    code = f"""
import sys, acezoo
config = acezoo.load_config({BASE!r}, ["train.epochs=1", "data.n_train=40", "data.n_val=20", "data.n_test=20",
                                       "train.tracking=false", "train.progress=false", "train.output_dir={tmp_path}"])
result = acezoo.train(config)
from acezoo.training.checkpoint import load_run
load_run(result.run_dir)
acezoo.load("egnn-nbody-ace")
try:
    acezoo.load(result.run_dir)
except Exception as exc:
    assert "takes a model name" in str(exc), exc
from acezoo.cli import main
assert main(["eval", str(result.run_dir), "--json"]) == 0
print("ray" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_a_record_and_its_gzip_history_round_trip(tmp_path: Path) -> None:
    from acezoo.studies.records import read_record, write_record

    record = {"contender": "ace", "seed": 3, "best_val": 0.5, "history": [{"epoch": 1, "val_eq_mse": 0.7}]}
    path = write_record(tmp_path, record)
    first = (tmp_path / "histories" / "ace-s3.json.gz").read_bytes()
    assert "history" not in json.loads(path.read_text())
    assert read_record(tmp_path, "ace", 3) == record
    write_record(tmp_path, record)
    assert (tmp_path / "histories" / "ace-s3.json.gz").read_bytes() == first  # same history, same bytes


def test_the_command_line_registers_study_without_importing_its_schema() -> None:
    """`acezoo --help` (any command's start-up) does not pay for pydantic and YAML through `study`."""
    code = "import sys, acezoo.cli; acezoo.cli.build_parser(); print(sorted({'pydantic', 'yaml'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_the_winner_line_names_contenders_selected_on_another_quantity() -> None:
    """A contender selected on the full model's validation loss is not ranked against those
    selected, like the baseline, on the equivariant model's: the line says so and names it."""
    from acezoo.studies.summary import winner_line

    rows = [{"contender": "strict", "selected_on": "val_eq_mse", "score": 0.3},
            {"contender": "equality", "selected_on": "val_eq_mse", "score": 0.33},
            {"contender": "resilient", "selected_on": "val_full_mse", "score": 0.2},
            {"contender": "unfinished", "selected_on": "val_full_mse", "score": None}]
    line = winner_line(rows, "strict", "equality")
    assert "select on `val_eq_mse` as strict does: equality" in line
    assert "(resilient: selected on another quantity" in line and "unfinished" not in line
    same = winner_line(rows[:2], "strict", "equality")
    assert same == "Lowest mean validation loss among ACE contenders with every seed: equality"


def test_a_restricted_summary_prints_its_part_and_leaves_the_whole_study_in_the_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--only` / `--seeds` (also a restricted run's closing summary) restrict what is printed;
    results.md and summary.json keep describing every finished trial."""
    import shutil

    out = tmp_path / "segnn"
    for folder in ("results", "histories"):
        shutil.copytree(ROOT / "docs/studies/nbody-segnn/segnn-nbody" / folder, out / folder)
    study = str(ROOT / "zoo_studies/segnn-nbody.yaml")
    assert main(["study", study, "--summary", "--records", str(out), "--only", "strict", "--seeds", "0"]) == 0
    captured = capsys.readouterr()
    assert "| strict | 1 |" in captured.out and "ace-authors" not in captured.out
    assert "hold the whole study" in captured.err
    written = (out / "results.md").read_text()
    assert "| strict | 3 |" in written and "| ace-authors | 3 |" in written
    assert json.loads((out / "summary.json").read_text())["seeds"] == [0, 1, 2]
    assert main(["study", study, "--summary", "--records", str(out), "--only", "nobody"]) == 2
    assert "no finished trial of nobody" in capsys.readouterr().err
