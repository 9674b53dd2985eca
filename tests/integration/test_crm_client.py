"""CrmClient against the local CRM server over real HTTP: paging, windows, resume, and faults."""
from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from fincdp.localsaas.crm import CrmServer
from resources.crm import CrmApi, CrmClient
from resources.errors import SourceApiError

CST = timezone(timedelta(hours=8))
SINCE = datetime(2026, 11, 25, tzinfo=CST)
BEFORE = datetime(2026, 11, 26, tzinfo=CST)

# Tenant t001's contacts, out of order on purpose; the comments say where each falls in [SINCE, BEFORE).
T001_CONTACTS = """\
{"id": "c05", "enterprise_id": "e01", "name": "王芳", "mobile": "+86 139 1234 5678", "email": "Wang.Fang@Example.com", "id_number": null, "title": "财务总监", "gender": "F", "created_at": "2026-10-01T09:00:00+08:00", "updated_at": "2026-11-25T10:00:00+08:00", "deleted": false}
{"id": "c01", "enterprise_id": "e01", "name": "张伟", "mobile": "13812345678", "email": "zhangwei@example.com", "id_number": null, "title": "总经理", "gender": "M", "created_at": "2026-10-01T09:00:00+08:00", "updated_at": "2026-11-24T23:59:59+08:00", "deleted": false}
{"id": "c02", "enterprise_id": "e01", "name": "李娜", "mobile": "13912345678", "email": "lina@example.com", "id_number": null, "title": "出纳", "gender": "F", "created_at": "2026-10-01T09:00:00+08:00", "updated_at": "2026-11-25T00:00:00+08:00", "deleted": false}
{"id": "c03", "enterprise_id": "e02", "name": "刘洋", "mobile": "0086-137-1234-5678", "email": "liuyang@example.com", "id_number": null, "title": "采购经理", "gender": "M", "created_at": "2026-10-02T09:00:00+08:00", "updated_at": "2026-11-24T16:00:00Z", "deleted": false}
{"id": "c04", "enterprise_id": "e02", "name": "陈静", "mobile": "１３６１２３４５６７８", "email": "chenjing@example.com", "id_number": null, "title": "会计", "gender": "F", "created_at": "2026-10-02T09:00:00+08:00", "updated_at": "2026-11-25T09:30:00+08:00", "deleted": false}
{"id": "c06", "enterprise_id": "e02", "name": "杨磊", "mobile": "13512345678", "email": "yanglei@example.com", "id_number": null, "title": "法务", "gender": "M", "created_at": "2026-10-03T09:00:00+08:00", "updated_at": "2026-11-25T02:00:00Z", "deleted": true}
{"id": "c07", "enterprise_id": "e03", "name": "赵敏", "mobile": "13412345678", "email": "zhaomin@example.com", "id_number": null, "title": "总经理助理", "gender": "F", "created_at": "2026-10-03T09:00:00+08:00", "updated_at": "2026-11-25T12:00:00+08:00", "deleted": false}
{"id": "c08", "enterprise_id": "e03", "name": "黄强", "mobile": "13312345678", "email": "huangqiang@example.com", "id_number": null, "title": "董事长", "gender": "M", "created_at": "2026-10-04T09:00:00+08:00", "updated_at": "2026-11-25T12:00:00+08:00", "deleted": false}
{"id": "c09", "enterprise_id": "e03", "name": "周杰", "mobile": "13212345678", "email": "zhoujie@example.com", "id_number": null, "title": "IT主管", "gender": "M", "created_at": "2026-10-04T09:00:00+08:00", "updated_at": "2026-11-25T18:45:00+08:00", "deleted": false}
{"id": "c10", "enterprise_id": "e03", "name": "吴婷", "mobile": "13112345678", "email": "wuting@example.com", "id_number": null, "title": "行政", "gender": "F", "created_at": "2026-10-05T09:00:00+08:00", "updated_at": "2026-11-25T15:59:59.999999Z", "deleted": false}
{"id": "c11", "enterprise_id": "e04", "name": "徐明", "mobile": "13012345678", "email": "xuming@example.com", "id_number": null, "title": "销售", "gender": "M", "created_at": "2026-10-05T09:00:00+08:00", "updated_at": "2026-11-26T00:00:00+08:00", "deleted": false}
{"id": "c12", "enterprise_id": "e04", "name": "孙丽", "mobile": "15012345678", "email": "sunli@example.com", "id_number": null, "title": "客服", "gender": "F", "created_at": "2026-10-06T09:00:00+08:00", "updated_at": "2026-11-26T08:00:00+08:00", "deleted": false}
"""
# In the window, by (instant, id): c02 and c03 are the same instant (SINCE) written in two offsets;
# c10 is the last microsecond before BEFORE; c01 is just before SINCE, c11 is BEFORE itself.
T001_WINDOW_IDS = ["c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10"]

