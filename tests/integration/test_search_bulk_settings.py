"""The bulk-load settings chosen for throughput (docs/search.md, "Bulk throughput") change nothing a
reader of the index relies on: null fields left out are found by the same queries as nulls sent, gzip
request bodies load the same documents, and the settings come from the environment as documented."""
from __future__ import annotations

from elasticsearch.serializer import OrjsonSerializer

from assets.search import PROFILES
from fincdp.tenants import current_tenants
from resources.search import SearchIndex
from tests.support.search_server import search_server  # noqa: F401

T001 = current_tenants().get("t001")

DOCS = [
    {"_id": "t001-P1", "one_id": "t001-P1", "name_masked": "王**", "boss_score": 0.75, "decision_maker_level": "L1",
     "contact_ids": ["C1"], "buying_roles": ["economic"], "calls_7d": 2, "last_active_on": "2026-11-20"},
    {"_id": "t001-P2", "one_id": "t001-P2", "name_masked": "李**", "boss_score": None, "decision_maker_level": None,
     "contact_ids": [], "buying_roles": [], "calls_7d": 0, "last_active_on": None},
]


def _searches(search: SearchIndex, index: str) -> dict:
    """What applications ask of a profile index, answered as sorted ids."""
    queries = {
        "has_boss_score": {"exists": {"field": "boss_score"}},
        "no_boss_score": {"bool": {"must_not": {"exists": {"field": "boss_score"}}}},
        "no_level": {"bool": {"must_not": {"exists": {"field": "decision_maker_level"}}}},
        "no_contacts": {"bool": {"must_not": {"exists": {"field": "contact_ids"}}}},
        "never_active": {"bool": {"must_not": {"exists": {"field": "last_active_on"}}}},
        "level_l1": {"term": {"decision_maker_level": "L1"}},
        "score_range": {"range": {"boss_score": {"gte": 0.5}}},
    }
    return {name: sorted(h["_id"] for h in search.search(T001, index, query=q, size=10)["hits"]["hits"])
            for name, q in queries.items()}


def test_omitting_nulls_answers_every_query_as_sending_them(search_server):
    with_nulls = SearchIndex(url=search_server.url, omit_nulls=False)
    without = SearchIndex(url=search_server.url, omit_nulls=True)
    sent = with_nulls.publish(T001, PROFILES, iter(DOCS), build_id="20261125t000000000001")
    compact = without.publish(T001, PROFILES, iter(DOCS), build_id="20261125t000000000002")

    expected = {"has_boss_score": ["t001-P1"], "no_boss_score": ["t001-P2"], "no_level": ["t001-P2"],
                "no_contacts": ["t001-P2"], "never_active": ["t001-P2"], "level_l1": ["t001-P1"],
                "score_range": ["t001-P1"]}
    assert _searches(with_nulls, sent.index) == expected
    assert _searches(without, compact.index) == expected

    p2 = without.search(T001, compact.index, query={"ids": {"values": ["t001-P2"]}})["hits"]["hits"][0]["_source"]
    assert "boss_score" not in p2 and "decision_maker_level" not in p2 and "last_active_on" not in p2
    assert p2["contact_ids"] == [] and p2["calls_7d"] == 0  # empty lists and zeros are values: kept
    p1 = without.search(T001, compact.index, query={"ids": {"values": ["t001-P1"]}})["hits"]["hits"][0]["_source"]
    assert p1["boss_score"] == 0.75 and p1["decision_maker_level"] == "L1"


def test_gzip_bodies_load_the_same_documents(search_server):
    plain = SearchIndex(url=search_server.url, keep_previous=5)
    gzipped = SearchIndex(url=search_server.url, keep_previous=5, http_compress=True)
    a = plain.publish(T001, PROFILES, iter(DOCS), build_id="20261125t000000000001")
    b = gzipped.publish(T001, PROFILES, iter(DOCS), build_id="20261125t000000000002")
    assert a.docs == b.docs == 2

    def sources(index):
        hits = plain.search(T001, index, query={"match_all": {}}, size=10)["hits"]["hits"]
        return {h["_id"]: h["_source"] for h in hits}

    assert sources(a.index) == sources(b.index)
    assert sources(b.index)["t001-P1"]["name_masked"] == "王**"


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("FINCDP_ES_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("FINCDP_ES_HTTP_COMPRESS", "true")
    monkeypatch.setenv("FINCDP_ES_BULK_DOCS", "50000")
    search = SearchIndex.from_env()
    assert search.http_compress is True and search.chunk_size == 50_000 and search.omit_nulls is True
    with search.client(T001) as es:
        assert isinstance(es.transport.serializers.get_serializer("application/json"), OrjsonSerializer)
    monkeypatch.delenv("FINCDP_ES_HTTP_COMPRESS")
    monkeypatch.delenv("FINCDP_ES_BULK_DOCS")
    assert SearchIndex.from_env().http_compress is False and SearchIndex.from_env().chunk_size == 20_000
