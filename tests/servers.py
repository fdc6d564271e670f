"""Real servers for the tracking tests, all on 127.0.0.1: an `mlflow server` that can be stopped and
started again on the same port, a PostgreSQL cluster in a temporary folder, and a proxy that
answers some requests slowly."""
from __future__ import annotations

import glob
import http.client
import http.server
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

SERVER_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no background job workers: a lighter server on 2 cores
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class MlflowServer:
    """``mlflow server`` over ``backend`` with served artifacts, on a fixed port (restartable)."""

    def __init__(self, backend: str, folder: Path, port: int | None = None) -> None:
        self.backend, self.folder = backend, folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        """The README's team-server command, on localhost with one worker."""
        return [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-store-uri", self.backend, "--artifacts-destination", str(self.folder / "artifacts"),
                "--allowed-hosts", f"127.0.0.1:{self.port}", "--workers", "1"]

    def start(self, wait: bool = True) -> None:
        log = open(self.folder / "server.log", "a")
        self.proc = subprocess.Popen(self.command(), env={**os.environ, **SERVER_ENV}, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.folder / 'server.log').read_text()[-3000:]}")
            if _healthy(self.url):
                return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server did not come up in {timeout:g} s")

    def stop(self) -> None:
        """End the server and its worker (its own process group)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + 10  # the worker may outlive the parent by a moment
        while _healthy(self.url) and time.monotonic() < deadline:
            time.sleep(0.1)

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and _healthy(self.url)

    def ensure_up(self) -> None:
        if not self.up:
            self.stop()
            self.start()


# -- PostgreSQL -------------------------------------------------------------------------------------
def postgres_bin() -> str | None:
    """The folder of PostgreSQL's server programs (Debian: /usr/lib/postgresql/N/bin), or None."""
    found = shutil.which("initdb")
    if found:
        return str(Path(found).resolve().parent)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return str(Path(versions[-1]).parent) if versions else None


def _unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: the user to run it as (None when not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class Postgres:
    """A throwaway PostgreSQL cluster: trust authentication, listening on 127.0.0.1 only."""

    def __init__(self, bindir: str, superuser: str = "mlflow") -> None:
        self.bindir, self.superuser = bindir, superuser
        self.port = free_port()
        self.user = _unprivileged_user()
        self.folder = Path(tempfile.mkdtemp(prefix="acezoo-pg-"))  # /tmp: reachable by the unprivileged user
        self.data = self.folder / "data"
        if self.user is not None:
            info = pwd.getpwnam(self.user)
            os.chown(self.folder, info.pw_uid, info.pw_gid)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(Path(self.bindir) / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w", "-t", "60",
                  "-o", options, "start")

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


# -- a slow proxy -----------------------------------------------------------------------------------
class SlowProxy:
    """Forwards HTTP requests to ``target``, sleeping ``delay_s`` before those whose path ``slow(path)`` picks."""

    def __init__(self, target: str, delay_s: float, slow: Callable[[str], bool]) -> None:
        host, port = target.removeprefix("http://").split(":")
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if slow(self.path):
                    proxy.delayed += 1
                    time.sleep(delay_s)
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "host")}
                headers["Host"] = f"{host}:{port}"  # the server allows its own address only
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.delayed = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
