"""An architecture from the user's own module, from the command line, with no entry point.

`acezoo train --import mymod my.yaml` trains an architecture defined in `mymod.py` in the
current folder, the run's stored config records `imports: [mymod]`, and `acezoo eval` on the
run works (with the flag, and without it from the same folder); elsewhere, the error names the
module and the architecture. Run as real subprocesses of the installed `acezoo` command, whose
`sys.path` does not hold the current folder (unlike `python -m acezoo`).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

MYMOD = textwrap.dedent('''
    """A velocity-scaling step relaxed by an absolute-coordinate branch: the user's own architecture."""
    from typing import Literal

    import torch
    from torch import nn

    import acezoo


    class DistMLPSpec(acezoo.ArchSpec):
        arch: Literal["distmlp"] = "distmlp"
        hidden: int = 8


    class Update(nn.Module):
        def __init__(self, hidden: int) -> None:
            super().__init__()
            self.phi = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, 1))

        def forward(self, batch):
            return batch.vel * self.phi(batch.vel.norm(dim=-1, keepdim=True))


    class Branch(nn.Module):
        def __init__(self, hidden: int) -> None:
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(6, hidden), nn.SiLU(), nn.Linear(hidden, 3))

        def forward(self, batch):
            return self.mlp(torch.cat([batch.pos, batch.vel], -1))


    class DistMLP(nn.Module):
        def __init__(self, hidden: int) -> None:
            super().__init__()
            self.update = acezoo.Relaxed(Update(hidden), Branch(hidden))

        def forward(self, batch):
            return batch.pos + self.update(batch)


    @acezoo.register_arch("distmlp", spec=DistMLPSpec, symmetry="e3_points")
    def build(spec: DistMLPSpec) -> DistMLP:
        """The user's own architecture (tests)."""
        return DistMLP(spec.hidden)
''')

CONFIG = """\
name: distmlp_nbody
model: {arch: distmlp, hidden: 8}
data: {dataset: nbody_charged, n_train: 40, n_val: 20, n_test: 20}
train: {epochs: 2, batch_size: 20, progress: false, tracking: false, num_threads: 1, output_dir: runs}
"""


def _acezoo() -> list[str]:
    """The installed console script (its sys.path lacks the current folder), else `python -P -m acezoo`."""
    script = Path(sys.executable).with_name("acezoo")
    return [str(script)] if script.is_file() else [sys.executable, "-P", "-m", "acezoo"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*_acezoo(), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the user's folder, the run directory trained there with --import mymod)."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "mymod.py").write_text(MYMOD)
    (folder / "my.yaml").write_text(CONFIG)
    done = _run(["train", "--import", "mymod", "my.yaml", "--no-progress"], folder)
    assert done.returncode == 0, done.stderr
    runs = list((folder / "runs").iterdir())
    assert len(runs) == 1 and "selected epoch" in done.stdout
    return folder, runs[0]


def test_train_with_import_records_the_module(plugin_run) -> None:
    _, run = plugin_run
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["imports"] == ["mymod"] and stored["model"]["arch"] == "distmlp"
    assert (run / "model.safetensors").is_file()


def test_eval_with_the_same_flag_and_without_it(plugin_run) -> None:
    folder, run = plugin_run
    for flags in (["--import", "mymod"], []):  # the stored config imports it again
        done = _run(["eval", *flags, str(run)], folder)
        assert done.returncode == 0, done.stderr
        assert "test mse: pruned (equivariant)" in done.stdout and "(distmlp, nbody_charged" in done.stdout


def test_without_the_module_the_errors_say_what_to_do(plugin_run, tmp_path: Path) -> None:
    folder, run = plugin_run
    done = _run(["train", "my.yaml"], folder)  # no --import, no imports: in the config
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "model.arch: unknown value 'distmlp'" in done.stderr and "--import MODULE" in done.stderr
    assert "imports: [MODULE]" in done.stderr and "acezoo.architectures" in done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _run(["eval", str(run)], elsewhere)  # mymod.py is not here
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "imports mymod" in done.stderr and "'distmlp'" in done.stderr
    assert "cannot import module 'mymod'" in done.stderr
    bare = tmp_path / "bare-run"
    shutil.copytree(run, bare)
    stored = yaml.safe_load((bare / "config.yaml").read_text())
    del stored["imports"]  # e.g. trained from Python, the module imported by hand
    (bare / "config.yaml").write_text(yaml.safe_dump(stored))
    done = _run(["eval", str(bare)], folder)
    assert done.returncode == 2 and "the run's architecture 'distmlp' is not registered" in done.stderr
    assert "--import MODULE" in done.stderr
    done = _run(["eval", "--import", "mymod", str(bare)], folder)
    assert done.returncode == 0, done.stderr


def test_imports_in_the_config_and_bad_modules(plugin_run, tmp_path: Path) -> None:
    folder, _ = plugin_run
    (folder / "listed.yaml").write_text(CONFIG.replace("name: distmlp_nbody", "name: listed\nimports: [mymod]")
                                        .replace("epochs: 2", "epochs: 1"))
    done = _run(["train", "listed.yaml", "--no-progress"], folder)
    assert done.returncode == 0, done.stderr
    done = _run(["list", "--import", "mymod"], folder)
    assert done.returncode == 0 and "distmlp" in done.stdout
    done = _run(["list", "--import", "no_such_module_here"], folder)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--import: cannot import module 'no_such_module_here'" in done.stderr
    (folder / "broken.py").write_text("x = 1\nraise RuntimeError('boom')\n")
    done = _run(["schema", "--import", "broken"], folder)
    assert done.returncode == 2 and "RuntimeError: boom" in done.stderr and "broken.py, line 2" in done.stderr
