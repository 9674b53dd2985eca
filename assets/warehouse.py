"""The dbt layers (DWD -> DWM -> DWS -> ADS) as Dagster assets, partitioned like the ODS assets.

dbt sources carry the ODS asset keys (["ods", table]); models are keyed [layer, model], so the
lineage graph runs unbroken from each source API to each ADS table.
"""
import json
from typing import Any, Mapping, Optional

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


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, partitions_def=tenant_day,
            dagster_dbt_translator=LayerTranslator(DagsterDbtTranslatorSettings(enable_asset_checks=True)),
            name="warehouse_models")
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse):
    day = tenant_day_of(context)
    variables = json.dumps(dbt_vars(day.tenant, day.business_date))
    # Collected first: on DuckDB the dbt process holds the tenant's file until it ends.
    events = list(dbt.cli(["build", "--vars", variables], context=context).stream())
    with warehouse.query(day.tenant) as session:
        for event in events:
            if isinstance(event, dg.Output):
                key = context.asset_key_for_output(event.output_name)
                event = event.with_metadata({**event.metadata, **_row_counts(session, key, day.business_date)})
            yield event


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


ASSETS = [warehouse_models]
