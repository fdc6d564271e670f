"""The public trainer interface: the training package does not import the hub, nothing outside it
uses its private names, callbacks see the run in order, can stop it, and change no result."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import acezoo
from acezoo.training.callbacks import Callback
from acezoo.training.trainer import Trainer, TrainingInterrupted, build_data

from conftest import REPO, ZOO, tiny_overrides

PACKAGE = REPO / "acezoo"
TRAINING = PACKAGE / "training"


def _imported_modules(path: Path, root: Path = REPO) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import in ``path`` (a file under ``root``) at any depth,
    relative ones resolved, and of ``importlib.import_module("...")`` with a literal name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((node.lineno, module, [alias.name for alias in node.names]))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value, []))
    return found


def _is_hub(module: str) -> bool:
    return module == "acezoo.hub" or module.startswith("acezoo.hub.")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_the_training_package_does_not_import_the_hub() -> None:
    files = sorted(TRAINING.rglob("*.py"))
    assert TRAINING / "trainer.py" in files and TRAINING / "callbacks.py" in files
    offenders = [f"{path.relative_to(REPO)}:{line}: {module}" for path in files
                 for line, module, names in _imported_modules(path)
                 if _is_hub(module) or (module == "acezoo" and "hub" in names)]
    assert offenders == [], offenders


def _private_uses(path: Path, root: Path = REPO) -> list[str]:
    """Private names of ``acezoo.training.*`` that ``path`` imports or reads off an imported module."""
    out: list[str] = []
    aliases: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for line, module, names in _imported_modules(path, root):
        if module == "acezoo.training" or module.startswith("acezoo.training."):
            out += [f"{line}: {module}.{n}" for n in names if _private(n)]
            out += [f"{line}: {module}" for part in module.split(".") if _private(part)]
    for node in ast.walk(tree):  # `import acezoo.training.x as m` / `from acezoo.training import x`: m._name
        if isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.asname and a.name.startswith("acezoo.training")}
        elif isinstance(node, ast.ImportFrom) and node.module == "acezoo.training":
            aliases |= {a.asname or a.name for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            dotted, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                dotted.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                dotted.insert(0, value.id)
                if value.id in aliases or ".".join(dotted).startswith("acezoo.training."):
                    out.append(f"{node.lineno}: {'.'.join(dotted)}")
    return out


def test_nothing_outside_the_training_package_uses_its_private_names() -> None:
    files = sorted({*PACKAGE.rglob("*.py"), *(REPO / "scripts").rglob("*.py")} - set(TRAINING.rglob("*.py")))
    assert REPO / "scripts" / "bench_epoch.py" in files
    offenders = [f"{path.relative_to(REPO)}:{use}" for path in files for use in _private_uses(path)]
    assert offenders == [], offenders


def test_the_scan_sees_what_it_looks_for(tmp_path: Path) -> None:
    """The two scans above find a function-local hub import, a relative one and a private name."""
    probe = tmp_path / "acezoo" / "training" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from ..hub import tracking\n    import acezoo.hub.card\n"
                     "    import acezoo.training.trainer as t\n    from acezoo.training.trainer import _fmt\n"
                     "    return t._select_key\n")
    modules = [m for _, m, _ in _imported_modules(probe, tmp_path)]
    uses = _private_uses(probe, tmp_path)
    assert modules.count("acezoo.hub") == 1 and "acezoo.hub.card" in modules
    assert any(u.endswith("acezoo.training.trainer._fmt") for u in uses)
    assert any(u.endswith("t._select_key") for u in uses)


# -- a tiny run ---------------------------------------------------------------------------------
class Recorder(Callback):
    """Records every hook call; stops the run after ``stop_after`` epochs."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.stop_after = stop_after

    def on_fit_start(self, trainer: Trainer) -> None:
        self.calls.append(("fit_start", trainer.epoch))

    def on_step_end(self, trainer: Trainer, epoch: int, batch_in_epoch: int) -> None:
        self.calls.append(("step_end", epoch, batch_in_epoch))

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        saved = json.loads((trainer.run_dir / "history.json").read_text())
        on_disk = (trainer.run_dir / "train_state.safetensors").is_file() and saved[-1]["epoch"] == record["epoch"]
        self.calls.append(("epoch_end", record["epoch"], trainer.history[-1] is record, on_disk))
        if self.stop_after is not None and record["epoch"] >= self.stop_after:
            trainer.should_stop = True

    def on_interrupt(self, trainer: Trainer) -> None:
        self.calls.append(("interrupt",))

    def on_failure(self, trainer: Trainer, exc: BaseException) -> None:
        self.calls.append(("failure", type(exc).__name__))

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        on_disk = json.loads((trainer.run_dir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
        self.calls.append(("fit_end", metrics["epochs_run"], on_disk))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[acezoo.ZooConfig, Any]:
    """An equality EGNN of 3 epochs of 3 steps (60 samples, batches of 20), and its data."""
    tmp = tmp_path_factory.mktemp("api")
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp, epochs=3))
    return config, build_data(config)