T001_ENTERPRISES = """\
{"id": "e01", "name": "上海浦江融资租赁有限公司", "credit_code": "91310000MA1FL0XX1A", "industry": "租赁和商务服务业", "province": "上海市", "city": "上海市", "address": "浦东新区世纪大道100号", "legal_representative": "张伟", "registered_capital": "50000000.00", "created_at": "2026-01-01T00:00:00+08:00", "updated_at": "2026-11-25T08:00:00+08:00", "deleted": false}
"""

# Tenant t002 reuses id c02 on purpose: ids are only unique within a tenant.
T002_CONTACTS = """\
{"id": "c02", "enterprise_id": "e91", "name": "郑爽", "mobile": "18612345678", "email": "zhengshuang@example.cn", "id_number": null, "title": "经理", "gender": "F", "created_at": "2026-10-01T09:00:00+08:00", "updated_at": "2026-11-25T11:00:00+08:00", "deleted": false}
{"id": "b01", "enterprise_id": "e91", "name": "冯刚", "mobile": "18712345678", "email": "fenggang@example.cn", "id_number": null, "title": "主管", "gender": "M", "created_at": "2026-10-01T09:00:00+08:00", "updated_at": "2026-11-25T13:00:00+08:00", "deleted": false}
"""

TENANTS = {"t001": ("secret-t001", {"contacts": T001_CONTACTS, "enterprises": T001_ENTERPRISES}),
           "t002": ("secret-t002", {"contacts": T002_CONTACTS})}


@pytest.fixture
def data_dirs(tmp_path: Path) -> dict[str, Path]:
    dirs = {}
    for tenant, (_, files) in TENANTS.items():
        (tmp_path / tenant / "crm").mkdir(parents=True)
        for entity, text in files.items():
            (tmp_path / tenant / "crm" / f"{entity}.jsonl").write_text(text, encoding="utf-8")
        dirs[tenant] = tmp_path / tenant
    return dirs


@pytest.fixture(scope="module")
def idle_servers() -> Iterator[list[CrmServer]]:
    """Stopping a server takes up to half a second (serve_forever's poll), so stop them all at once."""
    servers: list[CrmServer] = []
    yield servers
    stopping = [threading.Thread(target=server.stop) for server in servers]
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()


@pytest.fixture
def start_server(data_dirs, idle_servers) -> Callable[..., CrmServer]:
    def start(**options) -> CrmServer:
        tenants = {tenant: (secret, data_dirs[tenant]) for tenant, (secret, _) in TENANTS.items()}
        idle_servers.append(CrmServer(tenants, **options).start())
        return idle_servers[-1]

    return start


def client_for(server: CrmServer, tenant: str = "t001", **options) -> CrmClient:
    options = {"page_size": 3, "max_backoff_s": 0.05, "timeout_s": 5.0, **options}
    return CrmClient(server.url, tenant, TENANTS[tenant][0], label=tenant, **options)


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def ids(pages) -> list[str]:
    return [record["id"] for page in pages for record in page.records]


def hits(server: CrmServer, path: str, status: int | None = None) -> int:
    return sum(1 for _, p, s in server.request_log if p == path and status in (None, s))


# --- paging and windows ------------------------------------------------------------------------

def test_full_pull_pages_through_the_window_in_order(start_server):
    server = start_server()
    pages = list(client_for(server).iter_pages("contacts", SINCE, BEFORE))

    assert ids(pages) == T001_WINDOW_IDS
    assert [len(page.records) for page in pages] == [3, 3, 3]
    assert pages[0].cursor is None and pages[-1].next_cursor is None
    assert [page.cursor for page in pages[1:]] == [page.next_cursor for page in pages[:-1]]
    by_id = {record["id"]: record for record in records(T001_CONTACTS)}
    assert all(record == by_id[record["id"]] for page in pages for record in page.records)


