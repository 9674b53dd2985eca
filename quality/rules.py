"""The data-quality rules file (quality/rules.yaml): declarative rules per table, validated on load.

A rule names one column of one table and one kind of expectation; `severity: block` stops what is
downstream of the table for the tenant and business date that failed, `warn` only reports. Errors
name the file, the table and the rule, as `fincdp tenants check` does for tenants.yaml.

This module is pure configuration: no great_expectations, no Dagster. suites.py turns a table's rules
into a great-expectations suite; checks.py turns them into Dagster asset checks.
"""
from __future__ import annotations

import functools
import json
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fincdp.settings import REPO_ROOT

RULES_FILE = Path(__file__).with_name("rules.yaml")
DBT_MANIFEST = REPO_ROOT / "dbt_project" / "target" / "manifest.json"
LAYERS = ("ods", "dwd", "dwm", "dws", "ads")

Kind = Literal["not_null", "enum", "range", "unique", "regex", "length", "freshness"]
KIND_ALIASES = {"required": "not_null", "accepted_values": "enum", "sla": "freshness"}
# Which optional parameters each kind takes; `mostly` is everywhere but freshness (one value: the newest).
PARAMETERS: dict[str, set[str]] = {
    "not_null": {"mostly"}, "unique": {"mostly"}, "enum": {"values", "mostly"},
    "range": {"min", "max", "mostly"}, "length": {"min", "max", "mostly"},
    "regex": {"pattern", "mostly"}, "freshness": {"sla_hours"},
}
_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_TABLE = re.compile(r"^(ods|dwd|dwm|dws|ads)\.[a-z][a-z0-9_]*$")


class RulesError(ValueError):
    """The rules file is invalid; the message names the table and the rule."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    kind: Kind
    column: Annotated[str, Field(min_length=1)]
    severity: Literal["block", "warn"]
    description: str = ""
    mostly: Annotated[float, Field(gt=0, le=1)] | None = None  # share of rows that must pass
    values: Annotated[list[Union[bool, int, float, str]], Field(min_length=1)] | None = None  # enum
    min: float | None = None      # range: value bounds; length: character-count bounds (inclusive)
    max: float | None = None
    pattern: str | None = None    # regex, matched against the whole value
    sla_hours: Annotated[float, Field(gt=0)] | None = None  # freshness; else tenant's or defaults'

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") in KIND_ALIASES:
            data = {**data, "kind": KIND_ALIASES[data["kind"]]}
        return data

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _parameters_fit_kind(self) -> "Rule":
        given = {p for p in ("mostly", "values", "min", "max", "pattern", "sla_hours") if getattr(self, p) is not None}
        extra = given - PARAMETERS[self.kind]
        if extra:
            raise ValueError(f"{', '.join(sorted(extra))} is not a parameter of kind {self.kind!r} "
                             f"(it takes: {', '.join(sorted(PARAMETERS[self.kind])) or 'nothing'})")
        if self.kind == "enum" and self.values is None:
            raise ValueError("kind 'enum' needs values: [...]")
        if self.kind == "regex" and self.pattern is None:
            raise ValueError("kind 'regex' needs a pattern")
        if self.kind in ("range", "length"):
            if self.min is None and self.max is None:
                raise ValueError(f"kind {self.kind!r} needs min, max or both")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min {self.min} is greater than max {self.max}")
            if self.kind == "length" and any(v is not None and (v < 0 or v != int(v)) for v in (self.min, self.max)):
                raise ValueError("length bounds are whole numbers of characters, at least 0")
        return self

    @property
    def anchored_pattern(self) -> str:
        """great-expectations searches; a rule's pattern must match the whole value."""
        return f"^(?:{self.pattern})$"

    def describe(self) -> dict[str, Any]:
        """The rule as check metadata shows it (parameters only, never data)."""
        params = {p: getattr(self, p) for p in ("values", "min", "max", "pattern", "mostly", "sla_hours")
                  if getattr(self, p) is not None}
        return {"kind": self.kind, "column": self.column, "severity": self.severity, **params}


