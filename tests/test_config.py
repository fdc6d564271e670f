"""Zoo configs validate; bad configs get one clear error naming file, field and what is allowed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import acezoo
from acezoo.cli import main
from acezoo.config.loader import dump_config, zoo_config_paths
from acezoo.errors import ConfigError

from conftest import ZOO, tiny_overrides


@pytest.mark.parametrize("name", sorted(zoo_config_paths()))
def test_every_zoo_config_validates_and_compiles(name: str) -> None:
    config = acezoo.load_config(zoo_config_paths()[name])
    assert config.name == name  # names are interpolated from the mode
    model = acezoo.compile_model(config)
    if config.constraints.mode == "strict":
        assert model.named_gammas() == {}
    else:
        assert len(model.named_gammas()) >= config.model.layers  # at least one relaxed block per layer


def test_overrides_and_interpolation() -> None:
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", ["constraints.mode=resilient", "train.lr=1e-3"])
    assert config.constraints.mode == "resilient" and config.train.lr == 1e-3
    assert config.name == "egnn_nbody_resilient"


def test_zoo_config_by_name_and_round_trip(tmp_path: Path) -> None:
    config = acezoo.load_config("egnn_nbody_strict")
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(config))
    assert acezoo.load_config(path) == config


def test_zoo_config_class_validates_directly() -> None:
    raw = {"name": "x", "model": {"arch": "egnn"}, "data": {"dataset": "nbody_charged"}}
    config = acezoo.ZooConfig.model_validate(raw)
    assert isinstance(config, acezoo.ZooConfig) and config.model.hidden == 64


def test_schema_has_descriptions_for_every_field() -> None:
    schema = acezoo.ZooConfig.model_json_schema()
    for name, sub in schema["$defs"].items():
        for field, prop in sub.get("properties", {}).items():
            if field in ("arch", "dataset"):
                continue
            assert prop.get("description"), f"{name}.{field} has no description"


BAD_OVERRIDES = [
    (["model.hiddn=3"], "model.hiddn", "unknown key"),
    (["model.hidden=abc"], "model.hidden", "valid integer"),
    (["model.arch=egnnn"], "model.arch", "allowed: 'egnn'"),
    (["data.dataset=nbody"], "data.dataset", "allowed: 'nbody_charged'"),
    (["constraints.mode=strictt"], "constraints.mode", "'strict', 'equality', 'tolerance', 'resilient', 'free', 'schedule', 'error_budget' or 'penalty'"),
    (["train.lr=-1"], "train.lr", "greater than 0"),
    (["train.device=gpu"], "train.device", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (["constraints.dual_optimizer=rmsprop"], "constraints.dual_optimizer", "'sgd', 'adam' or 'nupi'"),
    (["train.epochs"], "train.epochs", "key=value"),
]


@pytest.mark.parametrize("overrides, field, allowed", BAD_OVERRIDES)
def test_bad_overrides_name_file_field_and_allowed(overrides: list[str], field: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", overrides)
    msg = str(info.value)
    assert "egnn_nbody_equality.yaml" in msg and field in msg and allowed in msg, msg


BAD_FILES = [
    ("name: x\nmodel: {arch: egnn\n", "YAML syntax error at line"),
    ("- a\n- b\n", "expected a mapping"),
    ("name: ${oops}\nmodel: {arch: egnn}\ndata: {dataset: nbody_charged}\n", "name: Interpolation key 'oops' not found"),
    ("name: x\ndata: {dataset: nbody_charged}\n", "model: Field required"),
    ("name: x\nmodel: {hidden: 3}\ndata: {dataset: nbody_charged}\n", "model.arch: missing"),
    ("name: x\nmodel: {arch: egnn}\ndata: {dataset: nbody_charged, frame_out: 3}\n", "data: frame_out (3) must be after frame_in"),
    ("name: x\nmodel: {arch: gcnn}\ndata: {dataset: digits_rot, n_val: 900}\n",
     "data: n_train + n_val + n_test = 1000 + 900 + 500 = 2400; allowed: at most the 1797 images"),
    ("name: x\nmodel: {arch: egnn}\ndata: {dataset: nbody_charged}\nextra: 1\n", "extra: unknown key"),
]


@pytest.mark.parametrize("text, expected", BAD_FILES)
def test_bad_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        acezoo.load_config(path)
    assert str(path) in str(info.value) and expected in str(info.value), str(info.value)


def test_a_missing_config_suggests_the_closest_name_not_all_of_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such config file; `acezoo list` shows the \d+ zoo configs") as info:
        acezoo.load_config(tmp_path / "nope.yaml")
    assert "egnn_nbody_equality" not in str(info.value)  # no list of every name on one line
    with pytest.raises(ConfigError, match=r"egnn_nbody_equalty: no such config file or zoo config name \(did you "
                                          r"mean 'egnn_nbody_equality'\?\)"):
        acezoo.load_config("egnn_nbody_equalty")


TYPOS = [  # (where, text or override, expected message)
    ("file", "name: x\ntrian: {epochs: 2}\nmodel: {arch: egnn}\ndata: {dataset: nbody_charged}\n",
     "trian: unknown key (did you mean 'train'?)"),
    ("file", "name: x\nmodel: {arch: egnn, hiden: 3}\ndata: {dataset: nbody_charged, n_trian: 5}\n",
     "model.hiden: unknown key (did you mean 'hidden'?)"),
    ("file", "name: x\nmodel: {arch: egnn}\ndata: {dataset: nbody_charged, n_trian: 5}\n",
     "data.n_trian: unknown key (did you mean 'n_train'?)"),
    ("file", "name: x\nmodel: {arch: egnn}\ndata: {dataset: nbody_charged}\nconstraints: {mode: equalty}\n",
     "constraints.mode: Input should be 'strict', 'equality', 'tolerance', 'resilient', 'free', 'schedule', "
     "'error_budget' or 'penalty'; got 'equalty' (did you mean 'equality'?)"),
    ("file", "name: x\nmodel: {arch: egnn}\ndata: {dataset: nbody_charged}\nconstraints: {blocks: {layers.0.x: "
     "{mdoe: strict}}}\n", "constraints.blocks.layers.0.x.mdoe: unknown key (did you mean 'mode'?)"),
    ("file", "name: x\nmodel: {arch: egnn}\ndata: {dataset: nbody_charged}\nzzz: 1\n",
     "zzz: unknown key; allowed: schema_version, name, seed, imports, model, constraints, data, train"),
    ("override", "train.epochs=three", "override train.epochs=three (on {file}): invalid config: train.epochs: Input "
     "should be a valid integer"),
    ("override", "constraints.mode=equalty", "override constraints.mode=equalty (on {file}): invalid config: "
     "constraints.mode: Input should be"),
    ("override", "data.n_trian=3", "override data.n_trian=3 (on {file}): invalid config: data.n_trian: unknown key "
     "(did you mean 'n_train'?)"),
]


@pytest.mark.parametrize("where, text, expected", TYPOS)
def test_typos_get_a_did_you_mean_and_overrides_are_named_with_their_value(tmp_path: Path, where: str, text: str,
                                                                          expected: str) -> None:
    path = ZOO / "egnn_nbody_equality.yaml"
    if where == "file":
        path = tmp_path / "typo.yaml"
        path.write_text(text)
    with pytest.raises(ConfigError) as info:
        acezoo.load_config(path, [text] if where == "override" else [])
    assert expected.format(file=path) in str(info.value), str(info.value)
    if where == "file":
        assert str(info.value).startswith(f"{path}: invalid config")


def test_cli_reports_a_bad_override_as_the_override(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "egnn_nbody_equality", "train.epochs=three", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: override train.epochs=three (on ") and "Traceback" not in err, err


def test_block_override_pattern_must_match_a_block() -> None:
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", ["constraints.blocks={layers.9.*: {mode: strict}}"])
    with pytest.raises(ConfigError, match=r"constraints.blocks.layers.9.\*: matches no relaxed block; blocks are: layers.0.x"):
        acezoo.compile_model(config)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model.hiddn=3"], "model.hiddn: unknown key"),
        (["constraints.blocks={layers.9.*: {mode: strict}}"], "matches no relaxed block"),
        (["train.lr=-1"], "train.lr"),
    ],
)
def test_cli_bad_config_exits_2_without_writing(tmp_path: Path, capsys: pytest.CaptureFixture, args, expected) -> None:
    out = tmp_path / "runs"
    code = main(["train", str(ZOO / "egnn_nbody_equality.yaml"), f"train.output_dir={out}", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "egnn_nbody_equality.yaml" in err and expected in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_subprocess_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {arch: egnn, hidden: -4}\ndata: {dataset: nbody_charged}\n")
    proc = subprocess.run([sys.executable, "-m", "acezoo", "train", str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "model.hidden" in proc.stderr and str(bad) in proc.stderr
    assert list(tmp_path.iterdir()) == [bad]


def test_cli_list_and_schema(capsys: pytest.CaptureFixture) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "egnn" in out and "nbody_charged" in out and "egnn_nbody_equality" in out
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "EGNNSpec" in schema["$defs"] and "ConstraintBudget" in schema["$defs"]


def test_tiny_overrides_are_valid(tmp_path: Path) -> None:
    """The tests' small-run overrides validate and take effect (each key lands where it says)."""
    overrides = tiny_overrides(tmp_path)
    cfg = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", overrides)
    for item in overrides:
        key, _, value = item.partition("=")
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        assert str(node).lower() == value.lower() or str(node) == str(type(node)(value)), f"{key}: {node!r} != {value}"


