"""`acezoo study` on Ray Tune: a tiny study (2 contenders x 2 seeds, a few epochs) run whole, with
its driver interrupted (SIGINT, SIGKILL) and run again, and on a two-node local cluster whose
worker node is killed mid-trial. Every way must give the same records and tables as an
uninterrupted study, bit for bit (one CPU thread per trial), and train no finished trial twice.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ray = pytest.importorskip("ray", reason="the studies extra (Ray Tune) is not installed")

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 12
TINY = [f"train.epochs={EPOCHS}", "train.batch_size=20", "data.n_train=200", "data.n_val=30",
        "data.n_test=30", "model.hidden=16", "model.branch_hidden=16", "model.layers=2"]
KEYS = ["strict-s0", "ace-s0", "strict-s1", "ace-s1"]


def _study(tmp_path: Path, name: str = "tiny", tracking: bool = False) -> Path:
    spec = {"name": name, "base": str(ROOT / "zoo_configs" / "egnn_nbody_equality.yaml"),
            "common": [*TINY, f"train.tracking={str(tracking).lower()}", f"train.tracking_uri=sqlite:///{tmp_path}/mlflow.db"],
            "contenders": [{"name": "strict", "overrides": ["constraints.mode=strict"]},
                           {"name": "ace", "overrides": ["constraints.mode=equality"]}],
            "seeds": [0, 1], "records": str(tmp_path / "records")}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def _command(path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "acezoo", "study", str(path), "--no-progress", *extra]


def _run(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(_command(path, *extra), capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _records(folder: Path) -> dict[str, dict]:
    """The finished trials' records, with their histories (read back from their gzip files)."""
    from acezoo.studies.records import read_record

    out = {}
    for p in sorted((folder / "results").glob("*.json")):
        contender, _, seed = p.stem.rpartition("-s")
        out[p.stem] = read_record(folder, contender, int(seed))
    return out


def _comparable(record: dict) -> dict:
    """A record without what depends on the clock or the place it ran."""
    skip = {"wall_s", "run_dir", "resumed_after"}
    out = {k: v for k, v in record.items() if k not in skip}
    out["history"] = [{k: v for k, v in h.items() if k != "time_s"} for h in record["history"]]
    return out


