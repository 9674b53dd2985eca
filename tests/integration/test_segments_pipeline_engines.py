"""The shipped segment definitions over the real pipeline's tables on DuckDB, MariaDB and ClickHouse:
ODS and OneID from one DuckDB run are copied to the other engines, dbt builds the layers there
(including the models segments read: dwm_person_events, dwm_person_tags, dwd_wecom__corp_tags) and
every segment has the same, non-empty members on all three."""
from __future__ import annotations

import clickhouse_connect
import dagster as dg
import pytest

from assets.partitions import partition_key
from fincdp.demo.run import drop_files, generate_demo_data
from fincdp.segments.compiler import compile_segment
from fincdp.segments.language import load_tenant_segments
from fincdp.settings import REPO_ROOT
from resources.warehouse_engines import ClickHouseSession, MySqlSession
from tests.conftest import BUSINESS_DATE
from tests.support.engines import copy_ods_to_clickhouse, copy_ods_to_mysql, dbt_build
from tests.support.fixtures import require_dbt_mysql

SEGMENTS = load_tenant_segments("t001", REPO_ROOT / "segments")


def members(session) -> dict[str, set[str]]:
    return {s.id: {r[0] for r in session.rows(compile_segment(s, BUSINESS_DATE).sql)} for s in SEGMENTS}


@pytest.fixture(scope="module")
def duckdb_members(tmp_path_factory):
    """The daily job for t001 on DuckDB and the shipped segments' members there."""
    from orchestration.definitions import defs
    from tests.conftest import Platform

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("segment-engines")
    mp.setenv("FINCDP_HOME", str(root / "home"))
    p = Platform(root / "home", root / "data")
    generate_demo_data(p.tenants(), p.data_dir, scale=150, business_date=BUSINESS_DATE, progress=False)
    drop_files(p.tenants(), p.data_dir)
    p.start_sources()
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("fincdp_daily").execute_in_process(
            partition_key=partition_key("t001", BUSINESS_DATE), instance=instance).success
    p.sources.stop()
    with p.session("t001") as s:
        expected = members(s)
        # the asset wrote the same members the queries give
        stored = {sid: {o for (o,) in s.rows("select one_id from segments.membership where segment_id = ?", [sid])}
                  for sid in expected}
    assert stored == expected
    assert all(expected.values()), {k: len(v) for k, v in expected.items()}   # every demo segment selects people
    yield p.tenants().get("t001"), p.tenants().get("t001").duckdb_path, expected
    mp.undo()


def vars_for(prefix: str) -> dict:
    return {"tenant": "t001", "business_date": BUSINESS_DATE.isoformat(), "schema_prefix": prefix}


def test_segments_on_clickhouse_match_duckdb(duckdb_members, clickhouse, tmp_path):
    tenant, duckdb_path, expected = duckdb_members
    client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port)
    copy_ods_to_clickhouse(duckdb_path, client, "sgc_ods")
    dbt_build("clickhouse", vars_for("sgc_"), tmp_path / "target", {"FINCDP_CLICKHOUSE_PORT": str(clickhouse.port)})
    assert members(ClickHouseSession(tenant, client, prefix="sgc_")) == expected


def test_segments_on_mariadb_match_duckdb(duckdb_members, mariadb, tmp_path):
    require_dbt_mysql()
    tenant, duckdb_path, expected = duckdb_members
    connection = mariadb.connect(init_command="set time_zone = '+00:00'")
    copy_ods_to_mysql(duckdb_path, connection, "sgm_ods")
    dbt_build("mysql", vars_for("sgm_"), tmp_path / "target",
              {"FINCDP_MYSQL_PORT": str(mariadb.port), "FINCDP_MYSQL_USER": mariadb.user,
               "FINCDP_MYSQL_PASSWORD": mariadb.password})
    assert members(MySqlSession(tenant, connection, prefix="sgm_")) == expected
