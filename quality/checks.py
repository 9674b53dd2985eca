"""The quality rules as Dagster asset checks: one check per ruled table, partitioned like its asset.

Each check runs its table's great-expectations suite (suites.py) on the tenant's own warehouse file
for the run's partition (tenant x business date). A check with any `block` rule is blocking: when a
block rule fails, the result has severity ERROR and Dagster stops the steps downstream of the asset in
that run, which is that one tenant and date; other tenants' runs are separate runs and go on. Failing
`warn` rules give severity WARN and stop nothing.

Dagster 1.13 supports partitioned asset checks (`partitions_def` on @asset_check, in preview): the
check reads `context.partition_key` (a MultiPartitionKey) and its evaluation is recorded against that
partition, so the UI shows each tenant and date's result on its own.
"""

import warnings
from datetime import datetime, timezone

import dagster as dg

from assets.partitions import tenant_day, tenant_day_of
from fincdp.tenants import current_tenants
from quality.rules import RULES_FILE, RuleSet, TableRules, check_tenants, load_rules
from quality.suites import RuleOutcome, TableOutcome, absent_table, validate_table
from resources.warehouse import Warehouse

CHECK_NAME = "quality_rules"


def check_result(outcome: TableOutcome) -> dg.AssetCheckResult:
    failed = outcome.failed
    severity = dg.AssetCheckSeverity.ERROR if outcome.blocked or outcome.passed else dg.AssetCheckSeverity.WARN
    rules = {o.rule.name: o.metadata() for o in outcome.outcomes}
    metadata = {
        "tenant": outcome.tenant_id,
        "business_date": str(outcome.business_date) if outcome.business_date else "whole table",
        "table": outcome.table.table,
        "rows_checked": outcome.rows,
        "failed_rows": outcome.failed_rows,
        "failed_rules": dg.MetadataValue.json([o.rule.name for o in failed]),
        "blocking_rules_failed": dg.MetadataValue.json([o.rule.name for o in failed if o.rule.severity == "block"]),
        "sample_keys": dg.MetadataValue.json({o.rule.name: list(o.sample_keys) for o in failed}),
        "rule_names": dg.MetadataValue.json(list(rules)),
        "rules": dg.MetadataValue.json(rules),
    }
    if outcome.note:
        metadata["note"] = outcome.note
    return dg.AssetCheckResult(passed=outcome.passed, severity=severity, metadata=metadata,
                               description=_summary(outcome))


def _summary(outcome: TableOutcome) -> str:
    where = f"tenant {outcome.tenant_id}" + (f", {outcome.business_date}" if outcome.business_date else "")
    if outcome.passed:
        return f"{where}: all {len(outcome.outcomes)} rules passed on {outcome.rows} rows"
    return f"{where}: " + "; ".join(_describe_failure(o) for o in outcome.failed)


def _describe_failure(o: RuleOutcome) -> str:
    text = f"{o.rule.name} ({o.rule.severity}, {o.rule.kind} on {o.rule.column})"
    if o.error:
        return f"{text}: {o.error}"
    if o.rule.kind == "freshness":
        return f"{text}: newest {o.observed.get('newest')} is {o.observed.get('age_hours')} h old, " \
               f"SLA {o.observed.get('sla_hours')} h"
    rows = f"{o.unexpected_count} row{'' if o.unexpected_count == 1 else 's'}"
    return f"{text}: {rows}" + (f", e.g. {', '.join(o.sample_keys)}" if o.sample_keys else "")


def quality_check(ruleset: RuleSet, table: TableRules) -> dg.AssetChecksDefinition:
    lines = [f"- {r.name} ({r.severity}): {r.kind} on {r.column}" + (f", mostly {r.mostly}" if r.mostly else "")
             for r in table.rules]
    scope = "the partition's rows" if table.partition_column else "the whole table as the run built it"

    def _check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        day = tenant_day_of(context)
        business_date = day.business_date if table.partition_column else None
        now = datetime.now(timezone.utc)
        if not day.tenant.duckdb_path.exists() and warehouse.engine == "duckdb":
            # Nothing landed for this tenant yet: the table is absent, as the suite reports it.
            outcome = absent_table(ruleset, table, day.tenant, business_date)
        else:
            with warehouse.query(day.tenant) as session:
                outcome = validate_table(session, ruleset, table, day.tenant, business_date, now=now)
        result = check_result(outcome)
        if not outcome.passed:
            log = context.log.error if outcome.blocked else context.log.warning
            log(f"{table.table} quality: {result.description}")
        return result

    with warnings.catch_warnings():
        # partitions_def on a check is a preview feature of Dagster 1.13; chosen knowingly (module doc).
        warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")
        return dg.asset_check(
            asset=dg.AssetKey(table.asset_key_path), name=CHECK_NAME, blocking=table.blocking,
            partitions_def=tenant_day, compute_kind="great_expectations",
            description=f"Rules of {RULES_FILE.name} for {table.table}, on {scope}:\n" + "\n".join(lines),
            metadata={"rules_file": RULES_FILE.name,
                      "rule_names": dg.MetadataValue.json([r.name for r in table.rules])},
        )(_check)


RULES = load_rules()
check_tenants(RULES, current_tenants().ids, RULES_FILE.name)
CHECKS = [quality_check(RULES, table) for table in RULES.tables.values()]
