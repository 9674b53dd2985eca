"""`fincdp bench ingest`: ODS ingestion throughput, each figure beside a baseline from the same run.

Every measurement runs in its own process (so peak memory is that step's own), is repeated, and
the medians go to docs/benchmarks.md. Baselines: DuckDB's own `read_csv`/`read_json` of the same
files into a database file (the floor for any loader), and a client-only pull of the same API data
(what the local server can deliver, unlimited and under a request limit), so a noisy shared machine
moves figure and baseline together.
"""
from __future__ import annotations

import csv
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

BUSINESS_DATE = date(2026, 11, 25)
MARK_BEGIN, MARK_END = "<!-- bench:ingest:begin -->", "<!-- bench:ingest:end -->"
# The pull again from a server that allows this many requests a second (of 1,000 records), a SaaS API's
# kind of limit, against the client alone under the same limit: bound by the server, the two agree.
LIMITED, LIMITED_REQUESTS_PER_S = "_limited", 20


# --- one measurement, in a child process -----------------------------------------------------

def _measure(kind: str, work: Path, workers: int) -> dict:
    os.environ["FINCDP_HOME"] = str(work / f"home-{kind}-{time.monotonic_ns()}")
    from fincdp.demo.run import demo_secrets
    from fincdp.tenants import current_tenants

    # Imported before the clock starts: start-up is not throughput. pandas too: every process of the
    # pipeline has it (the Definitions import it), and here pyarrow would import it on the load's first
    # conversion of Python objects: ~0.2 s that no load in a Dagster step pays.
    import duckdb
    import pandas  # noqa: F401

    from assets.ingestion.files import parse_file_name
    from assets.ingestion.ods import ingest_pages, load_file
    from assets.ingestion.specs import CRM_CONTACTS
    from assets.partitions import TenantDay
    from resources.crm import CrmApi
    from resources.pii import PiiVault
    from resources.warehouse import Warehouse

    tenants = current_tenants()
    demo_secrets(tenants, work)  # the secrets the local servers were started with
    tenant = tenants.get("t001")
    day = TenantDay(tenant, BUSINESS_DATE)
    contacts_csv = work / f"contacts_{BUSINESS_DATE}.csv"
    events_jsonl = work / "data" / "t001" / "files" / f"events_{BUSINESS_DATE}.jsonl"
    started = time.perf_counter()
    if kind in ("duckdb_read_csv", "duckdb_read_json"):
        source = contacts_csv if kind == "duckdb_read_csv" else events_jsonl
        reader = "read_csv" if kind == "duckdb_read_csv" else "read_json_auto"
        Path(os.environ["FINCDP_HOME"]).mkdir(parents=True)
        con = duckdb.connect(str(Path(os.environ["FINCDP_HOME"]) / "raw.duckdb"))
        con.execute(f"create table raw as select * from {reader}('{source}')")
        rows = con.execute("select count(*) from raw").fetchall()[0][0]
        con.close()
    elif kind in ("file_contacts", "file_events"):
        path = contacts_csv if kind == "file_contacts" else events_jsonl
        with Warehouse().session(tenant) as session:
            result = load_file(session, PiiVault().cipher(tenant.id), parse_file_name(path),
                               day, workers=workers)
        rows = result["received"]
    elif kind.removesuffix(LIMITED) in ("crm_client_only", "crm_contacts_pull"):  # the server: FINCDP_CRM_URL
        crm = tenant.sources.crm
        client = CrmApi(page_size=1000).client(crm.base_url, crm.client_id, crm.client_secret(), tenant.id)
        since, before = day.window()
        if kind.startswith("crm_client_only"):
            rows = sum(len(page.records) for page in client.iter_pages("contacts", since, before))
        else:
            def pages(cursor):
                for page in client.iter_pages("contacts", since, before, cursor=cursor):
                    yield page.records, [str(r.get("id")) for r in page.records], page.next_cursor

            with Warehouse().session(tenant) as session:
                rows = ingest_pages(session, PiiVault().cipher(tenant.id), CRM_CONTACTS, day, pages).received
    else:
        raise ValueError(kind)
    elapsed = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries a parent's peak into ru_maxrss across fork and exec, and
    # the parent here holds the whole CRM data set in its local server.
    peak_kb = _vm_hwm_kb()
    shutil.rmtree(os.environ["FINCDP_HOME"], ignore_errors=True)
    # The machine is shared: the load average tells how much of its 2 cores a figure had.
    return {"kind": kind, "rows": rows, "seconds": elapsed, "peak_mb": peak_kb / 1024, "load1": os.getloadavg()[0]}


