"""The file drop sensor: one run per new file, launched exactly once.

Run keys carry the tenant and the file's checksum, so Dagster never launches the same file twice.
The cursor records a file only once its run exists in the instance: a crash between seeing a file
and launching its run leaves it out of the cursor, and the next tick requests it again.
"""
from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from assets.ingestion.files import parse_file_name, sha256_of
from assets.partitions import partition_key
from fincdp.tenants import current_tenants
from orchestration.jobs import file_ingest_job
from orchestration.org_sync import SENSORS as ORG_SYNC_SENSORS


def _op_name(spec) -> str:
    return f"ods__{spec.asset_name}"


def _run_exists(instance: dg.DagsterInstance, run_key: str) -> bool:
    runs = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
    return bool(runs)


@dg.sensor(job=file_ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def file_drop_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    launched: dict[str, str] = state.get("launched", {})      # tenant/name@size:mtime -> run key
    requests, skipped = [], []
    for tenant in current_tenants().tenants:
        if tenant.sources.files is None:
            continue
        drop_dir: Path = tenant.sources.files.path()
        if not drop_dir.exists():
            continue
        for path in sorted(p for p in drop_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
            stat = path.stat()
            seen_key = f"{tenant.id}/{path.name}@{stat.st_size}:{stat.st_mtime_ns}"
            if seen_key in launched:
                continue
            dropped = parse_file_name(path)
            if dropped is None:
                skipped.append(f"{tenant.id}/{path.name}")
                continue
            run_key = f"file:{tenant.id}:{sha256_of(path)}"
            if _run_exists(context.instance, run_key):
                launched[seen_key] = run_key
                continue
            requests.append(dg.RunRequest(
                run_key=run_key,
                partition_key=partition_key(tenant.id, dropped.business_date),
                asset_selection=[dg.AssetKey(["ods", dropped.spec.asset_name])],
                run_config={"ops": {_op_name(dropped.spec): {"config": {"files": [path.name]}}}},
                tags={"tenant": tenant.id, "fincdp/file": path.name}))
    if skipped:
        context.log.warning("files not named <entity>_<YYYY-MM-DD>.<csv|jsonl|parquet> for a known entity "
                            f"were left in place: {', '.join(skipped[:20])}")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"launched": launched}, sort_keys=True))


SENSORS = [file_drop_sensor, *ORG_SYNC_SENSORS]
