"""The hub answers without importing what it does not need (the lazy registries and hub).

Each command runs in a fresh interpreter, which then reports the heavy modules it imported:
listing and model cards need neither torch nor MLflow, e3nn or torch_geometric; loading a
shipped EGNN needs torch but none of the others, and so does loading a registered version
loaded before, by ``NAME/VERSION``, ``NAME`` or ``NAME@ALIAS`` (the embedded SQLite store is
read directly), which must still follow a new version, a moved alias and a deleted version.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from acezoo.registry import LazyBuilder, get_arch, lazy_builder, register_arch

HEAVY = ("torch", "mlflow", "sqlalchemy", "e3nn", "torch_geometric", "omegaconf")


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
    assert "torch" in got and not got & {"mlflow", "sqlalchemy", "e3nn", "torch_geometric", "omegaconf"}


# modules that `import torch` does not load and that cost start-up (torch._dynamo alone ~1 s, sympy with it)
HEAVY_BEYOND_TORCH = ("torch._dynamo", "torch._inductor", "torch.onnx", "torch.distributed", "sympy", "mpmath",
                      "mlflow", "sqlalchemy", "e3nn", "torch_geometric", "omegaconf", "matplotlib", "scipy", "sklearn",
                      "tqdm")


def _heavy_beyond_torch(code: str) -> set[str]:
    """The heavy modules that ``code`` imports in a fresh interpreter after ``import torch``."""
    probe = ("import sys, torch\nbefore = set(sys.modules)\n" + textwrap.dedent(code) +
             "\nnew = set(sys.modules) - before\n"
             f"print(','.join(h for h in {HEAVY_BEYOND_TORCH!r}\n"
             "                if any(m == h or m.startswith(h + '.') for m in new)))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(filter(None, out.stdout.rstrip("\n").split("\n")[-1].split(",")))


@pytest.mark.parametrize("name", ["egnn-nbody-ace", "egnn-mocap-ace", "egnn-qm9-ace", "gcnn-digits-ace"])
def test_loading_a_shipped_model_pulls_in_nothing_heavy_beyond_torch(name: str) -> None:
    """The start-up guard: ``acezoo.load(NAME)`` costs little more than ``import torch`` because it
    imports none of these (``torch._dynamo`` came with ``@torch.compiler.disable`` at import)."""
    assert _heavy_beyond_torch(f"import acezoo\nm = acezoo.load({name!r})\nm.acezoo_inputs") == set()


def test_import_acezoo_pulls_in_nothing_heavy() -> None:
    assert _heavy_beyond_torch("import acezoo\nacezoo.__version__\nacezoo.InputError") == set()
    assert _imported_after("import acezoo\nacezoo.InputError\nacezoo.__all__") == set()


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


@pytest.fixture
def own_registry(tmp_path, monkeypatch) -> str:
    """A fresh data home with its embedded SQLite store; the store's URI."""
    from acezoo.hub import store

    monkeypatch.setenv("ACEZOO_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return store.tracking_uri()


def _mlflow_forbidden(monkeypatch) -> None:
    """Make any use of MLflow by ``acezoo.load`` fail the test."""
    from acezoo.hub import models

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("acezoo.load asked MLflow")

    monkeypatch.setattr(models.store, "client", forbidden)


def test_latest_and_alias_loaded_before_load_without_mlflow(own_registry) -> None:
    """NAME and NAME@ALIAS of a version loaded before: the SQLite store is read without MLflow or SQLAlchemy."""
    import acezoo
    from acezoo.hub.pretrained import bundled

    v = acezoo.register(bundled()["egnn-nbody-ace"], "quick-egnn", alias="champion").version
    acezoo.load("quick-egnn")  # asks MLflow, keeps the local copy
    code = ("import acezoo\n"
            "for spec in ('quick-egnn', 'quick-egnn@champion'):\n"
            "    info = acezoo.load(spec).acezoo_info\n"
            f"    assert (info.version, info.aliases, info.arch) == ({v}, ['champion'], 'egnn'), info\n")
    got = _imported_after(code)
    assert "torch" in got and not got & {"mlflow", "sqlalchemy", "e3nn", "torch_geometric"}, got


def test_latest_and_alias_follow_new_moved_and_deleted_versions(own_registry, monkeypatch) -> None:
    """Never a stale answer: a new latest version, a moved alias and a deleted version are followed."""
    import acezoo
    from acezoo.hub import quick_resolve, store
    from acezoo.hub.models import UnknownModel
    from acezoo.hub.pretrained import bundled

    name, shipped = "moving-egnn", bundled()
    v1 = acezoo.register(shipped["egnn-nbody-ace"], name, alias="champion").version
    assert acezoo.load(name).acezoo_info.version == v1  # MLflow's answer; v1 is now kept locally
    v2 = acezoo.register(shipped["egnn-nbody-strict"], name).version  # other weights: a new version
    assert v2 == v1 + 1
    assert acezoo.load(name).acezoo_info.version == v2  # not kept locally yet: MLflow is asked
    with monkeypatch.context() as m:
        m.setattr(quick_resolve, "resolve", lambda *_: None)
        slow = {spec: acezoo.load(spec).acezoo_info for spec in (name, f"{name}@champion")}

    with monkeypatch.context() as m:
        _mlflow_forbidden(m)
        fast = {spec: acezoo.load(spec).acezoo_info for spec in (name, f"{name}@champion")}
        assert fast == slow, (fast, slow)  # the same info as MLflow's, aliases and tags included
        assert (fast[name].version, fast[name].aliases) == (v2, [])
        assert (fast[f"{name}@champion"].version, fast[f"{name}@champion"].aliases) == (v1, ["champion"])

    acezoo.register(shipped["egnn-nbody-strict"], name, alias="champion")  # moves the alias to v2
    with monkeypatch.context() as m:
        _mlflow_forbidden(m)
        moved = acezoo.load(f"{name}@champion")
        assert (moved.acezoo_info.version, moved.acezoo_info.aliases) == (v2, ["champion"])
        assert acezoo.load(name).acezoo_info.aliases == ["champion"]
        assert moved.acezoo_config.constraints.mode == "strict"  # egnn-nbody-strict's files, not v1's

    store.client(own_registry).delete_model_version(name, str(v2))  # deletes its alias too
    with monkeypatch.context() as m:
        _mlflow_forbidden(m)
        info = acezoo.load(name).acezoo_info
        assert (info.version, info.aliases) == (v1, [])
    with pytest.raises(UnknownModel, match="has no alias 'champion'"):  # MLflow says so, as before
        acezoo.load(f"{name}@champion")
