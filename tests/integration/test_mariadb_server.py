"""The test MariaDB server (tests/support/mariadb.py) and dbt-mysql 1.7 against it.

Needs `make setup-mysql` (Debian's mariadb-server, .venv-dbt-mysql); the `mariadb` fixture comes from
tests/support/fixtures.py via tests/conftest.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import textwrap
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest

from tests.support import mariadb as mariadb_module
from tests.support.fixtures import require_dbt_mysql
from tests.support.mariadb import MariaDBNotInstalled, MariaDBServer, MariaDBStartError

# 4-byte UTF-8 included (𠮷 U+20BB7, 😀): utf8mb3 would reject or mangle them.
CHINESE = "张三丰·𠮷野家 — 北京市朝阳区 😀"
BIG = Decimal("99999999999999999999999999999999.999999")  # DECIMAL(38,6) maximum


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_server_accepts_the_fincdp_user_over_tcp(mariadb: MariaDBServer):
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("select version(), current_user(), @@port, @@character_set_server, @@time_zone")
        version, user, port, charset, tz = cur.fetchone()
    assert "MariaDB" in version
    assert user == f"{mariadb.user}@%"
    assert port == mariadb.port and mariadb.host == "127.0.0.1"
    assert (charset, tz) == ("utf8mb4", "+00:00")
    assert conn.host_info == f"socket {mariadb.host}:{mariadb.port}"  # TCP, not the Unix socket
    assert mariadb.url == f"mysql+pymysql://fincdp:fincdp-test@127.0.0.1:{mariadb.port}/?charset=utf8mb4"


def test_round_trips_chinese_text_decimal_and_microseconds(mariadb: MariaDBServer):
    db = mariadb.create_database("roundtrip")
    rows = [(1, CHINESE, BIG, datetime(2026, 11, 25, 23, 59, 59, 999999)),
            (2, "李四", Decimal("-0.000001"), datetime(1900, 1, 1, 0, 0, 0, 1)),
            (3, "", Decimal("12345678901234567890.123456"), datetime(2099, 12, 31, 12, 0))]
    with mariadb.connect(db) as conn, conn.cursor() as cur:
        cur.execute("create table t (id int primary key, name varchar(100), amount decimal(38,6),"
                    " at datetime(6))")
        cur.executemany("insert into t values (%s, %s, %s, %s)", rows)
        cur.execute("select id, name, amount, at from t order by id")
        assert cur.fetchall() == tuple(rows)
        cur.execute("select char_length(name), amount + 0.000001 from t where id = 1")
        assert cur.fetchone() == (len(CHINESE), Decimal("100000000000000000000000000000000.000000"))
        cur.execute("select count(*) from t where name = %s", (CHINESE,))
        assert cur.fetchone() == (1,)


def test_databases_are_isolated(mariadb: MariaDBServer):
    a, b = mariadb.create_database("tenant_a"), mariadb.create_database("tenant_b")
    for db, name in ((a, "甲"), (b, "乙")):
        with mariadb.connect(db) as conn, conn.cursor() as cur:
            cur.execute("create table customers (name varchar(10))")
            cur.execute("insert into customers values (%s)", (name,))
    with mariadb.connect(a) as conn, conn.cursor() as cur:
        cur.execute("select name from customers")
        assert cur.fetchall() == (("甲",),)
    mariadb.drop_database(a)
    with mariadb.connect(b) as conn, conn.cursor() as cur:
        cur.execute("select name from customers")
        assert cur.fetchall() == (("乙",),)
    with pytest.raises(pymysql.err.OperationalError, match="Unknown database"):
        mariadb.connect(a)


def test_a_second_server_runs_beside_the_first_and_stops(mariadb: MariaDBServer, tmp_path: Path):
    with MariaDBServer(tmp_path / "second") as other:
        assert other.port != mariadb.port and other.startup_s < 15
        other.create_database("only_here")
        with other.connect() as conn, conn.cursor() as cur:
            cur.execute("show databases like 'only_here'")
            assert cur.fetchall() == (("only_here",),)
        with mariadb.connect() as conn, conn.cursor() as cur:
            cur.execute("show databases like 'only_here'")
            assert cur.fetchall() == ()
        port = other.port
    assert not other.running and not _port_open(port)
    assert "Shutdown complete" in other.error_log.read_text()


def test_a_server_that_cannot_start_reports_its_error_log(tmp_path: Path):
    server = MariaDBServer(tmp_path / "bad", extra_options=("--no-such-option=1",))
    with pytest.raises(MariaDBStartError, match="(?s)exited with.*no-such-option"):
        server.start()
    assert not server.running


def test_a_machine_without_mariadbd_is_told_to_run_setup(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(mariadb_module, "find_program", lambda *names: None)
    with pytest.raises(MariaDBNotInstalled, match="make setup-mysql"):
        MariaDBServer(tmp_path / "none").start()


# -- dbt-mysql 1.7 (its own environment) against the server --------------------------------------

# dbt-mysql 1.7's `mysql` adapter writes `create view ... as (<sql>)`; MariaDB rejects a WITH inside
# those parentheses, so every CTE-style view fails. This override (the adapter's own `mariadb`
# variant) drops them. See docs/mysql-local.md.
VIEW_MACRO = """
{% macro mysql__create_view_as(relation, sql) -%}
  {%- set sql_header = config.get('sql_header', none) -%}
  {{ sql_header if sql_header is not none }}
  create view {{ relation }}
  {% set contract_config = config.get('contract') %}
  {% if contract_config.enforced %}
    {{ get_assert_columns_equivalent(sql) }}
  {%- endif %}
  as
    {{ sql }}
{%- endmacro %}
"""

PROJECT = {
    "dbt_project.yml": """
        name: mysql_check
        version: "1.0"
        profile: mysql_check
        config-version: 2
        models:
          mysql_check:
            +materialized: view
        """,
    "models/sources.yml": """
        version: 2
        sources:
          - name: raw
            schema: dbtcheck_raw
            tables:
              - name: customers
              - name: orders
        """,
    "models/stg_customers.sql": """
        with source as (
            select * from {{ source('raw', 'customers') }}
        ),

        final as (
            select id as customer_id, name as customer_name, tier, balance, updated_at
            from source
        )

        select * from final
        """,
    "models/customers.sql": """
        {{ config(materialized='table') }}
        with customers as (
            select * from {{ ref('stg_customers') }}
        ),

        final as (
            select *, {{ hash_pii('customer_name') }} as name_hash from customers
        )

        select * from final
        """,
    "models/orders.sql": """
        {{ config(materialized='incremental', unique_key='order_id') }}
        with orders as (
            select * from {{ source('raw', 'orders') }}
        )

        select * from orders
        {% if is_incremental() %}
        where updated_at > (select max(updated_at) from {{ this }})
        {% endif %}
        """,
    "models/schema.yml": """
        version: 2
        models:
          - name: customers
            columns:
              - name: customer_id
                tests: [unique, not_null]
              - name: tier
                tests:
                  - accepted_values: {values: [gold, silver, bronze]}
          - name: orders
            columns:
              - name: order_id
                tests: [unique, not_null]
              - name: customer_id
                tests:
                  - relationships: {to: ref('customers'), field: customer_id}
        """,
    "tests/no_negative_balances.sql": """
        with customers as (select * from {{ ref('customers') }})
        select * from customers where balance < 0
        """,
    "macros/hash_pii.sql": """
        {% macro hash_pii(col) %}{{ return(adapter.dispatch('hash_pii')(col)) }}{% endmacro %}
        {% macro default__hash_pii(col) %}sha256(cast({{ col }} as varchar)){% endmacro %}
        {% macro mysql__hash_pii(col) %}sha2({{ col }}, 256){% endmacro %}
        """,
    "macros/mysql_views.sql": VIEW_MACRO,
    "snapshots/customers_snapshot.sql": """
        {% snapshot customers_snapshot %}
        {{ config(target_schema='dbtcheck_snapshots', unique_key='id', strategy='check',
                  check_cols=['name', 'tier', 'balance']) }}
        select * from {{ source('raw', 'customers') }}
        {% endsnapshot %}
        """,
}


def _write_project(root: Path, server: MariaDBServer) -> None:
    files = dict(PROJECT)
    files["profiles.yml"] = f"""
        mysql_check:
          target: dev
          outputs:
            dev:
              type: mysql
              server: {server.host}
              port: {server.port}
              schema: dbtcheck
              username: {server.user}
              password: {server.password}
              threads: 1
        """
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def _dbt(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DBT_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1", DBT_USE_COLORS="false")
    result = subprocess.run([str(require_dbt_mysql()), *args, "--project-dir", str(project),
                             "--profiles-dir", str(project)],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


def _statuses(project: Path) -> dict[str, str]:
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["status"] for r in results}


def _query(server: MariaDBServer, sql: str) -> tuple:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_dbt_mysql_runs_models_incrementals_snapshots_and_tests(mariadb: MariaDBServer, tmp_path: Path):
    for db in ("dbtcheck", "dbtcheck_snapshots"):
        mariadb.drop_database(db)  # dbt creates them itself (`create schema if not exists`)
    raw = mariadb.create_database("dbtcheck_raw")
    with mariadb.connect(raw) as conn, conn.cursor() as cur:
        cur.execute("create table customers (id int primary key, name varchar(50), tier varchar(10),"
                    " balance decimal(38,6), updated_at datetime(6))")
        cur.executemany("insert into customers values (%s, %s, %s, %s, %s)", [
            (1, CHINESE, "gold", BIG, "2026-11-25 08:00:00.123456"),
            (2, "李四", "silver", "0.000001", "2026-11-25 09:00:00")])
        cur.execute("create table orders (order_id int primary key, customer_id int,"
                    " amount decimal(38,6), updated_at datetime(6))")
        cur.executemany("insert into orders values (%s, %s, %s, %s)", [
            (1, 1, "10.5", "2026-11-25 08:00:00"), (2, 2, "20", "2026-11-25 09:00:00")])
    project = tmp_path / "project"
    _write_project(project, mariadb)

    _dbt(project, "run")
    assert _statuses(project) == {"stg_customers": "success", "customers": "success", "orders": "success"}
    _dbt(project, "snapshot")

    # A change in the sources, and a row only the target has: an incremental run keeps it,
    # a rebuild would drop it.
    with mariadb.connect(raw) as conn, conn.cursor() as cur:
        cur.execute("update customers set tier = 'bronze' where id = 2")
        cur.execute("insert into customers values (3, '王五', 'gold', 5, '2026-11-26 00:00:00')")
        cur.execute("update orders set amount = 11, updated_at = '2026-11-26 01:00:00' where order_id = 1")
        cur.execute("insert into orders values (3, 3, 7, '2026-11-26 00:00:00')")
        cur.execute("insert into dbtcheck.orders values (99, 1, 1, '2026-01-01 00:00:00')")

    _dbt(project, "run")
    _dbt(project, "snapshot")
    _dbt(project, "test")
    statuses = _statuses(project)
    assert len(statuses) == 7 and set(statuses.values()) == {"pass"}, statuses

    assert _query(mariadb, "select order_id, amount from dbtcheck.orders order by order_id") == (
        (1, Decimal("11.000000")), (2, Decimal("20.000000")), (3, Decimal("7.000000")), (99, Decimal("1.000000")))

    customers = _query(mariadb, "select customer_id, customer_name, tier, balance, updated_at, name_hash"
                                " from dbtcheck.customers order by customer_id")
    assert [row[:5] for row in customers] == [
        (1, CHINESE, "gold", BIG, datetime(2026, 11, 25, 8, 0, 0, 123456)),
        (2, "李四", "bronze", Decimal("0.000001"), datetime(2026, 11, 25, 9, 0)),
        (3, "王五", "gold", Decimal("5.000000"), datetime(2026, 11, 26, 0, 0))]
    # hash_pii dispatched to mysql__hash_pii (the default__ one would not even parse on MariaDB)
    assert [row[5] for row in customers] == [hashlib.sha256(row[1].encode()).hexdigest() for row in customers]

    history = _query(mariadb, "select id, tier, dbt_valid_from, dbt_valid_to is null"
                              " from dbtcheck_snapshots.customers_snapshot order by id, dbt_valid_from")
    assert [(i, tier, current) for i, tier, _, current in history] == [
        (1, "gold", 1), (2, "silver", 0), (2, "bronze", 1), (3, "gold", 1)]
    closed_to = _query(mariadb, "select dbt_valid_to from dbtcheck_snapshots.customers_snapshot"
                                " where id = 2 and dbt_valid_to is not null")[0][0]
    assert closed_to == history[2][2]  # the old version ends where the new one starts
