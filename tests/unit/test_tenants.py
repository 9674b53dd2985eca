"""tenants.yaml validation: errors name the tenant and the field; storage never shared."""
import pytest

from fincdp.instance import instance_config
from fincdp.tenants import TenantConfigError, load_tenants, parse_tenants
from fincdp import settings

BASE = """
tenants:
  - id: t001
    name: 华信证券
    orgs: [{id: hx_sh, name: 上海}]
    es_index_prefix: t001-
    retention_days: 365
    quota: {concurrent_runs: 3}
    sources:
      crm: {base_url: "${CRM_URL:-http://127.0.0.1:1}", client_id: a, client_secret_env: T1_SECRET}
  - id: t002
    name: 远航银行
    orgs: [{id: yh, name: 总行}]
    es_index_prefix: t002-
    retention_days: 365
"""


def test_repository_tenants_file_is_valid():
    config = load_tenants(settings.REPO_ROOT / "tenants.yaml")
    assert len(config.ids) >= 2


def test_valid_file_loads_with_env_defaults_and_secret_by_reference(monkeypatch):
    monkeypatch.delenv("CRM_URL", raising=False)
    config = parse_tenants(BASE)
    crm = config.get("t001").sources.crm
    assert crm.base_url == "http://127.0.0.1:1"
    monkeypatch.setenv("T1_SECRET", "s3cret")
    assert crm.client_secret() == "s3cret"
    monkeypatch.delenv("T1_SECRET")
    with pytest.raises(TenantConfigError, match="T1_SECRET"):
        crm.client_secret()


def test_error_names_tenant_and_field():
    with pytest.raises(TenantConfigError) as info:
        parse_tenants(BASE.replace("retention_days: 365\n    quota", "retention_days: -1\n    quota"))
    assert "tenant 't001'" in str(info.value) and "'retention_days'" in str(info.value)


def test_unknown_field_is_an_error_not_ignored():
    with pytest.raises(TenantConfigError, match="t002.*retension_days"):
        parse_tenants(BASE + "    retension_days: 5\n")


@pytest.mark.parametrize("change, message", [
    (("id: t002", "id: t001"), "share the id"),
    (("es_index_prefix: t002-", "es_index_prefix: t001-x"), "prefix"),
])
def test_tenants_never_share_storage(change, message):
    with pytest.raises(TenantConfigError, match=message):
        parse_tenants(BASE.replace(*change))


def test_run_quota_per_tenant_goes_to_the_run_queue():
    limits = instance_config(parse_tenants(BASE))["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": "dagster/partition/tenant", "value": "t001", "limit": 3} in limits
    assert {"key": "dagster/partition/tenant", "value": "t002", "limit": 1} in limits
