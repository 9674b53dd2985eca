"""T+1 schedules: one per tenant, running the daily job for the business date just ended."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.partitions import partition_key
from fincdp.tenants import Tenant, current_tenants
from orchestration.jobs import daily_job
from orchestration.org_sync import SCHEDULES as ORG_SYNC_SCHEDULES


def tenant_daily_schedule(tenant: Tenant, cron: str = "0 2 * * *") -> dg.ScheduleDefinition:
    @dg.schedule(name=f"{tenant.id}_daily", cron_schedule=cron, job=daily_job,
                 execution_timezone=tenant.timezone)
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        now = context.scheduled_execution_time or datetime.now(ZoneInfo(tenant.timezone))
        business_date = (now.astimezone(ZoneInfo(tenant.timezone)) - timedelta(days=1)).date()
        return dg.RunRequest(run_key=f"daily:{tenant.id}:{business_date}",
                             partition_key=partition_key(tenant.id, business_date),
                             tags={"tenant": tenant.id})

    return _schedule


SCHEDULES = [tenant_daily_schedule(tenant) for tenant in current_tenants().tenants] + ORG_SYNC_SCHEDULES
