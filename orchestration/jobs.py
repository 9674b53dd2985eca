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
