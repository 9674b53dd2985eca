"""Publish a tenant's ODS (and the OneID output the marts read) from its DuckDB file to MySQL/MariaDB
or ClickHouse under a database prefix of the test's choosing, and run the dbt project there, so the same models can be
checked on every engine against the same input. Publishing is the production code path
(resources.warehouse.publish_ods); only the prefix differs from a tenant's own.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fincdp.settings import REPO_ROOT
from fincdp.tenants import current_tenants
from resources.warehouse import Warehouse, publish_ods
from resources.warehouse_engines import ClickHouseSession, MySqlSession

DBT_PROJECT = REPO_ROOT / "dbt_project"
DBT = {"duckdb": REPO_ROOT / ".venv" / "bin" / "dbt", "clickhouse": REPO_ROOT / ".venv" / "bin" / "dbt",
       "mysql": REPO_ROOT / ".venv-dbt-mysql" / "bin" / "dbt"}


def _tenant_of(duckdb_path: Path):
    [tenant] = [t for t in current_tenants().tenants if t.duckdb_path == duckdb_path]
    return tenant


def _publish(duckdb_path: Path, make_target, database: str) -> None:
    assert database.endswith("_ods"), database
    tenant = _tenant_of(duckdb_path)
    with Warehouse().session(tenant, read_only=True) as landing:
        target = make_target(tenant, database[:-len("ods")])
        publish_ods(landing, target)
        for (name,) in landing.rows("select table_name from information_schema.tables where table_schema = 'oneid'"):
            # OneID's output, which the marts read, as the OneID asset wrote it on DuckDB.
            target.replace_table(f"oneid.{name}", landing.arrow(f"select * from oneid.{name}"))


def copy_ods_to_clickhouse(duckdb_path: Path, client, database: str) -> None:
    _publish(duckdb_path, lambda tenant, prefix: ClickHouseSession(tenant, client, prefix), database)


def copy_ods_to_mysql(duckdb_path: Path, connection, database: str) -> None:
    _publish(duckdb_path, lambda tenant, prefix: MySqlSession(tenant, connection, prefix), database)


def dbt_build(engine: str, variables: dict, target_path: Path, env: dict | None = None) -> str:
    """`dbt build` of the project on one engine; raises with dbt's output when anything fails."""
    result = subprocess.run(
        [str(DBT[engine]), "build", "--profiles-dir", ".", "--target", engine, "--target-path", str(target_path),
         "--vars", json.dumps(variables)],
        cwd=DBT_PROJECT, env={**os.environ, **(env or {}), "FINCDP_DBT_TARGET": engine},
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"dbt build on {engine} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
    return result.stdout
