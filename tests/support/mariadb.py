"""A private MariaDB server for tests: Debian's `mariadbd`, its own data dir, a free port on 127.0.0.1.

    with MariaDBServer(tmp_path / "mariadb") as server:   # or server = MariaDBServer(dir).start()
        conn = server.connect()                           # pymysql over TCP as `server.user`
        server.url                                        # mysql+pymysql://fincdp:...@127.0.0.1:PORT/

Start-up takes about 0.4 s: the data dir is a copy of a template that mariadb-install-db makes once
per machine (1-4 s, in the temp dir). Each server has its own directory and port, so pytest-xdist
workers can each run one; a server dies with the process that started it. Nothing here reads a my.cnf
(`--no-defaults`), so the host's MariaDB configuration and service never matter.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pymysql

INSTALL_HINT = "run `make setup-mysql` (`make test` runs it), which installs Debian's mariadb-server"

# mariadbd lives in /usr/sbin, which a non-root PATH often lacks.
_EXTRA_PATH = ("/usr/sbin", "/usr/local/sbin", "/sbin")

# Settings for a throwaway server: no durability (a crash loses the data, which tests recreate),
# small files, the character set and time zone fixed so results do not depend on the host.
SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--skip-log-bin",
    "--innodb-buffer-pool-size=128M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-flush-method=nosync",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--default-time-zone=+00:00",
    "--max-connections=200",
)


INSTALL_OPTIONS = ("--auth-root-authentication-method=normal", "--skip-test-db")


class MariaDBNotInstalled(RuntimeError):
    pass


class MariaDBStartError(RuntimeError):
    pass


def find_program(*names: str) -> str | None:
    """The first of `names` on PATH or in the sbin directories."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_PATH])
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent dies (a killed pytest worker
    must not leave a server behind). Linux only; elsewhere a no-op."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _user_options() -> list[str]:
    # mariadbd refuses to run as root unless told to; otherwise it runs as the current user.
    return ["--user=root"] if os.geteuid() == 0 else []


def _template_data_dir(install_db: str, mariadbd: str) -> Path:
    """A freshly initialised data dir (system tables, root@localhost without a password), made once
    per machine, user and mariadbd build; servers start on a copy of it. mariadb-install-db takes
    1-3 s (it loads the help tables and the sys schema), a copy a fraction of that."""
    binary = os.stat(mariadbd)
    key = hashlib.sha256(repr((binary.st_size, binary.st_mtime_ns, INSTALL_OPTIONS, SERVER_OPTIONS))
                         .encode()).hexdigest()[:12]
    template = Path(tempfile.gettempdir()) / f"fincdp-mariadb-template-{os.geteuid()}-{key}"
    if all((template / "data" / name).exists() for name in ("mysql", "ibdata1", "ib_logfile0")):
        return template / "data"
    if template.exists():  # thinned by a temp cleaner: move it aside (atomically), then rebuild
        stale = Path(tempfile.mkdtemp(prefix=f"{template.name}.stale.", dir=template.parent))
        try:
            os.rename(template, stale / "old")
        except OSError:
            pass
        shutil.rmtree(stale, ignore_errors=True)
    build = Path(tempfile.mkdtemp(prefix=f"{template.name}.", dir=template.parent))
    log = build / "install-db.log"
    (build / "tmp").mkdir()
    command = [install_db, "--no-defaults", f"--datadir={build / 'data'}", *_user_options(),
               f"--tmpdir={build / 'tmp'}", *INSTALL_OPTIONS, *SERVER_OPTIONS]
    with log.open("wb") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=300)
    if result.returncode != 0:
        message = f"mariadb-install-db failed (exit {result.returncode}):\n{_tail(log)}"
        shutil.rmtree(build, ignore_errors=True)
        raise MariaDBStartError(message)
    try:
        os.rename(build, template)  # atomic: a concurrent worker either wins or finds it complete
    except OSError:
        shutil.rmtree(build, ignore_errors=True)  # another process got there first
    return template / "data"


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text[-lines:])