@pytest.mark.parametrize(("since", "before", "expected"), [
    (None, None, ["c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10", "c11", "c12"]),
    (SINCE, None, T001_WINDOW_IDS + ["c11", "c12"]),
    (None, SINCE, ["c01"]),  # updated_before excludes the bound itself
    (SINCE.astimezone(timezone.utc), BEFORE.astimezone(timezone.utc), T001_WINDOW_IDS),  # instants, not text
    (SINCE + timedelta(microseconds=1), BEFORE - timedelta(microseconds=1), T001_WINDOW_IDS[2:-1]),
    (BEFORE, BEFORE, []),
], ids=["all", "since-only", "before-only", "utc-bounds", "inner-by-1us", "empty"])
def test_window_bounds_are_inclusive_since_exclusive_before(start_server, since, before, expected):
    server = start_server()
    assert ids(client_for(server, page_size=5).iter_pages("contacts", since, before)) == expected


def test_missing_entity_file_is_an_empty_entity(start_server):
    pages = list(client_for(start_server()).iter_pages("calls", None, None))
    assert [(page.records, page.next_cursor) for page in pages] == [([], None)]


def test_naive_window_is_refused_before_any_request(start_server):
    server = start_server()
    with pytest.raises(ValueError, match="timezone-aware"):
        next(client_for(server).iter_pages("contacts", datetime(2026, 11, 25), None))
    assert server.request_log == []


def test_resume_from_a_midway_cursor_yields_exactly_the_rest(start_server):
    server = start_server()
    first_two = []
    for page in client_for(server).iter_pages("contacts", SINCE, BEFORE):
        first_two.append(page)
        if len(first_two) == 2:
            break  # the pull is interrupted after storing page 2

    rest = list(client_for(server).iter_pages("contacts", SINCE, BEFORE, cursor=first_two[-1].next_cursor))

    assert ids(first_two) + ids(rest) == T001_WINDOW_IDS
    assert rest[0].cursor == first_two[-1].next_cursor


def test_changes_between_pages_neither_skip_nor_repeat_untouched_records(start_server):
    server = start_server()
    pages = client_for(server).iter_pages("contacts", SINCE, BEFORE)
    seen = ids([next(pages)])  # c02 c03 c04
    c03, c07 = (next(r for r in records(T001_CONTACTS) if r["id"] == i) for i in ("c03", "c07"))
    # c03 (already served) and c07 (not yet) both move past the window while the pull is underway.
    server.upsert("t001", "contacts", {**c03, "updated_at": "2026-11-27T00:00:00+08:00"})
    server.upsert("t001", "contacts", {**c07, "updated_at": "2026-11-27T00:00:00+08:00"})
    seen += ids(pages)

    assert seen == [i for i in T001_WINDOW_IDS if i != "c07"]


def test_upsert_shows_up_in_the_next_window(start_server):
    server = start_server()
    client = client_for(server)
    assert ids(client.iter_pages("contacts", SINCE, BEFORE)) == T001_WINDOW_IDS

    c04 = next(r for r in records(T001_CONTACTS) if r["id"] == "c04")
    server.upsert("t001", "contacts", {**c04, "email": "chen.jing@example.com",
                                        "updated_at": "2026-11-26T09:00:00+08:00"})
    server.upsert("t001", "contacts", {**c04, "id": "c13", "name": "陈晶",
                                        "updated_at": "2026-11-26T09:00:00+08:00"})
    next_day = list(client.iter_pages("contacts", BEFORE, BEFORE + timedelta(days=1)))

    assert ids(next_day) == ["c11", "c12", "c04", "c13"]  # equal instants go by id
    assert [r for page in next_day for r in page.records][2]["email"] == "chen.jing@example.com"
    assert "c04" not in ids(client.iter_pages("contacts", SINCE, BEFORE))  # moved, not copied


# --- tenants and credentials -----------------------------------------------------------------------

