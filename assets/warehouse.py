"""The dbt layers (DWD -> DWM -> DWS -> ADS) as Dagster assets, partitioned like the ODS assets.

dbt sources carry the ODS asset keys (["ods", table]); models are keyed [layer, model], so the
lineage graph runs unbroken from each source API to each ADS table.
"""
import json
from typing import Any, Iterator, Mapping, Optional

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from assets.partitions import tenant_day, tenant_day_of
from resources.dbt import dbt_project, dbt_vars
from resources.warehouse import ReadSession, Warehouse

dbt_project.prepare_if_dev()


class LayerTranslator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Optional[DbtProject]
                       ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "model":
            layer = props["fqn"][1]
            return spec.replace_attributes(key=[layer, props["name"]], group_name=layer)
        if props["resource_type"] == "snapshot":
            return spec.replace_attributes(key=["snapshots", props["name"]], group_name="dwd")
        return spec  # sources keep ["ods", table]


TRANSLATOR = LayerTranslator(DagsterDbtTranslatorSettings(enable_asset_checks=True))
# Two dbt steps, so that the rules-file checks on DWD (quality/) run between them: a blocking DWD
# failure stops DWM, DWS and ADS for that tenant and date, as a blocking ODS failure stops DWD.
DWD_SELECTION = "path:models/dwd path:snapshots"
MARTS_SELECTION = "path:models/dwm path:models/dws path:models/ads"


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, partitions_def=tenant_day,
            dagster_dbt_translator=TRANSLATOR, select=DWD_SELECTION, name="warehouse_dwd")
def warehouse_dwd(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse):
    yield from _dbt_build(context, dbt, warehouse)


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, partitions_def=tenant_day,
            dagster_dbt_translator=TRANSLATOR, select=MARTS_SELECTION, name="warehouse_marts")
def warehouse_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse):
    yield from _dbt_build(context, dbt, warehouse)


def _dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse) -> Iterator:
    """`dbt build` of the step's models for the run's tenant and date, with row counts read afterwards."""
    day = tenant_day_of(context)
    variables = json.dumps(dbt_vars(day.tenant, day.business_date))
    # Collected first: on DuckDB the dbt process holds the tenant's file until it ends. A failed model or
    # error-level test still fails the step, but only after what did build and the test results are
    # recorded in Dagster (raising at once would leave them in the step's log only).
    invocation = dbt.cli(["build", "--vars", variables], context=context, raise_on_error=False)
    events = list(invocation.stream())
    with warehouse.query(day.tenant) as session:
        for event in events:
            if isinstance(event, dg.Output):
                key = context.asset_key_for_output(event.output_name)
                event = event.with_metadata({**event.metadata, **_row_counts(session, key, day.business_date)})
            yield event
    error = invocation.get_error()
    if error is not None:
        raise error


def _row_counts(session: ReadSession, key: dg.AssetKey, business_date) -> dict:
    """Row counts we read ourselves, the same way on every engine (the MySQL adapter reports none)."""
    table = ".".join(key.path)
    if len(key.path) != 2 or not session.table_exists(table):
        return {}
    counts = {"dagster/row_count": session.scalar(f"select count(*) from {table}")}
    if "business_date" in session.columns(table):
        counts["partition_row_count"] = session.scalar(
            f"select count(*) from {table} where business_date = ?", [business_date])
    return counts


ASSETS = [warehouse_dwd, warehouse_marts]