def _table(folder: Path) -> str:
    """The tables of results.md without the wall-time column."""
    lines = (folder / "results.md").read_text().splitlines()
    return "\n".join("|".join(c for i, c in enumerate(line.split("|")) if i != 7) for line in lines
                     if line.startswith("|"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny study run whole, without interruption, on a local Ray cluster, tracked in MLflow."""
    tmp = tmp_path_factory.mktemp("reference")
    proc = _run(_study(tmp, tracking=True), "--cpus", "2")
    assert "4 trained, 0 kept" in proc.stderr
    return tmp / "records"


def test_a_study_runs_every_trial_and_writes_its_tables(reference: Path) -> None:
    records = _records(reference)
    assert sorted(records) == sorted(KEYS)
    assert all(r["epochs_run"] == EPOCHS and not r["resumed_after"] for r in records.values())
    assert records["ace-s0"]["gammas"] and not records["strict-s0"]["gammas"]
    assert "| strict | 2 |" in (reference / "results.md").read_text()
    assert (reference / "curves.png").stat().st_size > 0


def test_a_tracked_study_has_a_parent_run_and_a_child_run_per_trial(reference: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{reference.parent}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string="tags.`acezoo.study` = 'tiny'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["acezoo.trial"] for r in children) == sorted(KEYS)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.info.status == "FINISHED" and r.data.metrics for r in children)


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:  # noqa: ANN001
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the study ended before {what}: {err[-3000:]}")
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _running(storage: Path) -> dict[str, int]:
    """Trials with a checkpoint and no record yet -> the epochs of their newest checkpoint."""
    out: dict[str, int] = {}
    for marker in storage.glob("tiny/*/checkpoint_*/acezoo_trial.json"):
        trial = marker.parent.parent
        if not (trial / "acezoo_record.json").exists():
            try:
                epoch = json.loads(marker.read_text())["epoch"]
            except (OSError, ValueError, KeyError):
                continue  # being written
            out[trial.name] = max(out.get(trial.name, 0), epoch)
    return out


def _ancestors(pid: int) -> set[int]:
    """The parent, grandparent, ... of process ``pid`` (empty once it has exited)."""
    out: set[int] = set()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state is the parent's pid
        out.add(pid)
    return out


def _part_way_on(storage: Path, raylets: set[int]) -> bool:
    """Whether a trial trained by a process of the node of ``raylets`` has a checkpoint of at most
    ``EPOCHS - 4`` epochs and no record (Tune's ``result.json`` names the process of each report)."""
    for name, epoch in _running(storage).items():
        try:
            last = (storage / "tiny" / name / "result.json").read_text().strip().splitlines()[-1]
            pid = int(json.loads(last)["pid"])
        except (OSError, ValueError, KeyError, IndexError):
            continue  # being written
        if epoch <= EPOCHS - 4 and _ancestors(pid) & raylets:
            return True
    return False


def _start(path: Path) -> subprocess.Popen:
    return subprocess.Popen(_command(path, "--cpus", "1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _finished(records: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in (records / "results").glob("*.json")}


def _wait_finished_and_running(proc: subprocess.Popen, records: Path, n: int) -> None:
    """Until ``n`` trials have a record and another one is part-way (a checkpoint, no record)."""
    _wait_for(lambda: len(list((records / "results").glob("*.json"))) >= n
              and any(e <= EPOCHS - 4 for e in _running(records / "tune").values()),
              proc, f"{n} finished trials and a started one")


def test_an_interrupted_study_resumes_to_the_same_tables(tmp_path: Path, reference: Path) -> None:
    """The driver is stopped with SIGINT while a trial trains, run again, killed with SIGKILL
    (with everything it started) while another trains, and run again to the end."""
    path = _study(tmp_path)
    records = tmp_path / "records"
    proc = _start(path)
    _wait_finished_and_running(proc, records, 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err[-3000:]
    assert "run the same command again" in err and "Traceback" not in err
    after_sigint = _finished(records)
    assert 1 <= len(after_sigint) < 4

    proc = _start(path)
    _wait_finished_and_running(proc, records, len(after_sigint) + 1)
    after_sigkill = _finished(records)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()
    assert len(after_sigkill) < 4

    last = _run(path, "--cpus", "2")
    done = _records(records)
    assert sorted(done) == sorted(KEYS)
    for key, raw in after_sigkill.items():  # no finished trial is trained again
        assert (records / "results" / f"{key}.json").read_bytes() == raw
    assert all(after_sigkill[k] == raw for k, raw in after_sigint.items())
    resumed = [r["resumed_after"] for r in done.values() if r["resumed_after"]]
    assert len(resumed) >= 2 and all(0 < epochs[0] < EPOCHS for epochs in resumed), f"resumed: {resumed}"
    assert f"{4 - len(after_sigkill)} trained, {len(after_sigkill)} kept" in last.stderr, last.stderr[-2000:]
    ref = _records(reference)
    assert {k: _comparable(v) for k, v in done.items()} == {k: _comparable(v) for k, v in ref.items()}
    assert _table(records) == _table(reference)


def test_a_study_continues_an_earlier_one_as_if_trained_with_the_larger_budget(tmp_path: Path,
                                                                              reference: Path) -> None:
    """``continues:`` the reference study with 4 more epochs: its trial resumes from the reference's
    last Tune checkpoint and ends exactly where a run with the larger budget from scratch ends."""
    from acezoo.config.loader import load_config
    from acezoo.run import train
    from acezoo.studies.records import make_record

    longer = EPOCHS + 4
    spec = yaml.safe_load((reference.parent / "tiny.yaml").read_text())
    spec.update(name="tiny-longer", continues=str(reference.parent / "tiny.yaml"), records=str(tmp_path / "records"))
    spec["common"] = [*spec["common"], f"train.epochs={longer}", "train.tracking=false"]
    path = tmp_path / "tiny-longer.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = _run(path, "--only", "ace", "--seeds", "0", "--cpus", "1")
    assert f"ace-s0: resume (continues tiny/ace-s0 after epoch {EPOCHS}, to {longer} epochs)" in proc.stderr, \
        proc.stderr[-2000:]
    record = _records(tmp_path / "records")["ace-s0"]
    assert record["resumed_after"] == [EPOCHS] and record["continued_from"] == "tiny/ace-s0"
    assert record["epochs_run"] == longer

    conf = load_config(ROOT / "zoo_configs" / "egnn_nbody_equality.yaml",
                       [*spec["common"], "constraints.mode=equality", "seed=0", "train.num_threads=1"])
    scratch = train(conf, run_dir=tmp_path / "scratch", progress=False)
    fresh = make_record("ace", 0, ["constraints.mode=equality"], scratch.metrics, scratch.history, "", [EPOCHS])
    assert _comparable({**record, "continued_from": None}) == _comparable({**fresh, "continued_from": None})


def _with_descendants(pids: list[int]) -> list[int]:
    """``pids`` and every process below them (workers are children of their node's raylet)."""
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        todo += [int(c) for c in children]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _cluster_session(port: int) -> str:
    """The session folder of the cluster whose head listens on ``port`` (from its GCS server's command line)."""
    for pid in subprocess.run(["pgrep", "-f", f"gcs_server.*--gcs_server_port={port}"],
                              capture_output=True, text=True).stdout.split():
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        for arg in args:
            if arg.startswith(b"--session-dir="):
                return arg.split(b"=", 1)[1].decode()
    raise AssertionError(f"no GCS server on port {port}")


def _stop_cluster(session: str, port: int) -> None:
    """Kill this test's cluster only (every process naming its session folder, and their workers),
    never another Ray on the machine (``ray stop --force`` would kill a study the developer runs)."""
    pids = [int(p) for p in subprocess.run(["pgrep", "-f", session], capture_output=True, text=True).stdout.split()]
    for pid in _with_descendants(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # `ray start` names its head here
    if current.is_file() and current.read_text().strip().endswith(f":{port}"):
        current.unlink()


def test_a_trial_survives_the_death_of_its_node(tmp_path: Path, reference: Path) -> None:
    """Two local nodes of one CPU each; the worker node is killed (SIGKILL to its raylet) while it
    trains a trial; that trial finishes on the head node from its last checkpoint, equal to an
    uninterrupted run."""
    port, worker_port = _free_port(), _free_port()
    env = dict(_env(), RAY_AUTH_MODE="token")  # the head enables token auth; joiners need the mode (the token is in ~/.ray)
    head = [_ray_cli(), "start", "--head", "--num-cpus", "1", "--port", str(port), "--include-dashboard", "false",
            "--disable-usage-stats"]
    subprocess.run(head, check=True, capture_output=True, env=env, timeout=120)
    session = _cluster_session(port)
    try:
        subprocess.run([_ray_cli(), "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1",
                        "--node-manager-port", str(worker_port), "--disable-usage-stats"],
                       check=True, capture_output=True, env=env, timeout=120)
        raylets = {int(p) for p in subprocess.run(["pgrep", "-f", f"raylet.*--node_manager_port={worker_port}"],
                                                   capture_output=True, text=True).stdout.split()}
        assert raylets, "the worker node's raylet was not found"
        path = _study(tmp_path)
        records = tmp_path / "records"
        proc = subprocess.Popen(_command(path, "--address", f"127.0.0.1:{port}"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        # the worker node trains a trial part-way (a checkpoint, no record); asking for two trials
        # at once instead raced on a loaded machine, where the head could run most trials alone
        _wait_for(lambda: _part_way_on(records / "tune", raylets), proc, "a trial part-way on the worker node")
        node = _with_descendants(sorted(raylets))
        for pid in node:  # the node dies: its raylet and its workers
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        done = _records(records)
        assert sorted(done) == sorted(KEYS)
        resumed = [r["resumed_after"] for r in done.values() if r["resumed_after"]]
        assert resumed and all(0 < epochs[0] < EPOCHS for epochs in resumed), f"no trial resumed mid-way: {resumed}"
        assert not [pid for pid in node if Path(f"/proc/{pid}").exists()
                    and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()], "the killed node lives on"
        ref = _records(reference)
        assert {k: _comparable(v) for k, v in done.items()} == {k: _comparable(v) for k, v in ref.items()}
    finally:
        _stop_cluster(session, port)
