"""The dbt layers over several business dates on DuckDB: changes flow to ADS on the next run,
deletes disappear downstream, and the snapshots keep the history (delete closes, restore reopens)."""
from __future__ import annotations

import json
from datetime import date

import dagster as dg

from assets.partitions import partition_key
from tests.integration.test_ods_assets import write_tenant_data

DAY1, DAY2, DAY3 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


def enterprise(i: int, day: date, **extra) -> dict:
    return {"id": f"E{i}", "name": f"华信测试{i}有限公司", "credit_code": "91512081MA62K0260E",
            "legal_representative": f"法人{i}", "updated_at": f"{day}T09:00:00+08:00", **extra}


def contact(i: int, day: date, **extra) -> dict:
    return {"id": f"C{i}", "enterprise_id": f"E{i % 2 + 1}", "name": f"联系人{i}", "mobile": f"1381234000{i}",
            "title": "经理", "updated_at": f"{day}T10:00:00+08:00", **extra}


def run_day(platform, instance, day: date) -> None:
    from orchestration.definitions import defs
    from tests.support.jobs import WAREHOUSE_KEYS, job_upstream_of

    result = job_upstream_of(defs, *WAREHOUSE_KEYS).execute_in_process(
        partition_key=partition_key("t001", day), instance=instance)
    assert result.success


def test_changes_and_deletes_flow_to_ads_and_snapshots_keep_history(platform):
    p = platform
    write_tenant_data(p.data_dir, "t001", contacts=[contact(1, DAY1), contact(2, DAY1), contact(3, DAY1)])
    (p.data_dir / "t001" / "crm" / "enterprises.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in (enterprise(1, DAY1), enterprise(2, DAY1))))
    p.start_sources()
    crm = p.sources.crm
    with dg.instance_for_test() as instance:
        run_day(p, instance, DAY1)
        # Day 2: a promotion, a deleted enterprise, a new contact.
        crm.upsert("hx-crm", "contacts", contact(1, DAY2, title="总监"))
        crm.upsert("hx-crm", "enterprises", enterprise(2, DAY2, deleted=True))
        crm.upsert("hx-crm", "contacts", contact(4, DAY2))
        run_day(p, instance, DAY2)
        with p.session("t001") as s:
            assert s.rows("select title from ads.ads_person_360 where contact_id = 'C1'") == [("总监",)]
            assert {r[0] for r in s.rows("select enterprise_id from ads.ads_enterprise_360")} == {"E1"}
            assert s.scalar("select count(*) from ads.ads_person_360") == 4
            assert s.rows("select dbt_valid_to is not null, dbt_is_deleted from snapshots.snp_crm__enterprises "
                          "where enterprise_id = 'E2' order by dbt_valid_from") == [(True, "False"), (False, "True")]
            assert s.scalar("select count(*) from snapshots.snp_crm__contacts where contact_id = 'C1'") == 2
            history = s.scalar("select count(*) from snapshots.snp_crm__enterprises")
        run_day(p, instance, DAY2)  # the same day again adds no history
        with p.session("t001") as s:
            assert s.scalar("select count(*) from snapshots.snp_crm__enterprises") == history
        # Day 3: the enterprise is restored.
        crm.upsert("hx-crm", "enterprises", enterprise(2, DAY3, deleted=False))
        run_day(p, instance, DAY3)
        with p.session("t001") as s:
            assert {r[0] for r in s.rows("select enterprise_id from ads.ads_enterprise_360")} == {"E1", "E2"}
            current = s.rows("select dbt_is_deleted from snapshots.snp_crm__enterprises "
                             "where enterprise_id = 'E2' and dbt_valid_to is null")
            assert current == [("False",)]


def test_a_blocking_dwd_rule_holds_back_dwm_dws_and_ads(platform):
    """DWD is its own dbt step: its rules-file checks run before the marts step and stop it."""
    from orchestration.definitions import build_definitions
    from quality.checks import quality_check
    from quality.rules import parse_rules

    rules = parse_rules("""
tables:
  dwd.dwd_crm__contacts:
    key: contact_id
    rules:
      - {name: title_known, kind: enum, column: title, values: [经理], severity: block}
""")
    write_tenant_data(platform.data_dir, "t001", contacts=[contact(1, DAY1), contact(2, DAY1, title="董事长")])
    platform.start_sources()
    base = build_definitions()
    defs = dg.Definitions(assets=base.assets, asset_checks=[quality_check(rules, rules.table("dwd.dwd_crm__contacts"))],
                          jobs=base.jobs, resources=base.resources, executor=base.executor)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("fincdp_daily").execute_in_process(
            partition_key=partition_key("t001", DAY1), instance=instance, raise_on_error=False)
    assert not result.success
    [failed] = [e for e in result.get_asset_check_evaluations() if not e.passed and e.blocking]
    assert failed.asset_key == dg.AssetKey(["dwd", "dwd_crm__contacts"])
    assert failed.metadata["sample_keys"].value == {"title_known": ["C2"]}
    from assets.warehouse import warehouse_marts

    built = {e.asset_key for e in result.get_asset_materialization_events()}
    assert {"ods", "dwd"} <= {key.path[0] for key in built}
    # The marts step (every DWM, DWS and ADS model) is held back whole, and so is OneID, which declares
    # dwd_crm__contacts among its deps (tests/integration/test_blocking_reaches_consumers.py).
    marts = set(warehouse_marts.keys)
    assert {"dwm", "dws", "ads"} <= {key.path[0] for key in marts} and not built & marts
    assert dg.AssetKey(["oneid", "identities"]) not in built


def test_a_failed_dbt_test_fails_the_step_and_is_recorded(platform):
    """An error-level dbt test fails the DWD step and stops everything after it, and Dagster still
    records what built and the failed test, so the UI shows why rather than only the step's log."""
    from datetime import timedelta

    from orchestration.definitions import build_definitions
    from orchestration.jobs import job_upstream_of

    write_tenant_data(platform.data_dir, "t001", contacts=[contact(1, DAY1), contact(2, DAY1)])
    platform.start_sources()
    defs = build_definitions()
    job = job_upstream_of(defs, ["oneid", "identities"])
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(partition_key=partition_key("t001", DAY1), instance=instance).success
        # A keyless version in an earlier partition, as a faulty backfill would leave it.
        with platform.session("t001", read_only=False) as s:
            s.execute("insert into ods.crm_contacts select * replace (null as _source_id, ? as _business_date) "
                      "from ods.crm_contacts limit 1", [DAY1 - timedelta(days=1)])
        result = job.execute_in_process(partition_key=partition_key("t001", DAY1), instance=instance,
                                        raise_on_error=False)
    assert not result.success
    failed = {(e.asset_key, e.check_name) for e in result.get_asset_check_evaluations() if not e.passed}
    assert (dg.AssetKey(["dwd", "dwd_crm__contacts"]), "not_null_dwd_crm__contacts_contact_id") in failed
    built = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["dwd", "dwd_crm__contacts"]) in built
    assert dg.AssetKey(["oneid", "identities"]) not in built
