"""A great-expectations suite per ruled table, run over one tenant's rows of one business date.

The rows come from the tenant's own warehouse file (a read-only session), only the columns the rules
and the key need, as Arrow then pandas; great-expectations runs in an ephemeral context over that
frame. Each rule comes back with passed, the unexpected count and a few sample keys: the table's key
column of failing rows, never the failing values (which may be personal data, even if tokenised).

great_expectations is imported inside the functions: importing it costs seconds.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from fincdp.tenants import Tenant
from quality.rules import Rule, RuleSet, TableRules, covered_until
from resources.warehouse import ReadSession

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

AGE_PREFIX = "__age_hours__"   # freshness: a derived column, hours since each value stopped being current


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    passed: bool
    element_count: int = 0
    unexpected_count: int = 0
    unexpected_percent: float | None = None
    sample_keys: tuple[str, ...] = ()
    observed: dict[str, Any] = field(default_factory=dict)  # freshness: newest value, age, SLA
    error: str | None = None

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.rule.describe(), "passed": self.passed,
                               "unexpected_count": self.unexpected_count}
        if self.rule.kind != "freshness":
            out["element_count"] = self.element_count
            out["unexpected_percent"] = (round(self.unexpected_percent, 4)
                                         if self.unexpected_percent is not None else None)
            out["sample_keys"] = list(self.sample_keys)
        out.update(self.observed)
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class TableOutcome:
    table: TableRules
    tenant_id: str
    business_date: date | None
    rows: int
    outcomes: tuple[RuleOutcome, ...]
    note: str | None = None    # e.g. the table does not exist for this tenant

    @property
    def failed(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed)

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def blocked(self) -> bool:
        """A block rule failed: what is downstream of the table must not run on this partition."""
        return any(o.rule.severity == "block" for o in self.failed)

    @property
    def failed_rows(self) -> int:
        """Unexpected rows summed over the failed rules (a row failing two rules counts twice)."""
        return sum(o.unexpected_count for o in self.failed)

    def outcome(self, rule_name: str) -> RuleOutcome:
        return next(o for o in self.outcomes if o.rule.name == rule_name)


# --- reading --------------------------------------------------------------------------------------

def _plain_arrow(data: pa.Table) -> pa.Table:
    """Decimals as float64 (great-expectations compares numbers, not Decimal objects)."""
    columns = []
    for f, col in zip(data.schema, data.columns):
        columns.append(col.cast(pa.float64()) if pa.types.is_decimal(f.type) else col)
    return pa.table(columns, names=data.column_names)


def read_rows(session: ReadSession, table: TableRules, columns: list[str], business_date: date | None
              ) -> "pd.DataFrame":
    cols = ", ".join(f'"{c}"' for c in columns)
    sql, params = f"select {cols} from {table.table}", []
    if table.partition_column and business_date is not None:
        sql += f' where "{table.partition_column}" = ?'
        params.append(business_date)
    return _plain_arrow(session.arrow(sql, params)).to_pandas()


def _age_hours(values: "pd.Series", zone: ZoneInfo, now: datetime) -> "pd.Series":
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        moments = values if values.dt.tz is not None else values.dt.tz_localize(zone)
        return (pd.Timestamp(now) - moments).dt.total_seconds() / 3600.0
    ends = {v: covered_until(v, zone) for v in values.dropna().unique()}  # few distinct dates
    return values.map(lambda v: (now - ends[v]).total_seconds() / 3600.0 if v in ends else None).astype("float64")


# --- the suite ------------------------------------------------------------------------------------

def build_suite(ruleset: RuleSet, table: TableRules, tenant_id: str, rules: tuple[Rule, ...] | None = None
                ) -> "gx.ExpectationSuite":
    """The table's rules as a great-expectations suite; each expectation carries its rule's name in meta."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    expectations = []
    for rule in rules if rules is not None else table.rules:
        common: dict[str, Any] = {"column": rule.column, "meta": {"rule": rule.name}}
        if rule.mostly is not None:
            common["mostly"] = rule.mostly
        if rule.kind == "not_null":
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(**common))
        elif rule.kind == "unique":
            expectations.append(gxe.ExpectColumnValuesToBeUnique(**common))
        elif rule.kind == "enum":
            expectations.append(gxe.ExpectColumnValuesToBeInSet(value_set=list(rule.values), **common))
        elif rule.kind == "range":
            expectations.append(gxe.ExpectColumnValuesToBeBetween(min_value=rule.min, max_value=rule.max, **common))
        elif rule.kind == "length":
            expectations.append(gxe.ExpectColumnValueLengthsToBeBetween(
                min_value=None if rule.min is None else int(rule.min),
                max_value=None if rule.max is None else int(rule.max), **common))
        elif rule.kind == "regex":
            expectations.append(gxe.ExpectColumnValuesToMatchRegex(regex=rule.anchored_pattern, **common))
        elif rule.kind == "freshness":
            # The newest value is the one with the smallest age; it must be within the SLA.
            expectations.append(gxe.ExpectColumnMinToBeBetween(
                column=AGE_PREFIX + rule.column, max_value=ruleset.sla_hours(rule, tenant_id),
                meta={"rule": rule.name}))
        else:  # the loader only admits the kinds above
            raise ValueError(f"table {table.table!r} rule {rule.name!r}: unknown kind {rule.kind!r}")
    return gx.ExpectationSuite(name=f"{table.table}:{tenant_id}", expectations=expectations)