def _vm_hwm_kb() -> int:
    """Peak resident memory of this process alone (kB); worker processes hold one chunk each on top."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- the run ---------------------------------------------------------------------------------

def _prepare(work: Path, contacts: int, events_per_contact: float) -> None:
    from fincdp.demo.run import demo_secrets, generate_demo_data
    from fincdp.tenants import TenantsConfig, current_tenants

    os.environ["FINCDP_HOME"] = str(work)
    tenants = current_tenants()
    demo_secrets(tenants, work)
    one = TenantsConfig(tenants=[tenants.get("t001")])
    if not (work / "data" / "t001" / "manifest.json").exists():
        from fincdp.demo.generate import generate_tenant

        t = tenants.get("t001")
        generate_tenant(work / "data", "t001", org_ids=[o.id for o in t.orgs], corpid=t.sources.wecom.corpid,
                        corpsecret=t.sources.wecom.corpsecret(), scale=contacts,
                        events_per_contact=events_per_contact, business_date=BUSINESS_DATE, progress=True)
    # A contact list file as large as the CRM: the people of the CRM in the file-drop shape.
    target = work / f"contacts_{BUSINESS_DATE}.csv"
    if not target.exists():
        with (work / "data" / "t001" / "crm" / "contacts.jsonl").open(encoding="utf-8") as source, \
                target.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["record_id", "name", "mobile", "email", "company", "title", "city", "signed_up_at"])
            for line in source:
                r = json.loads(line)
                writer.writerow([r["id"], r["name"], r.get("mobile") or "", r.get("email") or "",
                                 r.get("enterprise_id"), r.get("title") or "", "", r["updated_at"]])
    return one


def _child(kind: str, work: Path, workers: int, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "fincdp.bench", kind, str(work), str(workers)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark step {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(work: Path, *, contacts: int, events_per_contact: float, repeat: int, workers: int,
        report: Path | None) -> str:
    from fincdp.demo.run import start_local_sources
    from fincdp.localsaas.crm import CrmServer

    work.mkdir(parents=True, exist_ok=True)
    print(f"Preparing data in {work} ({contacts} contacts, {events_per_contact} events each)", flush=True)
    # In a child: Linux carries a parent's peak memory into the children it forks, which would
    # inflate every step's figure by the generator's.
    subprocess.run([sys.executable, "-m", "fincdp.bench", "prepare", str(work), str(contacts),
                    str(events_per_contact)], check=True)
    one = _prepare(work, contacts, events_per_contact)
    env = dict(os.environ, FINCDP_CRM_URL="http://127.0.0.1:0", FINCDP_WECOM_URL="http://127.0.0.1:0")
    os.environ.update(env)
    sources = start_local_sources(one, work / "data")
    env["FINCDP_CRM_URL"] = sources.crm.url
    # The same CRM with a request limit, as a SaaS API has one: does the pull keep up with the server?
    crm = one.tenants[0].sources.crm
    limited = CrmServer({crm.client_id: (crm.client_secret(), work / "data" / "t001")},
                        rate_limit_per_s=LIMITED_REQUESTS_PER_S, burst=LIMITED_REQUESTS_PER_S).start()
    limited_env = dict(env, FINCDP_CRM_URL=limited.url)
    kinds = ["duckdb_read_csv", "file_contacts", "duckdb_read_json", "file_events", "crm_client_only",
             "crm_contacts_pull", "crm_client_only" + LIMITED, "crm_contacts_pull" + LIMITED]
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    try:
        for round_ in range(repeat):
            for kind in kinds:  # interleaved, so figure and baseline see the same machine load
                result = _child(kind, work, workers, limited_env if kind.endswith(LIMITED) else env)
                results[kind].append(result)
                print(f"  round {round_ + 1}/{repeat} {kind}: {result['rows']} rows in {result['seconds']:.2f}s "
                      f"({result['rows'] / result['seconds']:,.0f} rows/s), peak {result['peak_mb']:.0f} MB", flush=True)
    finally:
        sources.stop()
        limited.stop()
    table = _report(results, contacts, events_per_contact, repeat, workers)
    print(table)
    if report:
        _write(report, table)
    return table


def _median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def _report(results: dict, contacts: int, events_per_contact: float, repeat: int, workers: int) -> str:
    rate = {k: statistics.median(r["rows"] / r["seconds"] for r in v) for k, v in results.items()}
    loads = [r.get("load1", 0.0) for v in results.values() for r in v] or [0.0]
    rows = [
        ("file: contacts CSV (normalise, tokenise, encrypt, dedupe, land)", "file_contacts", "duckdb_read_csv"),
        ("file: events JSONL (schema checks, payload PII, dedupe on event_id)", "file_events", "duckdb_read_json"),
        ("API: CRM contacts pull, landed", "crm_contacts_pull", "crm_client_only"),
        (f"API: the same pull from a server allowing {LIMITED_REQUESTS_PER_S} requests/s",
         "crm_contacts_pull" + LIMITED, "crm_client_only" + LIMITED),
    ]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {contacts:,} contacts, {int(contacts * events_per_contact):,} events; "
        f"medians of {repeat} interleaved rounds; file loads with {workers} worker processes; 1-minute load "
        f"average {min(loads):.1f}-{max(loads):.1f} over the steps (2.0 = both cores busy).",
        "",
        "| step | rows | median s | rows/s | peak MB | baseline (same run) | baseline rows/s | ratio |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for label, kind, base in rows:
        r = results[kind]
        lines.append(f"| {label} | {r[0]['rows']:,} | {_median(r, 'seconds'):.2f} | {rate[kind]:,.0f} | "
                     f"{_median(r, 'peak_mb'):.0f} | `{base}` | {rate[base]:,.0f} | {rate[kind] / rate[base]:.0%} |")
    return "\n".join(lines)


def _write(report: Path, table: str) -> None:
    from fincdp.bench_report import replace_block

    replace_block(report, MARK_BEGIN, MARK_END, table)


if __name__ == "__main__":  # python -m fincdp.bench prepare WORK CONTACTS EPC | KIND WORK WORKERS
    if sys.argv[1] == "prepare":
        _prepare(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        print(json.dumps(_measure(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))))
