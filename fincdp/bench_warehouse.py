"""`fincdp bench warehouse`: a full T+1 build of one tenant, then the next business day, layer by layer.

One tenant's demo data is generated once into --work (reused by later runs) at the requested scale
(events = 10 per contact). A run then, from an empty warehouse:

- day 1 (full build): lands ODS through the real ingestion code (`ingest_pages` for the CRM and WeCom
  pulls against the local servers, `load_file` for the dropped files, as the ODS assets call them),
  then runs the dbt project for the tenant and date with the pipeline's vars (`resources.dbt.dbt_vars`),
  one dbt invocation per layer: `dbt run --select path:models/<layer>` for dwd, dwm, dws and ads, then
  `dbt snapshot` and `dbt test`;
- day 2 (incremental): the next business date's new data (derived from day 1, see `derive_next_day`)
  is landed and the same dbt invocations run again for that date: the incremental models (calls and
  events in DWD) add only the new date, the table models are rebuilt, the snapshots record changes.

After the dbt steps of each day come the stages of the daily job after ADS (fincdp/bench_daily_stages.py):
segments, the analytics Python assets and the boss model, each a Dagster run of only that stage's
assets for the tenant-day partition with the pipeline's Definitions, as the daily job runs them; the
day's "daily job without search" total adds them to the build. Search is left out (see SEARCH_NOTE).

Each step runs in its own process; its wall time is measured around it and its peak memory is the
largest sum of resident memory over its process tree (dbt, or the landing process with its worker
processes), sampled every 0.2 s. On MySQL (MariaDB) and ClickHouse the engine runs in its own
process and its peak is reported beside each step. Those engines reuse the test-support code in
`tests/support/` (imported only for them): `mariadb.MariaDBServer` (Debian's mariadbd in a private
data dir), `chdb_http.ChdbHttpServer` (the ClickHouse engine embedded by chdb behind its HTTP
interface) and `engines.copy_ods_to_*`, which copies ODS from the tenant's DuckDB file: ODS is
landed on DuckDB (the ingestion assets land nowhere else yet) and the copy is timed on its own.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from fincdp.bench_daily_stages import LABELS as STAGE_LABELS
from fincdp.bench_daily_stages import SEARCH_NOTE, STAGES

TENANT = "t001"
DAY1 = date(2026, 11, 25)
DAY2 = DAY1 + timedelta(days=1)
EVENTS_PER_CONTACT = 10.0
MARK_BEGIN, MARK_END = "<!-- bench:warehouse:{engine}:begin -->", "<!-- bench:warehouse:{engine}:end -->"
LAYERS = ("dwd", "dwm", "dws", "ads")
TARGETS_S = {"full": 30 * 60, "incremental": 5 * 60}  # the targets, for 1M contacts on DuckDB
SAMPLE_S = 0.2


# --- the next business day's data --------------------------------------------------------------

# Shares of day 1 that change or recur on day 2 (a busy day: a tenth of day 1's events and calls).
NEXT_DAY = {"events": 0.10, "calls": 0.10, "file_contacts": 0.10, "contacts": 0.01, "enterprises": 0.01,
            "leads": 0.02, "opportunities": 0.05, "deleted_contacts": 0.001}
_EVENT_ID = re.compile(r'"event_id":"evt_([0-9a-f]{16})"')


def _every(share: float) -> int:
    return max(1, round(1 / share))


def derive_next_day(day1_dir: Path, out_dir: Path) -> dict:
    """The next business date's source data, derived deterministically from day 1's (no randomness,
    streaming, so that it scales with the data):

    - events: every 10th line of day 1's events file, on day 2 (occurred_at moved by a day, the
      event id mapped to a new one by a bijection, so none collides with day 1's; broken lines stay
      broken), as `files/events_<day2>.jsonl`;
    - CRM calls: every 10th call again as a new call on day 2; contacts (1 %, 0.1 % of them
      deleted), enterprises (1 %), leads (2 %) and opportunities (5 %) updated on day 2 (a title, a
      status or a stage changes, so DWD and the snapshots see real changes). The CRM folder holds day
      1's records followed by these (the local CRM serves the last version of a record);
    - dropped contact list: every 10th row of day 1's CSV, re-typed on day 2;
    - WeCom: the same corp (WeCom has no history: each day lands the snapshot taken that day).
    """
    d1, d2 = DAY1.isoformat(), DAY2.isoformat()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "crm").mkdir(parents=True)
    (tmp / "files").mkdir()
    (tmp / "wecom").symlink_to((day1_dir / "wecom").resolve())
    counts: dict[str, int] = {}

    def shift(text: str) -> str:
        return text.replace(f"{d1}T", f"{d2}T")

    # events
    stride, n = _every(NEXT_DAY["events"]), 0
    with (day1_dir / "files" / f"events_{d1}.jsonl").open(encoding="utf-8") as src, \
            (tmp / "files" / f"events_{d2}.jsonl").open("w", encoding="utf-8") as out:
        for i, line in enumerate(src):
            if i % stride == 0:
                line = _EVENT_ID.sub(lambda m: f'"event_id":"evt_{int(m[1], 16) ^ 0x5DEECE66D2B7A11F:016x}"',
                                     shift(line), count=1)
                out.write(line)
                n += 1
    counts["events"] = n

    # CRM: day 1's records, then day 2's
    for entity in ("enterprises", "contacts", "leads", "opportunities", "calls"):
        src_path, dst_path = day1_dir / "crm" / f"{entity}.jsonl", tmp / "crm" / f"{entity}.jsonl"
        shutil.copyfile(src_path, dst_path)
        stride, n = _every(NEXT_DAY[entity]), 0
        delete_stride = _every(NEXT_DAY["deleted_contacts"])
        with src_path.open(encoding="utf-8") as src, dst_path.open("a", encoding="utf-8") as out:
            batch = []
            for i, line in enumerate(src):
                if i % stride:
                    continue
                r = json.loads(line)
                r["updated_at"] = shift(r["updated_at"])
                if entity == "calls":
                    r["id"] = f"{r['id']}_{DAY2:%Y%m%d}"
                    r["started_at"] = shift(r["started_at"])
                elif entity == "contacts":
                    r["title"] = f"高级{r.get('title') or '经理'}"
                    if i % delete_stride == 0:
                        r["deleted"] = True
                elif entity == "enterprises":
                    r["address"] = f"{r.get('address') or ''}（新址）"
                elif entity == "leads":
                    r["status"] = {"new": "working", "working": "converted"}.get(r.get("status"), r.get("status"))
                else:
                    r["stage"] = {"qualification": "proposal", "proposal": "negotiation",
                                  "negotiation": "won"}.get(r.get("stage"), r.get("stage"))
                batch.append(json.dumps(r, ensure_ascii=False))
                n += 1
            if batch:
                out.write("\n".join(batch) + "\n")
        counts[f"crm_{entity}"] = n

    # the dropped contact list
    stride, n = _every(NEXT_DAY["file_contacts"]), 0
    with (day1_dir / "files" / f"contacts_{d1}.csv").open(encoding="utf-8") as src, \
            (tmp / "files" / f"contacts_{d2}.csv").open("w", encoding="utf-8") as out:
        out.write(src.readline())
        for i, line in enumerate(src):
            if i % stride == 0:
                out.write(shift(line).replace(f"{DAY1:%Y%m%d}", f"{DAY2:%Y%m%d}", 1))
                n += 1
    counts["file_contacts"] = n
    (tmp / "next_day.json").write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return counts


def _import_test_support() -> None:
    """tests/support/ is not installed with the package: the engine variants import it from the checkout."""
    from fincdp.settings import REPO_ROOT

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


# --- steps, each in its own process --------------------------------------------------------------

def _use_home(work: Path) -> None:
    os.environ["FINCDP_HOME"] = str(work / "home")


def _generate(work: Path, contacts: int) -> dict:
    """One tenant's demo data at this scale, written once into work/data (a later run reuses it)."""
    _use_home(work)
    from fincdp.demo.generate import generate_tenant
    from fincdp.demo.run import demo_secrets
    from fincdp.tenants import current_tenants

    tenants = current_tenants()
    demo_secrets(tenants, work / "home")
    t = tenants.get(TENANT)
    manifest = generate_tenant(work / "data", TENANT, org_ids=[o.id for o in t.orgs], corpid=t.sources.wecom.corpid,
                               corpsecret=t.sources.wecom.corpsecret(), scale=contacts,
                               events_per_contact=EVENTS_PER_CONTACT, business_date=DAY1)
    return {"records": sum(manifest["counts"].values())}