def test_each_tenant_sees_only_its_own_records(start_server):
    server = start_server()
    t001 = [r for page in client_for(server, "t001").iter_pages("contacts", None, None) for r in page.records]
    t002 = [r for page in client_for(server, "t002").iter_pages("contacts", None, None) for r in page.records]

    assert sorted(t001, key=lambda r: r["id"]) == sorted(records(T001_CONTACTS), key=lambda r: r["id"])
    assert t002 == records(T002_CONTACTS)  # already in updated_at order
    assert ids(client_for(server, "t002").iter_pages("enterprises", None, None)) == []


def test_wrong_secret_says_the_credentials_were_refused(start_server):
    server = start_server()
    client = CrmClient(server.url, "t001", "not-the-secret", label="t001", max_backoff_s=0.05)
    with pytest.raises(SourceApiError, match="t001.*refused the credentials") as error:
        next(client.iter_pages("contacts", SINCE, BEFORE))

    assert error.value.status == 401 and error.value.code == "invalid_client"
    assert "not-the-secret" not in str(error.value) and "not-the-secret" not in repr(client)
    assert [p for _, p, _ in server.request_log] == ["/oauth2/token"]  # not retried


def test_another_tenants_secret_is_refused(start_server):
    server = start_server()
    client = CrmClient(server.url, "t001", TENANTS["t002"][0], label="t001")
    with pytest.raises(SourceApiError, match="invalid_client"):
        next(client.iter_pages("contacts", None, None))


# --- tokens -----------------------------------------------------------------------------------

def test_tokens_revoked_between_pages_are_renewed_transparently(start_server):
    server = start_server()
    pulled = []
    for page in client_for(server).iter_pages("contacts", SINCE, BEFORE):
        pulled.append(page)
        server.expire_tokens()

    assert ids(pulled) == T001_WINDOW_IDS
    assert hits(server, "/api/v1/contacts", 401) == 2  # pages 2 and 3 each met a dead token once
    assert hits(server, "/oauth2/token") == 3


def test_short_lived_tokens_are_renewed_before_they_expire(start_server):
    server = start_server(token_ttl_s=1)
    pulled = []
    for page in client_for(server).iter_pages("contacts", SINCE, BEFORE):
        pulled.append(page)
        if len(pulled) == 1:
            time.sleep(1.05)  # outlive the token

    assert ids(pulled) == T001_WINDOW_IDS
    assert hits(server, "/oauth2/token") == 2
    assert hits(server, "/api/v1/contacts", 401) == 0  # renewed ahead of time, not after a refusal


def test_a_token_refused_twice_in_a_row_is_an_error(start_server):
    server = start_server(token_ttl_s=0)  # every token is dead on arrival
    with pytest.raises(SourceApiError, match=r"t001: GET contacts \(first page\) failed: 401 token_expired"):
        next(client_for(server).iter_pages("contacts", None, None))
    assert hits(server, "/api/v1/contacts") == 2


# --- retries ----------------------------------------------------------------------------------

def test_429_waits_for_retry_after_then_completes(start_server):
    server = start_server(rate_limit_per_s=1, burst=2, retry_after_s=1)
    started = time.monotonic()
    pulled = ids(client_for(server, max_backoff_s=5).iter_pages("contacts", SINCE, BEFORE))
    elapsed = time.monotonic() - started

    limited = hits(server, "/api/v1/contacts", 429)
    assert pulled == T001_WINDOW_IDS
    assert limited >= 1
    assert limited * 1.0 - 0.05 <= elapsed < limited * 1.0 + 1.0  # slept Retry-After each time, no more


def test_retry_after_is_capped_by_max_backoff(start_server):
    server = start_server(rate_limit_per_s=5, burst=1, retry_after_s=30)
    started = time.monotonic()
    pulled = ids(client_for(server, max_backoff_s=0.1).iter_pages("contacts", SINCE, BEFORE))

    assert pulled == T001_WINDOW_IDS
    assert hits(server, "/api/v1/contacts", 429) >= 1
    assert time.monotonic() - started < 5


def test_503_every_third_request_is_retried_without_duplicates(start_server):
    server = start_server(fail_every=3)
    pulled = ids(client_for(server, page_size=2).iter_pages("contacts", SINCE, BEFORE))

    assert pulled == T001_WINDOW_IDS  # in order, each once
    assert hits(server, "/api/v1/contacts", 503) == 2
    assert hits(server, "/api/v1/contacts", 200) == 5


