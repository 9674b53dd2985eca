"""The personal-data vault: per-tenant token and encryption keys for the ingestion assets."""
from __future__ import annotations

from functools import cached_property

import dagster as dg

from fincdp import settings
from fincdp.pii import LocalKeyFileProvider, TenantCipher


class PiiVault(dg.ConfigurableResource):
    """Local key files by default (FINCDP_HOME/keys); a KMS-backed provider plugs in here."""

    key_dir: str = ""
    create_missing_keys: bool = True

    @cached_property
    def _provider(self) -> LocalKeyFileProvider:
        return LocalKeyFileProvider(self.key_dir or settings.keys_dir(), create=self.create_missing_keys)

    def cipher(self, tenant_id: str) -> TenantCipher:
        return TenantCipher.for_tenant(tenant_id, self._provider)