def test_cli_overrides_may_follow_options(capsys: pytest.CaptureFixture) -> None:
    code = main(["train", str(ZOO / "egnn_nbody_equality.yaml"), "--no-progress", "model.hiddn=3"])
    assert code == 2 and "model.hiddn: unknown key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", str(ZOO / "egnn_nbody_equality.yaml"), "--bogus"])


DATASETS = sorted(acezoo.registry.datasets())


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_registered_dataset_rejects_bad_fields_by_name(dataset: str, tmp_path: Path) -> None:
    """Registry-parametrized: a new data set's config errors name the field and what is allowed
    (an unknown key, and each bounded number pushed out of its bounds)."""
    from annotated_types import Ge, Gt

    config = tmp_path / "c.yaml"
    config.write_text(f"name: t\nmodel: {{arch: egnn}}\ndata: {{dataset: {dataset}}}\n")
    acezoo.load_config(config)  # the data set's defaults are valid
    with pytest.raises(acezoo.ConfigError, match=r"invalid config: data\.bogus: unknown key"):
        acezoo.load_config(config, ["data.bogus=1"])
    spec = acezoo.registry.get_dataset(dataset).spec
    checked = 0
    for name, field in spec.model_fields.items():
        bounds = [m for m in field.metadata if isinstance(m, (Ge, Gt))]
        if not bounds or field.annotation not in (int, float):
            continue
        low = getattr(bounds[0], "ge", getattr(bounds[0], "gt", 0))
        with pytest.raises(acezoo.ConfigError, match=rf"invalid config: data\.{name}: Input should be greater than"):
            acezoo.load_config(config, [f"data.{name}={low - 1}"])
        checked += 1
    assert checked >= 1, f"{dataset} has no bounded numeric field to check"
