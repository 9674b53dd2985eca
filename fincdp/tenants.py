"""The tenants configuration (tenants.yaml): the one list of tenants, validated on load.

Secrets are never in the file: a source names the environment variable that holds its secret.
String values may use `${VAR}` or `${VAR:-default}` so one file serves the demo and production.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fincdp import settings

_IDENT = r"^[a-z][a-z0-9_]{1,30}$"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class TenantConfigError(ValueError):
    """The tenants file is invalid; the message names the tenant and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Org(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
    name: str


def _secret(tenant_hint: str, env_name: str) -> str:
    value = os.environ.get(env_name)
    if not value:
        raise TenantConfigError(f"secret for {tenant_hint} is read from environment variable "
                                f"{env_name}, which is not set")
    return value


class CrmSource(_Strict):
    base_url: str
    client_id: str
    client_secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]

    def client_secret(self) -> str:
        return _secret(f"crm client {self.client_id}", self.client_secret_env)


class WeComCallback(_Strict):
    """Change callbacks (docs/boss.md): the callback URL's Token and EncodingAESKey, by variable name."""
    token_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
    encoding_aes_key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]

    def crypto(self, corpid: str):
        from fincdp.wecom_crypto import WeComCrypto

        key = _secret(f"wecom corp {corpid} callbacks", self.encoding_aes_key_env)
        if len(key) != 43:
            raise TenantConfigError(f"wecom corp {corpid} callbacks: {self.encoding_aes_key_env} must hold a "
                                    "43-character EncodingAESKey")
        return WeComCrypto(_secret(f"wecom corp {corpid} callbacks", self.token_env), key, corpid)


class OrgSync(_Strict):
    """How often the WeCom org is pulled between daily runs: a cron expression in the tenant's zone."""
    cron: str

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string  # the check Dagster applies to schedules

        if not is_valid_cron_string(value):
            raise ValueError(f"{value!r} is not a cron expression (5 fields, e.g. '0 */4 * * *')")
        return value


class WeComSource(_Strict):
    base_url: str
    corpid: str
    corpsecret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
    callback: WeComCallback | None = None
    org_sync: OrgSync | None = None

    def corpsecret(self) -> str:
        return _secret(f"wecom corp {self.corpid}", self.corpsecret_env)


class FileSource(_Strict):
    drop_dir: str  # relative paths resolve under FINCDP_HOME

    def path(self) -> Path:
        path = Path(self.drop_dir)
        return path if path.is_absolute() else settings.home() / path


class Sources(_Strict):
    crm: CrmSource | None = None
    wecom: WeComSource | None = None
    files: FileSource | None = None


class WarehouseNames(_Strict):
    """Where the tenant's data lives on each engine; defaults derive from the tenant id."""
    duckdb_file: str | None = None      # file under FINCDP_HOME/warehouse
    database_prefix: str | None = None  # MySQL/ClickHouse databases <prefix>_ods, <prefix>_dwd, ...


class Quota(_Strict):
    concurrent_runs: Annotated[int, Field(ge=1, le=64)] = 1


class Tenant(_Strict):
    id: Annotated[str, Field(pattern=_IDENT)]
    name: str
    orgs: Annotated[list[Org], Field(min_length=1)]
    timezone: str = "Asia/Shanghai"
    warehouse: WarehouseNames = WarehouseNames()
    es_index_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{1,40}$")]
    sources: Sources = Sources()
    quota: Quota = Quota()
    retention_days: Annotated[int, Field(ge=1, le=36500)]
    # OneID: per identifier type overrides of fincdp.oneid.rules.DEFAULT_RULES, e.g.
    # {phone: {max_records: 3}}, and the match probability at which a probabilistic pair merges.
    oneid_merge_rules: dict[str, dict] = {}
    oneid_confidence_threshold: Annotated[float, Field(gt=0, le=1)] = 0.8
    # Splink over names, companies, titles and weak identifiers after the strong ids (off: strong ids only,
    # e.g. while a tenant's data is too small to train on).
    oneid_probabilistic: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @model_validator(mode="after")
    def _valid_oneid_rules(self) -> "Tenant":
        try:
            self.merge_rules()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"][1:])  # identifiers.<type>.<field> -> <type>.<field>
            raise ValueError(f"oneid_merge_rules.{where}: {first['msg']}") from None
        return self

    def merge_rules(self):
        from fincdp.oneid.rules import MergeRules

        return MergeRules.with_overrides(self.oneid_merge_rules, threshold=self.oneid_confidence_threshold)

    @property
    def duckdb_path(self) -> Path:
        return settings.warehouse_dir() / (self.warehouse.duckdb_file or f"{self.id}.duckdb")

    @property
    def database_prefix(self) -> str:
        return self.warehouse.database_prefix or self.id

    @property
    def org_ids(self) -> frozenset[str]:
        return frozenset(org.id for org in self.orgs)


