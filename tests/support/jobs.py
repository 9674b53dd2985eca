"""The daily job cut to what a test is about: every later stage (segments, search, analytics, the boss
model) runs in the full job and costs each run of it time that a warehouse or OneID test does not need."""
from __future__ import annotations

import dagster as dg

from assets.partitions import tenant_day


def job_upstream_of(defs: dg.Definitions, *keys: list[str]) -> dg.JobDefinition:
    """A tenant-day job of `keys` and everything upstream of them, with the same resources, checks and
    executor as the daily job (asset checks on the selected assets run as they do there)."""
    selection = dg.AssetSelection.assets(*[dg.AssetKey(k) for k in keys]).upstream()
    return dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources,
                          executor=defs.executor,
                          jobs=[dg.define_asset_job("upstream", selection=selection, partitions_def=tenant_day)]
                          ).resolve_job_def("upstream")


# What the warehouse and OneID tests read: the last dbt layer and the OneID output.
WAREHOUSE_KEYS = (["ads", "ads_person_360"], ["ads", "ads_enterprise_360"], ["ads", "ads_funnel_base"],
                  ["ads", "ads_metric_values"], ["dwm", "dwm_person_golden"], ["dwm", "dwm_enterprise_golden"],
                  ["snapshots", "snp_crm__contacts"], ["snapshots", "snp_crm__enterprises"])
