"""A real team server, as the README's recipe sets it up: PostgreSQL (Debian's `postgresql`
package, which .ci/run installs) holds runs and the registry, `mlflow server` serves them and the
artifacts. Two trainings log to it at once; then `acezoo register`, and `acezoo.load` by name from
a second, empty ACEZOO_HOME gives the same outputs as the local checkpoints."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import acezoo
from acezoo.cli import main
from acezoo.hub import store
from acezoo.symmetry import get_symmetry
from acezoo.training import checkpoint as ckpt

from conftest import ZOO, tiny_overrides
from servers import MlflowServer, Postgres, postgres_bin


@pytest.fixture(scope="module")
def postgres():
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed: Debian package `postgresql` "
                    "(.ci/run installs it where apt-get works)")
    pytest.importorskip("psycopg", reason="no PostgreSQL driver for MLflow: `pip install -e '.[dev]'` installs "
                        "psycopg[binary]")
    pg = Postgres(bindir)
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="module")
def team_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory):
    """The README's recipe: a database for MLflow, then `mlflow server` over it with served artifacts."""
    subprocess.run([str(Path(postgres.bindir) / "createdb"), "-h", "127.0.0.1", "-p", str(postgres.port),
                    "-U", postgres.superuser, "mlflow"], check=True, capture_output=True, timeout=60)
    backend = f"postgresql+psycopg://{postgres.superuser}@127.0.0.1:{postgres.port}/mlflow"
    server = MlflowServer(backend, tmp_path_factory.mktemp("team-server"))
    server.start()
    yield server
    server.stop()


def test_two_trainings_at_once_then_register_and_load_by_name(team_server: MlflowServer, tmp_path: Path,
                                                              monkeypatch, capsys) -> None:
    url = team_server.url
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    overrides = [o for o in tiny_overrides(tmp_path) if o != "train.tracking=false"] + ["train.experiment=team"]
    runs = [tmp_path / f"run-seed{seed}" for seed in (0, 1)]
    procs = [subprocess.Popen([sys.executable, "-m", "acezoo", "train", str(ZOO / "egnn_nbody_equality.yaml"),
                               *overrides, f"seed={seed}", "--run-dir", str(run), "--no-progress"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed, run in zip((0, 1), runs)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("warning" in err for _, err in outs), outs

    client = store.client(url)
    logged = client.search_runs([client.get_experiment_by_name("team").experiment_id])
    assert sorted(r.data.tags["acezoo.run_dir"] for r in logged) == sorted(str(r.resolve()) for r in runs)
    for r in logged:
        assert r.info.status == "FINISHED" and r.data.params["train.experiment"] == "team"
        assert [m.step for m in client.get_metric_history(r.info.run_id, "train_loss")] == [1, 2]
        assert "checkpoint/model.safetensors" in {a.path for a in client.list_artifacts(r.info.run_id, "checkpoint")}

    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    assert main(["register", str(runs[0]), "--name", "team-egnn"]) == 0
    assert main(["register", str(runs[1]), "--name", "team-egnn", "--alias", "champion"]) == 0
    out = capsys.readouterr().out
    assert "registered team-egnn/1:" in out and "registered team-egnn/2 (aliases: champion):" in out, out

    home = tmp_path / "second-home"  # another member's machine: nothing cached
    monkeypatch.setenv("ACEZOO_HOME", str(home))
    x = get_symmetry("e3_points").example_input(torch.Generator().manual_seed(0), torch.float32)
    with torch.no_grad():
        for spec, run in (("team-egnn/1", runs[0]), ("team-egnn@champion", runs[1]), ("team-egnn", runs[1])):
            local = ckpt.load_run(run)[1].prune().eval()
            assert torch.equal(acezoo.load(spec)(x), local(x)), spec
    assert sorted(p.name for p in (home / "models" / "team-egnn").iterdir() if p.is_dir()) == ["1", "2"]
