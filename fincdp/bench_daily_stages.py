"""The stages of the daily job after ADS, for `fincdp bench warehouse`: segments, analytics, boss.

Each stage is run the way the daily job (orchestration/jobs.py `fincdp_daily`) runs it: a Dagster job
over the pipeline's Definitions (same assets, asset checks, resources and in-process executor) for the
tenant-day partition, selecting only that stage's assets; they read the warehouse the dbt layers and
OneID built. The search publish (assets/search.py) is the one stage after ADS left out: it needs an
Elasticsearch-API server, and noida-db (the local one) holds about 10 KB of RAM per document, so a
million profiles do not fit beside the rest of the run (`fincdp bench search` measures it at smaller
counts).

- segments:  assets/segments (every segment of the tenant, then `segments/membership`);
- analytics: the Python analytics assets (assets/analytics.py `PYTHON_ASSETS`: event funnels, paths,
             attribution, customer value, lifecycle) and the lead-funnel check on the dbt model;
- boss:      the customer corps' org ODS (assets/boss_customers.py, empty for a tenant that connects
             none) and `boss/decision_makers`.
"""
from __future__ import annotations

import time
from datetime import date

STAGES = ("segments", "analytics", "boss")
LABELS = {"segments": "segments (every segment + membership)",
          "analytics": "analytics (Python assets + lead-funnel check)",
          "boss": "boss model (customer corps' ODS + decision makers)"}
SEARCH_NOTE = ("Search publish (assets/search.py, profile and segment indexes) is not in these figures: the local "
               "ES-API server (noida-db) holds about 10 KB of RAM per document, so 1M profiles do not fit beside "
               "the rest of the run; `fincdp bench search` measures it at smaller document counts.")


def stage_selection(name: str):
    """The asset (and check) selection of a stage, from the modules' own exports so that a new segment
    or analytics asset is measured without an edit here."""
    import dagster as dg

    if name == "segments":
        from assets.segments import ASSETS
        return dg.AssetSelection.assets(*ASSETS)
    if name == "analytics":
        from assets.analytics import PYTHON_ASSETS, lead_funnel_check
        return dg.AssetSelection.assets(*PYTHON_ASSETS) | dg.AssetSelection.checks(lead_funnel_check)
    if name == "boss":
        from assets.boss import ASSETS
        return dg.AssetSelection.assets(*ASSETS)
    raise ValueError(f"unknown stage {name!r}: one of {', '.join(STAGES)}")


def stage_job(defs, name: str):
    """A tenant-day job of one stage with the daily job's resources, checks and executor."""
    from orchestration.jobs import job_of

    return job_of(defs, stage_selection(name), f"bench_{name}")


def unmeasured(defs) -> list[str]:
    """Assets and asset checks of the daily job that no step of the warehouse benchmark runs: not ODS
    landing (the pulls and files steps), dbt (its layer, snapshot and test steps), OneID, a stage here,
    or search (left out, see SEARCH_NOTE)."""
    import dagster as dg

    graph = defs.resolve_asset_graph()
    covered_assets, covered_checks = set(), set()
    for name in STAGES:
        selection = stage_selection(name)
        covered_assets |= selection.resolve(graph)
        covered_checks |= selection.resolve_checks(graph)
    for assets_def in defs.assets:
        if isinstance(assets_def, dg.AssetsDefinition) and any("dbt" in spec.kinds for spec in assets_def.specs):
            covered_assets |= set(assets_def.keys)    # dbt run / snapshot steps
            covered_checks |= set(assets_def.check_keys)  # dbt test step
    other = {"ingestion", "oneid", "search"}  # the ODS steps, the OneID step, search (left out)
    missing = [k.to_user_string() for k in graph.get_all_asset_keys()
               if graph.get(k).is_executable and k not in covered_assets and graph.get(k).group_name not in other]
    missing += [f"{c.asset_key.to_user_string()}:{c.name}" for c in dg.AssetSelection.all().resolve_checks(graph)
                if c not in covered_checks]
    return sorted(missing)


def _run_stats(instance, result) -> dict:
    """Per-step seconds from the run's event log, rows per materialized asset and check verdicts."""
    starts, steps = {}, []
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        if event.event_type_value == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and entry.step_key in starts:
            steps.append({"step": entry.step_key, "seconds": round(entry.timestamp - starts[entry.step_key], 2)})
    assets, checks = [], []
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            m = event.event_specific_data.materialization
            rows = m.metadata.get("dagster/row_count")
            assets.append({"asset": m.asset_key.to_user_string(), "rows": None if rows is None else int(rows.value)})
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            e = event.event_specific_data
            checks.append({"check": f"{e.asset_key.to_user_string()}:{e.check_name}", "passed": e.passed})
    return {"steps": steps, "assets": assets, "checks": checks}


def run_stage(tenant_id: str, business_date: date, name: str) -> dict:
    """One stage for the tenant and date in this process (FINCDP_HOME and FINCDP_WAREHOUSE already set);
    raises naming the stage, tenant, date and failed step when the run fails."""
    started = time.perf_counter()
    import dagster as dg

    from assets.partitions import partition_key
    from orchestration.definitions import build_definitions

    job = stage_job(build_definitions(), name)
    loaded = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(partition_key=partition_key(tenant_id, business_date), instance=instance,
                                        raise_on_error=False)
        ran = time.perf_counter()
        if not result.success:
            errors = [f"{e.step_key}: {e.event_specific_data.error.to_string()}" for e in result.all_events
                      if e.event_type_value == "STEP_FAILURE"]
            raise RuntimeError(f"stage {name} failed for tenant {tenant_id} on {business_date}:\n"
                               + "\n".join(errors or ["(no step failed: see the run's log above)"]))
        stats = _run_stats(instance, result)
    return {"stage": name, "load_s": round(loaded - started, 2), "run_s": round(ran - loaded, 2), **stats}
