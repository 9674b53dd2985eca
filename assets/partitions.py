"""Tenant x business date: every tenant-scoped asset is partitioned by both (T+1 daily)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from fincdp.tenants import Tenant, current_tenants

PARTITIONS_START = "2025-01-01"

tenant_day = dg.MultiPartitionsDefinition({
    "business_date": dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="Asia/Shanghai"),
    "tenant": dg.StaticPartitionsDefinition(current_tenants().ids),
})


@dataclass(frozen=True)
class TenantDay:
    tenant: Tenant
    business_date: date

    def window(self) -> tuple[datetime, datetime]:
        """[start, end) of the business date in the tenant's zone."""
        zone = ZoneInfo(self.tenant.timezone)
        start = datetime.combine(self.business_date, time.min, zone)
        return start, start + timedelta(days=1)

    def key(self) -> dg.MultiPartitionKey:
        return partition_key(self.tenant.id, self.business_date)


def partition_key(tenant_id: str, business_date: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"tenant": tenant_id, "business_date": business_date.isoformat()})


def tenant_day_of(context: dg.AssetExecutionContext) -> TenantDay:
    keys = context.partition_key.keys_by_dimension
    return TenantDay(current_tenants().get(keys["tenant"]), date.fromisoformat(keys["business_date"]))
