"""Quality gates: quality/rules.yaml -> great-expectations suites -> partitioned, blocking asset checks.

Tenant files are real DuckDB files under the test's FINCDP_HOME, landed with the ingestion helpers
(landing + store), then planted with what landing itself would never let through.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from assets.ingestion import landing, store
from assets.ingestion.specs import CRM_CONTACTS, CRM_ENTERPRISES, CRM_LEADS, CRM_OPPORTUNITIES, EVENTS, EntitySpec
from assets.partitions import partition_key, tenant_day
from quality.checks import CHECK_NAME, CHECKS, RULES
from quality.rules import RULES_FILE, RulesError, load_rules, parse_rules
from quality.suites import validate_table
from resources.pii import PiiVault
from resources.warehouse import Warehouse
from tests.conftest import BUSINESS_DATE

DAY = BUSINESS_DATE
UPDATED = f"{DAY}T10:00:00+08:00"
STATUSES = ["new", "contacted", "qualified", "disqualified", "converted"]
CHECK_FOR = {next(iter(c.check_keys)).asset_key.to_user_string(): c for c in CHECKS}
RESOURCES = {"warehouse": Warehouse(lock_timeout_s=30)}


# --- building tenant files ------------------------------------------------------------------------

def land(platform, tenant_id: str, spec: EntitySpec, records: list[dict], day: date = DAY) -> None:
    """Land records as the ODS assets do: typed, personal data tokenised, one committed page."""
    cipher = PiiVault().cipher(tenant_id)
    with platform.session(tenant_id, read_only=False) as s:
        batch = store.start_batch(s, spec, day, kind="pull", replace_partition=True)
        ctx = store.landing_context(s, cipher, batch)
        refs = [f"id={r.get('id')}" for r in records]
        store.write_page(s, batch, landing.process(spec, records, refs, ctx), cipher, next_cursor=None)
        store.finish_batch(s, batch)


def execute(platform, tenant_id: str, sql: str, params=None) -> None:
    with platform.session(tenant_id, read_only=False) as s:
        s.execute(sql, params)


def leads(n: int = 10) -> list[dict]:
    return [{"id": f"L{i}", "contact_id": f"C{i}", "status": STATUSES[i % 5], "updated_at": UPDATED}
            for i in range(n)]


def contacts(n: int = 10, *, without_mobile: int = 0) -> list[dict]:
    return [{"id": f"C{i}", "name": f"联系人{i}", "updated_at": UPDATED, "email": f"u{i}@corp-example.com",
             "mobile": None if i < without_mobile else f"1381234{i:04d}"} for i in range(n)]


def credit_code(i: int) -> str:
    from stdnum.cn import uscc
    base = f"9131000{i:010d}"
    return base + uscc.calc_check_digit(base)


def clean_tenant(platform, tenant_id: str, day: date = DAY) -> None:
    land(platform, tenant_id, CRM_CONTACTS, contacts(), day)
    land(platform, tenant_id, CRM_LEADS, leads(), day)
    land(platform, tenant_id, CRM_ENTERPRISES, [
        {"id": f"E{i}", "name": f"企业{i}", "credit_code": credit_code(i), "updated_at": UPDATED} for i in range(3)], day)
    land(platform, tenant_id, CRM_OPPORTUNITIES, [
        {"id": f"O{i}", "lead_id": f"L{i}", "stage": "won", "amount": 1000 * i, "updated_at": UPDATED}
        for i in range(3)], day)
    org = sorted(platform.tenants().get(tenant_id).org_ids)[0]
    land(platform, tenant_id, EVENTS, [
        {"event_id": f"evt_{i}", "tenant_id": tenant_id, "org_id": org, "occurred_at": UPDATED, "source": "web",
         "type": "web.view.page", "payload": {"url": "/p"}} for i in range(5)], day)


# --- running the checks as Dagster does ------------------------------------------------------------

def stand_in(asset: str) -> dg.AssetsDefinition:
    """The asset a check targets; the test wrote its table already."""
    @dg.asset(key=dg.AssetKey.from_user_string(asset), partitions_def=tenant_day)
    def _asset() -> dg.MaterializeResult:
        return dg.MaterializeResult()
    return _asset


@dg.asset(key=["test", "after_leads"], deps=[dg.AssetKey(["ods", "crm_leads"])], partitions_def=tenant_day)
def after_leads() -> dg.MaterializeResult:
    """A tiny downstream asset: it must not run when the leads gate fails."""
    return dg.MaterializeResult()


def run_checks(tenant_id: str, assets: list[str], *, day: date = DAY, downstream=()):
    return dg.materialize([*(stand_in(a) for a in assets), *(CHECK_FOR[a] for a in assets), *downstream],
                          partition_key=partition_key(tenant_id, day), resources=RESOURCES, raise_on_error=False)


def evaluation(result, asset: str) -> dg.AssetCheckEvaluation:
    [found] = [e for e in result.get_asset_check_evaluations()
               if e.asset_key == dg.AssetKey.from_user_string(asset) and e.check_name == CHECK_NAME]
    return found


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def meta(e: dg.AssetCheckEvaluation, name: str):
    return e.metadata[name].value


# --- tests ---------------------------------------------------------------------------------------

def test_the_repository_rules_cover_the_ruled_tables_and_wire_as_checks():
    assert RULES == load_rules()
    ruled = {t: {r.name: r for r in RULES.table(t).rules} for t in RULES.tables}
    assert ruled["ods.crm_leads"]["status_enum"].severity == "block"
    assert ruled["ods.crm_contacts"]["mobile_token_mostly_present"].mostly == pytest.approx(0.9)
    assert ruled["ods.crm_contacts"]["mobile_token_mostly_present"].severity == "warn"
    assert {"source_id_unique", "updated_at_present"} <= set(ruled["ods.crm_contacts"])
    assert {"stage_enum", "amount_not_negative"} <= set(ruled["ods.crm_opportunities"])
    assert {"event_id_unique", "event_type_format"} <= set(ruled["ods.sdk_events"])
    assert {"credit_code_format", "credit_code_length"} <= set(ruled["ods.crm_enterprises"])
    assert "contact_id_unique" in ruled["dwd.dwd_crm__contacts"]
    assert any(r.kind == "range" for r in ruled["dwd.dwd_crm__opportunities"].values())
    assert ruled["ads.ads_person_360"]["person_360_fresh"].kind == "freshness"
    specs = {asset: next(iter(c.check_specs)) for asset, c in CHECK_FOR.items()}
    assert specs["ods/crm_leads"].blocking and not specs["ads/ads_person_360"].blocking
    assert all(s.partitions_def == tenant_day for s in specs.values())


def test_a_clean_partition_passes_every_ods_rule(platform):
    clean_tenant(platform, "t001")
    ods = [a for a in CHECK_FOR if a.startswith("ods/")]
    result = run_checks("t001", ods)
    assert result.success
    for asset in ods:
        e = evaluation(result, asset)
        assert e.passed, (asset, meta(e, "rules"))
        assert e.partition == f"{DAY}|t001"
        assert meta(e, "failed_rows") == 0 and meta(e, "rows_checked") > 0


def test_a_blocking_failure_stops_downstream_for_that_tenant_and_date_only(platform):
    clean_tenant(platform, "t001")
    clean_tenant(platform, "t002")
    land(platform, "t001", CRM_LEADS, leads(), DAY - timedelta(days=1))
    # Landing dead-letters an unknown status; plant one behind its back, as a spec drift would.
    execute(platform, "t001", "update ods.crm_leads set status = 'won' where _source_id in ('L2', 'L7') "
                              "and _business_date = ?", [DAY])

    bad = run_checks("t001", ["ods/crm_leads"], downstream=[after_leads])
    assert not bad.success
    e = evaluation(bad, "ods/crm_leads")
    assert not e.passed and e.severity == dg.AssetCheckSeverity.ERROR and e.blocking
    assert e.partition == f"{DAY}|t001"
    assert meta(e, "failed_rules") == ["status_enum"] == meta(e, "blocking_rules_failed")
    assert meta(e, "failed_rows") == 2
    status = meta(e, "rules")["status_enum"]
    assert status["column"] == "status" and status["severity"] == "block" and status["passed"] is False
    assert status["unexpected_count"] == 2 and sorted(status["sample_keys"]) == ["L2", "L7"]
    assert meta(e, "sample_keys") == {"status_enum": status["sample_keys"]}
    assert "status_enum" in e.description and "status" in e.description
    assert "won" not in json.dumps(meta(e, "rules"))  # keys only, never the failing values
    assert materialized(bad) == {"ods/crm_leads"}  # the gate held: test/after_leads never ran

    other_tenant = run_checks("t002", ["ods/crm_leads"], downstream=[after_leads])
    assert other_tenant.success and evaluation(other_tenant, "ods/crm_leads").passed
    assert materialized(other_tenant) == {"ods/crm_leads", "test/after_leads"}

    other_date = run_checks("t001", ["ods/crm_leads"], day=DAY - timedelta(days=1), downstream=[after_leads])
    assert other_date.success and evaluation(other_date, "ods/crm_leads").passed
    assert materialized(other_date) == {"ods/crm_leads", "test/after_leads"}


def test_mostly_thresholds_warn_without_blocking(platform):
    land(platform, "t001", CRM_CONTACTS, contacts(10, without_mobile=1))  # 90 % with a mobile: enough
    land(platform, "t002", CRM_CONTACTS, contacts(10, without_mobile=3))  # 70 %: below mostly 0.9
    ok = run_checks("t001", ["ods/crm_contacts"])
    rule = meta(evaluation(ok, "ods/crm_contacts"), "rules")["mobile_token_mostly_present"]
    assert evaluation(ok, "ods/crm_contacts").passed
    assert rule["passed"] is True and rule["unexpected_count"] == 1 and rule["mostly"] == 0.9

    low = run_checks("t002", ["ods/crm_contacts"], downstream=[])
    assert low.success  # warn: reported, nothing stopped
    e = evaluation(low, "ods/crm_contacts")
    assert not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    assert meta(e, "failed_rules") == ["mobile_token_mostly_present"] and meta(e, "blocking_rules_failed") == []
    rule = meta(e, "rules")["mobile_token_mostly_present"]
    assert rule["unexpected_count"] == 3 and rule["unexpected_percent"] == pytest.approx(30.0)
    assert sorted(rule["sample_keys"]) == ["C0", "C1", "C2"]  # _source_id, never a token or a number
    with platform.session("t002") as s:
        tokens = [r[0] for r in s.rows("select mobile_token from ods.crm_contacts where mobile_token is not null")]
    assert not any(t in json.dumps(meta(e, "rules")) for t in tokens)


def test_unique_and_regex_rules_report_keys_and_sla_flags_only_the_stale_tenant(platform):
    clean_tenant(platform, "t001")
    execute(platform, "t001", "insert into ods.sdk_events select * replace ('bad type' as type) "
                              "from ods.sdk_events where event_id = 'evt_3'")
    tenant = platform.tenants().get("t001")
    with platform.session("t001") as s:
        out = validate_table(s, RULES, RULES.table("ods.sdk_events"), tenant, DAY)
    assert out.blocked and {o.rule.name for o in out.failed} == {"event_id_unique", "event_type_format"}
    assert out.outcome("event_id_unique").sample_keys == ("evt_3",)
    assert out.outcome("event_type_format").unexpected_count == 1

    for tenant_id, as_of in (("t001", date(2026, 11, 21)), ("t002", date(2026, 11, 25))):
        execute(platform, tenant_id, "create schema if not exists ads")
        execute(platform, tenant_id, "create table ads.ads_person_360 as select 'C1' as contact_id, "
                                     "cast(? as date) as as_of_date", [as_of])
    now = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)  # 2026-11-25 ended 18 h earlier in Shanghai
    table = RULES.table("ads.ads_person_360")

    def fresh(tenant_id: str, ruleset=RULES):
        with platform.session(tenant_id) as s:
            return validate_table(s, ruleset, table, platform.tenants().get(tenant_id), None, now=now)

    stale, current = fresh("t001"), fresh("t002")
    assert not stale.passed and not stale.blocked  # warn: flags the tenant, stops nothing
    assert stale.outcome("person_360_fresh").observed == {"newest": "2026-11-21", "age_hours": 114.0, "sla_hours": 36.0}
    assert current.passed and current.outcome("person_360_fresh").observed["age_hours"] == 18.0
    # A tenant with a looser SLA, overridden in the rules file.
    text = RULES_FILE.read_text(encoding="utf-8").replace("tenants: {}", "tenants: {t001: {sla_hours: 120}}")
    assert fresh("t001", parse_rules(text)).passed and not fresh("t002", parse_rules(text)).failed

    # The same through Dagster: WARN severity, the run still succeeds.
    execute(platform, "t001", "update ads.ads_person_360 set as_of_date = current_date - 5")
    result = run_checks("t001", ["ads/ads_person_360"])
    e = evaluation(result, "ads/ads_person_360")
    assert result.success and not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    assert meta(e, "rules")["person_360_fresh"]["age_hours"] > 36


def test_a_tenant_without_the_table_passes_row_rules(platform):
    land(platform, "t002", CRM_LEADS, leads())
    tenant = platform.tenants().get("t002")
    with platform.session("t002") as s:
        out = validate_table(s, RULES, RULES.table("ods.crm_opportunities"), tenant, DAY)
    assert out.passed and out.note == "ods.crm_opportunities does not exist"


BASE = """
tables:
  ods.crm_leads:
    rules:
      - {name: status_enum, kind: enum, column: status, severity: block, values: [new]}
