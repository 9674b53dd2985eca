"""Segments as Dagster assets: one multi-asset evaluates every segment of the partition's tenant.

Each segment id any tenant defines (segments/<tenant_id>/<segment_id>.yaml) is an asset
["segments", <segment_id>] with its size, entries, exits, version and compiled SQL in the
materialization metadata; a tenant that does not define a segment simply does not materialize it.
["segments", "membership"] is the table of current members that the Elasticsearch index reads.
"""
from datetime import date
from pathlib import Path

import dagster as dg

from assets.partitions import tenant_day, tenant_day_of
from fincdp.segments.catalog import (CALLS, ENTERPRISE_360, EVENTS, GOLDEN, IDENTITY_MAP, PERSON_360,
                                     PERSON_TAGS)
from fincdp.segments.compiler import compile_segment
from fincdp.segments.language import SegmentError, load_segment, load_tenant_segments, segments_root
from fincdp.segments.membership import update_segments
from fincdp.tenants import current_tenants
from resources.warehouse import Warehouse

MEMBERSHIP_KEY = dg.AssetKey(["segments", "membership"])
_ANY_DATE = date(2025, 1, 1)  # the tables a rule reads do not depend on the date
RESERVED_IDS = {"membership"}  # ids of the tables the asset writes, never a segment's


def table_key(table: str) -> dg.AssetKey:
    """The asset that writes a warehouse table the segments read."""
    return dg.AssetKey(["oneid", "identities"]) if table == IDENTITY_MAP else dg.AssetKey(table.split("."))


ALL_INPUTS = [table_key(t) for t in (GOLDEN, PERSON_360, ENTERPRISE_360, EVENTS, CALLS, PERSON_TAGS, IDENTITY_MAP)]


def _segment_specs(root: Path) -> list[dg.AssetSpec]:
    """One spec per segment id of any tenant, depending on the tables its rules read (every input,
    when a definition is invalid: the run then fails with the file's errors)."""
    deps, descriptions = {}, {}
    for tenant_id in current_tenants().ids:
        for path in sorted((root / tenant_id).glob("*.yaml")):
            seg_id = path.stem
            try:
                segment = load_segment(path, tenant_id=tenant_id)
                tables = compile_segment(segment, _ANY_DATE).tables
                descriptions.setdefault(seg_id, segment.description)
            except SegmentError:
                tables = [GOLDEN, PERSON_360, ENTERPRISE_360, EVENTS, CALLS, PERSON_TAGS, IDENTITY_MAP]
            deps.setdefault(seg_id, set()).update(table_key(t) for t in tables)
    return [dg.AssetSpec(["segments", seg_id], deps=sorted(keys, key=lambda k: k.to_string()), group_name="segments",
                         description=descriptions.get(seg_id, f"Segment {seg_id}"), skippable=True,
                         kinds={"python"}, metadata={"definition": f"segments/<tenant>/{seg_id}.yaml"})
            for seg_id, keys in sorted(deps.items()) if seg_id not in RESERVED_IDS]


def _markdown_sql(sql: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"```sql\n{sql}\n```")


def build_segments_asset(root: Path | None = None) -> dg.AssetsDefinition:
    """The multi-asset over the definitions under `root` (default: FINCDP_SEGMENTS_DIR or segments/)."""
    root = root or segments_root()
    segment_specs = _segment_specs(root)
    membership_spec = dg.AssetSpec(
        MEMBERSHIP_KEY, deps=[s.key for s in segment_specs] or ALL_INPUTS, group_name="segments", skippable=True,
        kinds={"python"},
        description="Current members of every segment of the tenant (segment_id, segment_version, one_id, "
                    "entered_at, as_of_date); entries and exits in segments.membership_history.")

    @dg.multi_asset(name="segments", specs=[*segment_specs, membership_spec], partitions_def=tenant_day,
                    can_subset=True)
    def segments(context: dg.AssetExecutionContext, warehouse: Warehouse):
        day = tenant_day_of(context)
        definitions = load_tenant_segments(day.tenant.id, root)  # raises naming every bad file
        reserved = [s.source for s in definitions if s.id in RESERVED_IDS]
        if reserved:
            raise SegmentError(f"tenant {day.tenant.id!r} segments",
                               [f"{source}: segment id 'membership' is reserved for the membership table"
                                for source in reserved])
        with warehouse.writer(day.tenant) as session:
            results = update_segments(session, definitions, day.business_date)
        selected = context.selected_asset_keys
        engine = warehouse.engine
        prefix = "" if engine == "duckdb" else f"{day.tenant.database_prefix}_"
        for r in results:
            key = dg.AssetKey(["segments", r.segment.id])
            if key in selected:
                yield dg.MaterializeResult(asset_key=key, metadata={
                    **r.metadata(), "dagster/row_count": r.size,
                    "compiled_sql": _markdown_sql(r.compiled.sql_for(engine, prefix))})
            elif key not in context.assets_def.keys:
                context.log.warning(f"segment {r.segment.id} of tenant {day.tenant.id} is new since the code "
                                    "location loaded: evaluated into the tables, shown as an asset after a reload")
            context.log.info(f"tenant {day.tenant.id}, segment {r.segment.id} v{r.segment.version}: "
                             f"{r.size} members, +{r.entries} -{r.exits} in {r.seconds:.2f}s")
        if MEMBERSHIP_KEY in selected:
            rows = "\n".join(f"| {r.segment.id} | {r.segment.version} | {r.segment.kind} | {r.size} | {r.entries} "
                             f"| {r.exits} |" for r in results)
            yield dg.MaterializeResult(asset_key=MEMBERSHIP_KEY, metadata={
                "dagster/row_count": sum(r.size for r in results), "segments": len(results),
                "summary": dg.MetadataValue.md("| segment | version | kind | members | entries | exits |\n"
                                               "|---|---|---|---|---|---|\n" + rows)})

    return segments


ASSETS = [build_segments_asset()]
