"""Test harness: a private FINCDP_HOME per test, the repository's tenants.yaml, real local servers."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterator

import pytest

# Set before any project import: partitions are built from the tenants file at import time. A home this
# process made is removed when it exits.
if "FINCDP_HOME" not in os.environ:
    os.environ["FINCDP_HOME"] = tempfile.mkdtemp(prefix="fincdp-test-")
    atexit.register(shutil.rmtree, os.environ["FINCDP_HOME"], ignore_errors=True)
os.environ.pop("FINCDP_TENANTS", None)  # the repository's tenants.yaml
SECRETS = {"FINCDP_T001_CRM_SECRET": "crm-secret-t001", "FINCDP_T002_CRM_SECRET": "crm-secret-t002",
           "FINCDP_T001_WECOM_SECRET": "wecom-secret-t001", "FINCDP_T002_WECOM_SECRET": "wecom-secret-t002"}
os.environ.update(SECRETS)
os.environ.pop("FINCDP_WAREHOUSE", None)

BUSINESS_DATE = date(2026, 11, 25)


@dataclass
class Platform:
    """Local sources plus the resources a run uses, over one FINCDP_HOME."""
    home: Path
    data_dir: Path
    sources: object = None
    resources: dict = field(default_factory=dict)

    def tenants(self):
        from fincdp.tenants import current_tenants
        return current_tenants()

    def start_sources(self, crm_options: dict | None = None, wecom_options: dict | None = None) -> None:
        from fincdp.demo.run import start_local_sources

        if self.sources is not None:
            self.sources.stop()
        os.environ["FINCDP_CRM_URL"] = os.environ["FINCDP_WECOM_URL"] = "http://127.0.0.1:0"
        self.sources = start_local_sources(self.tenants(), self.data_dir, crm_options=crm_options,
                                           wecom_options=wecom_options)
        os.environ["FINCDP_CRM_URL"] = self.sources.crm.url
        os.environ["FINCDP_WECOM_URL"] = self.sources.wecom.url

    def materialize(self, tenant_id: str, assets=None, *, day: date = BUSINESS_DATE, instance=None,
                    run_config=None, resources=None, raise_on_error: bool = True):
        import dagster as dg

        from assets.ingestion.ods import ASSETS
        from assets.partitions import partition_key

        return dg.materialize(assets or ASSETS, partition_key=partition_key(tenant_id, day),
                              resources={**self.resources, **(resources or {})}, instance=instance,
                              run_config=run_config, raise_on_error=raise_on_error)

    def session(self, tenant_id: str, read_only: bool = True):
        from resources.warehouse import Warehouse
        return Warehouse().session(self.tenants().get(tenant_id), read_only=read_only)


@pytest.fixture
def platform(tmp_path, monkeypatch) -> Iterator[Platform]:
    from resources.crm import CrmApi
    from resources.pii import PiiVault
    from resources.warehouse import Warehouse
    from resources.wecom import WeComApi

    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    for name in ("FINCDP_CRM_URL", "FINCDP_WECOM_URL"):
        monkeypatch.delenv(name, raising=False)
    p = Platform(tmp_path / "home", tmp_path / "data")
    p.resources = {"crm": CrmApi(max_backoff_s=0.2), "wecom": WeComApi(max_backoff_s=0.2),
                   "warehouse": Warehouse(lock_timeout_s=30), "pii": PiiVault()}
    yield p
    if p.sources is not None:
        p.sources.stop()


from tests.support.fixtures import clickhouse, mariadb  # noqa: E402,F401  (one server of each per test worker)