def _context() -> "gx.data_context.EphemeralDataContext":
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _sample_keys(result: dict, key: str | None, n: int) -> tuple[str, ...]:
    keys: list[str] = []
    for row in result.get("partial_unexpected_index_list") or []:
        value = row.get(key) if key and isinstance(row, dict) else None
        if value is not None and str(value) not in keys:
            keys.append(str(value))  # only the key column: failing values never leave this function
    return tuple(keys[:n])


def run_suite(ruleset: RuleSet, table: TableRules, tenant_id: str, frame: "pd.DataFrame", *,
              key: str | None, rules: tuple[Rule, ...]) -> list[RuleOutcome]:
    n = ruleset.defaults.sample_keys
    context = _context()
    suite = context.suites.add(build_suite(ruleset, table, tenant_id, rules))
    batch_definition = (context.data_sources.add_pandas("fincdp")
                        .add_dataframe_asset(table.table)
                        .add_batch_definition_whole_dataframe(f"{tenant_id}_partition"))
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 2 * n}
    if key is not None:
        result_format["unexpected_index_column_names"] = [key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        validation = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format=result_format)

    by_rule = {r.expectation_config.meta["rule"]: r for r in validation.results}
    outcomes = []
    for rule in rules:
        r = by_rule[rule.name]
        result = r.result or {}
        error = None
        if r.exception_info and r.exception_info.get("raised_exception"):
            error = str(r.exception_info.get("exception_message") or "the expectation raised")[:500]
        if rule.kind == "freshness":
            outcomes.append(RuleOutcome(rule, bool(r.success), unexpected_count=0 if r.success else 1,
                                        error=error, observed=_freshness_observed(
                                            ruleset, rule, tenant_id, frame, result.get("observed_value"))))
            continue
        outcomes.append(RuleOutcome(
            rule, bool(r.success) and error is None,
            element_count=int(result.get("element_count", len(frame)) or 0),
            unexpected_count=int(result.get("unexpected_count") or 0),
            unexpected_percent=result.get("unexpected_percent"),
            sample_keys=_sample_keys(result, key, n), error=error))
    return outcomes


def _freshness_observed(ruleset: RuleSet, rule: Rule, tenant_id: str, frame: "pd.DataFrame",
                        age: Any) -> dict[str, Any]:
    values = frame[rule.column].dropna()
    newest = values.max() if len(values) else None
    return {"newest": None if newest is None else str(newest),
            "age_hours": None if age is None else round(float(age), 2),
            "sla_hours": ruleset.sla_hours(rule, tenant_id)}


# --- one tenant, one business date -----------------------------------------------------------------

def absent_table(ruleset: RuleSet, table: TableRules, tenant: Tenant, business_date: date | None) -> TableOutcome:
    """No table (the tenant lacks the source, or nothing was built yet): no row breaks a row rule,
    but data that is not there is not fresh."""
    outcomes = tuple(
        RuleOutcome(r, False, unexpected_count=1, error=f"{table.table} does not exist",
                    observed={"sla_hours": ruleset.sla_hours(r, tenant.id)})
        if r.kind == "freshness" else RuleOutcome(r, True) for r in table.rules)
    return TableOutcome(table, tenant.id, business_date, 0, outcomes, note=f"{table.table} does not exist")


def validate_table(session: ReadSession, ruleset: RuleSet, table: TableRules, tenant: Tenant,
                   business_date: date | None, *, now: datetime | None = None) -> TableOutcome:
    """Run the table's suite on the tenant's rows of the business date (or the whole table)."""
    now = now or datetime.now(timezone.utc)
    if not session.table_exists(table.table):
        return absent_table(ruleset, table, tenant, business_date)

    existing = set(session.columns(table.table))
    missing = [r for r in table.rules if r.column not in existing]
    present = tuple(r for r in table.rules if r.column in existing)
    key = table.key if table.key in existing and table.row_rules else None
    columns = [c for c in table.columns_needed() if c in existing]
    frame = read_rows(session, table, columns, business_date) if columns else None
    outcomes: dict[str, RuleOutcome] = {
        r.name: RuleOutcome(r, False, error=f"column {r.column!r} is missing from {table.table}") for r in missing}
    if present and frame is not None:
        zone = ZoneInfo(tenant.timezone)
        for rule in present:
            if rule.kind == "freshness":
                frame[AGE_PREFIX + rule.column] = _age_hours(frame[rule.column], zone, now)
        for outcome in run_suite(ruleset, table, tenant.id, frame, key=key, rules=present):
            outcomes[outcome.rule.name] = outcome
    return TableOutcome(table, tenant.id, business_date, 0 if frame is None else len(frame),
                        tuple(outcomes[r.name] for r in table.rules))