"""


@pytest.mark.parametrize("change, message", [
    (("values: [new]", "values: []"), "List should have at least 1 item"),
    (("values: [new]", "pattern: 'x'"), "pattern is not a parameter of kind 'enum'"),
    (("severity: block", "severity: stop"), "Input should be 'block' or 'warn'"),
    (("kind: enum", "kind: regexp"), "field 'kind'"),
    (("column: status", "column: mobile"), "column 'mobile' is not a column of ods.crm_leads"),
    (("severity: block, values: [new]", "severity: warn, mostly: 1.5, values: [new]"), "field 'mostly'"),
])
def test_the_validator_names_the_table_and_the_rule(change, message):
    assert parse_rules(BASE).table("ods.crm_leads").rules[0].name == "status_enum"
    with pytest.raises(RulesError) as err:
        parse_rules(BASE.replace(*change), "rules.yaml")
    assert "rules.yaml: table 'ods.crm_leads' rule 'status_enum'" in str(err.value)
    assert message in str(err.value)


def test_the_validator_catches_table_level_mistakes():
    contacts_pii = BASE.replace("ods.crm_leads", "ods.crm_contacts").replace("column: status", "column: mobile")
    with pytest.raises(RulesError, match=r"table 'ods.crm_contacts' rule 'status_enum'.*mobile_token/mobile_enc"):
        parse_rules(contacts_pii)
    with pytest.raises(RulesError, match=r"table 'ods.crm_leads' rule 'status_enum': the table already has"):
        parse_rules(BASE + "      - {name: status_enum, kind: not_null, column: status, severity: warn}\n")
    with pytest.raises(RulesError, match=r"table 'ods.crm_leads' rule 'status_enum'.*min 5.0 is greater than max 1.0"):
        parse_rules(BASE.replace("kind: enum", "kind: length, min: 5, max: 1").replace(", values: [new]", ""))
    with pytest.raises(RulesError, match=r"table 'ods.crm_leadz': not an ODS table"):
        parse_rules(BASE.replace("ods.crm_leads", "ods.crm_leadz"))
    with pytest.raises(RulesError, match=r"table 'dwd.dwd_crm__contacts': key 'mobile_token' holds personal data"):
        parse_rules("tables:\n  dwd.dwd_crm__contacts:\n    key: mobile_token\n    rules:\n"
                    "      - {name: u, kind: unique, column: contact_id, severity: block}\n")
    with pytest.raises(RulesError, match=r"table 'dwd.dwd_crm__contacts': needs a key"):
        parse_rules("tables:\n  dwd.dwd_crm__contacts:\n    rules:\n"
                    "      - {name: u, kind: unique, column: contact_id, severity: block}\n")
