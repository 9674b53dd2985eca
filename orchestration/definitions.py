"""The one Definitions of FinCDP, loaded by workspace.yaml."""
from __future__ import annotations

import dagster as dg

from assets.analytics import ASSETS as ANALYTICS_ASSETS
from assets.boss import ASSETS as BOSS_ASSETS
from assets.ingestion.ods import ASSETS as INGESTION_ASSETS
from assets.oneid import ASSETS as ONEID_ASSETS
from assets.search import ASSETS as SEARCH_ASSETS
from assets.segments import ASSETS as SEGMENT_ASSETS
from assets.warehouse import ASSETS as WAREHOUSE_ASSETS
from orchestration.jobs import daily_job, file_ingest_job
from orchestration.schedules import SCHEDULES
from orchestration.sensors import SENSORS
from quality.checks import CHECKS as QUALITY_CHECKS
from resources.crm import CrmApi
from resources.dbt import dbt_resource, warehouse_engine
from resources.pii import PiiVault
from resources.search import SearchIndex
from resources.warehouse import Warehouse
from resources.wecom import WeComApi

def build_definitions() -> dg.Definitions:
    """The Definitions for the warehouse engine FINCDP_WAREHOUSE names (duckdb by default)."""
    engine = warehouse_engine()
    return dg.Definitions(
        assets=[*INGESTION_ASSETS, *WAREHOUSE_ASSETS, *ONEID_ASSETS, *SEGMENT_ASSETS, *SEARCH_ASSETS,
                *ANALYTICS_ASSETS, *BOSS_ASSETS],
        asset_checks=QUALITY_CHECKS,  # quality/rules.yaml: blocking per tenant and business date
        jobs=[daily_job, file_ingest_job],
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources={
            "crm": CrmApi(),
            "wecom": WeComApi(),
            "warehouse": Warehouse(engine=engine),
            "pii": PiiVault(),
            "dbt": dbt_resource(),
            "search": SearchIndex.from_env(),  # FINCDP_ES_URL; unset: search assets do not run
        },
        # DuckDB allows one writing process per tenant file: a run's steps execute in its own process.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