def test_retries_give_up_after_max_attempts_naming_the_page(start_server):
    server = start_server(fail_every=1)
    with pytest.raises(SourceApiError, match=r"t001: GET contacts \(first page\) failed after 3 attempts: "
                                             r"503 unavailable") as error:
        next(client_for(server, max_attempts=3).iter_pages("contacts", SINCE, BEFORE))
    assert error.value.status == 503
    assert hits(server, "/api/v1/contacts") == 3


def test_unreachable_server_is_retried_then_reported():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % probe.getsockname()[1]
    client = CrmClient(url, "t001", "secret-t001", label="t001", max_attempts=2, max_backoff_s=0.05)
    with pytest.raises(SourceApiError, match="t001: GET contacts .*after 2 attempts: ConnectionError"):
        next(client.iter_pages("contacts", None, None))


def test_bad_cursor_is_a_400_that_is_not_retried(start_server):
    server = start_server()
    with pytest.raises(SourceApiError) as error:
        next(client_for(server).iter_pages("contacts", SINCE, BEFORE, cursor="not-a-cursor"))

    message = str(error.value)
    assert "crm tenant t001: GET contacts (cursor=not-a-cursor) failed: 400 invalid_cursor" in message
    assert error.value.status == 400 and error.value.code == "invalid_cursor"
    assert hits(server, "/api/v1/contacts") == 1


def test_cursor_from_another_window_is_refused(start_server):
    server = start_server()
    cursor = next(client_for(server).iter_pages("contacts", SINCE, BEFORE)).next_cursor
    with pytest.raises(SourceApiError, match="400 invalid_cursor") as error:
        next(client_for(server).iter_pages("contacts", SINCE, None, cursor=cursor))
    assert "cursor=" + cursor[:24] + "…" in str(error.value)


def test_unknown_entity_is_a_404_that_is_not_retried(start_server):
    server = start_server()
    with pytest.raises(SourceApiError, match="GET deals .*404 not_found"):
        next(client_for(server).iter_pages("deals", None, None))
    assert hits(server, "/api/v1/deals") == 1


# --- the server's wire contract (what other clients, and curl, see) -----------------------------

def test_server_wire_contract(start_server):
    server = start_server()
    api = server.url + "/api/v1/contacts"
    token = requests.post(server.url + "/oauth2/token", json={
        "grant_type": "client_credentials", "client_id": "t001", "client_secret": "secret-t001"}).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 7200
    auth = {"Authorization": f"Bearer {token['access_token']}"}

    missing = requests.get(api)
    assert (missing.status_code, missing.json()) == (401, {"error": "unauthorized"})
    unknown = requests.get(api, headers={"Authorization": "Bearer nope"})
    assert (unknown.status_code, unknown.json()["error"]) == (401, "token_expired")
    assert unknown.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    too_big = requests.get(api, params={"limit": 1001}, headers=auth)
    assert (too_big.status_code, too_big.json()["error"]) == (400, "invalid_request")
    naive = requests.get(api, params={"updated_since": "2026-11-25T00:00:00"}, headers=auth)
    assert (naive.status_code, naive.json()["error"]) == (400, "invalid_request")

    page = requests.get(api, headers=auth).json()  # default limit 200 holds everything
    assert (len(page["data"]), page["has_more"], page["next_cursor"]) == (12, False, None)
    page = requests.get(api, params={"limit": 5}, headers=auth).json()
    assert (len(page["data"]), page["has_more"]) == (5, True) and page["next_cursor"]
    assert requests.get(server.url + "/api/v1/deals", headers=auth).status_code == 404


def test_token_endpoint_accepts_a_form_body(start_server):
    server = start_server()
    response = requests.post(server.url + "/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "t002", "client_secret": "secret-t002"})
    assert response.status_code == 200 and response.json()["access_token"]


def test_resource_builds_a_configured_client(start_server):
    server = start_server()
    client = CrmApi(page_size=4, max_attempts=2).client(server.url, "t002", "secret-t002", "t002")
    assert (client.page_size, client.max_attempts, client.label) == (4, 2, "t002")
    assert ids(client.iter_pages("contacts", SINCE, BEFORE)) == ["c02", "b01"]