def _land_ods(work: Path, business_date: date, workers: int, part: str = "all") -> dict:
    """The ODS tables of the tenant and date, through the functions the ODS assets call: part "pulls"
    (CRM and WeCom, from the local servers), "files" (the dropped files) or "all"."""
    _use_home(work)
    from fincdp.demo.run import demo_secrets
    from fincdp.tenants import current_tenants

    demo_secrets(current_tenants(), work / "home")
    from assets.ingestion import store
    from assets.ingestion.ods import load_file, pending_files
    from assets.ingestion.specs import EVENTS, FILE_CONTACTS
    from assets.partitions import TenantDay
    from resources.pii import PiiVault
    from resources.warehouse import Warehouse

    tenant = current_tenants().get(TENANT)
    day = TenantDay(tenant, business_date)
    cipher = PiiVault().cipher(tenant.id)
    tables: list[dict] = []
    with Warehouse().session(tenant) as session:
        if part in ("pulls", "all"):
            _pull(session, cipher, day, tables)
        if part in ("files", "all"):
            store.ensure_meta(session)
            for spec in (FILE_CONTACTS, EVENTS):
                started, rows = time.perf_counter(), 0
                store.ensure_ods_table(session, spec)
                for dropped in pending_files(tenant.sources.files.path(), spec, day, []):
                    rows += load_file(session, cipher, dropped, day, workers=workers).get("received", 0)
                tables.append({"table": spec.table, "rows": rows, "seconds": time.perf_counter() - started})
    return {"rows": sum(t["rows"] for t in tables), "tables": tables}


