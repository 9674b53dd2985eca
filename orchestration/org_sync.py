"""Org sync between daily runs: a schedule per tenant at the tenant's `sources.wecom.org_sync.cron`, and
a sensor that reruns the boss model when WeCom change callbacks arrived (docs/boss.md).

Both target the latest business date (the day just ended in the tenant's zone, or the newest date the
boss model was built for): today's partition does not exist until the day ends, and the model reads the
DWD as it stands plus the callbacks; versions of the org history carry each change's own date.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.partitions import partition_key, tenant_day
from fincdp.boss.callbacks import last_seq
from fincdp.tenants import Tenant, current_tenants

BOSS = dg.AssetKey(["boss", "decision_makers"])
WECOM_ORG = [dg.AssetKey(k) for k in (
    ["ods", "wecom_departments"], ["ods", "wecom_users"], ["ods", "wecom_external_contacts"],
    ["ods", "wecom_customer_departments"], ["ods", "wecom_customer_users"],
    ["dwd", "dwd_wecom__departments"], ["dwd", "dwd_wecom__members"], ["dwd", "dwd_wecom__external_contacts"])]

org_sync_job = dg.define_asset_job(
    "wecom_org_sync", selection=dg.AssetSelection.assets(*WECOM_ORG, BOSS), partitions_def=tenant_day,
    description="Pull the tenant's WeCom org (departments, members, external contacts) and its connected "
                "customer corps' orgs, rebuild the WeCom DWD tables and the boss model; scheduled per tenant "
                "by sources.wecom.org_sync.cron.")
org_changes_job = dg.define_asset_job(
    "wecom_org_changes", selection=dg.AssetSelection.assets(BOSS), partitions_def=tenant_day,
    description="The boss model again after WeCom change callbacks (launched by wecom_callback_sensor).")


def _previous_day(tenant: Tenant, now: datetime) -> date:
    return (now.astimezone(ZoneInfo(tenant.timezone)) - timedelta(days=1)).date()


def org_sync_schedule(tenant: Tenant) -> dg.ScheduleDefinition:
    cron = tenant.sources.wecom.org_sync.cron

    @dg.schedule(name=f"{tenant.id}_wecom_org_sync", cron_schedule=cron, job=org_sync_job,
                 execution_timezone=tenant.timezone)
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        now = context.scheduled_execution_time or datetime.now(ZoneInfo(tenant.timezone))
        return dg.RunRequest(run_key=f"org-sync:{tenant.id}:{now.isoformat()}",
                             partition_key=partition_key(tenant.id, _previous_day(tenant, now)),
                             tags={"tenant": tenant.id})

    return _schedule


def org_sync_schedules(tenants: list[Tenant]) -> list[dg.ScheduleDefinition]:
    return [org_sync_schedule(t) for t in tenants if t.sources.wecom and t.sources.wecom.org_sync]


def latest_boss_date(instance: dg.DagsterInstance, tenant: Tenant) -> date:
    """The newest business date the boss model was built for this tenant, else the day just ended."""
    mine = []
    for key in instance.get_materialized_partitions(BOSS):
        dims = tenant_day.get_partition_key_from_str(key).keys_by_dimension
        if dims["tenant"] == tenant.id:
            mine.append(date.fromisoformat(dims["business_date"]))
    return max(mine) if mine else _previous_day(tenant, datetime.now(ZoneInfo(tenant.timezone)))


def _run_exists(instance: dg.DagsterInstance, run_key: str) -> bool:
    return bool(instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1))


@dg.sensor(job=org_changes_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def wecom_callback_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """One run per tenant whose callback inbox grew since the last run. The run key carries the newest
    event's sequence, and the cursor takes it only once that run exists (as the file sensor does): a
    crash between seeing events and launching loses nothing, and events arriving during a run give the
    next one."""
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    requests = []
    for tenant in current_tenants().tenants:
        if not (tenant.sources.wecom and tenant.sources.wecom.callback):
            continue
        newest = last_seq(tenant.id)
        if newest <= seen.get(tenant.id, 0):
            continue
        run_key = f"wecom-callbacks:{tenant.id}:{newest}"
        if _run_exists(context.instance, run_key):
            seen[tenant.id] = newest
            continue
        day = latest_boss_date(context.instance, tenant)
        requests.append(dg.RunRequest(run_key=run_key, partition_key=partition_key(tenant.id, day),
                                      tags={"tenant": tenant.id, "fincdp/callback_seq": str(newest)}))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))


SCHEDULES = org_sync_schedules(current_tenants().tenants)
SENSORS = [wecom_callback_sensor]