class TableRules(_Strict):
    table: str                      # layer.table, as in the tenant's warehouse
    key: str                        # the column sample failing rows are named by (never personal data)
    partition_column: str | None    # rows of one business date; None: the whole table as last built
    description: str = ""
    rules: tuple[Rule, ...]

    @property
    def layer(self) -> str:
        return self.table.split(".")[0]

    @property
    def asset_key_path(self) -> list[str]:
        return self.table.split(".")

    @property
    def blocking(self) -> bool:
        return any(r.severity == "block" for r in self.rules)

    @property
    def row_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind != "freshness")

    def columns_needed(self) -> list[str]:
        """The only columns a check reads: the key (for sample keys) and the ruled columns."""
        cols = [self.key] if self.row_rules else []
        for rule in self.rules:
            if rule.column not in cols:
                cols.append(rule.column)
        return cols


class TenantOverrides(_Strict):
    sla_hours: Annotated[float, Field(gt=0)] | None = None


class Defaults(_Strict):
    sla_hours: Annotated[float, Field(gt=0)] = 36.0
    sample_keys: Annotated[int, Field(ge=0, le=100)] = 5


class RuleSet(_Strict):
    version: Literal[1] = 1
    defaults: Defaults = Defaults()
    tenants: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")], TenantOverrides] = {}
    tables: dict[str, TableRules]

    def table(self, name: str) -> TableRules:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"no quality rules for table {name!r}; ruled: {', '.join(self.tables)}") from None

    def sla_hours(self, rule: Rule, tenant_id: str) -> float:
        """The tenant's override wins, then the rule's own SLA, then the file's default."""
        override = self.tenants.get(tenant_id)
        if override is not None and override.sla_hours is not None:
            return override.sla_hours
        return rule.sla_hours if rule.sla_hours is not None else self.defaults.sla_hours


def covered_until(value: Any, zone: ZoneInfo) -> datetime | None:
    """When data stamped `value` stops being current: a date covers its whole day in the tenant's zone,
    a timestamp only its moment (naive timestamps are in the tenant's zone)."""
    if value is None or value != value:  # None, NaN, NaT
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time.min, zone)
    raise TypeError(f"freshness needs a date or timestamp column, got {type(value).__name__}")


# --- loading and validation -----------------------------------------------------------------------

def _where(source: str, table: str | None = None, rule: Any = None) -> str:
    where = source
    if table is not None:
        where += f": table {table!r}"
    if rule is not None:
        where += f" rule {rule!r}" if isinstance(rule, str) else f" rule #{rule + 1}"
    return where


