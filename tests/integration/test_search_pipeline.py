"""The search indexes in the daily job: CRM contacts through ODS, dbt, OneID and ADS to the tenant's
profile index, published by alias swap; the same day again gives the same documents in a new build."""
from __future__ import annotations

import json

import dagster as dg

from assets.partitions import partition_key
from resources.search import SearchIndex
from tests.integration.test_oneid_pipeline import DAY1, contact
from tests.integration.test_ods_assets import write_tenant_data
from tests.support.jobs import job_upstream_of
from tests.support.search_server import search_server  # noqa: F401


def profiles(search: SearchIndex, tenant) -> tuple[str, dict[str, dict]]:
    with search.client(tenant) as es:
        [index] = es.indices.get_alias(name="t001-profiles").body
        hits = es.search(index="t001-profiles", size=100, query={"match_all": {}})["hits"]["hits"]
    return index, {h["_id"]: h["_source"] for h in hits}


def test_daily_job_publishes_the_profile_index(platform, search_server, monkeypatch):
    from orchestration.definitions import build_definitions

    p = platform
    write_tenant_data(p.data_dir, "t001", contacts=[
        contact(1, DAY1, name="王小明", mobile="13812340001"),
        contact(2, DAY1, name="王小明", mobile="+86 138 1234 0001"),  # the same person by phone
        contact(3, DAY1, name="李建国", email="li@corp-example.com"),
    ])
    p.start_sources()
    monkeypatch.setenv("FINCDP_ES_URL", search_server.url)
    defs = build_definitions()
    job = job_upstream_of(defs, ["search", "profile_index"])
    with dg.instance_for_test() as instance:
        first = job.execute_in_process(partition_key=partition_key("t001", DAY1), instance=instance)
        assert first.success
        search = SearchIndex.from_env()
        tenant = p.tenants().get("t001")
        index1, docs = profiles(search, tenant)
        with p.session("t001") as s:
            people = dict(s.rows("select contact_id, one_id from ads.ads_person_360"))
        assert len(docs) == len(set(people.values())) == 2
        wang = docs[people["C1"]]
        assert wang["contact_ids"] == ["C1", "C2"] and wang["has_mobile"] is True and wang["name_masked"] == "王**"
        assert docs[people["C3"]]["name_masked"] == "李**" and docs[people["C3"]]["has_email"] is True
        text = json.dumps(docs, ensure_ascii=False)
        assert "王小明" not in text and "李建国" not in text and "1381234" not in text

        events = instance.get_latest_materialization_event(dg.AssetKey(["search", "profile_index"]))
        metadata = events.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == 2 and metadata["index"].value == index1

        assert job.execute_in_process(partition_key=partition_key("t001", DAY1), instance=instance).success
        index2, again = profiles(search, tenant)
        assert index2 != index1 and again == docs  # a new build, the same documents