class TenantsConfig(_Strict):
    tenants: Annotated[list[Tenant], Field(min_length=1)]

    @model_validator(mode="after")
    def _isolated(self) -> "TenantsConfig":
        # Two tenants sharing a name for storage would share data: refuse the file.
        for what, key in (("id", lambda t: t.id), ("duckdb file", lambda t: t.duckdb_path.name),
                          ("database prefix", lambda t: t.database_prefix)):
            seen: dict[str, str] = {}
            for tenant in self.tenants:
                value = key(tenant)
                if value in seen:
                    raise ValueError(f"tenants {seen[value]!r} and {tenant.id!r} share the {what} {value!r}")
                seen[value] = tenant.id
        prefixes = sorted((t.es_index_prefix, t.id) for t in self.tenants)
        for (p1, t1), (p2, t2) in zip(prefixes, prefixes[1:]):
            if p2.startswith(p1):  # an index pattern "p1*" would match the other tenant's indexes
                raise ValueError(f"es_index_prefix {p1!r} of tenant {t1!r} is a prefix of {p2!r} "
                                 f"of tenant {t2!r}; index patterns would cross tenants")
        return self

    def get(self, tenant_id: str) -> Tenant:
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        raise KeyError(f"unknown tenant {tenant_id!r}; configured: {', '.join(self.ids)}")

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tenants]


def _expand_env(value: object) -> object:
    if isinstance(value, str):
        def sub(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise TenantConfigError(f"environment variable {name} is referenced but not set")
        return _ENV_REF.sub(sub, value)
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    return value


def _describe(error: dict, raw: dict, source: str) -> str:
    loc = list(error["loc"])
    where = source
    if len(loc) >= 2 and loc[0] == "tenants" and isinstance(loc[1], int):
        tenants = raw.get("tenants") or []
        index = loc[1]
        tid = tenants[index].get("id") if index < len(tenants) and isinstance(tenants[index], dict) else None
        where += f": tenant {tid!r}" if tid else f": tenant #{index + 1}"
        loc = loc[2:]
    field = ".".join(str(part) for part in loc)
    return f"{where}{f' field {field!r}' if field else ''}: {error['msg']}"


def parse_tenants(text: str, source: str = "tenants.yaml") -> TenantsConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TenantConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise TenantConfigError(f"{source}: expected a mapping with a 'tenants' list")
    raw = _expand_env(raw)
    try:
        return TenantsConfig.model_validate(raw)
    except ValidationError as exc:
        raise TenantConfigError("\n".join(_describe(e, raw, source) for e in exc.errors())) from None


def load_tenants(path: Path | None = None) -> TenantsConfig:
    path = path or settings.tenants_file()
    if not path.exists():
        raise TenantConfigError(f"tenants file {path} does not exist (set FINCDP_TENANTS)")
    return parse_tenants(path.read_text(encoding="utf-8"), str(path))


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, env: tuple) -> TenantsConfig:
    return load_tenants(Path(path))


def current_tenants() -> TenantsConfig:
    """The configured tenants, re-read when the file or a FINCDP_* variable it may expand changes."""
    path = settings.tenants_file()
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("FINCDP_")))
    return _cached(str(path), path.stat().st_mtime_ns if path.exists() else 0, env)