class MariaDBServer:
    """One mariadbd process with its data under `base_dir`; a `user` with all privileges over TCP."""

    host = "127.0.0.1"

    def __init__(self, base_dir: Path, *, user: str = "fincdp", password: str = "fincdp-test",
                 startup_timeout_s: float = 30.0, extra_options: tuple[str, ...] = ()):
        self.base_dir = Path(base_dir).resolve()
        self.user = user
        self.password = password
        self.startup_timeout_s = startup_timeout_s
        self.extra_options = tuple(extra_options)
        self.data_dir = self.base_dir / "data"
        self.tmp_dir = self.base_dir / "tmp"
        self.error_log = self.base_dir / "mariadbd.err"
        self._socket_tmp: Path | None = None
        self.socket_path = self._socket_path()
        self._port: int | None = None
        self._process: subprocess.Popen | None = None
        self.startup_s: float | None = None  # measured by start(), for reports

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MariaDBServer not started")
        return self._port

    @property
    def url(self) -> str:
        """SQLAlchemy-style URL with no database."""
        return self.url_for("")

    def url_for(self, database: str) -> str:
        return (f"mysql+pymysql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{self.host}:{self.port}/{quote(database, safe='')}?charset=utf8mb4")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def connect(self, database: str | None = None, **kwargs) -> pymysql.connections.Connection:
        """A pymysql connection over TCP as `user` (autocommit, utf8mb4)."""
        options = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                       database=database, charset="utf8mb4", autocommit=True, connect_timeout=10)
        return pymysql.connect(**{**options, **kwargs})

    def create_database(self, name: str) -> str:
        """Drops and creates database `name` (utf8mb4); returns the name."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"drop database if exists `{name}`")
            cur.execute(f"create database `{name}` character set utf8mb4")
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"drop database if exists `{name}`")

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> "MariaDBServer":
        if self.running:
            return self
        began = time.monotonic()
        mariadbd = find_program("mariadbd", "mysqld")
        install_db = find_program("mariadb-install-db", "mysql_install_db")
        if not mariadbd or not install_db:
            raise MariaDBNotInstalled(f"mariadbd / mariadb-install-db not found: {INSTALL_HINT}")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        if not (self.data_dir / "mysql").is_dir():
            shutil.copytree(_template_data_dir(install_db, mariadbd), self.data_dir)
        for attempt in range(3):  # another process may take the free port before mariadbd binds it
            self._port = _free_port()
            try:
                self._launch(mariadbd)
                break
            except MariaDBStartError as exc:
                if attempt == 2 or "Address already in use" not in str(exc):
                    raise
        self._create_user()
        self.startup_s = time.monotonic() - began
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Clean shutdown (SIGTERM, which mariadbd treats as `shutdown`); SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._socket_tmp is not None:
            shutil.rmtree(self._socket_tmp, ignore_errors=True)

    def __enter__(self) -> "MariaDBServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self.running else "stopped"
        return f"MariaDBServer({where}, {self.base_dir})"

    # -- internals -------------------------------------------------------------------------------

    def _socket_path(self) -> Path:
        # A Unix socket path is limited to 107 bytes; pytest's tmp paths can be longer.
        path = self.base_dir / "mariadbd.sock"
        if len(str(path)) < 100:
            return path
        self._socket_tmp = Path(tempfile.mkdtemp(prefix="fincdp-mariadb-"))
        return self._socket_tmp / "mariadbd.sock"

    def _launch(self, mariadbd: str) -> None:
        command = [mariadbd, "--no-defaults", *_user_options(), f"--datadir={self.data_dir}",
                   f"--socket={self.socket_path}", f"--port={self._port}",
                   f"--bind-address={self.host}", f"--tmpdir={self.tmp_dir}",
                   f"--pid-file={self.base_dir / 'mariadbd.pid'}", f"--log-error={self.error_log}",
                   *SERVER_OPTIONS, *self.extra_options]
        log_start = self.error_log.stat().st_size if self.error_log.exists() else 0
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.startup_timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code, self._process = self._process.returncode, None
                raise MariaDBStartError(f"mariadbd exited with {code} while starting on port "
                                        f"{self._port}; {self.error_log}:\n{self._log_since(log_start)}")
            try:
                pymysql.connect(unix_socket=str(self.socket_path), user="root", password="",
                                connect_timeout=2).close()
                return
            except pymysql.err.OperationalError as exc:
                last_error = exc
                time.sleep(0.05)
        self.stop(timeout_s=10)
        raise MariaDBStartError(f"mariadbd did not accept connections within {self.startup_timeout_s:.0f} s "
                                f"(last error: {last_error}); {self.error_log}:\n{self._log_since(log_start)}")

    def _log_since(self, offset: int) -> str:
        try:
            with self.error_log.open("rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no error log)"
        return "\n".join(text.splitlines()[-25:])

    def _create_user(self) -> None:
        conn = pymysql.connect(unix_socket=str(self.socket_path), user="root", password="",
                               autocommit=True, connect_timeout=10)
        with conn, conn.cursor() as cur:
            # root keeps only the Unix socket; over TCP there is just `user`.
            cur.execute("select host from mysql.user where user = 'root' and host <> 'localhost'")
            for (host,) in cur.fetchall():
                cur.execute("drop user 'root'@%s", (host,))
            # With --skip-name-resolve a TCP client is matched by IP only; '%' covers it.
            cur.execute("create or replace user %s@'%%' identified by %s", (self.user, self.password))
            cur.execute("grant all privileges on *.* to %s@'%%' with grant option", (self.user,))