def _pull(session, cipher, day, tables: list[dict]) -> None:
    """The CRM pulls of the date's window and the WeCom snapshot, as the ODS assets run them."""
    from assets.ingestion.ods import _wecom_pages, ingest_pages
    from assets.ingestion.specs import (CRM_SPECS, WECOM_CORP_TAGS, WECOM_DEPARTMENTS, WECOM_EXTERNAL_CONTACTS,
                                        WECOM_USERS)
    from resources.crm import CrmApi
    from resources.wecom import WeComApi

    tenant = day.tenant
    crm = tenant.sources.crm
    client = CrmApi().client(crm.base_url, crm.client_id, crm.client_secret(), tenant.id)
    since, before = day.window()
    for spec in CRM_SPECS:
        started = time.perf_counter()

        def pages(cursor, entity=spec.entity):
            for page in client.iter_pages(entity, since, before, cursor=cursor):
                yield page.records, [f"id={r.get('id')}" for r in page.records], page.next_cursor

        batch = ingest_pages(session, cipher, spec, day, pages)
        tables.append({"table": spec.table, "rows": batch.received, "seconds": time.perf_counter() - started})
    wecom = tenant.sources.wecom
    wclient = WeComApi().client(wecom.base_url, wecom.corpid, wecom.corpsecret(), tenant.id)
    for spec in (WECOM_DEPARTMENTS, WECOM_USERS, WECOM_EXTERNAL_CONTACTS, WECOM_CORP_TAGS):
        started = time.perf_counter()
        batch = ingest_pages(session, cipher, spec, day, lambda cursor, s=spec: _wecom_pages(s, wclient, cursor))
        tables.append({"table": spec.table, "rows": batch.received, "seconds": time.perf_counter() - started})


def _serve(work: Path, data_dir: Path) -> None:
    """The local CRM and WeCom servers over data_dir until stdin closes (prints their URLs)."""
    _use_home(work)
    os.environ["FINCDP_CRM_URL"] = os.environ["FINCDP_WECOM_URL"] = "http://127.0.0.1:0"
    from fincdp.demo.run import demo_secrets, start_local_sources
    from fincdp.tenants import TenantsConfig, current_tenants

    tenants = current_tenants()
    demo_secrets(tenants, work / "home")
    sources = start_local_sources(TenantsConfig(tenants=[tenants.get(TENANT)]), data_dir)
    print(json.dumps({"crm": sources.crm.url, "wecom": sources.wecom.url}), flush=True)
    try:
        sys.stdin.read()
    finally:
        sources.stop()


def _serve_chdb(data_dir: Path) -> None:
    """The ClickHouse engine (chdb) behind its HTTP interface until stdin closes (prints its port)."""
    _import_test_support()
    from tests.support.chdb_http import ChdbHttpServer

    with ChdbHttpServer(data_dir) as server:
        print(json.dumps({"port": server.port}), flush=True)
        sys.stdin.read()


def _oneid(work: Path, engine: str, business_date: date) -> dict:
    """The OneID step of the daily job on the engine (connection settings from the environment)."""
    _use_home(work)
    from assets.oneid import resolve_tenant
    from fincdp.tenants import current_tenants
    from resources.warehouse import Warehouse

    tenant = current_tenants().get(TENANT)
    with Warehouse(engine=engine).writer(tenant) as session:
        return resolve_tenant(session, tenant, business_date)


def _stage(work: Path, business_date: date, name: str) -> dict:
    """A stage of the daily job after ADS on the engine FINCDP_WAREHOUSE names (bench_daily_stages)."""
    _use_home(work)
    from fincdp.bench_daily_stages import run_stage
    from fincdp.demo.run import demo_secrets
    from fincdp.tenants import current_tenants

    demo_secrets(current_tenants(), work / "home")
    return run_stage(TENANT, business_date, name)


def _copy_ods(work: Path, engine: str, connect: dict, database: str) -> dict:
    """ODS of the tenant's DuckDB file into the engine (the test fixture's copy), replacing it."""
    _use_home(work)
    from fincdp.tenants import current_tenants
    _import_test_support()
    from tests.support.engines import copy_ods_to_clickhouse, copy_ods_to_mysql

    path = current_tenants().get(TENANT).duckdb_path
    if engine == "mysql":
        import pymysql

        connection = pymysql.connect(**connect, charset="utf8mb4", autocommit=False)
        with connection.cursor() as cursor:
            cursor.execute(f"drop database if exists `{database}`")
        copy_ods_to_mysql(path, connection, database)  # VARCHAR keys, as publishing declares them
        connection.close()
    else:
        import clickhouse_connect

        client = clickhouse_connect.get_client(**connect)
        client.command(f"drop database if exists {database}")
        copy_ods_to_clickhouse(path, client, database)
    return {}


