"""Jobs: the daily T+1 job per tenant and date, and the file-load job the drop sensor launches."""
from __future__ import annotations

import dagster as dg

from assets.ingestion.ods import FILE_ASSETS
from assets.partitions import tenant_day

daily_job = dg.define_asset_job(
    "fincdp_daily", selection=dg.AssetSelection.all(), partitions_def=tenant_day,
    description="Everything for one tenant and business date (T+1): sources to the last layer.")

file_ingest_job = dg.define_asset_job(
    "file_ingest", selection=dg.AssetSelection.assets(*FILE_ASSETS), partitions_def=tenant_day,
    description="Loads dropped files; launched by the file drop sensor, one run per file.")


def job_of(defs: dg.Definitions, selection: dg.AssetSelection, name: str) -> dg.JobDefinition:
    """A tenant-day job of `selection` with the same resources, checks and executor as the daily job
    (asset checks on the selected assets run as they do there): what a benchmark or a test of one stage
    needs without the other stages' cost."""
    return dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources,
                          executor=defs.executor,
                          jobs=[dg.define_asset_job(name, selection=selection, partitions_def=tenant_day)]
                          ).resolve_job_def(name)


def job_upstream_of(defs: dg.Definitions, *keys: list[str]) -> dg.JobDefinition:
    """job_of `keys` and everything upstream of them."""
    return job_of(defs, dg.AssetSelection.assets(*[dg.AssetKey(k) for k in keys]).upstream(), "upstream")
