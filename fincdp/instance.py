"""The local Dagster instance's dagster.yaml, generated from tenants.yaml.

Per-tenant run quotas are run-queue tag limits on the tenant partition tag, so a backfill for one
tenant cannot take every run slot from the others.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from fincdp import settings
from fincdp.tenants import TenantsConfig

TENANT_TAG = "dagster/partition/tenant"


def instance_config(tenants: TenantsConfig, *, max_concurrent_runs: int = 4) -> dict:
    return {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": max_concurrent_runs,
                "tag_concurrency_limits": [
                    {"key": TENANT_TAG, "value": t.id, "limit": t.quota.concurrent_runs} for t in tenants.tenants
                ],
            },
        },
        "telemetry": {"enabled": False},
    }


def write_instance_config(tenants: TenantsConfig, dagster_home: Path | None = None) -> Path:
    dagster_home = dagster_home or settings.dagster_home()
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    path.write_text("# Generated from tenants.yaml by `fincdp instance init`; edit tenants.yaml instead.\n"
                    + yaml.safe_dump(instance_config(tenants), sort_keys=False))
    return path