def _counts(work: Path, engine: str, connect: dict, prefix: str) -> dict:
    """Row counts of the main tables after a build (a sanity check that the layers hold data)."""
    tables = {"ods_events": "ods.sdk_events", "dwd_events": "dwd.dwd_sdk__events", "dwd_calls": "dwd.dwd_crm__calls",
              "dwm_activity": "dwm.dwm_contact_day_activity", "dws_contacts": "dws.dws_contacts",
              "ads_person_360": "ads.ads_person_360", "snp_contacts": "snapshots.snp_crm__contacts"}
    if engine == "duckdb":
        import duckdb

        _use_home(work)
        from fincdp.tenants import current_tenants

        con = duckdb.connect(str(current_tenants().get(TENANT).duckdb_path), read_only=True)
        out = {k: con.execute(f"select count(*) from {t}").fetchone()[0] for k, t in tables.items()}
        con.close()
    elif engine == "mysql":
        import pymysql

        con = pymysql.connect(**connect)
        out = {}
        with con.cursor() as cur:
            for k, t in tables.items():
                cur.execute(f"select count(*) from {prefix}{t}")
                out[k] = cur.fetchone()[0]
        con.close()
    else:
        import clickhouse_connect

        client = clickhouse_connect.get_client(**connect)
        out = {k: client.query(f"select count(*) from {prefix}{t}").result_rows[0][0] for k, t in tables.items()}
    return out


# --- measuring ---------------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc (pages shared after a fork
    count in each process, so this is an upper bound)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
        except OSError:
            continue
        todo.extend(children.get(p, []))
    return total


@dataclass
class Step:
    day: str          # "full" or "incremental"
    name: str         # "pulls", "files", "copy", "dwd", ..., "tests"
    label: str
    seconds: float
    peak_mb: float
    engine_peak_mb: float | None = None
    load: float = 0.0  # mean 1-minute load average while it ran (2 cores: above 2, something else ran too)
    detail: dict = field(default_factory=dict)


