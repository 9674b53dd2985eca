"""OneID as the pipeline runs it, scored against the demo generator's ground truth.

Generates demo data, serves it from the local CRM and WeCom servers, runs the daily job for one tenant up
to the `oneid/identities` asset (landing, DWD, OneID) on DuckDB, then resolves the tenant again from the
same DWD tables with the strong stage alone, with devices joining identities (weak ids), and with the
probabilistic stage, each from empty OneID tables. Every person record the pipeline resolves is scored
(CRM contacts, WeCom external contacts, dropped contact lists, events with a phone or e-mail). Figures go
to docs/benchmarks.md between the bench:oneid-pipeline markers.
"""
from __future__ import annotations

import csv
import os
import platform
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Iterator

from fincdp.bench_oneid import cluster_metrics
from fincdp.bench_report import replace_block

MARK_BEGIN, MARK_END = "<!-- bench:oneid-pipeline -->", "<!-- /bench:oneid-pipeline -->"
BUSINESS_DATE = date(2026, 11, 25)
TENANT = "t001"
# ground_truth.csv's source -> the pipeline's record_source
_RECORD_SOURCES = {"crm": "crm_contact", "wecom": "wecom_external_contact", "file": "file_contact",
                   "event": "sdk_event"}
_ONEID_TABLES = ("oneid.records", "oneid.identity_map", "oneid.identity_history", "oneid.review_queue",
                 "oneid.splink_model", "oneid.splink_inputs", "oneid.splink_scored_pairs")


@contextmanager
def _environment(work: Path) -> Iterator[None]:
    """FINCDP_HOME and the source URLs of this run only, put back afterwards."""
    names = ("FINCDP_HOME", "FINCDP_CRM_URL", "FINCDP_WECOM_URL")
    saved = {n: os.environ.get(n) for n in names}
    os.environ["FINCDP_HOME"] = str(work / "home")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def person_truth(tenant_dir: Path) -> dict[str, str]:
    """record_key (record_source:record_id, as in oneid.identity_map) -> the true person."""
    with open(tenant_dir / "ground_truth.csv", encoding="utf-8") as f:
        return {f"{_RECORD_SOURCES[r['source']]}:{r['source_id']}": r["person_id"] for r in csv.DictReader(f)
                if r["entity"] == "person" and r["source"] in _RECORD_SOURCES}


def _land_and_build(work: Path, scale: int, say) -> None:
    import dagster as dg

    from assets.partitions import partition_key
    from fincdp.demo.run import demo_secrets, drop_files, generate_demo_data, start_local_sources
    from fincdp.tenants import current_tenants
    from orchestration.definitions import build_definitions
    from orchestration.jobs import job_upstream_of

    tenants = current_tenants()
    demo_secrets(tenants, work / "home")
    data_dir = work / "data"
    say(f"generating demo data at scale {scale} ...")
    generate_demo_data(tenants, data_dir, scale=scale, business_date=BUSINESS_DATE, progress=False)
    drop_files(tenants, data_dir)
    os.environ["FINCDP_CRM_URL"] = os.environ["FINCDP_WECOM_URL"] = "http://127.0.0.1:0"  # free ports
    sources = start_local_sources(current_tenants(), data_dir)
    os.environ["FINCDP_CRM_URL"], os.environ["FINCDP_WECOM_URL"] = sources.crm.url, sources.wecom.url
    try:
        say(f"running the daily job for {TENANT} up to oneid/identities ...")
        job = job_upstream_of(build_definitions(), ["oneid", "identities"])
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(partition_key=partition_key(TENANT, BUSINESS_DATE), instance=instance,
                                            raise_on_error=False)
        if not result.success:
            raise SystemExit("the job up to oneid/identities failed; run it from the UI to see why")
    finally:
        sources.stop()


# Weak identifiers that join identities (fincdp.oneid.weak) and employee-typed mobiles a name corroborates
# (fincdp.oneid.corroborated), switched off for the strong-ids row.
_NO_WEAK = {"device_id": {"max_identities": None}, "phone": {"corroborated": None}}


def _resolve(probabilistic: bool, truth: dict[str, str], *, weak: bool = True) -> dict:
    from assets.oneid import resolve_tenant
    from fincdp.tenants import current_tenants
    from resources.warehouse import Warehouse

    tenant = current_tenants().get(TENANT)
    rules = tenant.oneid_merge_rules if weak else {**tenant.oneid_merge_rules, **_NO_WEAK}
    tenant = tenant.model_copy(update={"oneid_probabilistic": probabilistic, "oneid_merge_rules": rules})
    with Warehouse().session(tenant) as session:
        for table in _ONEID_TABLES:
            session.execute(f"drop table if exists {table}")
        started = time.perf_counter()
        counts = resolve_tenant(session, tenant, BUSINESS_DATE)
        seconds = time.perf_counter() - started
        rows = session.rows("select record_key, one_id from oneid.identity_map where entity_type = 'person'")
    scored = [(key, one_id) for key, one_id in rows if key in truth]
    metrics = cluster_metrics([truth[k] for k, _ in scored], [o for _, o in scored])
    return {**metrics, "records": len(scored), "seconds": seconds, "review_open": counts.get("review_open", 0)}


def _report(scale: int, rows: list[tuple[str, dict]]) -> str:
    lines = [f"Measured {date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores (shared), "
             f"load average {os.getloadavg()[0]:.1f} at the end. Demo scale {scale}, tenant {TENANT}; "
             f"command: `fincdp bench oneid-pipeline --scale {scale} --report docs/benchmarks.md`.",
             "",
             "| stage | records | seconds | pair precision | pair recall | pair F1 | wrong pairs | missed pairs | "
             "open review items |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, m in rows:
        lines.append(f"| {label} | {m['records']:,} | {m['seconds']:.1f} | {m['pair_precision']:.4f} | "
                     f"{m['pair_recall']:.4f} | {m['pair_f1']:.4f} | {m['wrong_pairs']:,} | {m['missed_pairs']:,} | "
                     f"{m['review_open']:,} |")
    return "\n".join(lines)


def run(work: Path, *, scale: int = 2000, report: Path | None = None, say=print) -> list[tuple[str, dict]]:
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    with _environment(work):
        _land_and_build(work, scale, say)
        truth = person_truth(work / "data" / TENANT)
        rows = []
        for label, probabilistic, weak in (("strong ids only", False, False),
                                           ("+ weak ids (devices, typed mobiles)", False, True),
                                           ("+ probabilistic", True, True)):
            say(f"resolving: {label} ...")
            rows.append((label, _resolve(probabilistic, truth, weak=weak)))
            m = rows[-1][1]
            say(f"  {m['records']} records in {m['seconds']:.1f} s: P {m['pair_precision']:.4f} "
                f"R {m['pair_recall']:.4f} F1 {m['pair_f1']:.4f}")
    if report is not None:
        replace_block(report, MARK_BEGIN, MARK_END, _report(scale, rows))
    return rows
