"""The model registry: register, load by name/alias/version, errors, concurrency, a real server."""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

import acezoo
from acezoo.errors import CheckpointError
from acezoo.hub.models import UnknownModel
from acezoo.symmetry import get_symmetry
from acezoo.training.checkpoint import load_run

from conftest import ZOO, copy_run, tiny_overrides


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> acezoo.training.TrainResult:
    tmp = tmp_path_factory.mktemp("hub")
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp, epochs=1))
    return acezoo.train(config, run_dir=tmp / "run")


def _x():
    return get_symmetry("e3_points").example_input(torch.Generator().manual_seed(0), torch.float32)


def test_train_register_load_round_trip(trained) -> None:
    info = acezoo.register(trained.run_dir, "rt-egnn", alias="champion")
    assert info.version == 1 and info.aliases == ["champion"] and info.mode == "equality"
    x = _x()
    with torch.no_grad():
        expected = trained.model.eval().prune()(x)
        for ref in ("rt-egnn", "rt-egnn@champion", "rt-egnn/1"):
            model = acezoo.load(ref)
            assert not any(isinstance(m, acezoo.Relaxed) for m in model.modules())
            assert torch.equal(model(x), expected), ref
        full = acezoo.load("rt-egnn", full=True)
        assert isinstance(full, acezoo.RelaxedModel)
        assert torch.equal(full(x), trained.model(x))
    assert full.acezoo_info.name == "rt-egnn" and full.acezoo_config.name == "egnn_nbody_equality"


def test_register_is_idempotent_and_versions_grow(trained, tmp_path: Path) -> None:
    first = acezoo.register(trained.run_dir, "idem-egnn")
    again = acezoo.register(trained.run_dir, "idem-egnn", alias="best")
    assert again.version == first.version and again.aliases == ["best"]
    other = tmp_path / "other"
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", [*tiny_overrides(tmp_path, epochs=1), "seed=7"])
    acezoo.train(config, run_dir=other)
    second = acezoo.register(other, "idem-egnn")
    assert second.version == first.version + 1
    assert acezoo.load("idem-egnn").acezoo_info.version == second.version  # latest
    assert acezoo.load("idem-egnn@best").acezoo_info.version == first.version
    assert [i.name for i in acezoo.list_models("idem-*")] == ["idem-egnn"]


def _in_fresh_process(code: str) -> str:
    """Run ``code`` in a new interpreter (its own MLflow store handles); its stdout."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_a_recreated_store_never_serves_the_old_local_copy(trained, tmp_path: Path) -> None:
    """Version numbers restart when a store is deleted and created again; the local copy of the
    old ``NAME/1`` (another run, other weights) must not be served for the new ``NAME/1``."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    other = tmp_path / "other"
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", [*tiny_overrides(tmp_path, epochs=1), "seed=11"])
    acezoo.train(config, run_dir=other)
    probe = ("import acezoo, torch\nfrom acezoo.symmetry import get_symmetry\n"
             "x = get_symmetry('e3_points').example_input(torch.Generator().manual_seed(0), torch.float32)\n"
             "with torch.no_grad():\n"
             "    for ref in {refs!r}:\n"
             f"        print(ref, acezoo.load(ref, tracking_uri={uri!r})(x).sum().item())\n")
    register = f"import acezoo\nprint(acezoo.register({{run!r}}, 're-egnn', tracking_uri={uri!r}).version)\n"
    assert _in_fresh_process(register.format(run=str(trained.run_dir))).split() == ["1"]
    old = _in_fresh_process(probe.format(refs=["re-egnn/1"])).split()[1]  # now a local copy of version 1
    (tmp_path / "store.db").unlink()  # the store is recreated: version 1 is now another run
    assert _in_fresh_process(register.format(run=str(other))).split() == ["1"]
    with torch.no_grad():
        expected = load_run(other)[1].eval().prune()(_x()).sum().item()
    got = _in_fresh_process(probe.format(refs=["re-egnn/1", "re-egnn", "re-egnn/1"])).split()
    assert float(old) != pytest.approx(expected, rel=1e-5)
    assert [float(v) for v in got[1::2]] == pytest.approx([expected] * 3, rel=1e-6), got


def test_unknown_names_suggest_the_closest(trained) -> None:
    acezoo.register(trained.run_dir, "near-egnn")
    with pytest.raises(UnknownModel, match="no model named 'near-egnm'. Closest: near-egnn"):
        acezoo.load("near-egnm")
    with pytest.raises(UnknownModel, match="has no alias 'nope'"):
        acezoo.load("near-egnn@nope")
    with pytest.raises(UnknownModel, match="has no version 9; versions: 1"):
        acezoo.load("near-egnn/9")


def test_tampered_checkpoint_is_not_registered(trained, tmp_path: Path) -> None:
    bad = copy_run(trained.run_dir, tmp_path / "bad")
    (bad / "model.safetensors").write_bytes(b"\x80\x04\x95" + b"cos\nsystem\n" * 10)  # a pickle, renamed
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        acezoo.register(bad, "tampered-egnn")
    with pytest.raises(UnknownModel):
        acezoo.load("tampered-egnn")


def test_incompatible_schema_version_is_refused(trained, tmp_path: Path) -> None:
    old = copy_run(trained.run_dir, tmp_path / "old")
    text = (old / "config.yaml").read_text().replace("schema_version: 1", "schema_version: 99")
    (old / "config.yaml").write_text(text)
    with pytest.raises(CheckpointError, match="schema version 99; this acezoo .* reads version 1"):
        acezoo.register(old, "old-egnn")


def test_concurrent_registration_does_not_corrupt_the_store(trained, tmp_path: Path) -> None:
    """Two processes register the same checkpoint at once into a brand-new store."""
    env = {**os.environ, "ACEZOO_HOME": str(tmp_path / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "acezoo", "register", str(trained.run_dir), "--name", "conc-egnn", "--alias", "champion"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("registered conc-egnn/1" in out for out, _ in outs)
    db = tmp_path / "home" / "mlflow" / "mlflow.db"
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM model_versions WHERE name = 'conc-egnn'").fetchone()[0] == 1
    probe = subprocess.run([sys.executable, "-c", "import acezoo; print(acezoo.load('conc-egnn@champion').acezoo_info.version)"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert probe.stdout.strip() == "1", probe.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `mlflow server` on localhost (SQLite backend, served artifacts)."""
    tmp = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}", "--artifacts-destination", str(tmp / "artifacts"),
         "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {(tmp / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("mlflow server did not come up in 120 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_against_a_real_mlflow_server(mlflow_server: str, tmp_path: Path) -> None:
    overrides = [o for o in tiny_overrides(tmp_path, epochs=1) if o != "train.tracking=false"]
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", [*overrides, f"train.tracking_uri={mlflow_server}"])
    result = acezoo.train(config, run_dir=tmp_path / "served")
    from acezoo.hub import store

    client = store.client(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("acezoo").experiment_id])
    assert any(r.data.tags.get("acezoo.run_dir") == str((tmp_path / "served").resolve()) for r in runs)
    info = acezoo.register(result.run_dir, "served-egnn", alias="champion", tracking_uri=mlflow_server)
    model = acezoo.load("served-egnn@champion", tracking_uri=mlflow_server)
    x = _x()
    with torch.no_grad():
        assert torch.equal(model(x), result.model.eval().prune()(x))
    assert [i.name for i in acezoo.list_models(tracking_uri=mlflow_server)] == ["served-egnn"]
    assert info.version == 1
