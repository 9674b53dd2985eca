"""The daily job cut to what a test is about (orchestration.jobs.job_upstream_of): every later stage
(segments, search, analytics, the boss model) runs in the full job and costs each run of it time that a
warehouse or OneID test does not need."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import dagster as dg
import pytest

from assets.partitions import partition_key
from orchestration.jobs import job_upstream_of

__all__ = ["WAREHOUSE_KEYS", "demo_data", "demo_day_on_duckdb", "job_upstream_of"]

# What the warehouse and OneID tests read: the last dbt layer and the OneID output.
WAREHOUSE_KEYS = (["ads", "ads_person_360"], ["ads", "ads_enterprise_360"], ["ads", "ads_funnel_base"],
                  ["ads", "ads_metric_values"], ["dwm", "dwm_person_golden"], ["dwm", "dwm_enterprise_golden"],
                  ["snapshots", "snp_crm__contacts"], ["snapshots", "snp_crm__enterprises"])


@contextmanager
def demo_data(tmp_path_factory, name: str, *, scale: int) -> Iterator["Platform"]:
    """Generated demo data for both tenants, files dropped, in a FINCDP_HOME of its own; the local
    sources are the caller's to start (and are stopped on the way out)."""
    from fincdp.demo.run import drop_files, generate_demo_data
    from tests.conftest import BUSINESS_DATE, Platform

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp(name)
    mp.setenv("FINCDP_HOME", str(root / "home"))
    p = Platform(root / "home", root / "data")
    try:
        generate_demo_data(p.tenants(), p.data_dir, scale=scale, business_date=BUSINESS_DATE, progress=False)
        drop_files(p.tenants(), p.data_dir)
        yield p
    finally:
        if p.sources is not None:
            p.sources.stop()
        mp.undo()


@contextmanager
def demo_day_on_duckdb(tmp_path_factory, name: str, *, scale: int, keys: list[list[str]] | None = None
                       ) -> Iterator["Platform"]:
    """Demo data (demo_data) served by the local sources, and one day of t001 run on DuckDB — the
    whole daily job, or the part upstream of `keys`."""
    from orchestration.definitions import build_definitions
    from tests.conftest import BUSINESS_DATE

    with demo_data(tmp_path_factory, name, scale=scale) as p:
        p.start_sources()
        defs = build_definitions()
        job = job_upstream_of(defs, *keys) if keys else defs.resolve_job_def("fincdp_daily")
        with dg.instance_for_test() as instance:
            assert job.execute_in_process(partition_key=partition_key("t001", BUSINESS_DATE),
                                          instance=instance).success
        p.sources.stop()
        p.sources = None
        yield p
