"""The boss model's asset body on MariaDB and ClickHouse gives DuckDB's answers: the same ODS and OneID
output published to the engine, DWD built there by dbt, then `run_model` on the engine's session."""
from __future__ import annotations

import json
import os
import subprocess

import clickhouse_connect
import pytest

from assets import boss
from fincdp.boss.config import BossConfig
from resources.warehouse_engines import ClickHouseSession, MySqlSession
from tests.conftest import BUSINESS_DATE
from tests.support.engines import DBT, DBT_PROJECT, copy_ods_to_clickhouse, copy_ods_to_mysql
from tests.support.fixtures import require_dbt_mysql
from tests.support.jobs import demo_day_on_duckdb

COLUMNS = ("account_one_id", "one_id", "decision_maker_level", "reports_to_one_id", "reporting_depth", "buying_roles",
           "boss_score", "decayed_interactions", "contact_window", "account_rank")


# what the boss model reads (other DWD models are not this test's business)
MODELS = ["dwd_crm__contacts", "dwd_crm__enterprises", "dwd_crm__calls", "dwd_crm__leads", "dwd_crm__opportunities",
          "dwd_wecom__departments", "dwd_wecom__members", "dwd_wecom__external_contacts"]


def comparable(rows) -> list[tuple]:
    return sorted(tuple(round(float(r[c]), 5) if c in ("boss_score", "decayed_interactions") else r[c]
                        for c in COLUMNS) for r in rows)


@pytest.fixture(scope="module")
def duckdb_boss(tmp_path_factory):
    with demo_day_on_duckdb(tmp_path_factory, "boss-engines", scale=120, keys=[["boss", "decision_makers"]]) as p:
        with p.session("t001") as s:
            expected = comparable(s.arrow(f"select * from {boss.ADS}").to_pylist())
            staff = sorted(s.rows(f"select userid, reports_to_userid, reporting_depth from {boss.STAFF}"))
        assert len(expected) > 50
        yield p.tenants().get("t001"), expected, staff


def build_dwd(engine: str, prefix: str, target_path, env: dict) -> None:
    variables = {"tenant": "t001", "business_date": BUSINESS_DATE.isoformat(), "schema_prefix": prefix}
    result = subprocess.run(
        [str(DBT[engine]), "build", "--profiles-dir", ".", "--target", engine, "--target-path", str(target_path),
         "--vars", json.dumps(variables), "--select", *MODELS],
        cwd=DBT_PROJECT, env={**os.environ, **env, "FINCDP_DBT_TARGET": engine}, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def check(session, tenant, expected, staff) -> None:
    tables = boss.run_model(session, tenant, BUSINESS_DATE, BossConfig.load(), None, None)
    assert tables[boss.ADS].num_rows == len(expected)
    assert comparable(session.arrow(f"select * from {boss.ADS}").to_pylist()) == expected
    got_staff = sorted(tuple(r) for r in session.rows(
        f"select userid, reports_to_userid, reporting_depth from {boss.STAFF}"))
    assert got_staff == staff


def test_boss_on_clickhouse_matches_duckdb(duckdb_boss, clickhouse, tmp_path):
    tenant, expected, staff = duckdb_boss
    client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port)
    copy_ods_to_clickhouse(tenant.duckdb_path, client, "bsc_ods")
    build_dwd("clickhouse", "bsc_", tmp_path / "target", {"FINCDP_CLICKHOUSE_PORT": str(clickhouse.port)})
    check(ClickHouseSession(tenant, client, "bsc_"), tenant, expected, staff)


def test_boss_on_mariadb_matches_duckdb(duckdb_boss, mariadb, tmp_path):
    require_dbt_mysql()
    tenant, expected, staff = duckdb_boss
    connection = mariadb.connect()
    copy_ods_to_mysql(tenant.duckdb_path, connection, "bsm_ods")
    build_dwd("mysql", "bsm_", tmp_path / "target", {"FINCDP_MYSQL_PORT": str(mariadb.port),
                                                      "FINCDP_MYSQL_USER": mariadb.user,
                                                      "FINCDP_MYSQL_PASSWORD": mariadb.password})
    check(MySqlSession(tenant, connection, "bsm_"), tenant, expected, staff)