class Runner:
    def __init__(self, work: Path, engine: str, log_dir: Path):
        self.work, self.engine, self.log_dir = work, engine, log_dir
        self.engine_pid: int | None = None
        self.steps: list[Step] = []

    def run(self, day: str, name: str, label: str, command: list[str], *, env: dict | None = None,
            cwd: Path | None = None, record: bool = True) -> Step:
        log = self.log_dir / f"{day}-{name}.log"
        started = time.perf_counter()
        with log.open("w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                       env={**os.environ, **(env or {})})
            peak, engine_peak, done, loads = 0, 0, threading.Event(), []

            def sample():
                nonlocal peak, engine_peak
                while not done.is_set():
                    loads.append(os.getloadavg()[0])
                    peak = max(peak, _tree_rss(process.pid))
                    if self.engine_pid:
                        engine_peak = max(engine_peak, _tree_rss(self.engine_pid))
                    done.wait(SAMPLE_S)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            code = process.wait()
            done.set()
            sampler.join()
        seconds = time.perf_counter() - started
        text = log.read_text(errors="replace")
        if code != 0:
            raise RuntimeError(f"{day} {name} failed (exit {code}); log {log}:\n{text[-4000:]}")
        detail = {}
        last = text.strip().splitlines()[-1] if text.strip() else ""
        if last.startswith("{"):
            detail = json.loads(last)
        step = Step(day, name, label, seconds, peak / 2**20, engine_peak / 2**20 if self.engine_pid else None,
                    sum(loads) / max(1, len(loads)), detail)
        if record:
            self.steps.append(step)
        print(f"  {day:<11} {name:<9} {seconds:8.1f} s  peak {step.peak_mb:7.0f} MB  load {step.load:4.1f}"
              + (f"  engine {step.engine_peak_mb:7.0f} MB" if step.engine_peak_mb is not None else ""), flush=True)
        return step

    def child(self, day: str, name: str, label: str, *args: str, record: bool = True) -> Step:
        from fincdp.settings import REPO_ROOT

        return self.run(day, name, label, [sys.executable, "-m", "fincdp.bench_warehouse", *map(str, args)],
                        cwd=REPO_ROOT, record=record)


def _dbt_commands(engine: str) -> list[tuple[str, str, list[str]]]:
    commands = [(layer, f"dbt run --select path:models/{layer}", ["run", "--select", f"path:models/{layer}"])
                for layer in LAYERS]
    commands.append(("snapshots", "dbt snapshot", ["snapshot"]))
    commands.append(("tests", "dbt test", ["test"]))
    return commands


# --- the run -------------------------------------------------------------------------------------

def _dbt_project(work: Path, revision: str | None) -> tuple[Path, str]:
    """The dbt project to run: the checkout's own folder (revision None), or a commit's copy exported
    into work/, so that edits to the models while a long run goes on do not change what it measures."""
    from fincdp.settings import REPO_ROOT

    if revision is None:
        return REPO_ROOT / "dbt_project", "working tree"
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    target = work / f"dbt_project-{commit}"
    if not target.exists():
        tmp = work / f"dbt_project-{commit}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        archive = subprocess.run(["git", "archive", commit, "dbt_project"], cwd=REPO_ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        (tmp / "dbt_project").rename(target)
        tmp.rmdir()
    return target, f"commit {commit}"


def run(work: Path, *, contacts: int, engine: str = "duckdb", workers: int = 2, report: Path | None = None,
        mysql_options: tuple[str, ...] = (), revision: str | None = None,
        stages: tuple[str, ...] = STAGES) -> str:
    """mysql_options: extra mariadbd options on top of the test server's (e.g. --join-cache-level=4);
    revision: run the dbt project of this git commit (e.g. HEAD) instead of the working tree's;
    stages: the stages after ADS to run (bench_daily_stages.STAGES; () for the build only)."""
    from fincdp.settings import REPO_ROOT

    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}: {', '.join(STAGES)}")

    if engine not in ("duckdb", "mysql", "clickhouse"):
        raise ValueError(f"unknown engine {engine!r}: duckdb, mysql or clickhouse")
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    log_dir = work / f"logs-{engine}"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir()
    runner = Runner(work, engine, log_dir)
    data = work / "data"
    manifest = data / TENANT / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text())["scale"] != contacts:
        raise SystemExit(f"{work} holds data for {json.loads(manifest.read_text())['scale']} contacts, not "
                         f"{contacts}: use another --work")
    prep: dict[str, float] = {}
    if not manifest.exists():
        print(f"Generating {contacts:,} contacts, {int(contacts * EVENTS_PER_CONTACT):,} events into {data}", flush=True)
        prep["generate"] = runner.child("prepare", "generate", "", "generate", work, contacts, record=False).seconds
    next_day = work / "data-next-day"
    if not (next_day / TENANT / "next_day.json").exists():
        started = time.perf_counter()
        derive_next_day(data / TENANT, next_day / TENANT)
        prep["derive_next_day"] = time.perf_counter() - started
    manifest_data = json.loads(manifest.read_text())
    next_counts = json.loads((next_day / TENANT / "next_day.json").read_text())

    # A fresh warehouse each run: the full build starts from nothing.
    _use_home(work)
    from fincdp.demo.run import demo_secrets
    from fincdp.tenants import current_tenants

    tenants = current_tenants()
    demo_secrets(tenants, work / "home")
    tenant = tenants.get(TENANT)
    shutil.rmtree(tenant.duckdb_path.parent, ignore_errors=True)
    drop = tenant.sources.files.path()
    shutil.rmtree(drop, ignore_errors=True)
    drop.mkdir(parents=True)

    os.environ["FINCDP_WAREHOUSE"] = engine
    from resources.dbt import DBT_EXECUTABLE, DBT_MYSQL_EXECUTABLE, dbt_vars

    project_dir, project_rev = _dbt_project(work, revision)

    dbt = str(DBT_MYSQL_EXECUTABLE if engine == "mysql" else DBT_EXECUTABLE)
    dbt_env = {"FINCDP_DBT_TARGET": engine}
    connect: dict = {}
    server = chdb = None
    try:
        if engine == "mysql":
            _import_test_support()
            from tests.support.mariadb import MariaDBServer

            shutil.rmtree(work / "mariadb", ignore_errors=True)
            server = MariaDBServer(work / "mariadb", extra_options=tuple(mysql_options)).start()
            runner.engine_pid = server._process.pid
            connect = {"host": server.host, "port": server.port, "user": server.user, "password": server.password}
            dbt_env.update({"FINCDP_MYSQL_HOST": server.host, "FINCDP_MYSQL_PORT": str(server.port),
                            "FINCDP_MYSQL_USER": server.user, "FINCDP_MYSQL_PASSWORD": server.password})
        elif engine == "clickhouse":
            shutil.rmtree(work / "chdb", ignore_errors=True)
            chdb = subprocess.Popen([sys.executable, "-m", "fincdp.bench_warehouse", "serve-chdb", work / "chdb"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
            port = json.loads(chdb.stdout.readline())["port"]
            runner.engine_pid = chdb.pid
            connect = {"host": "127.0.0.1", "port": port}
            dbt_env.update({"FINCDP_CLICKHOUSE_HOST": "127.0.0.1", "FINCDP_CLICKHOUSE_PORT": str(port)})

        counts = {}
        for day, business_date, source_dir in (("full", DAY1, data), ("incremental", DAY2, next_day)):
            for path in sorted((source_dir / TENANT / "files").glob(f"*_{business_date}.*")):
                (drop / path.name).symlink_to(path)
            sources = subprocess.Popen([sys.executable, "-m", "fincdp.bench_warehouse", "serve", work, source_dir],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
            try:
                urls = json.loads(sources.stdout.readline())
                os.environ["FINCDP_CRM_URL"], os.environ["FINCDP_WECOM_URL"] = urls["crm"], urls["wecom"]
                runner.child(day, "pulls", "", "land", work, business_date, workers, "pulls")
            finally:  # the local CRM holds all its records in memory: stopped before the files load
                sources.stdin.close()
                sources.wait(timeout=120)
            runner.child(day, "files", "", "land", work, business_date, workers, "files")
            variables = json.dumps(dbt_vars(tenant, business_date))
            if engine != "duckdb":
                runner.child(day, "copy", f"ODS copied DuckDB → {engine} (test fixture; not part of a build)",
                             "copy", work, engine, json.dumps(connect), f"{tenant.database_prefix}_ods")
            for name, label, args in _dbt_commands(engine):
                runner.run(day, name, label, [dbt, *args, "--vars", variables, "--profiles-dir", str(project_dir),
                                              "--target", engine, "--target-path", str(work / f"target-{engine}-{project_dir.name}"),
                                              "--log-path", str(log_dir)],
                           env=dbt_env, cwd=project_dir)
                if name == "dwd" and (project_dir / "models" / "oneid").exists():
                    # The marts read OneID's output: resolve identities between DWD and DWM, as the job does.
                    runner.run(day, "oneid", "OneID (assets/oneid.py resolve_tenant)",
                               [sys.executable, "-m", "fincdp.bench_warehouse", "oneid", str(work), engine,
                                business_date.isoformat()], env=dbt_env, cwd=REPO_ROOT)
            for stage in stages:  # the daily job's stages after ADS, each its own Dagster run
                runner.run(day, stage, STAGE_LABELS[stage],
                           [sys.executable, "-m", "fincdp.bench_warehouse", "stage", str(work),
                            business_date.isoformat(), stage], env=dbt_env, cwd=REPO_ROOT)
            counts[day] = runner.child(day, "counts", "", "counts", work, engine, json.dumps(connect),
                                       "" if engine == "duckdb" else f"{tenant.database_prefix}_",
                                       record=False).detail
            print(f"  {day} row counts: {counts[day]}", flush=True)
        # Baseline in the same run: what one dbt invocation costs that selects nothing.
        base = runner.run("baseline", "dbt-noop", "", [dbt, "run", "--select", "path:models/none", "--vars",
                                                      json.dumps(dbt_vars(tenant, DAY2)), "--profiles-dir",
                                                      str(project_dir), "--target", engine, "--target-path",
                                                      str(work / f"target-{engine}-{project_dir.name}"), "--log-path", str(log_dir)],
                          env=dbt_env, cwd=project_dir, record=False)
    finally:
        if server is not None:
            server.stop()
        if chdb is not None:
            chdb.stdin.close()
            chdb.wait(timeout=120)
    (log_dir / "steps.json").write_text(json.dumps([s.__dict__ for s in runner.steps], indent=1) + "\n")
    table = _report(runner.steps, engine=engine, contacts=contacts, manifest=manifest_data, next_counts=next_counts,
                    counts=counts, noop_s=base.seconds, prep=prep, workers=workers, mysql_options=mysql_options,
                    project=project_rev)
    print(table)
    if report:
        _write(report, engine, table)
    return table


def _versions(engine: str) -> str:
    import duckdb

    from importlib.metadata import version

    parts = [f"DuckDB {duckdb.__version__}"]
    if engine == "mysql":
        out = subprocess.run([str(Path(sys.executable).parents[2] / ".venv-dbt-mysql" / "bin" / "python"), "-c",
                              "from importlib.metadata import version as v; print(v('dbt-core'), v('dbt-mysql'))"],
                             capture_output=True, text=True, check=False).stdout.split()
        parts.append(f"dbt-core {out[0]} + dbt-mysql {out[1]}" if len(out) == 2 else "dbt-mysql")
        mariadbd = shutil.which("mariadbd", path=os.environ.get("PATH", "") + ":/usr/sbin")
        if mariadbd:  # "mariadbd  Ver 10.11.14-MariaDB-0+deb12u2 for debian-linux-gnu ..."
            text = subprocess.run([mariadbd, "--version"], capture_output=True, text=True).stdout
            parts.append("MariaDB " + text.split(" Ver ")[-1].split("-MariaDB")[0].strip())
    else:
        parts.append(f"dbt-core {version('dbt-core')} + dbt-{engine} {version('dbt-' + engine)}")
        if engine == "clickhouse":
            parts.append(f"chdb {version('chdb')}")
    return ", ".join(parts)


def _mem_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def _report(steps: list[Step], *, engine: str, contacts: int, manifest: dict, next_counts: dict, counts: dict,
            noop_s: float, prep: dict, workers: int, mysql_options: tuple[str, ...] = (),
            project: str = "working tree") -> str:
    by = {(s.day, s.name): s for s in steps}
    ods_names = ("ods", "pulls", "files")  # "ods": both in one step (older runs)
    names = [n for n in (*ods_names, "copy", LAYERS[0], "oneid", *LAYERS[1:], "snapshots", "tests", *STAGES)
             if ("full", n) in by]
    stage_names = [n for n in STAGES if ("full", n) in by]
    engine_col = engine != "duckdb"
    events = manifest["counts"].get(f"files/events_{DAY1}.jsonl", 0)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, {_mem_gb():.0f} GB, "
        f"Python {platform.python_version()}, {_versions(engine)}; engine **{engine}**"
        + (f" (mariadbd {' '.join(mysql_options)})" if engine == "mysql" and mysql_options else "")
        + f"; dbt project of the {project}; one run.",
        f"Day 1 ({DAY1}, full build from an empty warehouse): {contacts:,} CRM contacts, {events:,} event lines, "
        f"{manifest['counts'].get('crm/calls.jsonl', 0):,} calls, "
        f"{manifest['counts'].get('wecom/external_contacts.jsonl', 0):,} WeCom external contacts. "
        f"Day 2 ({DAY2}, incremental): {next_counts['events']:,} event lines, {next_counts['crm_calls']:,} calls, "
        f"{next_counts['crm_contacts']:,} contacts, {next_counts['crm_enterprises']:,} enterprises, "
        f"{next_counts['crm_leads']:,} leads and {next_counts['crm_opportunities']:,} opportunities changed, "
        f"{next_counts['file_contacts']:,} file contacts, the WeCom snapshot again.",
        "",
        "| step | day 1 s | day 1 peak MB |" + (" engine peak MB |" if engine_col else "") + " load |"
        + " day 2 s | day 2 peak MB |" + (" engine peak MB |" if engine_col else "") + " load |",
        "|---|---:|---:|" + ("---:|" if engine_col else "") + "---:|---:|---:|" + ("---:|" if engine_col else "")
        + "---:|",
    ]

    def cells(step: Step | None) -> str:
        if step is None:
            return " – | – |" + (" – |" if engine_col else "") + " – |"
        return f" {step.seconds:,.1f} | {step.peak_mb:,.0f} |" + (
            f" {step.engine_peak_mb:,.0f} |" if engine_col else "") + f" {step.load:.1f} |"

    labels = {"ods": f"ODS landing (real ingestion code, {workers} workers)",
              "pulls": "ODS: CRM and WeCom pulls (real ingestion code)",
              "files": f"ODS: dropped files, contacts and events (real ingestion code, {workers} workers)",
              "copy": f"ODS copy DuckDB → {engine} (fixture)",
              "dwd": "dbt run dwd", "oneid": "OneID (identities between DWD and DWM)", "dwm": "dbt run dwm", "dws": "dbt run dws", "ads": "dbt run ads",
              "snapshots": "dbt snapshot", "tests": "dbt test", **STAGE_LABELS}
    for name in names:
        lines.append(f"| {labels[name]} |" + cells(by.get(("full", name))) + cells(by.get(("incremental", name))))
    dbt_names = [*LAYERS, "snapshots", "tests"]
    totals = {}
    for day in ("full", "incremental"):
        dbt_s = sum(by[(day, n)].seconds for n in dbt_names if (day, n) in by)
        build_s = dbt_s + sum(by[(day, n)].seconds for n in (*ods_names, "oneid") if (day, n) in by)
        build = [s for s in steps if s.day == day and s.name not in STAGES]
        peak = max(s.peak_mb for s in build)
        engine_peak = max((s.engine_peak_mb or 0) for s in build)
        totals[day] = (dbt_s, build_s, peak, engine_peak)
    lines.append("| **dbt, all layers** |" + "".join(
        f" **{totals[d][0]:,.1f}** | {max(by[(d, n)].peak_mb for n in dbt_names):,.0f} |"
        + (f" {max(by[(d, n)].engine_peak_mb for n in dbt_names):,.0f} |" if engine_col else "") + " |"
        for d in ("full", "incremental")))
    lines.append("| **build: ODS landing + dbt** |" + "".join(
        f" **{totals[d][1]:,.1f}** | {totals[d][2]:,.0f} |" + (f" {totals[d][3]:,.0f} |" if engine_col else "")
        + " |" for d in ("full", "incremental")))
    daily = {}
    if stage_names:  # the build plus the stages after ADS: what the daily job runs, search left out
        for d in ("full", "incremental"):
            day_steps = [s for s in steps if s.day == d]
            daily[d] = (totals[d][1] + sum(by[(d, n)].seconds for n in stage_names if (d, n) in by),
                        max(s.peak_mb for s in day_steps), max((s.engine_peak_mb or 0) for s in day_steps))
        lines.append("| **daily job without search: build + " + ", ".join(stage_names) + "** |" + "".join(
            f" **{daily[d][0]:,.1f}** | {daily[d][1]:,.0f} |" + (f" {daily[d][2]:,.0f} |" if engine_col else "")
            + " |" for d in ("full", "incremental")))
    lines.append("")
    lines.append(f"Same-run baseline: one dbt invocation that selects nothing (start-up, parse check, connection) "
                 f"takes {noop_s:.1f} s; the six invocations of a day carry about {6 * noop_s:.0f} s of it "
                 f"({6 * noop_s / totals['full'][0]:.0%} of day 1's dbt time, {6 * noop_s / totals['incremental'][0]:.0%} "
                 "of day 2's).")
    if engine == "duckdb":
        verdict = []
        for day, what in (("full", "full build under 30 min"), ("incremental", "incremental day under 5 min")):
            dbt_s, build_s, *_ = totals[day]
            target = TARGETS_S[day]
            verdict.append(f"{what}: dbt {dbt_s / 60:.1f} min ({'met' if dbt_s <= target else 'not met'}), "
                           f"ODS + dbt {build_s / 60:.1f} min ({'met' if build_s <= target else 'not met'})")
        lines.append("Targets (issue: 1M contacts / 10M events): " + "; ".join(verdict) + ".")
    ods = {d: [t for n in ods_names if (d, n) in by for t in by[(d, n)].detail.get("tables", [])]
           for d in ("full", "incremental")}
    if ods["full"]:
        lines.append("ODS landing by table, day 1 / day 2 (rows received, seconds): " + "; ".join(
            f"`{t['table']}` {t['rows']:,} in {t['seconds']:.1f} s / "
            + next((f"{u['rows']:,} in {u['seconds']:.1f} s" for u in ods.get("incremental", [])
                    if u["table"] == t["table"]), "–") for t in ods["full"]) + ".")
    lines.append("Rows after each day: " + "; ".join(
        f"day {i + 1}: " + ", ".join(f"{k} {v:,}" for k, v in counts[d].items())
        for i, d in enumerate(("full", "incremental")) if d in counts) + ".")
    if prep:
        lines.append("Preparation (not part of the build): " + ", ".join(f"{k} {v:,.0f} s" for k, v in prep.items()) + ".")
    if daily:
        lines.append("")
        lines.append(_stages_note(by, stage_names, daily))
    return "\n".join(lines)


def _stages_note(by: dict, stage_names: list[str], daily: dict) -> str:
    """The stages after ADS: the daily job's total per day, then per Dagster step of each stage its
    seconds, each stage's start-up (process, imports, Definitions) and the rows its assets wrote."""
    lines = [f"Daily job without search (build + the stages after ADS): day 1 {daily['full'][0] / 60:.1f} min, "
             f"day 2 {daily['incremental'][0] / 60:.1f} min. {SEARCH_NOTE}", "",
             "| stage: Dagster step | day 1 s | day 2 s |", "|---|---:|---:|"]
    rows, startup, failed = [], [], []
    for name in stage_names:
        detail = {d: (by[(d, name)].detail if (d, name) in by else {}) for d in ("full", "incremental")}
        seconds = {d: {s["step"]: s["seconds"] for s in detail[d].get("steps", [])} for d in detail}
        for step in sorted(seconds["full"].keys() | seconds["incremental"].keys()):
            lines.append(f"| {name}: `{step}` |" + "".join(
                f" {seconds[d][step]:,.1f} |" if step in seconds[d] else " – |" for d in ("full", "incremental")))
        startup.append(f"{name} " + " / ".join(f"{detail[d].get('load_s', 0):.1f}" for d in detail) + " s")
        rows += [f"`{a['asset']}` {a['rows']:,}" for a in detail["incremental"].get("assets", [])
                 if a["rows"] is not None]
        failed += [c["check"] for d in detail for c in detail[d].get("checks", []) if not c["passed"]]
    lines.append("")
    lines.append("Start-up of each stage's run, day 1 / day 2 (process, imports, the Definitions with the dbt "
                 "manifest; in the table's stage rows, not in its step rows): " + ", ".join(startup) + ".")
    if rows:
        lines.append("Rows written on day 2: " + ", ".join(rows) + ".")
    if failed:
        lines.append("Checks that did not pass (warnings, not failures of the run): "
                     + ", ".join(sorted(set(failed))) + ".")
    return "\n".join(lines)


def _write(report: Path, engine: str, table: str) -> None:
    """Replace this engine's marked block only (the ingestion report owns its own block)."""
    begin, end = MARK_BEGIN.format(engine=engine), MARK_END.format(engine=engine)
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    block = f"{begin}\n{table}\n{end}"
    others = [m.end() for m in re.finditer(r"<!-- bench:warehouse:\w+:end -->", text)]
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    elif others:  # beside the other engines' blocks
        text = text[:others[-1]] + f"\n\n{block}" + text[others[-1]:]
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    report.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> None:
    """python -m fincdp.bench_warehouse generate|land|serve|serve-chdb|copy|counts ..."""
    kind, args = argv[0], argv[1:]
    if kind == "generate":
        print(json.dumps(_generate(Path(args[0]), int(args[1]))))
    elif kind == "land":
        print(json.dumps(_land_ods(Path(args[0]), date.fromisoformat(args[1]), int(args[2]), *args[3:4])))
    elif kind == "serve":
        _serve(Path(args[0]), Path(args[1]))
    elif kind == "serve-chdb":
        _serve_chdb(Path(args[0]))
    elif kind == "copy":
        print(json.dumps(_copy_ods(Path(args[0]), args[1], json.loads(args[2]), args[3])))
    elif kind == "oneid":
        print(json.dumps(_oneid(Path(args[0]), args[1], date.fromisoformat(args[2]))))
    elif kind == "counts":
        print(json.dumps(_counts(Path(args[0]), args[1], json.loads(args[2]), args[3])))
    elif kind == "stage":
        print(json.dumps(_stage(Path(args[0]), date.fromisoformat(args[1]), args[2]), default=str))
    else:
        raise SystemExit(f"unknown step {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
