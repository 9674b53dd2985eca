"""Search indexes end to end on the local Elasticsearch-speaking server (noida-db): build from the
warehouse, publish by alias swap, re-publish, idempotency, masking, tenant isolation, failed builds."""
from __future__ import annotations

import http.server
import json
import threading
from datetime import date, datetime, timezone

import dagster as dg
import pyarrow as pa
import pytest

from assets.partitions import partition_key
from assets.search import (PROFILES, SEGMENTS, membership_rows, profile_documents, profile_index, profile_rows,
                           segment_documents, segment_index)
from fincdp.tenants import current_tenants
from resources.search import SearchIndex, SearchPublishError, TenantIsolationError
from resources.warehouse import Warehouse
from tests.support.search_server import search_server  # noqa: F401

DAY = date(2026, 11, 25)
NAMES = {"t001": ["王小明", "李建国", "欧阳娜娜", "John Smith"], "t002": ["赵海燕", "钱多多"]}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def tenant(tid: str):
    return current_tenants().get(tid)


def write_profiles(tid: str, names: list[str], *, calls: int = 1, as_of: date = DAY, warehouse: Warehouse | None = None,
                   tenant_obj=None) -> None:
    """A golden record per person and CRM contacts in ADS, as the dbt models leave them."""
    one_ids = [f"{tid}-P{i:04d}" for i in range(len(names))]
    golden = pa.table({
        "one_id": one_ids, "source_records": [2] * len(names),
        "person_name": names, "person_name_source": ["crm_contact"] * len(names),
        "title": ["总经理"] * len(names), "title_source": ["crm_contact"] * len(names),
        "mobile_token": [f"tok-m-{i}" for i in range(len(names))],
        "email_token": [f"tok-e-{i}" for i in range(len(names))],
        "company_name": ["华信科技有限公司"] * len(names), "company_name_source": ["crm_contact"] * len(names),
        "crm_enterprise_id": [f"E{i % 2}" for i in range(len(names))],
        "as_of_date": [as_of] * len(names)})
    # The first person has two CRM contacts; the last one none (known from WeCom only).
    contacts = [(one_ids[0], "C0a", "E0"), (one_ids[0], "C0b", "E9")] + [
        (one_ids[i], f"C{i}", f"E{i % 2}") for i in range(1, len(names) - 1)]
    person_360 = pa.table({
        "contact_id": [c[1] for c in contacts], "one_id": [c[0] for c in contacts],
        "contact_name": [names[one_ids.index(c[0])] for c in contacts], "title": ["总经理"] * len(contacts),
        "gender": ["F"] * len(contacts), "enterprise_id": [c[2] for c in contacts],
        "enterprise_name": ["华信科技有限公司"] * len(contacts), "has_mobile": [True, False] + [False] * (len(contacts) - 2),
        "has_email": [False] * len(contacts),
        **{c: [calls] * len(contacts) for c in ("calls_7d", "calls_30d", "calls_all", "events_7d", "events_30d",
                                                 "events_all", "leads", "converted_leads")},
        "last_active_on": [date(2026, 11, 20)] * len(contacts), "as_of_date": [as_of] * len(contacts)})
    with (warehouse or Warehouse()).writer(tenant_obj or tenant(tid)) as w:
        w.replace_table("dwm.dwm_person_golden", golden)
        w.replace_table("ads.ads_person_360", person_360)


def write_membership(tid: str, rows: list[tuple]) -> None:
    """segments.membership as the segments assets write it (created here until they land)."""
    table = pa.table({"segment_id": [r[0] for r in rows], "segment_version": pa.array([r[1] for r in rows], pa.int32()),
                      "one_id": [r[2] for r in rows],
                      "entered_at": pa.array([r[3] for r in rows], pa.timestamp("us")),
                      "as_of_date": pa.array([r[4] for r in rows], pa.date32())})
    with Warehouse().writer(tenant(tid)) as w:
        w.execute("create schema if not exists segments")
        w.replace_table("segments.membership", table)