def _steps(epoch: int) -> list[tuple[Any, ...]]:
    return [("step_end", epoch, k) for k in (1, 2, 3)]


def test_hooks_are_called_in_order(tiny: tuple[acezoo.ZooConfig, Any], tmp_path: Path) -> None:
    config, data = tiny
    recorder = Recorder()
    trainer = Trainer(config, tmp_path / "run", data=data, progress=False, callbacks=[recorder])
    (tmp_path / "run").mkdir()
    trainer.fit()
    metrics = trainer.finish()
    expected = [("fit_start", 0)]
    for epoch in range(3):
        expected += [*_steps(epoch), ("epoch_end", epoch + 1, True, True)]
    assert recorder.calls == [*expected, ("fit_end", 3, True)]
    assert metrics["epochs_run"] == 3


def test_should_stop_ends_training_after_that_epoch(tiny: tuple[acezoo.ZooConfig, Any], tmp_path: Path) -> None:
    config, data = tiny
    recorder = Recorder(stop_after=2)
    result = acezoo.train(config, run_dir=tmp_path / "run", data=data, callbacks=[recorder])
    assert [c[1] for c in recorder.calls if c[0] == "epoch_end"] == [1, 2]
    assert recorder.calls[-1] == ("fit_end", 2, True)
    assert [r["epoch"] for r in result.history] == [1, 2] and result.metrics["epochs_run"] == 2
    assert (result.run_dir / "README.md").is_file()  # the hub's card callback ran too


def test_interrupt_and_failure_reach_the_callbacks(tiny: tuple[acezoo.ZooConfig, Any], tmp_path: Path) -> None:
    config, data = tiny
    recorder = Recorder()

    def stop(epoch: int, step: int) -> None:
        if (epoch, step) == (1, 2):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        acezoo.train(config, run_dir=tmp_path / "cut", data=data, on_step=stop, callbacks=[recorder])
    # on_step runs before the callbacks given after it: the recorder does not see step 2
    assert recorder.calls[-3:] == [("epoch_end", 1, True, True), ("step_end", 1, 1), ("interrupt",)]
    assert (tmp_path / "cut" / "train_state.safetensors").is_file()

    class Boom(Callback):
        def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
            raise RuntimeError("boom")

    recorder = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        acezoo.train(config, run_dir=tmp_path / "boom", data=data, callbacks=[Boom(), recorder])
    assert recorder.calls[-1] == ("failure", "RuntimeError")


def _without_time(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "time_s"} for record in history]


def test_callbacks_change_no_result(tiny: tuple[acezoo.ZooConfig, Any], tmp_path: Path) -> None:
    """The same run with and without observing callbacks: the same weights, bit for bit, the same
    history, metrics and files."""
    config, data = tiny
    plain = acezoo.train(config, run_dir=tmp_path / "plain", data=data)
    observed = acezoo.train(config, run_dir=tmp_path / "observed", data=data, callbacks=[Recorder(), Recorder()],
                            on_step=lambda epoch, step: None)
    a, b = plain.model.state_dict(), observed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (plain.run_dir / "model.safetensors").read_bytes() == (observed.run_dir / "model.safetensors").read_bytes()
    assert _without_time(plain.history) == _without_time(observed.history)
    drop = lambda m: {k: v for k, v in m.items() if k != "wall_time_s"}  # noqa: E731
    assert drop(plain.metrics) == drop(observed.metrics)
    assert sorted(p.name for p in plain.run_dir.iterdir()) == sorted(p.name for p in observed.run_dir.iterdir())
