"""One set of dbt models on DuckDB, MariaDB (dbt-mysql 1.7) and ClickHouse (chdb engine): built from
the same ODS (and OneID) input, every engine's tables agree with DuckDB's, and the shipped segment
definitions select the same, non-empty members on all three."""
from __future__ import annotations

from decimal import Decimal

import clickhouse_connect
import pytest

from fincdp.segments.compiler import compile_segment
from fincdp.segments.language import load_tenant_segments
from fincdp.settings import REPO_ROOT
from resources.warehouse_engines import ClickHouseSession, MySqlSession
from tests.conftest import BUSINESS_DATE
from tests.support.engines import copy_ods_to_clickhouse, copy_ods_to_mysql, dbt_build
from tests.support.fixtures import require_dbt_mysql
from tests.support.jobs import demo_day_on_duckdb

QUERIES = {
    "person_360": "select count(*), sum(calls_all), sum(events_all), sum(leads) from {p}ads.ads_person_360",
    "enterprise_360": "select count(*), sum(crm_contacts), sum(won_amount), sum(open_pipeline_amount) "
                      "from {p}ads.ads_enterprise_360",
    "funnel": "select count(*), sum(case when reached_win then 1 else 0 end) from {p}ads.ads_funnel_base",
    "identifiers": "select count(*), count(distinct identifier) from {p}dwd.dwd_identifiers",
    "metrics": "select metric_name, metric_version, round(metric_value, 4) from {p}ads.ads_metric_values "
               "order by metric_name",
    "person_enterprise": "select count(*), sum(case when link_rank = 1 then 1 else 0 end), sum(records), "
                         "count(distinct enterprise_one_id) from {p}dwm.dwm_person_enterprise_links",
    "enterprise_golden": "select count(*), sum(people), sum(primary_people), count(credit_code), "
                         "count(legal_representative) from {p}dwm.dwm_enterprise_golden",
}


SEGMENTS = load_tenant_segments("t001", REPO_ROOT / "segments")


def members(session) -> dict[str, set[str]]:
    return {s.id: {r[0] for r in session.rows(compile_segment(s, BUSINESS_DATE).sql)} for s in SEGMENTS}


def normalise(rows) -> list[tuple]:
    return [tuple(float(v) if isinstance(v, (Decimal, float)) else int(v) if isinstance(v, bool) else v
                  for v in row) for row in rows]


@pytest.fixture(scope="module")
def duckdb_run(tmp_path_factory):
    """The real pipeline on DuckDB for one tenant: its ODS is the input every engine gets."""
    with demo_day_on_duckdb(tmp_path_factory, "engines", scale=150) as p:
        with p.session("t001") as s:
            expected = {name: normalise(s.rows(sql.format(p=""))) for name, sql in QUERIES.items()}
            expected_members = members(s)
            # the segments asset wrote the same members the queries give
            stored = {sid: {o for (o,) in s.rows("select one_id from segments.membership where segment_id = ?", [sid])}
                      for sid in expected_members}
        assert expected["person_360"][0][0] > 100 and expected["person_360"][0][1] > 0 and len(expected["metrics"]) == 5
        assert stored == expected_members and all(expected_members.values()), \
            {k: len(v) for k, v in expected_members.items()}   # every demo segment selects people
        yield p.tenants().get("t001"), expected, expected_members


def dbt_vars(prefix: str) -> dict:
    return {"tenant": "t001", "business_date": BUSINESS_DATE.isoformat(), "schema_prefix": prefix}


def test_models_on_clickhouse_match_duckdb(duckdb_run, clickhouse, tmp_path):
    tenant, expected, expected_members = duckdb_run
    duckdb_path = tenant.duckdb_path
    client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port)
    copy_ods_to_clickhouse(duckdb_path, client, "chk_ods")
    dbt_build("clickhouse", dbt_vars("chk_"), tmp_path / "target", {"FINCDP_CLICKHOUSE_PORT": str(clickhouse.port)})
    got = {name: normalise(client.query(sql.format(p="chk_")).result_rows) for name, sql in QUERIES.items()}
    assert got == expected
    assert members(ClickHouseSession(tenant, client, prefix="chk_")) == expected_members


def test_models_on_mariadb_match_duckdb(duckdb_run, mariadb, tmp_path):
    require_dbt_mysql()
    tenant, expected, expected_members = duckdb_run
    duckdb_path = tenant.duckdb_path
    connection = mariadb.connect(init_command="set time_zone = '+00:00'")
    copy_ods_to_mysql(duckdb_path, connection, "myt_ods")
    dbt_build("mysql", dbt_vars("myt_"), tmp_path / "target",
              {"FINCDP_MYSQL_PORT": str(mariadb.port), "FINCDP_MYSQL_USER": mariadb.user,
               "FINCDP_MYSQL_PASSWORD": mariadb.password})
    with connection.cursor() as cursor:
        got = {}
        for name, sql in QUERIES.items():
            cursor.execute(sql.format(p="myt_"))
            got[name] = normalise(cursor.fetchall())
        # What keeps MariaDB's joins from comparing all pairs at 100k contacts (docs/benchmarks.md, MariaDB):
        # indexed lookup keys in models, snapshots and lookup tables, and name keys that are VARCHAR, not TEXT.
        cursor.execute("select substr(table_schema, 5), table_name, column_name from information_schema.statistics "
                       "where table_schema like 'myt!_%' escape '!' and index_name like 'ix!_%' escape '!'")
        indexed = set(cursor.fetchall())
        cursor.execute("select column_name, data_type from information_schema.columns where table_schema = 'myt_dwd' "
                       "and column_name in ('enterprise_name_key', 'corp_name_key', 'contact_name_key')")
        name_keys = set(cursor.fetchall())
    assert got == expected
    assert members(MySqlSession(tenant, connection, prefix="myt_")) == expected_members
    assert {("snapshots", "snp_crm__contacts", "contact_id"), ("snapshots", "snp_crm__enterprises", "enterprise_id"),
            ("dwd", "dwd_crm__enterprises", "enterprise_name_key"), ("dwd", "dwd_wecom__members", "userid"),
            ("dwd", "dwd_wecom__departments", "department_id"), ("dwm", "dwm_person_golden", "one_id")} <= indexed
    assert name_keys == {("enterprise_name_key", "varchar"), ("corp_name_key", "varchar"),
                         ("contact_name_key", "varchar")}
