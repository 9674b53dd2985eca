"""A failed blocking check on a warehouse table stops, in that run, every asset that consumes the table
(transitively), Python assets included; a failed warning stops nothing (docs/quality.md).

Dagster gates only a blocking check's direct dependents, and a dbt step builds all its models before
any rules-file check on one of them runs. So a Python asset must declare as dependencies the tables it
reads and the ones they are built from in the same dbt step. The first tests check that over the real
job's execution plan; the last runs the real daily job on generated demo data with planted bad rows.
"""
from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.partitions import partition_key, tenant_day

# Stages after the DWD step that must not start when a check on dwd_crm__contacts blocks.
CONTACT_CONSUMERS = ("oneid__identities", "ads__ads_event_funnels", "ads__ads_event_paths", "ads__ads_customer_value",
                     "ads_attribution", "ads__ads_lifecycle", "boss__decision_makers", "segments", "warehouse_marts",
                     "search__profile_index", "search__segment_index")


def _step_graph(job: dg.JobDefinition):
    """Per step: the steps it waits for, the asset keys it materializes and the check keys it evaluates."""
    from dagster._core.execution.api import create_execution_plan

    plan = create_execution_plan(job)
    upstream, assets, checks = {}, {}, {}
    for step in plan.get_all_steps_in_topo_order():
        upstream[step.key] = {h.step_key for i in step.step_inputs for h in i.get_step_output_handle_dependencies()}
        for out in step.step_outputs:
            if out.properties.asset_check_key is not None:
                checks[out.properties.asset_check_key] = step.key
            elif out.properties.asset_key is not None:
                assets[out.properties.asset_key] = step.key
    return upstream, assets, checks


def _ancestors(upstream: dict[str, set[str]], step: str) -> set[str]:
    seen, todo = set(), list(upstream[step])
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo.extend(upstream[s])
    return seen


def ungated(defs: dg.Definitions, job_name: str = "fincdp_daily") -> list[str]:
    """Assets downstream of a table with a blocking check that would still run when the check fails:
    their step does not wait for the check's step. Assets built in the checked table's own step are
    left out: they are built before the check can run (the marts step waits for the DWD checks)."""
    job = defs.resolve_job_def(job_name)
    graph = job.asset_layer.asset_graph
    upstream, step_of_asset, step_of_check = _step_graph(job)
    problems = []
    for check_key, check_step in sorted(step_of_check.items(), key=lambda kv: kv[0].to_user_string()):
        if not graph.get(check_key).blocking:
            continue
        table = check_key.asset_key
        for key in sorted(dg.AssetSelection.assets(table).downstream().resolve(graph) - {table}):
            step = step_of_asset.get(key)
            if step is None or step == step_of_asset.get(table) or check_step in _ancestors(upstream, step):
                continue
            problems.append(f"{key.to_user_string()} (step {step}) runs when blocking check "
                            f"{check_key.to_user_string()} fails")
    return problems


def test_every_consumer_of_a_blocking_checked_table_waits_for_the_check():
    from orchestration.definitions import build_definitions

    assert ungated(build_definitions()) == []


def test_an_asset_reading_a_table_built_from_a_checked_one_is_reported():
    """What OneID did before: it declared dwd_identifiers only, which dbt builds from dwd_crm__contacts
    in the same step, so a failed check on dwd_crm__contacts did not stop it."""
    from orchestration.definitions import build_definitions

    base = build_definitions()

    @dg.asset(key=["probe", "reads_identifiers"], partitions_def=tenant_day,
              deps=[dg.AssetKey(["dwd", "dwd_identifiers"])])
    def reads_identifiers() -> None:
        return None

    defs = dg.Definitions(assets=[*base.assets, reads_identifiers], asset_checks=base.asset_checks,
                          jobs=base.jobs, resources=base.resources, executor=base.executor)
    problems = ungated(defs)
    assert "probe/reads_identifiers (step probe__reads_identifiers) runs when blocking check " \
           "dwd/dwd_crm__contacts:quality_rules fails" in problems
    # ... and only it: everything else waits.
    assert all(p.startswith("probe/reads_identifiers ") for p in problems)


# ---- the real daily job on generated data -------------------------------------------------------

def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _append(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _defs_with_title_rule():
    """The repository's Definitions, with one more blocking rule on dwd.dwd_crm__contacts: a title of
    more than 30 characters (notes pasted into the title field). The generated data passes it."""
    from orchestration.definitions import build_definitions
    from quality.checks import CHECKS, quality_check
    from quality.rules import RULES_FILE, parse_rules

    raw = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    raw["tables"]["dwd.dwd_crm__contacts"]["rules"].append(
        {"name": "title_length", "kind": "length", "column": "title", "max": 30, "severity": "block"})
    rules = parse_rules(yaml.safe_dump(raw, allow_unicode=True))
    contacts_key = dg.AssetKey(["dwd", "dwd_crm__contacts"])
    checks = [c for c in CHECKS if contacts_key not in {k.asset_key for k in c.check_keys}]
    base = build_definitions()
    return dg.Definitions(assets=base.assets, asset_checks=[*checks, quality_check(rules, rules.table(
        "dwd.dwd_crm__contacts"))], jobs=base.jobs, resources=base.resources, executor=base.executor)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from tests.support.jobs import demo_data

    with demo_data(tmp_path_factory, "blocking", scale=120) as p:
        yield p


def _started(instance, run_id: str) -> set[str]:
    return {e.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)}


