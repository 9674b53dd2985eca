"""The file drop sensor launches each file exactly once, and loses none across a crash."""
from __future__ import annotations

import json

import dagster as dg

from orchestration.definitions import defs
from orchestration.sensors import file_drop_sensor
from tests.integration.test_ods_assets import CSV, drop


def tick(instance, cursor):
    return file_drop_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def launch(instance, request):
    job = defs.resolve_job_def("file_ingest")
    return job.execute_in_process(partition_key=request.partition_key, run_config=request.run_config,
                                  asset_selection=request.asset_selection, instance=instance,
                                  tags={**request.tags, "dagster/run_key": request.run_key})


def test_each_file_launches_once_and_a_crash_before_launch_loses_nothing(platform):
    drop(platform, "t001", "contacts_2026-11-25.csv", CSV)
    drop(platform, "t002", "events_2026-11-25.jsonl", "")
    drop(platform, "t001", "notes.txt", "not a data file")
    with dg.instance_for_test() as instance:
        first = tick(instance, None)
        assert sorted(r.partition_key for r in first.run_requests) == ["2026-11-25|t001", "2026-11-25|t002"]
        contacts = next(r for r in first.run_requests if "t001" in r.partition_key)
        assert contacts.run_key.startswith("file:t001:")
        assert contacts.asset_selection == [dg.AssetKey(["ods", "file_contacts"])]
        assert contacts.run_config == {"ops": {"ods__file_contacts": {"config": {"files": ["contacts_2026-11-25.csv"]}}}}
        assert json.loads(first.cursor)["launched"] == {}  # nothing launched yet

        # The daemon died before launching: the next tick asks for the same runs again.
        second = tick(instance, first.cursor)
        assert [r.run_key for r in second.run_requests] == [r.run_key for r in first.run_requests]

        assert launch(instance, contacts).success
        third = tick(instance, second.cursor)
        assert [r.partition_key for r in third.run_requests] == ["2026-11-25|t002"]
        assert list(json.loads(third.cursor)["launched"].values()) == [contacts.run_key]

        # The same bytes under another name are the same file: no second load.
        drop(platform, "t001", "contacts_2026-11-25_copy.csv", CSV)
        assert [r.partition_key for r in tick(instance, third.cursor).run_requests] == ["2026-11-25|t002"]
    with platform.session("t001") as s:
        assert s.scalar("select count(*) from ods.file_contacts") == 2
