"""A local server that answers the Elasticsearch 8 REST API: noida-db's Elasticsearch endpoint only.

No Elasticsearch server installs here; `noida-db` (PyPI, one binary) speaks Postgres, MySQL, Redis,
Kafka, ClickHouse and Elasticsearch. We start it with `--only elasticsearch`, on 127.0.0.1, a port of
our choosing and a data directory of our own, so nothing else it serves is opened and two servers
(pytest workers, the demo) never share state. What it does and does not do compared with a real
cluster is in docs/search.md. The demo and the tests start it here; production points FINCDP_ES_URL
at a real cluster instead.

    with LocalSearchServer(tmp_path / "es") as server:   # or server = LocalSearchServer(dir).start()
        server.url                                       # http://127.0.0.1:PORT
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

INSTALL_HINT = "install it with the pinned environment (requirements/main.in has noida-db==0.2.3)"


class SearchServerError(RuntimeError):
    pass


def noida_binary() -> Path:
    """The server binary shipped inside the noida-db wheel (its console script only wraps it)."""
    try:
        from importlib.resources import files

        path = Path(str(files("noida_db").joinpath("noida-db")))
    except ModuleNotFoundError:
        raise SearchServerError(f"the noida-db package is not installed: {INSTALL_HINT}") from None
    if not path.is_file():
        raise SearchServerError(f"noida-db binary missing at {path}: {INSTALL_HINT}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)  # wheels do not always keep the mode; the wrapper does the same
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies, so a killed test run leaves no server."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalSearchServer:
    """noida-db serving only Elasticsearch, its data under `data_dir`, on 127.0.0.1:`port` (0: free)."""

    host = "127.0.0.1"

    def __init__(self, data_dir: Path, *, port: int = 0, startup_timeout_s: float = 20.0):
        self.data_dir = Path(data_dir).resolve()
        self.requested_port = port
        self.startup_timeout_s = startup_timeout_s
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._port: int | None = None
        self._process: subprocess.Popen | None = None
        self.version: str | None = None  # the Elasticsearch version it reports

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalSearchServer not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> "LocalSearchServer":
        if self.running:
            return self
        binary = noida_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._port = self.requested_port or free_port()
        command = [str(binary), "start", "--data-dir", str(self.data_dir), "--host", self.host,
                   "--only", "elasticsearch", "--elasticsearch-port", str(self._port)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self._process.poll() is not None:
                raise SearchServerError(f"noida-db exited with {self._process.returncode} on port {self._port} "
                                        f"(data dir {self.data_dir}):\n{self._tail()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                    self.version = json.load(response)["version"]["number"]
                return self
            except (urllib.error.URLError, ConnectionError, OSError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise SearchServerError(f"noida-db did not answer on {self.url} within "
                                            f"{self.startup_timeout_s:.0f}s:\n{self._tail()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: noida-db saves its data and exits
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def remove(self) -> None:
        """Stop and delete the data directory and log (tests, benchmarks)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "LocalSearchServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_for_demo(home: Path) -> LocalSearchServer | None:
    """The demo's search cluster: FINCDP_ES_URL if it is set, else a local server over
    FINCDP_HOME/search whose address is put into FINCDP_ES_URL for the run (None: nothing started)."""
    if os.environ.get("FINCDP_ES_URL"):
        return None
    server = LocalSearchServer(home / "search").start()
    os.environ["FINCDP_ES_URL"] = server.url
    return server