def _messages(instance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id)]


def test_a_blocking_dwd_failure_stops_oneid_and_analytics_and_a_warning_stops_nothing(demo):
    from tests.conftest import BUSINESS_DATE

    p = demo
    crm = p.data_dir / "t001" / "crm"
    morning = f"{BUSINESS_DATE}T09:30:00+08:00"
    # Warnings only: a won deal of three billion yuan (rules.yaml amount_plausible, warn) and a contact
    # whose enterprise the CRM does not have (dbt relationships test, severity warn; the generated data
    # has a few such contacts already, the planted one makes sure).
    opportunity = next(o for o in _jsonl(crm / "opportunities.jsonl") if not o.get("deleted"))
    _append(crm / "opportunities.jsonl", {**opportunity, "id": "O_HUGE", "stage": "won", "amount": "3000000000.00",
                                          "updated_at": morning})
    person = next(c for c in _jsonl(crm / "contacts.jsonl") if not c.get("deleted"))
    _append(crm / "contacts.jsonl", {**person, "id": "C_ORPHAN", "enterprise_id": "E_UNKNOWN", "mobile": None,
                                     "email": None, "id_number": None, "updated_at": morning})
    p.start_sources()
    defs = _defs_with_title_rule()
    job = defs.resolve_job_def("fincdp_daily")
    key = partition_key("t001", BUSINESS_DATE)
    with dg.instance_for_test() as instance:
        warned = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
        assert warned.success
        evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in warned.get_asset_check_evaluations()}
        plausible = evaluations[("dwd/dwd_crm__opportunities", "quality_rules")]
        assert not plausible.passed and plausible.severity == dg.AssetCheckSeverity.WARN
        assert plausible.metadata["failed_rules"].value == ["amount_plausible"]
        assert plausible.metadata["sample_keys"].value == {"amount_plausible": ["O_HUGE"]}
        [orphan] = [e for (asset, name), e in evaluations.items()
                    if asset == "dwd/dwd_crm__contacts" and name.startswith("relationships_")]
        assert not orphan.passed and orphan.severity == dg.AssetCheckSeverity.WARN
        built = {e.asset_key.to_user_string() for e in warned.get_asset_materialization_events()}
        assert {"oneid/identities", "ads/ads_event_funnels", "ads/ads_event_paths", "ads/ads_customer_value",
                "ads/ads_attribution", "ads/ads_lifecycle", "boss/decision_makers", "segments/membership",
                "ads/ads_person_360"} <= built
        with p.session("t001") as s:
            records_before = s.scalar("select count(*) from oneid.records")

        # Blocking: a new contact with notes pasted into its title.
        _append(crm / "contacts.jsonl", {**person, "id": "C_NOTES", "mobile": None, "email": None, "id_number": None,
                                         "title": "经理（客户说下周再联系，先发产品资料和报价单，注意不要在午休时间打电话）",
                                         "updated_at": morning})
        p.start_sources()
        blocked = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
        assert not blocked.success
        [failed] = [e for e in blocked.get_asset_check_evaluations() if not e.passed and e.blocking
                    and e.severity == dg.AssetCheckSeverity.ERROR]
        assert failed.asset_key == dg.AssetKey(["dwd", "dwd_crm__contacts"]) and failed.check_name == "quality_rules"
        assert failed.metadata["blocking_rules_failed"].value == ["title_length"]
        assert failed.metadata["sample_keys"].value == {"title_length": ["C_NOTES"]}

        started = _started(instance, blocked.run_id)
        assert "warehouse_dwd" in started and "dwd__dwd_crm__contacts_quality_rules" in started
        assert not started & set(CONTACT_CONSUMERS), started & set(CONTACT_CONSUMERS)
        built = {e.asset_key.path[0] for e in blocked.get_asset_materialization_events()}
        assert built == {"ods", "dwd", "snapshots"}
        # The run says why: the check's step fails naming the check, and OneID names that step.
        [failure] = [e for e in blocked.get_step_failure_events()]
        assert failure.step_key == "dwd__dwd_crm__contacts_quality_rules"
        assert "dwd/dwd_crm__contacts: quality_rules" in failure.step_failure_data.error.message
        messages = _messages(instance, blocked.run_id)
        assert any("Dependencies for step oneid__identities failed: ['dwd__dwd_crm__contacts_quality_rules']" in m
                   for m in messages)
        assert any("title_length (block, length on title): 1 row, e.g. C_NOTES" in m for m in messages)
        # The bad contact reached DWD, but not OneID: its tables are as the warned run left them.
        with p.session("t001") as s:
            assert s.scalar("select count(*) from dwd.dwd_crm__contacts where contact_id = 'C_NOTES'") == 1
            assert s.scalar("select count(*) from oneid.records where record_key = 'crm_contact:C_NOTES'") == 0
            assert s.scalar("select count(*) from oneid.records") == records_before
