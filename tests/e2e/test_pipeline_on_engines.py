"""The daily job with FINCDP_WAREHOUSE=mysql and =clickhouse, two tenants, several days: ODS lands in
each tenant's landing store and is published to the engine, dbt builds the layers there (MySQL
through the isolated dbt 1.7 environment), and the quality gates read the engine.

- ODS -> ADS counts reconcile on the engine;
- an upstream change lands in ADS on the next day's run, a deleted enterprise disappears;
- re-running a day publishes the same rows again, never twice, and adds no snapshot history;
- the enterprise snapshot closes a deleted enterprise's row and opens a new one on its restore;
- a blocking quality failure in one tenant stops that tenant's models only.
"""
from __future__ import annotations

import json
from datetime import date

import dagster as dg
import pytest

from assets.partitions import partition_key
from fincdp.cli import main
# Imported before any test sets FINCDP_WAREHOUSE: the module-level `defs` other tests use is built
# on import and must stay the DuckDB default.
from orchestration.definitions import build_definitions
from resources.warehouse import Warehouse
from tests.integration.test_ods_assets import write_tenant_data
from tests.support.fixtures import require_dbt_mysql

pytestmark = pytest.mark.e2e
DAY1, DAY2, DAY3 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)
TENANTS = ("t001", "t002")


def enterprise(i: int, day: date, **extra) -> dict:
    return {"id": f"E{i}", "name": f"测试企业{i}有限公司", "credit_code": "91512081MA62K0260E",
            "updated_at": f"{day}T09:00:00+08:00", **extra}


def contact(i: int, day: date, **extra) -> dict:
    return {"id": f"C{i}", "enterprise_id": f"E{i % 2 + 1}", "name": f"联系人{i}", "mobile": f"1381234000{i}",
            "title": "经理", "updated_at": f"{day}T10:00:00+08:00", **extra}


def opportunity(i: int, day: date, amount: int) -> dict:
    return {"id": f"O{i}", "lead_id": f"L{i}", "enterprise_id": "E1", "stage": "won", "amount": amount,
            "updated_at": f"{day}T11:00:00+08:00"}


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def drop_databases(engine: str, server) -> None:
    """A clean slate for the tenants' databases: the engine server is shared by this worker's tests."""
    if engine == "mysql":
        connection = server.connect()
        with connection.cursor() as cursor:
            cursor.execute("select schema_name from information_schema.schemata where schema_name like 't00%'")
            for (name,) in cursor.fetchall():
                cursor.execute(f"drop database `{name}`")
        connection.close()
    else:
        import clickhouse_connect

        client = clickhouse_connect.get_client(host="127.0.0.1", port=server.port)
        for (name,) in client.query("select name from system.databases where name like 't00%'").result_rows:
            client.command(f"drop database `{name}`")
        client.close()


@pytest.fixture(params=["mysql", "clickhouse"])
def engine(request, platform, monkeypatch):
    if request.param == "mysql":
        require_dbt_mysql()
        server = request.getfixturevalue("mariadb")
        env = {"FINCDP_MYSQL_PORT": str(server.port), "FINCDP_MYSQL_USER": server.user,
               "FINCDP_MYSQL_PASSWORD": server.password}
    else:
        server = request.getfixturevalue("clickhouse")
        env = {"FINCDP_CLICKHOUSE_PORT": str(server.port)}
    for name, value in {"FINCDP_WAREHOUSE": request.param, **env}.items():
        monkeypatch.setenv(name, value)
    drop_databases(request.param, server)
    return request.param, build_definitions(), server


def run(defs, tenant: str, day: date, instance):
    return defs.resolve_job_def("fincdp_daily").execute_in_process(
        partition_key=partition_key(tenant, day), instance=instance, raise_on_error=False)


