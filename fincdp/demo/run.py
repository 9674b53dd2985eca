"""`fincdp demo run`: the main job end to end on the embedded default.

Generates data for every configured tenant, starts the local CRM and WeCom servers, drops the files,
materializes every asset for each tenant and the demo business date into the local Dagster
instance, and prints what landed.
"""
from __future__ import annotations

import os
import secrets
import shutil
import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fincdp import settings
from fincdp.tenants import TenantsConfig, current_tenants

DEMO_ENV = "demo.env"


def default_business_date() -> date:
    """T+1: the demo loads yesterday (Asia/Shanghai)."""
    return (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).date()


def demo_secrets(tenants: TenantsConfig, home: Path) -> dict[str, str]:
    """Random per-installation secrets for the local servers, kept in FINCDP_HOME/demo.env so the UI
    (started later in another shell) uses the same ones."""
    path = home / DEMO_ENV
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                name, value = line[len("export "):].split("=", 1)
                values[name] = value
    alphanumeric = string.ascii_letters + string.digits
    for tenant in tenants.tenants:
        for source, attr in ((tenant.sources.crm, "client_secret_env"), (tenant.sources.wecom, "corpsecret_env")):
            if source is not None:
                values.setdefault(getattr(source, attr), secrets.token_urlsafe(24))
        callback = tenant.sources.wecom.callback if tenant.sources.wecom else None
        if callback is not None:  # WeCom's Token (<= 32) and EncodingAESKey (43) are alphanumeric
            values.setdefault(callback.token_env, "".join(secrets.choice(alphanumeric) for _ in range(32)))
            values.setdefault(callback.encoding_aes_key_env, "".join(secrets.choice(alphanumeric) for _ in range(43)))
    home.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"export {k}={v}\n" for k, v in sorted(values.items())))
    path.chmod(0o600)
    os.environ.update(values)
    return values


def _port(url: str) -> int:
    port = urlsplit(url).port
    return 80 if port is None else port


@dataclass
class LocalSources:
    crm: object
    wecom: object

    def stop(self) -> None:
        self.crm.stop()
        self.wecom.stop()


def start_local_sources(tenants: TenantsConfig, data_dir: Path, *, crm_options: dict | None = None,
                        wecom_options: dict | None = None) -> LocalSources:
    """One CRM and one WeCom server for all tenants, on the ports tenants.yaml points at."""
    from fincdp.localsaas.crm import CrmServer
    from fincdp.localsaas.wecom import WeComServer

    crm_tenants, corps, crm_urls, wecom_urls = {}, {}, set(), set()
    for tenant in tenants.tenants:
        if tenant.sources.crm:
            crm_tenants[tenant.sources.crm.client_id] = (tenant.sources.crm.client_secret(), data_dir / tenant.id)
            crm_urls.add(tenant.sources.crm.base_url)
        if tenant.sources.wecom:
            corps[tenant.sources.wecom.corpid] = (tenant.sources.wecom.corpsecret(), data_dir / tenant.id)
            wecom_urls.add(tenant.sources.wecom.base_url)
    if len(crm_urls) > 1 or len(wecom_urls) > 1:
        raise ValueError("the local demo serves every tenant from one CRM and one WeCom server; "
                         "point all tenants' base_url at the same address")
    crm = CrmServer(crm_tenants, port=_port(crm_urls.pop()) if crm_urls else 0, **(crm_options or {})).start()
    wecom = WeComServer(corps, port=_port(wecom_urls.pop()) if wecom_urls else 0, **(wecom_options or {})).start()
    return LocalSources(crm, wecom)


def generate_demo_data(tenants: TenantsConfig, data_dir: Path, *, scale: int, business_date: date,
                       seed: int = 7, progress: bool = True) -> None:
    from fincdp.demo.generate import generate_tenant

    for tenant in tenants.tenants:
        wecom = tenant.sources.wecom
        generate_tenant(data_dir, tenant.id, org_ids=[o.id for o in tenant.orgs],
                        corpid=wecom.corpid if wecom else f"ww{tenant.id}",
                        corpsecret=wecom.corpsecret() if wecom else "",
                        scale=scale, seed=seed, business_date=business_date, progress=progress)


def drop_files(tenants: TenantsConfig, data_dir: Path) -> None:
    for tenant in tenants.tenants:
        if tenant.sources.files is None:
            continue
        drop = tenant.sources.files.path()
        drop.mkdir(parents=True, exist_ok=True)
        for path in sorted((data_dir / tenant.id / "files").glob("*")):
            shutil.copy2(path, drop / path.name)


