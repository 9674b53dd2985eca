"""Shared fixtures for real engines. Import them into tests/conftest.py:

    from tests.support.fixtures import mariadb  # noqa: F401
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.support.chdb_http import ChdbHttpServer
from tests.support.mariadb import MariaDBNotInstalled, MariaDBServer

ROOT = Path(__file__).resolve().parents[2]
DBT_MYSQL = ROOT / ".venv-dbt-mysql" / "bin" / "dbt"


@pytest.fixture(scope="package")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """One MariaDB server per test run (per xdist worker), on a free port. Never skipped: a machine
    without mariadbd fails here, with the command that installs it."""
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb"))
    missing = None
    try:
        server.start()
    except MariaDBNotInstalled as exc:
        missing = str(exc)
    if missing:
        pytest.fail(missing, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def require_dbt_mysql() -> Path:
    """The dbt executable of the isolated dbt-mysql environment; fails (never skips) without it."""
    if not DBT_MYSQL.exists():
        pytest.fail(f"{DBT_MYSQL} not found: run `make setup-mysql` (`make test` runs it), which creates "
                    "the dbt-mysql environment from requirements/dbt-mysql.lock", pytrace=False)
    return DBT_MYSQL


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbHttpServer]:
    """The ClickHouse engine (chdb) behind its HTTP front, one per test process: chdb opens a single
    data directory per process, so every test shares it and uses databases of its own."""
    with ChdbHttpServer(tmp_path_factory.mktemp("chdb")) as server:
        yield server
