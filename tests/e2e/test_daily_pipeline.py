"""The daily job end to end on generated data for two tenants: sources -> ODS -> DWD ... ADS.

Counts are checked against the generator's manifest (what it planted), not against the pipeline's
own figures, so a record lost or invented anywhere fails the test.
"""
from __future__ import annotations

import csv
import json
import re

import dagster as dg
import pytest

from assets.ingestion import store
from assets.partitions import partition_key
from fincdp.demo.run import drop_files, generate_demo_data
from tests.conftest import BUSINESS_DATE

pytestmark = pytest.mark.e2e
TENANTS = ("t001", "t002")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Generate, serve, drop and run the daily job once per tenant; a second run checks idempotence."""
    from tests.conftest import Platform
    from orchestration.definitions import defs

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("e2e")
    mp.setenv("FINCDP_HOME", str(root / "home"))
    p = Platform(root / "home", root / "data")
    tenants = p.tenants()
    generate_demo_data(tenants, p.data_dir, scale=300, business_date=BUSINESS_DATE, progress=False)
    drop_files(tenants, p.data_dir)
    p.start_sources()
    job = defs.resolve_job_def("fincdp_daily")
    runs = {}
    with dg.instance_for_test() as instance:
        for attempt in ("first", "second"):
            for tenant in TENANTS:
                result = job.execute_in_process(partition_key=partition_key(tenant, BUSINESS_DATE), instance=instance)
                assert result.success
                runs[(attempt, tenant)] = snapshot_counts(p, tenant)
        logs = " ".join(str(r) for run in instance.get_runs() for r in instance.all_logs(run.run_id))
    yield p, runs, logs
    p.sources.stop()
    mp.undo()


def snapshot_counts(p, tenant):
    with p.session(tenant) as s:
        tables = [f"{a}.{b}" for a, b in s.rows("select table_schema, table_name from information_schema.tables "
                                                 "where table_schema in ('ods', 'dwd', 'dwm', 'dws', 'ads')")]
        bookkeeping = {store.BATCHES, store.DEAD_LETTERS, store.LOADED_FILES}  # grow with every run by design
        counts = {t: s.scalar(f"select count(*) from {t}") for t in tables if t not in bookkeeping}
        counts["open_dead_letters"] = s.scalar(f"select count(*) from {store.DEAD_LETTERS} where status = 'open'")
    return counts


def manifest(p, tenant):
    return json.loads((p.data_dir / tenant / "manifest.json").read_text())


def planted(m, kind, file=None):
    found = m["bad_records"].get(kind, {})
    return sum(found.values()) if file is None else found.get(file, 0)


@pytest.mark.parametrize("tenant", TENANTS)
def test_ods_holds_every_record_or_its_dead_letter(pipeline, tenant):
    p, runs, _ = pipeline
    m = manifest(p, tenant)
    counts, day = m["counts"], BUSINESS_DATE.isoformat()
    events_file = f"files/events_{day}.jsonl"
    broken_events = sum(planted(m, kind) for kind in m["broken_event_kinds"])
    with p.session(tenant) as s:
        rows = {t: s.scalar(f"select count(*) from ods.{t}") for t in
                ("crm_contacts", "crm_enterprises", "crm_leads", "crm_opportunities", "crm_calls",
                 "wecom_users", "wecom_departments", "file_contacts", "sdk_events")}
        dead = dict(s.rows(f"select source || '.' || entity, count(*) from {store.DEAD_LETTERS} "
                           "where status = 'open' group by all"))
        flags = s.scalar("select count(*) from ods.crm_contacts where mobile_token is null and mobile_enc is not null")
        ledgers = s.rows(f"select received, landed, dead_lettered from {store.BATCHES} where status = 'succeeded'")
    assert rows["crm_contacts"] == counts["crm/contacts.jsonl"]
    assert rows["crm_enterprises"] == counts["crm/enterprises.jsonl"] - planted(m, "credit_code_malformed")
    assert dead.get("crm.enterprises", 0) == planted(m, "credit_code_malformed")
    assert rows["crm_calls"] == counts["crm/calls.jsonl"]
    assert rows["wecom_users"] == counts["wecom/users.jsonl"]
    assert flags == planted(m, "invalid_mobile", "crm/contacts.jsonl")  # kept encrypted, never matched
    assert dead["sdk.events"] == broken_events
    assert rows["sdk_events"] == counts[events_file] - broken_events - planted(m, "duplicate_event")
    file_rows = counts[f"files/contacts_{day}.csv"] + counts[f"files/contacts_{day}.parquet"]
    assert rows["file_contacts"] == file_rows - planted(m, "duplicate_file_row")
    assert all(received == landed + dead_lettered for received, landed, dead_lettered in ledgers)


@pytest.mark.parametrize("tenant", TENANTS)
def test_events_of_another_tenant_never_land(pipeline, tenant):
    p, _, _ = pipeline
    m = manifest(p, tenant)
    with p.session(tenant) as s:
        assert s.scalar(f"select count(*) from {store.DEAD_LETTERS} where error_type = 'tenant_mismatch'") == \
            planted(m, "foreign_tenant_event")
        for table in ("ods.sdk_events", "ods.crm_contacts", "ods.file_contacts"):
            assert s.rows(f"select distinct _tenant_id from {table}") == [(tenant,)]


@pytest.mark.parametrize("tenant", TENANTS)
def test_rerunning_the_day_changes_nothing(pipeline, tenant):
    _, runs, _ = pipeline
    assert runs[("second", tenant)] == runs[("first", tenant)]


@pytest.mark.parametrize("tenant", TENANTS)
def test_layers_reconcile_from_ods_to_ads(pipeline, tenant):
    p, _, _ = pipeline
    with p.session(tenant) as s:
        current_contacts = s.scalar("select count(distinct _source_id) from ods.crm_contacts where not coalesce(deleted, false)")
        assert s.scalar("select count(*) from dwd.dwd_crm__contacts") == current_contacts
        assert s.scalar("select count(*) from ads.ads_person_360") == current_contacts
        assert s.scalar("select count(*) from ads.ads_enterprise_360") == s.scalar("select count(*) from dwd.dwd_crm__enterprises")
        assert s.scalar("select count(*) from ads.ads_funnel_base") == s.scalar("select count(*) from dwd.dwd_crm__leads")
        calls_of_current = s.scalar("select count(*) from dwd.dwd_crm__calls c join dwd.dwd_crm__contacts k using (contact_id)")
        assert s.scalar("select sum(calls_all) from dws.dws_contacts") == calls_of_current
        assert s.scalar("select sum(won_amount) from dws.dws_enterprises") == s.scalar(
            "select coalesce(sum(o.amount), 0) from dwd.dwd_crm__opportunities o "
            "join dwd.dwd_crm__enterprises e using (enterprise_id) where o.is_won")
        metrics = dict(s.rows("select metric_name, metric_value from ads.ads_metric_values"))
        assert float(metrics["lead_to_win_rate"]) == pytest.approx(
            float(s.scalar("select avg(case when reached_win then 1.0 else 0.0 end) from ads.ads_funnel_base")), abs=1e-6)


@pytest.mark.parametrize("tenant", TENANTS)
def test_identities_match_the_planted_people(pipeline, tenant):
    """OneID against the generator's ground truth: wrong merges are rare (finance: one customer's data
    must not reach another), and the probabilistic stage finds people the strong ids miss."""
    from fincdp.bench_oneid import cluster_metrics

    p, _, _ = pipeline
    source_of = {"crm": "crm_contact", "wecom": "wecom_external_contact", "file": "file_contact", "event": "sdk_event"}
    with open(p.data_dir / tenant / "ground_truth.csv", encoding="utf-8") as f:
        truth = {f"{source_of[r['source']]}:{r['source_id']}": r["person_id"] for r in csv.DictReader(f)
                 if r["entity"] == "person"}
    with p.session(tenant) as s:
        resolved = s.rows("select record_key, one_id, evidence from oneid.identity_map where entity_type = 'person'")
    assert resolved and all(key in truth for key, _, _ in resolved)
    metrics = cluster_metrics([truth[k] for k, _, _ in resolved], [one_id for _, one_id, _ in resolved])
    assert metrics["pair_precision"] >= 0.99 and metrics["pair_recall"] >= 0.9, metrics
    assert any(evidence.startswith("splink p=") for _, _, evidence in resolved)


@pytest.mark.parametrize("tenant", TENANTS)
def test_people_are_linked_to_their_planted_enterprise(pipeline, tenant):
    """Person -> enterprise at the OneID grain: a person's primary enterprise is the one the generator
    planted behind their records, and each enterprise's golden record counts its people."""
    p, _, _ = pipeline
    source_of = {"crm": "crm_contact", "wecom": "wecom_external_contact", "file": "file_contact", "event": "sdk_event"}
    planted_person, planted_enterprise = {}, {}
    with open(p.data_dir / tenant / "ground_truth.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["entity"] == "person":
                planted_person[f"{source_of[r['source']]}:{r['source_id']}"] = r["enterprise_id"]
            else:
                planted_enterprise[r["source_id"]] = r["enterprise_id"]
    with p.session(tenant) as s:
        people = s.rows("select m.record_key, l.enterprise_one_id from oneid.identity_map m "
                        "join dwm.dwm_person_enterprise_links l on l.person_one_id = m.one_id and l.link_rank = 1 "
                        "where m.record_source = 'crm_contact'")
        enterprise_records = dict(s.rows("select one_id, min(record_id) from oneid.identity_map "
                                         "where entity_type = 'enterprise' group by one_id"))
        golden = s.rows("select sum(people), count(*), count(distinct one_id) from dwm.dwm_enterprise_golden")
        linked = s.scalar("select count(distinct person_one_id) from dwm.dwm_person_enterprise_links")
    right = sum(planted_person[key] == planted_enterprise[enterprise_records[e]] for key, e in people)
    assert people and right >= 0.95 * len(people), f"{right} of {len(people)} CRM contacts at their planted enterprise"
    [(people_total, rows, distinct)] = golden
    assert rows == distinct and people_total >= linked


def test_no_raw_personal_data_anywhere(pipeline):
    p, _, logs = pipeline
    mobiles, emails, id_numbers = set(), set(), set()
    for tenant in TENANTS:
        for line in (p.data_dir / tenant / "crm" / "contacts.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            digits = re.sub(r"\D", "", record.get("mobile") or "")
            if len(digits) >= 11:
                mobiles.add(digits[-11:])
            if record.get("email"):
                emails.add(record["email"].lower())
            if record.get("id_number"):
                id_numbers.add(record["id_number"][:17])
    assert len(mobiles) > 500 and len(emails) > 500 and id_numbers

    def leaks(text: str) -> set[str]:
        text = text.lower()
        digit_runs = re.findall(r"\d{11,}", re.sub(r"[\s\-+]", "", text))
        found = {run[i:i + 11] for run in digit_runs for i in range(len(run) - 10)} & mobiles
        found |= {run[i:i + 17] for run in digit_runs for i in range(len(run) - 16)} & id_numbers
        return found | (set(re.findall(r"[\w.+\-]+@[\w.\-]+", text)) & emails)

    for tenant in TENANTS:
        with p.session(tenant) as s:
            for schema, table in s.rows("select table_schema, table_name from information_schema.tables"):
                for column, kind in s.columns(f"{schema}.{table}").items():
                    if "VARCHAR" not in kind and "[]" not in kind and "JSON" not in kind:
                        continue
                    text = "\n".join(str(r[0]) for r in s.rows(f'select "{column}" from {schema}.{table}'))
                    assert not leaks(text), f"raw personal data in {tenant} {schema}.{table}.{column}"
    assert not leaks(logs)