def publish_profiles(search: SearchIndex, tid: str):
    with Warehouse().query(tenant(tid)) as session:
        rows = profile_rows(session)
    return search.publish(tenant(tid), PROFILES, profile_documents(rows))


def all_docs(search: SearchIndex, tid: str, index: str) -> dict[str, dict]:
    hits = search.search(tenant(tid), index, size=1000, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_publish_swap_and_republish(home, search_server):
    search = SearchIndex(url=search_server.url, keep_previous=1)
    write_profiles("t001", NAMES["t001"])
    first = publish_profiles(search, "t001")
    assert first.alias == "t001-profiles" and first.index.startswith("t001-profiles-")
    assert first.docs == 4 and first.previous == []
    docs = all_docs(search, "t001", "t001-profiles")
    assert sorted(docs) == ["t001-P0000", "t001-P0001", "t001-P0002", "t001-P0003"]
    p0 = docs["t001-P0000"]
    assert p0["contact_ids"] == ["C0a", "C0b"] and p0["enterprise_ids"] == ["E0", "E9"]
    assert p0["calls_7d"] == 2 and p0["has_mobile"] is True and p0["last_active_on"] == "2026-11-20"
    assert docs["t001-P0003"]["contact_ids"] == [] and docs["t001-P0003"]["calls_all"] == 0  # WeCom only

    write_profiles("t001", NAMES["t001"][:3], calls=5)  # a person left, activity changed
    second = publish_profiles(search, "t001")
    assert second.previous == [first.index] and second.deleted == [] and second.kept == [first.index]
    docs = all_docs(search, "t001", "t001-profiles")
    assert len(docs) == 3 and docs["t001-P0001"]["calls_30d"] == 5
    with search.client(tenant("t001")) as es:
        assert list(es.indices.get_alias(name="t001-profiles").body) == [second.index]

    third = publish_profiles(search, "t001")
    assert third.previous == [second.index] and third.deleted == [first.index] and third.kept == [second.index]
    with search.client(tenant("t001")) as es:
        assert sorted(es.indices.get(index="t001-profiles-*").body) == sorted([second.index, third.index])
        assert es.count(index="t001-profiles")["count"] == 3
    assert search.rollback(tenant("t001"), PROFILES) == second.index


def test_reindex_is_idempotent(home, search_server):
    search = SearchIndex(url=search_server.url)
    write_profiles("t001", NAMES["t001"])
    first = publish_profiles(search, "t001")
    before = all_docs(search, "t001", first.index)
    second = publish_profiles(search, "t001")
    assert second.index != first.index
    assert all_docs(search, "t001", second.index) == before  # same ids, same documents


def test_only_masked_personal_data(home, search_server):
    search = SearchIndex(url=search_server.url)
    write_profiles("t001", NAMES["t001"])
    result = publish_profiles(search, "t001")
    docs = all_docs(search, "t001", result.alias)
    assert sorted(d["name_masked"] for d in docs.values()) == ["J*** S****", "李**", "欧***", "王**"]
    text = json.dumps(docs, ensure_ascii=False)
    for raw in NAMES["t001"] + ["tok-m-", "tok-e-"]:
        assert raw not in text
    with search.client(tenant("t001")) as es:
        mapping = es.indices.get_mapping(index=result.index).body[result.index]["mappings"]
    assert mapping["dynamic"] == "strict" and mapping["properties"]["one_id"]["type"] == "keyword"
    assert mapping["properties"]["last_active_on"]["type"] == "date"
    assert not {"person_name", "contact_name", "mobile_token", "email_token"} & set(mapping["properties"])


def test_tenants_are_isolated(home, search_server):
    search = SearchIndex(url=search_server.url, keep_previous=0)
    for tid in ("t001", "t002"):
        write_profiles(tid, NAMES[tid])
    r1, r2 = publish_profiles(search, "t001"), publish_profiles(search, "t002")
    assert set(all_docs(search, "t001", "t001-profiles")) == {f"t001-P{i:04d}" for i in range(4)}
    assert set(all_docs(search, "t002", "t002-profiles")) == {"t002-P0000", "t002-P0001"}
    for name in ("t002-profiles", r2.index, "t00*", "*", "t001-profiles,t002-profiles"):
        with pytest.raises(TenantIsolationError, match="t001"):
            search.search(tenant("t001"), name)
    # t001's re-publish cleans up its own old build only.
    r1b = publish_profiles(search, "t001")
    assert r1b.deleted == [r1.index]
    with search.client(tenant("t002")) as es:
        assert list(es.indices.get_alias(name="t002-profiles").body) == [r2.index]


def test_failed_bulk_leaves_alias_untouched(home, search_server):
    search = SearchIndex(url=search_server.url)
    write_profiles("t001", NAMES["t001"])
    good = publish_profiles(search, "t001")

    def bad_docs():
        yield from profile_documents(profile_rows_of("t001"))
        yield {"_id": "t001-BAD1", "one_id": "t001-BAD1", "calls_7d": "many"}       # wrong type
        yield {"_id": "t001-BAD2", "one_id": "t001-BAD2", "phone": "13812345678"}   # undeclared field

    with pytest.raises(SearchPublishError) as failure:
        search.publish(tenant("t001"), PROFILES, bad_docs())
    message = str(failure.value)
    assert "t001" in message and "2 of 6" in message and "alias was not touched" in message
    assert "'t001-BAD1'" in message and "calls_7d" in message
    assert "'t001-BAD2'" in message and "strict" in message
    with search.client(tenant("t001")) as es:
        assert list(es.indices.get_alias(name="t001-profiles").body) == [good.index]
        assert list(es.indices.get(index="t001-profiles-*").body) == [good.index]  # the failed build is gone
        assert es.count(index="t001-profiles")["count"] == 4


def profile_rows_of(tid: str) -> pa.Table:
    with Warehouse().query(tenant(tid)) as session:
        return profile_rows(session)


def test_readers_never_see_a_partial_index(home, search_server):
    search = SearchIndex(url=search_server.url, chunk_size=500)
    n = 3000
    write_profiles("t001", [f"客户{i}" for i in range(n)])
    publish_profiles(search, "t001")
    seen, stop = [], threading.Event()

    def reader():
        with search.client(tenant("t001")) as es:
            while not stop.is_set():
                try:
                    seen.append(es.count(index="t001-profiles")["count"])
                except Exception as exc:  # e.g. the alias missing for a moment: a failure, recorded
                    seen.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(3):
            publish_profiles(search, "t001")
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 10 and set(seen) == {n}


def test_segment_index_holds_latest_membership(home, search_server):
    search = SearchIndex(url=search_server.url)
    entered = datetime(2026, 11, 20, 8, 30)
    write_membership("t001", [
        ("high_value", 2, "t001-P0000", entered, date(2026, 11, 24)),
        ("high_value", 2, "t001-P0000", entered, DAY),
        ("high_value", 2, "t001-P0001", entered, DAY),
        ("dormant", 1, "t001-P0002", entered, date(2026, 11, 24)),
        ("dormant", 1, "t001-P0003", entered, date(2026, 11, 26)),  # evaluated after the business date
    ])
    with Warehouse().query(tenant("t001")) as session:
        rows = membership_rows(session, DAY)
    result = search.publish(tenant("t001"), SEGMENTS, segment_documents(rows))
    assert result.alias == "t001-segments" and result.docs == 3
    docs = all_docs(search, "t001", "t001-segments")
    assert sorted(docs) == ["dormant:t001-P0002", "high_value:t001-P0000", "high_value:t001-P0001"]
    assert docs["high_value:t001-P0001"] == {"segment_id": "high_value", "segment_version": 2,
                                             "one_id": "t001-P0001", "entered_at": "2026-11-20T08:30:00+00:00",
                                             "as_of_date": "2026-11-25"}
    hits = search.search(tenant("t001"), "t001-segments", query={"term": {"one_id": "t001-P0000"}})
    assert [h["_source"]["segment_id"] for h in hits["hits"]["hits"]] == ["high_value"]


def test_assets_materialize_per_tenant(home, search_server):
    write_profiles("t002", NAMES["t002"])
    write_membership("t002", [("vip", 1, "t002-P0000", datetime(2026, 11, 1), DAY)])
    search = SearchIndex(url=search_server.url)
    result = dg.materialize([profile_index, segment_index], partition_key=partition_key("t002", DAY),
                            resources={"warehouse": Warehouse(), "search": search})
    assert result.success
    materializations = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    meta = {m.asset_key.path[1]: m.metadata for m in materializations}
    assert meta["profile_index"]["dagster/row_count"].value == 2
    assert meta["profile_index"]["alias"].value == "t002-profiles"
    assert meta["segment_index"]["dagster/row_count"].value == 1
    assert meta["profile_index"]["bulk_seconds"].value >= 0
    with search.client(tenant("t001")) as es:
        assert not es.indices.exists(index="t001-profiles")  # the partition's tenant only


def test_assets_do_not_run_without_a_cluster(home):
    result = dg.materialize([profile_index], partition_key=partition_key("t001", DAY),
                            resources={"warehouse": Warehouse(), "search": SearchIndex(url="")})
    assert result.success and result.get_asset_materialization_events() == []


class _HeaderCapture(http.server.BaseHTTPRequestHandler):
    """Answers like an Elasticsearch 8 node and records the Accept/Content-Type headers it got."""
    received: list = []

    def do_GET(self):
        self.received.append((self.headers.get("Accept"), self.headers.get("Content-Type")))
        body = json.dumps({"version": {"number": "8.15.0"}, "tagline": "You Know, for Search"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("compatibility, expected", [(9, "compatible-with=9"), (8, "compatible-with=8")])
def test_compatibility_mode_sets_the_requested_api_version(compatibility, expected):
    _HeaderCapture.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeaderCapture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        search = SearchIndex(url=f"http://127.0.0.1:{server.server_address[1]}", compatibility=compatibility)
        with search.client(tenant("t001")) as es:
            assert es.info()["version"]["number"] == "8.15.0"
    finally:
        server.shutdown()
        server.server_close()
    [(accept, _)] = _HeaderCapture.received
    assert accept == f"application/vnd.elasticsearch+json; {expected}"


def test_demo_starts_a_server_unless_a_cluster_is_configured(tmp_path, monkeypatch):
    from fincdp.search_server import start_for_demo

    monkeypatch.setenv("FINCDP_ES_URL", "")  # restored after the test, whatever start_for_demo sets
    monkeypatch.delenv("FINCDP_ES_URL")
    server = start_for_demo(tmp_path)
    try:
        assert server is not None and server.data_dir == (tmp_path / "search").resolve()
        with SearchIndex.from_env().client(tenant("t001")) as es:
            assert es.info()["version"]["number"].startswith("8.")
        assert start_for_demo(tmp_path) is None  # FINCDP_ES_URL is set now: use that cluster
    finally:
        if server:
            server.remove()


def test_segment_index_is_empty_until_segments_exist(home, search_server):
    write_profiles("t001", NAMES["t001"])  # the warehouse exists, segments.membership does not
    search = SearchIndex(url=search_server.url)
    result = dg.materialize([segment_index], partition_key=partition_key("t001", DAY),
                            resources={"warehouse": Warehouse(), "search": search})
    [event] = result.get_asset_materialization_events()
    assert event.event_specific_data.materialization.metadata["dagster/row_count"].value == 0
    with search.client(tenant("t001")) as es:
        assert es.count(index="t001-segments")["count"] == 0
        assert es.indices.get_mapping(index="t001-segments").body  # the alias exists, with the mappings


def test_a_document_without_id_fails_the_build(home, search_server):
    search = SearchIndex(url=search_server.url)
    with pytest.raises(SearchPublishError, match="t001.*no _id"):
        search.publish(tenant("t001"), SEGMENTS, iter([{"segment_id": "s", "segment_version": 1, "one_id": "x"}]))
    with search.client(tenant("t001")) as es:
        assert not es.indices.exists_alias(name="t001-segments")
        assert es.options(ignore_status=404).indices.get(index="t001-segments-*").body == {}
