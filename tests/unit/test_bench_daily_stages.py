"""`fincdp bench warehouse` after ADS: each stage's job selects that stage's assets only, every asset of
the daily job is measured by some step (or named as left out), and the report shows the stages and the
daily job's total without changing the build's figures."""
from __future__ import annotations

import dagster as dg
import pytest

from fincdp.bench_daily_stages import STAGES, stage_job, unmeasured
from fincdp.bench_warehouse import LAYERS, Step
from tests.unit.test_bench_warehouse import render


@pytest.fixture(scope="module")
def defs():
    from orchestration.definitions import build_definitions

    return build_definitions()


def _keys(job) -> set[str]:
    return {k.to_user_string() for k in job.asset_layer.selected_asset_keys}


def test_each_stage_job_runs_only_its_own_assets(defs):
    segments, analytics, boss = (stage_job(defs, name) for name in STAGES)
    assert "segments/membership" in _keys(segments) and all(k.startswith("segments/") for k in _keys(segments))
    assert _keys(boss) == {"boss/decision_makers", "ods/wecom_customer_departments", "ods/wecom_customer_users"}
    assert {"ads/ads_event_funnels", "ads/ads_event_paths", "ads/ads_attribution", "ads/ads_customer_value",
            "ads/ads_lifecycle"} <= _keys(analytics)
    assert not {"ads/ads_person_360", "ads/ads_lead_funnel"} & _keys(analytics)  # dbt models: the dbt steps
    checks = {f"{c.asset_key.to_user_string()}:{c.name}" for c in analytics.asset_layer.asset_graph.asset_check_keys}
    assert checks == {"ads/ads_lead_funnel:lead_funnel_consistent"}
    assert not any("dbt" in node for stage in (segments, analytics, boss) for node in stage.graph.node_dict)
    with pytest.raises(ValueError, match="unknown stage 'search'"):
        stage_job(defs, "search")


def test_every_asset_of_the_daily_job_has_a_step_or_is_named(defs):
    # ODS, dbt, OneID, the stages and search (left out) cover every asset; what is left are the Python
    # quality-rule checks, which the report names as not measured
    missing = unmeasured(defs)
    assert missing and all(m.endswith(":quality_rules") for m in missing), missing


def _steps():
    build = [Step(day, name, "", 10.0, 300.0, None, 1.0, {})
             for day in ("full", "incremental") for name in ("pulls", "files", *LAYERS, "snapshots", "tests")]
    detail = {"segments": {"load_s": 6.0, "run_s": 3.0, "steps": [{"step": "segments", "seconds": 2.5}],
                           "assets": [{"asset": "segments/membership", "rows": 1234}], "checks": []},
              "analytics": {"load_s": 7.0, "run_s": 40.0,
                            "steps": [{"step": "ads__ads_event_paths", "seconds": 30.0},
                                      {"step": "ads__ads_lead_funnel_lead_funnel_consistent", "seconds": 0.5}],
                            "assets": [{"asset": "ads/ads_event_paths", "rows": 40}],
                            "checks": [{"check": "ads/ads_lead_funnel:lead_funnel_consistent", "passed": False}]},
              "boss": {"load_s": 8.0, "run_s": 60.0, "steps": [{"step": "boss__decision_makers", "seconds": 59.0}],
                       "assets": [{"asset": "boss/decision_makers", "rows": 99}], "checks": []}}
    seconds = {"segments": 10.0, "analytics": 50.0, "boss": 70.0}
    stages = [Step(day, name, "", seconds[name], 5000.0, None, 1.0, detail[name])
              for day in ("full", "incremental") for name in STAGES]
    return build + stages


def test_report_shows_the_stages_and_the_daily_job_without_search():
    table = render(_steps())
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    for label in ("segments (", "analytics (", "boss model ("):
        assert sum(row.startswith(f"| {label}") for row in rows) == 1, label
    # the build's total and peak leave the stages out (8 build steps of 10 s, 300 MB) ...
    assert "| **build: ODS landing + dbt** | **80.0** | 300 | | **80.0** | 300 | |" in table
    # ... the daily job adds them: 80 + 10 + 50 + 70 s, with the stages' peak
    assert ("| **daily job without search: build + segments, analytics, boss** | **210.0** | 5,000 | | **210.0** "
            "| 5,000 | |") in table
    assert "day 1 3.5 min, day 2 3.5 min" in table and "not in these figures" in table
    assert "| analytics: `ads__ads_event_paths` | 30.0 | 30.0 |" in table
    assert "`segments/membership` 1,234" in table and "analytics 7.0 / 7.0 s" in table
    assert "did not pass (warnings, not failures of the run): ads/ads_lead_funnel:lead_funnel_consistent" in table


def test_report_without_stages_is_the_build_report():
    table = render([s for s in _steps() if s.name not in STAGES])
    assert "daily job" not in table.lower() and "search" not in table


def test_a_failed_stage_names_the_tenant_date_and_step(monkeypatch):
    from datetime import date

    from assets.partitions import tenant_day
    from fincdp import bench_daily_stages

    @dg.asset(partitions_def=tenant_day)
    def broken():
        raise RuntimeError("boom in the model")

    class FakeDefs:
        pass

    def fake_job(defs, name):
        return dg.Definitions(assets=[broken], jobs=[dg.define_asset_job("bench_x", partitions_def=tenant_day)]
                              ).resolve_job_def("bench_x")

    monkeypatch.setattr(bench_daily_stages, "stage_job", fake_job)
    monkeypatch.setattr("orchestration.definitions.build_definitions", lambda: FakeDefs())
    message = r"(?s)stage boss failed for tenant t001 on 2026-11-26:\nbroken: .*boom in the model"
    with pytest.raises(RuntimeError, match=message):
        bench_daily_stages.run_stage("t001", date(2026, 11, 26), "boss")