def test_the_daily_job_on_the_engine_for_two_tenants(engine, platform):
    name, defs, server = engine
    p = platform
    for tenant in TENANTS:
        write_tenant_data(p.data_dir, tenant, contacts=[contact(1, DAY1), contact(2, DAY1), contact(3, DAY1)])
        write_jsonl(p.data_dir / tenant / "crm" / "enterprises.jsonl", [enterprise(1, DAY1), enterprise(2, DAY1)])
    write_jsonl(p.data_dir / "t001" / "crm" / "opportunities.jsonl", [opportunity(1, DAY1, 5000)])
    # t002's CRM sends a negative amount: landing accepts a decimal, the blocking range rule does not.
    write_jsonl(p.data_dir / "t002" / "crm" / "opportunities.jsonl", [opportunity(1, DAY1, -500)])
    p.start_sources()
    crm = p.sources.crm
    warehouse = Warehouse(engine=name)
    t001, t002 = p.tenants().get("t001"), p.tenants().get("t002")

    with dg.instance_for_test() as instance:
        good = run(defs, "t001", DAY1, instance)
        assert good.success
        published = {e.asset_key.to_user_string(): e.materialization.metadata
                     for e in good.get_asset_materialization_events()}
        assert published["ods/crm_contacts"]["published_to"].value == f"{name}:t001_ods.crm_contacts"
        assert published["ads/ads_person_360"]["dagster/row_count"].value == 3  # counted on the engine

        blocked = run(defs, "t002", DAY1, instance)
        assert not blocked.success
        failed = {e.asset_key.to_user_string(): e for e in blocked.get_asset_check_evaluations()
                  if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
        assert list(failed) == ["ods/crm_opportunities"], {k: e.description for k, e in failed.items()}
        failed = failed["ods/crm_opportunities"]
        assert failed.asset_key.to_user_string() == "ods/crm_opportunities"
        assert failed.metadata["blocking_rules_failed"].value == ["amount_not_negative"]
        assert failed.metadata["sample_keys"].value == {"amount_not_negative": ["O1"]}
        built = {e.asset_key.to_user_string() for e in blocked.get_asset_materialization_events()}
        assert "ods/crm_contacts" in built and not any(k.startswith(("dwd/", "ads/")) for k in built)

        with warehouse.query(t001) as s:
            # ODS -> ADS: every current contact and enterprise of the day reaches its profile.
            assert s.scalar("select count(distinct _source_id) from ods.crm_contacts") == 3
            assert s.scalar("select count(*) from ads.ads_person_360") == 3
            assert s.scalar("select count(distinct one_id) from ads.ads_person_360") == 3  # OneID ran there
            if name == "mysql":  # the join keys MariaDB needs indexed (macros/indexes.sql)
                assert s.scalar("select count(*) from information_schema.statistics where table_schema = "
                                "'t001_dwd' and table_name = 'dwd_crm__contacts' and index_name like 'ix_%'") == 4
            assert s.scalar("select count(*) from ads.ads_enterprise_360") == 2
            assert float(s.scalar("select sum(won_amount) from ads.ads_enterprise_360")) == 5000.0
        with warehouse.query(t002) as s:
            assert s.scalar("select count(*) from ods.crm_contacts") == 3   # landed and published
            assert not s.table_exists("ads.ads_person_360")                  # held at the gate

        # Day 2 for t001: a promotion, a deleted enterprise, a new contact.
        crm.upsert("hx-crm", "contacts", contact(1, DAY2, title="总监"))
        crm.upsert("hx-crm", "enterprises", enterprise(2, DAY2, deleted=True))
        crm.upsert("hx-crm", "contacts", contact(4, DAY2))
        assert run(defs, "t001", DAY2, instance).success
        with warehouse.query(t001) as s:
            assert s.rows("select title from ads.ads_person_360 where contact_id = 'C1'") == [("总监",)]
            assert {r[0] for r in s.rows("select enterprise_id from ads.ads_enterprise_360")} == {"E1"}
            assert s.scalar("select count(*) from ads.ads_person_360") == 4
            assert s.scalar("select count(*) from snapshots.snp_crm__contacts where contact_id = 'C1'") == 2
            # The deleted enterprise's row is closed; none of its versions is current.
            assert s.scalar("select count(*) from snapshots.snp_crm__enterprises "
                            "where enterprise_id = 'E2' and dbt_valid_to is null") == 0
            ods_rows = s.scalar("select count(*) from ods.crm_contacts where _business_date = ?", [DAY2])
            history = s.scalar("select count(*) from snapshots.snp_crm__contacts")

        assert run(defs, "t001", DAY2, instance).success  # the same day again
        with warehouse.query(t001) as s:
            assert s.scalar("select count(*) from ods.crm_contacts where _business_date = ?", [DAY2]) == ods_rows == 2  # C1 and C4
            assert s.scalar("select count(*) from snapshots.snp_crm__contacts") == history
            assert s.scalar("select count(*) from ads.ads_person_360") == 4
        # Day 3: the enterprise is restored.
        crm.upsert("hx-crm", "enterprises", enterprise(2, DAY3, deleted=False))
        assert run(defs, "t001", DAY3, instance).success
        with warehouse.query(t001) as s:
            assert {r[0] for r in s.rows("select enterprise_id from ads.ads_enterprise_360")} == {"E1", "E2"}
            # E2: its first version closed by the delete, a current one since the restore.
            assert s.rows("select dbt_valid_to is null from snapshots.snp_crm__enterprises "
                          "where enterprise_id = 'E2' order by dbt_valid_from") in ([(0,), (1,)], [(False,), (True,)])
        with warehouse.query(t002) as s:  # t001's days never touched t002's databases
            assert s.scalar("select count(*) from ods.crm_contacts") == 3
            assert not s.table_exists("ads.ads_person_360")

    # A tenant's ODS can be published again from its landing store, e.g. onto a new server.
    drop_databases(name, server)
    assert main(["warehouse", "publish", "--tenant", "t002"]) == 0
    with warehouse.query(t002) as s:
        assert s.scalar("select count(*) from ods.crm_contacts") == 3
        assert s.scalar("select count(*) from ods.crm_opportunities where _business_date = ?", [DAY1]) == 1
