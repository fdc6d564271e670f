"""Tracking never costs a training run: a tracking server that is absent, answers slowly or stops
mid-run; `acezoo sync`; cached models while the registry is down. Real `mlflow server` processes."""
from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

import acezoo
from acezoo.cli import main
from acezoo.errors import RegistryUnavailable
from acezoo.hub import store
from acezoo.hub.tracking import RunTracker
from acezoo.symmetry import get_symmetry
from acezoo.training import checkpoint as ckpt

from conftest import ZOO, tiny_overrides
from servers import MlflowServer, SlowProxy, free_port

RUN_FILES = {"config.yaml", "model.safetensors", "train_state.safetensors", "history.json", "metrics.json",
             "gamma_lambda.png", "README.md", "tracking.json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One real `mlflow server` (SQLite backend) that the tests stop and start again."""
    folder = tmp_path_factory.mktemp("outage-server")
    srv = MlflowServer(f"sqlite:///{folder / 'mlflow.db'}", folder)
    srv.start()
    yield srv
    srv.stop()


def _config(tmp_path: Path, uri: str, *extra: str, epochs: int = 4) -> acezoo.ZooConfig:
    overrides = [o for o in tiny_overrides(tmp_path, epochs=epochs) if o != "train.tracking=false"]
    return acezoo.load_config(ZOO / "egnn_nbody_equality.yaml",
                              [*overrides, f"train.tracking_uri={uri}", "train.experiment=outages", *extra])


def _on_server(uri: str, run_id: str):
    client = store.client(uri)
    run = client.get_run(run_id)
    steps = [m.step for m in client.get_metric_history(run_id, "train_loss")]
    files = {a.path for a in client.list_artifacts(run_id, "checkpoint")}
    return run, sorted(steps), files


def _warnings(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("acezoo.hub"))


# -- 1. start-up: an unusable server is reported before any data is built -----------------------------
class _NotMlflow(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_error(404)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("kind", ["refused", "silent", "not-mlflow"])
def test_unusable_server_is_reported_before_any_data(kind: str, tmp_path: Path, monkeypatch, capsys) -> None:
    cleanup = lambda: None  # noqa: E731
    if kind == "refused":
        uri, expect = f"http://127.0.0.1:{free_port()}", "connection refused"
    elif kind == "silent":  # accepts connections, never answers
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        uri, expect, cleanup = f"http://127.0.0.1:{sock.getsockname()[1]}", "no answer within", sock.close
    else:  # some other web server
        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        uri, expect = f"http://127.0.0.1:{web.server_address[1]}", "HTTP 404"

        def cleanup() -> None:
            web.shutdown()
            web.server_close()

    def no_data(*args, **kwargs):
        raise AssertionError("data was built before the tracking server was checked")

    monkeypatch.setattr("acezoo.training.trainer.build_data", no_data)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    overrides = [o for o in tiny_overrides(tmp_path) if o != "train.tracking=false"]
    t0 = time.monotonic()
    try:
        code = main(["train", str(ZOO / "egnn_nbody_strict.yaml"), *overrides])
    finally:
        cleanup()
    seconds = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 2, err
    assert seconds < 15, seconds
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert uri in err and expect in err and "train.tracking=false" in err and "$MLFLOW_TRACKING_URI" in err, err
    assert not (tmp_path / "runs").exists()


# -- 2. mid-run: slow, stopped, back again, never back --------------------------------------------------
def test_slow_server_does_not_slow_training(server: MlflowServer, tmp_path: Path, monkeypatch) -> None:
    """Every metrics request waits 3 s in a proxy; the training loop's logging calls return at once."""
    server.ensure_up()
    delay = 3.0
    proxy = SlowProxy(server.url, delay, slow=lambda path: "log-batch" in path)
    calls: list[float] = []
    log_epoch = RunTracker.log_epoch

    def timed(self, record):
        t0 = time.perf_counter()
        log_epoch(self, record)
        calls.append(time.perf_counter() - t0)

    monkeypatch.setattr(RunTracker, "log_epoch", timed)
    t0 = time.perf_counter()
    try:
        result = acezoo.train(_config(tmp_path, proxy.url), run_dir=tmp_path / "slow")
    finally:
        proxy.close()
    assert len(calls) == 4 and max(calls) < 0.1, calls  # the loop never waits for the server
    assert proxy.delayed >= 2 and time.perf_counter() - t0 > 2 * delay  # ... which did answer slowly
    note = json.loads((result.run_dir / "tracking.json").read_text())
    assert note["complete"] and note["unsent"] == []
    run, steps_logged, files = _on_server(server.url, note["run_id"])
    assert run.info.status == "FINISHED" and steps_logged == [1, 2, 3, 4]
    assert "test/pruned/mse" in run.data.metrics and "checkpoint/model.safetensors" in files


def test_server_stopped_mid_run_and_back_gets_everything(server: MlflowServer, tmp_path: Path, caplog) -> None:
    server.ensure_up()
    caplog.set_level(logging.WARNING, logger="acezoo.hub")

    def outage(epoch: int, step: int) -> None:
        if (epoch, step) == (1, 1):
            server.stop()  # a real server process ends during epoch 2
        elif (epoch, step) == (3, 1):
            server.start()  # ... and is back (after about as long as a restart takes) during epoch 4

    result = acezoo.train(_config(tmp_path, server.url, "train.tracking_grace_s=90", epochs=6),
                          run_dir=tmp_path / "back", on_step=outage)
    assert result.metrics["epochs_run"] == 6
    log = _warnings(caplog)
    assert f"tracking server {server.url} is not answering (connection refused)" in log, log
    assert f"tracking server {server.url} answers again" in log and "could not be sent" not in log, log
    note = json.loads((result.run_dir / "tracking.json").read_text())
    assert note["complete"], note
    run, steps_logged, files = _on_server(server.url, note["run_id"])
    assert run.info.status == "FINISHED" and steps_logged == [1, 2, 3, 4, 5, 6]
    assert "checkpoint/model.safetensors" in files


def test_server_gone_at_the_end_then_acezoo_sync(server: MlflowServer, tmp_path: Path, caplog, capsys) -> None:
    server.ensure_up()
    caplog.set_level(logging.WARNING, logger="acezoo.hub")

    def outage(epoch: int, step: int) -> None:
        if (epoch, step) == (1, 1):
            server.stop()

    result = acezoo.train(_config(tmp_path, server.url, "train.tracking_grace_s=1"), run_dir=tmp_path / "gone",
                          on_step=outage)
    run_dir = result.run_dir
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}  # the local run directory is complete
    assert [r["epoch"] for r in json.loads((run_dir / "history.json").read_text())] == [1, 2, 3, 4]
    log = _warnings(caplog)
    assert "could not be sent to" in log and f"acezoo sync {run_dir} --tracking-uri {server.url}" in log, log
    assert "the checkpoint artifacts" in log and "the final metrics" in log, log
    note = json.loads((run_dir / "tracking.json").read_text())
    assert not note["complete"] and note["run_id"]

    server.start()
    capsys.readouterr()
    assert main(["sync", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"synced {run_dir} to {server.url}: run {note['run_id']} (existing" in out, out
    run, steps_logged, files = _on_server(server.url, note["run_id"])
    assert run.info.status == "FINISHED" and steps_logged == [1, 2, 3, 4]  # each epoch once
    assert run.data.metrics["test/pruned/mse"] == pytest.approx(result.metrics["test"]["pruned"]["mse"])
    assert {f"checkpoint/{f}" for f in ("model.safetensors", "history.json", "metrics.json")} <= files
    assert json.loads((run_dir / "tracking.json").read_text())["complete"]
    assert main(["sync", str(run_dir)]) == 0  # nothing is sent twice
    assert "sent 0 params, 0 of 4 epochs, " in capsys.readouterr().out
    assert _on_server(server.url, note["run_id"])[1] == [1, 2, 3, 4]


# -- 4. registry outages --------------------------------------------------------------------------------
def test_cached_model_loads_while_the_registry_is_down(server: MlflowServer, tmp_path: Path, caplog, capsys,
                                                       monkeypatch) -> None:
    server.ensure_up()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once once the server is down
    config = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(tmp_path, epochs=1))
    result = acezoo.train(config, run_dir=tmp_path / "reg")
    acezoo.register(result.run_dir, "outage-egnn", alias="champion", tracking_uri=server.url)
    x = get_symmetry("e3_points").example_input(torch.Generator().manual_seed(0), torch.float32)
    with torch.no_grad():
        expected = acezoo.load("outage-egnn@champion", tracking_uri=server.url)(x)  # cached locally
        assert torch.equal(expected, ckpt.load_run(result.run_dir)[1].prune().eval()(x))
        server.stop()
        caplog.set_level(logging.WARNING, logger="acezoo.hub")
        for spec in ("outage-egnn@champion", "outage-egnn/1", "outage-egnn"):
            model = acezoo.load(spec, tracking_uri=server.url)
            assert torch.equal(model(x), expected), spec
            assert model.acezoo_info.version == 1 and model.acezoo_info.aliases == ["champion"]
    log = _warnings(caplog)
    assert f"model registry {server.url} is not answering (connection refused); loading outage-egnn/1 from the " \
           "local copy" in log, log
    with pytest.raises(RegistryUnavailable, match=f"cannot reach the model registry {server.url} .*'never-seen' "
                       "was never loaded from it"):
        acezoo.load("never-seen", tracking_uri=server.url)
    capsys.readouterr()
    assert main(["list", "--registered", "--tracking-uri", server.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the model registry {server.url} (connection refused)"), err
