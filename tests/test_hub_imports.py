"""The hub answers without importing what it does not need (the lazy registries and hub).

Each command runs in a fresh interpreter, which then reports the heavy modules it imported:
listing and model cards need neither torch nor MLflow, e3nn or torch_geometric; loading a
shipped EGNN needs torch but none of the others.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from acezoo.registry import LazyBuilder, get_arch, lazy_builder, register_arch

HEAVY = ("torch", "mlflow", "e3nn", "torch_geometric", "omegaconf")


def _imported_after(code: str) -> set[str]:
    probe = textwrap.dedent(code) + f"\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    last = out.stdout.rstrip("\n").split("\n")[-1]  # the probe's line (empty: nothing heavy imported)
    return set(filter(None, last.split(",")))


CLI = "from acezoo.cli import main\nimport contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n    main({argv!r})\n"


@pytest.mark.parametrize("argv", [["list"], ["list", "--pretrained"], ["info", "egnn-nbody-ace"]])
def test_listing_and_cards_import_no_heavy_module(argv: list[str]) -> None:
    assert _imported_after(CLI.format(argv=argv)) <= {"omegaconf"}  # the config loader (yaml + omegaconf)


def test_import_acezoo_is_light() -> None:
    assert _imported_after("import acezoo\nacezoo.__version__") == set()


def test_loading_a_shipped_egnn_imports_torch_only() -> None:
    got = _imported_after("import acezoo\nm = acezoo.load('egnn-nbody-ace')\nassert not m.training")
    assert "torch" in got and not got & {"mlflow", "e3nn", "torch_geometric", "omegaconf"}


def test_a_lazy_builder_is_imported_on_first_call() -> None:
    builder = lazy_builder("collections:OrderedDict")
    assert isinstance(builder, LazyBuilder) and builder(a=1) == {"a": 1}
    with pytest.raises(ValueError, match="module:function"):
        lazy_builder("no_colon")


def test_register_an_architecture_lazily() -> None:
    """A plugin can register its architecture without importing its network code."""
    from pydantic import Field

    from acezoo.config.base import ArchSpec

    class TinySpec(ArchSpec):
        """A tiny spec."""

        width: int = Field(3, ge=1)

    register_arch("lazy_tiny_test", spec=TinySpec, symmetry="e3_points", description="a lazily built net")(
        lazy_builder("torch.nn:Identity"))
    entry = get_arch("lazy_tiny_test")
    assert entry.description == "a lazily built net"
    assert type(entry.builder(entry.spec())).__name__ == "Identity"
    from acezoo import registry

    registry._ARCHS.pop("lazy_tiny_test")  # keep the registry-parametrized tests to real networks
    registry._VERSION[0] += 1


def test_a_registered_version_loaded_before_loads_without_mlflow(tmp_path, monkeypatch) -> None:
    """NAME/VERSION never changes once registered: its local copy answers without the registry."""
    import os

    from acezoo.hub.pretrained import bundled

    monkeypatch.setenv("ACEZOO_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    import acezoo

    info = acezoo.register(bundled()["egnn-nbody-ace"], "fast-egnn")
    first = acezoo.load(f"fast-egnn/{info.version}")
    code = (f"import acezoo, torch\nm = acezoo.load('fast-egnn/{info.version}')\n"
            f"assert m.acezoo_info.ref == 'fast-egnn/{info.version}'\n")
    got = _imported_after(code)
    assert "mlflow" not in got, got
    assert os.environ["ACEZOO_HOME"] == str(tmp_path) and first.acezoo_info.version == info.version
