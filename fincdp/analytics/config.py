"""analytics.yaml: windows, half-life, RFM segments, lifecycle rules and custom funnels, validated.

One file with project-wide `defaults` and optional per-tenant overrides under `tenants.<id>`; an
override replaces only the keys it names (mappings merge, lists replace). Errors name the file, the
tenant (or "defaults") and the field.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fincdp import settings

_NAME = r"^[a-z][a-z0-9_]{0,62}$"
CONVERSIONS = ("won_opportunity", "converted_lead")
TOUCH_CHANNELS = ("call", "wecom_follow", "web", "app", "miniapp")


class AnalyticsConfigError(ValueError):
    """analytics.yaml is invalid; the message names the tenant (or defaults) and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventFunnel(_Strict):
    """Ordered steps (event types) an actor must do, each after the previous, all within window_days
    of the first step."""
    name: Annotated[str, Field(pattern=_NAME)]
    steps: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=2, max_length=20)]
    window_days: Annotated[float, Field(gt=0, le=366)] = 7


class Paths(_Strict):
    anchors: list[Annotated[str, Field(min_length=1)]] = []
    steps: Annotated[int, Field(ge=1, le=10)] = 3
    top_n: Annotated[int, Field(ge=1, le=1000)] = 10
    window_hours: Annotated[float, Field(gt=0, le=24 * 90)] = 24
    collapse_repeats: bool = True


class PositionWeights(_Strict):
    first: Annotated[float, Field(ge=0, le=1)] = 0.4
    middle: Annotated[float, Field(ge=0, le=1)] = 0.2
    last: Annotated[float, Field(ge=0, le=1)] = 0.4

    @model_validator(mode="after")
    def _sum_to_one(self) -> "PositionWeights":
        if abs(self.first + self.middle + self.last - 1) > 1e-9:
            raise ValueError(f"first + middle + last must be 1, not {self.first + self.middle + self.last:g}")
        return self


class Attribution(_Strict):
    window_days: Annotated[float, Field(gt=0, le=730)] = 90
    half_life_days: Annotated[float, Field(gt=0, le=365)] = 7
    position_weights: PositionWeights = PositionWeights()
    conversions: Annotated[list[Literal[CONVERSIONS]], Field(min_length=1)] = list(CONVERSIONS)
    channels: Annotated[list[Literal[TOUCH_CHANNELS]], Field(min_length=1)] = list(TOUCH_CHANNELS)