def _errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e["loc"])
        parts.append(f"{f'field {field!r}: ' if field else ''}{e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


@functools.lru_cache(maxsize=1)
def _ods_columns() -> dict[str, tuple[list[str], set[str]]]:
    """ODS table -> (its columns, the spec fields holding personal data, which land only as tokens)."""
    from assets.ingestion.landing import ods_schema
    from assets.ingestion.specs import ALL_SPECS

    return {spec.table: (ods_schema(spec).names, {f.name for f in spec.fields if f.pii})
            for spec in ALL_SPECS}


def _dbt_columns(manifest_path: Path | None) -> dict[str, dict[str, dict]] | None:
    """layer.model -> documented columns with their meta, from the parsed dbt manifest (if there)."""
    if manifest_path is None or not manifest_path.exists():
        return None
    nodes = json.loads(manifest_path.read_text(encoding="utf-8"))["nodes"].values()
    return {f"{n['fqn'][1]}.{n['name']}": n.get("columns") or {} for n in nodes
            if n.get("resource_type") == "model" and len(n.get("fqn", [])) > 2}


def _check_columns(source: str, t: TableRules, dbt: dict[str, dict[str, dict]] | None) -> None:
    if t.layer == "ods":
        ods = _ods_columns()
        if t.table not in ods:
            raise RulesError(f"{_where(source, t.table)}: not an ODS table; ODS tables: {', '.join(sorted(ods))}")
        known, pii = ods[t.table]
        documented: dict[str, dict] = {c: {} for c in known}
    else:
        if dbt is None:  # no parsed manifest here (e.g. before `dbt parse`): the warehouse decides at run time
            return
        if t.table not in dbt:
            raise RulesError(f"{_where(source, t.table)}: no dbt model {t.table!r} in {DBT_MANIFEST.name}")
        documented, pii = dbt[t.table], set()
        if not documented:
            return
    for what, column, rule in ([("key", t.key, None)] + [("column", r.column, r.name) for r in t.rules]
                               + ([("partition_column", t.partition_column, None)] if t.partition_column else [])):
        if column not in documented:
            hint = (f" (personal data lands only as {column}_token/{column}_enc)" if column in pii else "")
            raise RulesError(f"{_where(source, t.table, rule)}: {what} {column!r} is not a column of "
                             f"{t.table}{hint}")
    if documented.get(t.key, {}).get("meta", {}).get("pii_class") == "C2" or t.key.endswith(("_token", "_enc")):
        raise RulesError(f"{_where(source, t.table)}: key {t.key!r} holds personal data; sample keys "
                         "must name rows without it")


def parse_rules(text: str, source: str = "rules.yaml", *, manifest_path: Path | None = DBT_MANIFEST) -> RuleSet:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tables"), dict) or not raw["tables"]:
        raise RulesError(f"{source}: expected a mapping with a non-empty 'tables' mapping")
    unknown = set(raw) - {"version", "defaults", "tenants", "tables"}
    if unknown:
        raise RulesError(f"{source}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}")

    tables: dict[str, TableRules] = {}
    for table, body in raw["tables"].items():
        if not isinstance(table, str) or not _TABLE.match(table):
            raise RulesError(f"{_where(source, str(table))}: table names are <layer>.<table> with layer one of "
                             f"{', '.join(LAYERS)}")
        if not isinstance(body, dict) or not isinstance(body.get("rules"), list) or not body["rules"]:
            raise RulesError(f"{_where(source, table)}: expected a mapping with a non-empty 'rules' list")
        rules, seen = [], set()
        for i, rule in enumerate(body["rules"]):
            label = rule.get("name") if isinstance(rule, dict) and isinstance(rule.get("name"), str) else i
            if not isinstance(rule, dict):
                raise RulesError(f"{_where(source, table, label)}: expected a mapping")
            try:
                parsed = Rule.model_validate(rule)
            except ValidationError as exc:
                raise RulesError(f"{_where(source, table, label)}: {_errors(exc)}") from None
            if parsed.name in seen:
                raise RulesError(f"{_where(source, table, parsed.name)}: the table already has a rule of that name")
            seen.add(parsed.name)
            rules.append(parsed)
        ods = table.startswith("ods.")
        fields = {k: v for k, v in body.items() if k != "rules"}
        fields.setdefault("key", "_source_id" if ods else None)
        fields.setdefault("partition_column", "_business_date" if ods else None)
        if fields["key"] is None:
            raise RulesError(f"{_where(source, table)}: needs a key (the column that names a failing row)")
        try:
            tables[table] = TableRules.model_validate({**fields, "table": table, "rules": tuple(rules)})
        except ValidationError as exc:
            raise RulesError(f"{_where(source, table)}: {_errors(exc)}") from None

    try:
        ruleset = RuleSet.model_validate({**raw, "tables": tables})
    except ValidationError as exc:
        raise RulesError(f"{source}: {_errors(exc)}") from None
    dbt = _dbt_columns(manifest_path)
    for t in ruleset.tables.values():
        _check_columns(source, t, dbt)
    return ruleset


def load_rules(path: Path | None = None, *, manifest_path: Path | None = DBT_MANIFEST) -> RuleSet:
    path = path or RULES_FILE
    if not path.exists():
        raise RulesError(f"rules file {path} does not exist")
    return parse_rules(path.read_text(encoding="utf-8"), str(path), manifest_path=manifest_path)


def check_tenants(ruleset: RuleSet, tenant_ids: list[str], source: str = "rules.yaml") -> None:
    """Overrides for a tenant that does not exist are a typo, not a no-op."""
    unknown = sorted(set(ruleset.tenants) - set(tenant_ids))
    if unknown:
        raise RulesError(f"{source}: tenants section names unknown tenant(s) {', '.join(unknown)}; "
                         f"configured: {', '.join(tenant_ids)}")
