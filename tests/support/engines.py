"""Copy a tenant's ODS tables from its DuckDB file into MySQL/MariaDB or ClickHouse, and run the dbt
project there, so the same models can be checked on every engine against the same input.

(The ingestion assets land ODS on DuckDB; landing it directly on the other engines is future work,
see the README. This copy is a test fixture, not a loader.)
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa

from fincdp.settings import REPO_ROOT

DBT_PROJECT = REPO_ROOT / "dbt_project"
DBT = {"duckdb": REPO_ROOT / ".venv" / "bin" / "dbt", "clickhouse": REPO_ROOT / ".venv" / "bin" / "dbt",
       "mysql": REPO_ROOT / ".venv-dbt-mysql" / "bin" / "dbt"}


def _ods_tables(duckdb_path: Path) -> list[tuple[str, pa.Table]]:
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        names = [n for (n,) in con.execute("select table_name from information_schema.tables "
                                           "where table_schema = 'ods' order by 1").fetchall()]
        return [(n, con.execute(f"select * from ods.{n}").to_arrow_table()) for n in names]
    finally:
        con.close()


def _clickhouse_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return f"Array({_clickhouse_type(t.value_type)})"
    base = ("String" if pa.types.is_string(t) or pa.types.is_binary(t) else
            "Int64" if pa.types.is_integer(t) else "Float64" if pa.types.is_floating(t) else
            "Bool" if pa.types.is_boolean(t) else
            f"Decimal({t.precision}, {t.scale})" if pa.types.is_decimal(t) else
            "DateTime64(6, 'UTC')" if pa.types.is_timestamp(t) else "Date32" if pa.types.is_date(t) else None)
    if base is None:
        raise TypeError(f"no ClickHouse type for {t}")
    return f"Nullable({base})"


def copy_ods_to_clickhouse(duckdb_path: Path, client, database: str) -> None:
    client.command(f"create database if not exists {database}")
    for name, table in _ods_tables(duckdb_path):
        columns = ", ".join(f"`{f.name}` {_clickhouse_type(f.type)}" for f in table.schema)
        client.command(f"create table {database}.{name} ({columns}) engine = MergeTree order by tuple()")
        if table.num_rows:
            client.insert_arrow(f"{database}.{name}", table)


def _mysql_type(t: pa.DataType) -> str:
    return ("JSON" if pa.types.is_list(t) else "TEXT" if pa.types.is_string(t) else
            "LONGBLOB" if pa.types.is_binary(t) else "BIGINT" if pa.types.is_integer(t) else
            "DOUBLE" if pa.types.is_floating(t) else "BOOLEAN" if pa.types.is_boolean(t) else
            f"DECIMAL({t.precision},{t.scale})" if pa.types.is_decimal(t) else
            "DATETIME(6)" if pa.types.is_timestamp(t) else "DATE")


def _mysql_value(value):
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.datetime):  # stored as UTC, as the server's time zone is
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def copy_ods_to_mysql(duckdb_path: Path, connection, database: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"create database if not exists `{database}`")
        for name, table in _ods_tables(duckdb_path):
            columns = ", ".join(f"`{f.name}` {_mysql_type(f.type)}" for f in table.schema)
            cursor.execute(f"create table `{database}`.`{name}` ({columns})")
            rows = [[_mysql_value(v) for v in row.values()] for row in table.to_pylist()]
            if rows:
                cursor.executemany(f"insert into `{database}`.`{name}` values "
                                   f"({', '.join(['%s'] * table.num_columns)})", rows)
    connection.commit()


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