def summary(tenants: TenantsConfig, business_date: date) -> str:
    from tabulate import tabulate

    from assets.ingestion import store
    from assets.ingestion.specs import ALL_SPECS
    from resources.warehouse import Warehouse

    warehouse = Warehouse()
    lines = []
    for tenant in tenants.tenants:
        rows = []
        with warehouse.session(tenant, read_only=True) as session:
            for spec in ALL_SPECS:
                counts = store.partition_counts(session, spec, business_date)
                rows.append([spec.table, counts["received"], counts["landed"], counts["dead_lettered"],
                             counts["duplicates"], counts["rows"]])
            reasons = session.rows(f"select source || '.' || entity, error_type, count(*) from {store.DEAD_LETTERS} "
                                   "where business_date = ? and status = 'open' group by all order by all",
                                   [business_date])
            beyond = _beyond_ods(session)
        lines.append(f"\nTenant {tenant.id} ({tenant.name}), business date {business_date}, "
                     f"warehouse {tenant.duckdb_path}")
        lines.append(tabulate(rows, headers=["ODS table", "received", "landed", "dead-lettered",
                                             "duplicates merged", "rows"], tablefmt="github"))
        if reasons:
            lines.append("Dead letters by reason: " + "; ".join(f"{t} {e}: {n}" for t, e, n in reasons))
        lines.append("Beyond ODS: " + "; ".join(beyond))
    return "\n".join(lines)


# What the later stages made of the day, one figure each (a stage that did not run says so).
_BEYOND_ODS = [  # (label, table, what to count there)
    ("person OneIDs", "oneid.identity_map", "count(distinct case when entity_type = 'person' then one_id end)"),
    ("people in ads_person_360", "ads.ads_person_360", "count(*)"),
    ("segment members", "segments.membership", "count(*)"),
    ("decision makers scored", "ads.ads_decision_makers", "count(*)"),
    ("attributed conversions", "ads.ads_attribution", "count(distinct conversion_id)"),
]


def _beyond_ods(session) -> list[str]:
    return [f"{label} {session.scalar(f'select {count} from {table}'):,}" if session.table_exists(table)
            else f"{label}: not built" for label, table, count in _BEYOND_ODS]


def run_demo(*, scale: int = 1000, business_date: date | None = None, seed: int = 7) -> str:
    import dagster as dg

    from assets.partitions import partition_key
    from fincdp.instance import write_instance_config

    business_date = business_date or default_business_date()
    home = settings.home()
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home()))
    tenants = current_tenants()
    demo_secrets(tenants, home)
    data_dir = home / "demo-data"
    print(f"Generating demo data for {', '.join(tenants.ids)} (scale {scale}) in {data_dir}")
    generate_demo_data(tenants, data_dir, scale=scale, business_date=business_date, seed=seed)
    drop_files(tenants, data_dir)
    write_instance_config(tenants)
    sources = start_local_sources(tenants, data_dir)
    print(f"Local CRM at {sources.crm.url}, local WeCom at {sources.wecom.url}")
    from fincdp.search_server import start_for_demo
    search_server = start_for_demo(home)  # before the Definitions read FINCDP_ES_URL
    print(f"Search indexes published to {os.environ['FINCDP_ES_URL']}")
    try:
        from orchestration.definitions import defs

        job = defs.resolve_job_def("fincdp_daily")
        with dg.DagsterInstance.get() as instance:
            for tenant in tenants.tenants:
                print(f"Materializing every asset for {tenant.id} on {business_date} ...", flush=True)
                result = job.execute_in_process(
                    partition_key=partition_key(tenant.id, business_date), instance=instance,
                    tags={"tenant": tenant.id}, run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})
                if not result.success:
                    raise SystemExit(f"the daily job failed for tenant {tenant.id}; see the run in the UI")
    finally:
        sources.stop()
        if search_server:
            search_server.stop()
    report = summary(tenants, business_date)
    print(report)
    print(f"""
Open the UI over the same instance:
    source {home / DEMO_ENV} && DAGSTER_HOME={settings.dagster_home()} .venv/bin/dagster dev -w workspace.yaml
and, in another shell, keep the local sources up for runs started from the UI:
    source {home / DEMO_ENV} && .venv/bin/fincdp sources serve""")
    return report