class RfmSegment(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    r: str = "[1-5]"  # a regular expression over the R score (1-5), e.g. "[4-5]"
    f: str = "[1-5]"

    @field_validator("r", "f")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {value!r} ({exc})") from None
        return value


# The usual R x F map (first match wins); 'others' catches the rest.
DEFAULT_RFM_SEGMENTS = [
    RfmSegment(name="champions", r="[4-5]", f="[4-5]"),
    RfmSegment(name="loyal", r="[3-5]", f="[3-5]"),
    RfmSegment(name="new_customers", r="5", f="1"),
    RfmSegment(name="promising", r="[4-5]", f="[1-2]"),
    RfmSegment(name="at_risk", r="[1-2]", f="[3-5]"),
    RfmSegment(name="needs_attention", r="3", f="[1-2]"),
    RfmSegment(name="hibernating", r="[1-2]", f="[1-2]"),
]


class Rfm(_Strict):
    segments: list[RfmSegment] = DEFAULT_RFM_SEGMENTS


class Clv(_Strict):
    horizon_days: Annotated[int, Field(ge=1, le=3650)] = 365
    period_days: Annotated[int, Field(ge=1, le=365)] = 1  # purchases on one period count once
    min_customers: Annotated[int, Field(ge=3)] = 20  # below this many (or no repeat buyers) no fit


class LifecycleRule(_Strict):
    stage: Annotated[str, Field(pattern=_NAME)]
    first_seen_within_days: Annotated[int, Field(ge=0)] | None = None
    last_active_within_days: Annotated[int, Field(ge=0)] | None = None
    min_won_deals: Annotated[int, Field(ge=0)] | None = None

    def conditions(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if k != "stage" and v is not None}


class Lifecycle(_Strict):
    """Ordered rules, first match wins; the last rule has no condition and catches everyone else."""
    rules: Annotated[list[LifecycleRule], Field(min_length=1)] = [
        LifecycleRule(stage="new", first_seen_within_days=30),
        LifecycleRule(stage="active", last_active_within_days=30),
        LifecycleRule(stage="at_risk", last_active_within_days=90),
        LifecycleRule(stage="churned"),
    ]

    @model_validator(mode="after")
    def _catch_all_last(self) -> "Lifecycle":
        for rule in self.rules[:-1]:
            if not rule.conditions():
                raise ValueError(f"rule {rule.stage!r} has no condition but is not last: the rules after it "
                                 "could never match")
        if self.rules[-1].conditions():
            raise ValueError(f"the last rule ({self.rules[-1].stage!r}) must have no condition, so every "
                             "person gets a stage")
        return self


class AnalyticsSettings(_Strict):
    events_lookback_days: Annotated[int, Field(ge=1, le=3650)] = 90  # events read for funnels and paths
    funnels: list[EventFunnel] = []
    paths: Paths = Paths()
    attribution: Attribution = Attribution()
    rfm: Rfm = Rfm()
    clv: Clv = Clv()
    lifecycle: Lifecycle = Lifecycle()

    @field_validator("funnels")
    @classmethod
    def _unique_funnels(cls, funnels: list[EventFunnel]) -> list[EventFunnel]:
        names = [f.name for f in funnels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"funnel names must be unique: {', '.join(dupes)} repeated")
        return funnels


class AnalyticsConfig(BaseModel):
    model_config = ConfigDict(frozen=True)
    defaults: dict
    tenants: dict[str, dict]
    source: str

    def for_tenant(self, tenant_id: str) -> AnalyticsSettings:
        return _validate(_merge(self.defaults, self.tenants.get(tenant_id, {})), self.source, tenant_id)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _validate(raw: dict, source: str, scope: str) -> AnalyticsSettings:
    where = f"{source}: {'defaults' if scope == 'defaults' else f'tenant {scope!r}'}"
    try:
        return AnalyticsSettings.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"])
            lines.append(f"{where}{f' field {field!r}' if field else ''}: {e['msg']}")
        raise AnalyticsConfigError("\n".join(lines)) from None


def parse_analytics(text: str, source: str = "analytics.yaml", tenant_ids=None) -> AnalyticsConfig:
    """Parse and validate the defaults and every tenant's merged settings; tenant ids must be known."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise AnalyticsConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise AnalyticsConfigError(f"{source}: expected a mapping with 'defaults' and/or 'tenants'")
    unknown = sorted(set(raw) - {"defaults", "tenants"})
    if unknown:
        raise AnalyticsConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)} "
                                   "(expected 'defaults' and 'tenants')")
    defaults, tenants = raw.get("defaults") or {}, raw.get("tenants") or {}
    if not isinstance(defaults, dict) or not isinstance(tenants, dict):
        raise AnalyticsConfigError(f"{source}: 'defaults' and 'tenants' must be mappings")
    if tenant_ids is not None:
        strangers = sorted(set(tenants) - set(tenant_ids))
        if strangers:
            raise AnalyticsConfigError(f"{source}: tenant(s) {', '.join(map(repr, strangers))} are not in the "
                                       f"tenants configuration (known: {', '.join(sorted(tenant_ids))})")
    for tid, override in tenants.items():
        if not isinstance(override, dict):
            raise AnalyticsConfigError(f"{source}: tenant {tid!r}: expected a mapping of settings")
    config = AnalyticsConfig(defaults=defaults, tenants=tenants, source=source)
    _validate(defaults, source, "defaults")
    for tid in tenants:
        config.for_tenant(tid)
    return config


def analytics_file() -> Path:
    """FINCDP_ANALYTICS: the analytics settings (default analytics.yaml at the repository root)."""
    return Path(os.environ.get("FINCDP_ANALYTICS") or settings.REPO_ROOT / "analytics.yaml").resolve()


def load_analytics(path: Path | None = None, tenant_ids=None) -> AnalyticsConfig:
    path = path or analytics_file()
    if not path.exists():  # no file: every tenant runs on the defaults above
        return AnalyticsConfig(defaults={}, tenants={}, source=str(path))
    return parse_analytics(path.read_text(encoding="utf-8"), str(path), tenant_ids)
