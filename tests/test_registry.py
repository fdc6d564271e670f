"""Registering architectures in user code and through the entry-point group."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import acezoo
from acezoo import registry
from acezoo.symmetry import equivariance_error, get_symmetry

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch: pytest.MonkeyPatch):
    """Architectures registered by these tests disappear afterwards (other tests see the built-ins)."""
    registry.architectures()  # load the built-ins and plugins first
    monkeypatch.setattr(registry, "_ARCHS", dict(registry._ARCHS))
    monkeypatch.setattr(registry, "_DATASETS", dict(registry._DATASETS))
    yield
    registry._VERSION[0] += 1  # drop config classes cached with the test's architectures


def _import_example():
    spec = importlib.util.spec_from_file_location("radial_net", REPO / "examples" / "radial_net.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["radial_net"] = module
    spec.loader.exec_module(module)
    return module


def test_readme_example_registers_validates_compiles_and_trains(tmp_path: Path) -> None:
    _import_example()
    assert "radial" in registry.architectures()
    config = acezoo.load_config(REPO / "examples" / "radial_nbody.yaml",
                                [f"train.output_dir={tmp_path}", "train.epochs=2", "train.progress=false"])
    model = acezoo.compile_model(config)
    assert list(model.named_gammas()) == ["update"]
    result = acezoo.train(config)
    assert result.metrics["epochs_run"] == 2
    assert result.metrics["test"]["pruned"]["mse"] < 1.0
    assert (result.run_dir / "model.safetensors").is_file()
    # and the registry-parametrized symmetry check applies to it as to any architecture
    sym = get_symmetry("e3_points")
    x = sym.example_input(torch.Generator().manual_seed(0))
    assert equivariance_error(model.double().prune(), x, sym, torch.Generator().manual_seed(1)) < 1e-10


def test_architectures_page_contains_the_example_verbatim() -> None:
    readme = (REPO / "docs" / "site" / "architectures.md").read_text()
    code = (REPO / "examples" / "radial_net.py").read_text()
    body = code.split('"""', 2)[2].strip()  # everything after the module docstring
    assert body in readme


def test_unknown_arch_lists_known_names() -> None:
    with pytest.raises(KeyError, match="unknown architecture 'egn'; known: .*egnn.*Did you mean .*'egnn'"):
        registry.get_arch("egn")


def test_spec_without_tag_gets_one() -> None:
    class NoTag(acezoo.ArchSpec):
        width: int = 3

    @acezoo.register_arch("notag_test", spec=NoTag)
    def build(spec):  # noqa: ANN001, ANN202
        return torch.nn.Linear(spec.width, 1)

    config = acezoo.ZooConfig.model_validate(
        {"name": "t", "model": {"arch": "notag_test", "width": 5}, "data": {"dataset": "nbody_charged"}}
    )
    assert config.model.width == 5 and config.model.arch == "notag_test"


def test_entry_point_plugin_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package declaring `acezoo.architectures` makes its arch usable with no change to acezoo."""
    (tmp_path / "acezoo_plugin_demo.py").write_text(
        "from typing import Literal\n"
        "import torch, acezoo\n"
        "class DemoSpec(acezoo.ArchSpec):\n"
        "    arch: Literal['plugin_demo'] = 'plugin_demo'\n"
        "@acezoo.register_arch('plugin_demo', spec=DemoSpec)\n"
        "def build(spec):\n"
        "    '''A plugin architecture.'''\n"
        "    return torch.nn.Identity()\n"
    )
    dist = tmp_path / "acezoo_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acezoo-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[acezoo.architectures]\nplugin_demo = acezoo_plugin_demo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", [False])
    assert "plugin_demo" in registry.architectures()
    config = acezoo.ZooConfig.model_validate(
        {"name": "p", "model": {"arch": "plugin_demo"}, "data": {"dataset": "nbody_charged"}}
    )
    assert config.model.arch == "plugin_demo"
