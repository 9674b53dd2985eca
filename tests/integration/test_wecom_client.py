"""WeComClient against the local WeComServer over real HTTP: paging, token expiry, retries, errors, isolation."""
from __future__ import annotations

import json
import logging
import socket
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pytest

from fincdp.localsaas.wecom import WeComServer
from resources.errors import SourceApiError
from resources.wecom import WeComApi, WeComClient

A, B = "ww00000000000000aa", "ww00000000000000bb"
SECRET_A, SECRET_B = "secret-a-DO-NOT-LOG", "secret-b-DO-NOT-LOG"

A_DEPARTMENTS = [
    {"id": 1, "name": "华信科技股份有限公司", "name_en": "Huaxin", "department_leader": ["liming"], "parentid": 0, "order": 100000},
    {"id": 2, "name": "销售部", "name_en": "Sales", "department_leader": ["zhangsan"], "parentid": 1, "order": 900},
    {"id": 3, "name": "华东销售", "name_en": "Sales East", "department_leader": ["lisi"], "parentid": 2, "order": 800},
    {"id": 4, "name": "财务部", "name_en": "Finance", "department_leader": ["wangwu"], "parentid": 1, "order": 700},
    {"id": 5, "name": "上海销售", "name_en": "Sales SH", "department_leader": [], "parentid": 3, "order": 600},
]
A_MEMBERSHIP = {"liming": [1], "zhangsan": [2, 3], "lisi": [3], "wangwu": [4], "zhaoliu": [5, 4], "sunqi": [5],
                "zhouba": [2, 4, 5]}
A_FOLLOWS = {"wmA001": ["zhangsan", "lisi"], "wmA002": ["zhangsan"], "wmA003": ["lisi", "wangwu"],
             "wmA004": ["sunqi"], "wmA005": list(A_MEMBERSHIP)}
A_CORP_TAGS = [
    {"group_id": "etG1", "group_name": "客户等级", "create_time": 1700000000, "order": 1, "deleted": False,
     "tag": [{"id": "etA01", "name": "A类", "create_time": 1700000000, "order": 1, "deleted": False},
             {"id": "etA02", "name": "B类", "create_time": 1700000000, "order": 2, "deleted": False}]},
    {"group_id": "etG2", "group_name": "来源", "create_time": 1700000001, "order": 2, "deleted": False,
     "tag": [{"id": "etB01", "name": "展会", "create_time": 1700000001, "order": 1, "deleted": False}]},
]


def _user(userid: str, departments: list[int]) -> dict:
    return {"userid": userid, "name": userid.title(), "department": departments, "order": [0] * len(departments),
            "position": "经理", "is_leader_in_dept": [0] * len(departments), "direct_leader": ["liming"],
            "main_department": departments[0], "status": 1}


def _external(external_userid: str, followers: list[str]) -> dict:
    return {"external_contact": {"external_userid": external_userid, "name": f"客户{external_userid[-3:]}", "type": 2,
                                 "position": "采购经理", "corp_name": "远航物流",
                                 "corp_full_name": "远航物流（上海）有限公司"},
            "follow_user": [{"userid": u, "remark": f"{u}的客户", "description": "", "createtime": 1700000100 + i,
                             "tags": [{"group_name": "客户等级", "tag_name": "A类", "type": 1, "tag_id": "etA01"},
                                      {"group_name": "", "tag_name": "老朋友", "type": 2}],
                             "remark_mobiles": ["13900001234"], "add_way": 1, "oper_userid": u, "state": "expo"}
                            for i, u in enumerate(followers)]}


def _write_corp(root: Path, departments: list[dict], membership: dict[str, list[int]],
                follows: dict[str, list[str]], corp_tags: list[dict]) -> Path:
    wecom = root / "wecom"
    wecom.mkdir(parents=True)
    (wecom / "departments.json").write_text(json.dumps(departments, ensure_ascii=False), encoding="utf-8")
    (wecom / "users.jsonl").write_text("".join(json.dumps(_user(u, d), ensure_ascii=False) + "\n"
                                               for u, d in membership.items()), encoding="utf-8")
    (wecom / "external_contacts.jsonl").write_text("".join(json.dumps(_external(e, f), ensure_ascii=False) + "\n"
                                                           for e, f in follows.items()), encoding="utf-8")
    (wecom / "corp_tags.json").write_text(json.dumps(corp_tags, ensure_ascii=False), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def corps(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    root = tmp_path_factory.mktemp("wecom")
    a = _write_corp(root / "t001", A_DEPARTMENTS, A_MEMBERSHIP, A_FOLLOWS, A_CORP_TAGS)
    b = _write_corp(root / "t002", [{"id": 1, "name": "远航物流", "parentid": 0, "order": 1},
                                    {"id": 2, "name": "运营部", "parentid": 1, "order": 2}],
                    {"b_chen": [1], "b_lin": [2]}, {"wmB001": ["b_chen"]}, [])
    return {A: (SECRET_A, a), B: (SECRET_B, b)}


@pytest.fixture
def make_server(corps) -> Iterator[Callable[..., WeComServer]]:
    started: list[WeComServer] = []

    def make(**kwargs) -> WeComServer:
        server = WeComServer(corps, **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(corps) -> Iterator[WeComServer]:
    with WeComServer(corps) as server:  # stopping a server takes up to 0.5 s: share the default one
        yield server


@pytest.fixture
def server(shared_server) -> WeComServer:
    """The default server with empty logs (tests run one at a time)."""
    shared_server.request_log.clear()
    shared_server.api_log.clear()
    return shared_server


def client_for(server: WeComServer, corpid: str = A, **kwargs) -> WeComClient:
    secret, label = {A: (SECRET_A, "t001"), B: (SECRET_B, "t002")}[corpid]
    kwargs = {"max_backoff_s": 0.05, "timeout_s": 5.0, **kwargs}
    return WeComClient(server.url, corpid, secret, label=label, **kwargs)


def calls(server: WeComServer, api: str) -> int:
    # api_log, not the base request_log: that one is appended after the response is written, so a
    # client can read its answer before the entry exists
    return sum(1 for _, path, _ in server.api_log if path == api)


def test_departments_whole_tree_and_subtree(server):
    client = client_for(server)
    assert [d["id"] for d in client.departments()] == [1, 2, 3, 4, 5]
    assert {d["id"] for d in client.departments(2)} == {2, 3, 5}
    assert [d["id"] for d in client.departments(5)] == [5]
    with pytest.raises(SourceApiError, match="department/list id=99 failed: errcode 60123"):
        client.departments(99)


def test_member_ids_pages_yield_each_user_department_once(server):
    rows = list(client_for(server).member_ids(limit=3))
    expected = [(u, d) for u, depts in A_MEMBERSHIP.items() for d in depts]
    assert sorted((r["userid"], r["department"]) for r in rows) == sorted(expected)
    assert calls(server, "user/list_id") == 4  # 11 rows, 3 a page


def test_users_deduplicates_multi_department_members(server):
    users = list(client_for(server).users())
    assert [u["userid"] for u in users] == list(A_MEMBERSHIP)
    assert users[-1]["department"] == [2, 4, 5] and "errcode" not in users[-1]
    assert calls(server, "user/get") == len(A_MEMBERSHIP)


def test_external_contacts_by_user_pages_and_resumes(server):
    client = client_for(server)
    userids = list(A_MEMBERSHIP)
    pages = list(client.external_contacts_by_user(userids, limit=2, batch_size=3))
    pairs = [(r["external_contact"]["external_userid"], r["follow_info"]["userid"]) for p in pages for r in p.records]
    assert sorted(pairs) == sorted((e, u) for e, users in A_FOLLOWS.items() for u in users)
    assert len(pages) > 3 and all(len(p.records) <= 2 for p in pages)
    assert pages[0].cursor is None and pages[-1].next_cursor is None
    assert all(p.next_cursor == q.cursor for p, q in zip(pages, pages[1:]))
    info = pages[0].records[0]["follow_info"]
    assert info["tag_id"] == ["etA01"] and "tags" not in info  # the batch shape: ids only

    resumed = list(client.external_contacts_by_user(userids, pages[2].next_cursor, limit=2, batch_size=3))
    assert [p.records for p in resumed] == [p.records for p in pages[3:]]

    with pytest.raises(ValueError, match="not a batch/get_by_user cursor"):
        next(client.external_contacts_by_user(userids, "nonsense"))
    with pytest.raises(SourceApiError, match="errcode 50100") as err:  # a cursor of another userid list
        next(client.external_contacts_by_user(userids[:2], pages[1].next_cursor, limit=2, batch_size=3))
    assert err.value.code == 50100


def test_external_contact_merges_follow_user_pages(make_server, corps):
    server = make_server(external_page_size=3)
    contact = client_for(server).external_contact("wmA005")
    assert contact["external_contact"]["corp_full_name"] == "远航物流（上海）有限公司"
    assert [f["userid"] for f in contact["follow_user"]] == list(A_MEMBERSHIP)
    assert contact["follow_user"][0]["tags"][0]["tag_id"] == "etA01"  # the single-get shape keeps tags
    assert calls(server, "externalcontact/get") == 3


def test_follow_users_and_corp_tags(server):
    client = client_for(server)
    assert set(client.follow_users()) == set(A_MEMBERSHIP)
    assert [g["group_id"] for g in client.corp_tags()] == ["etG1", "etG2"]


def test_expired_token_refetched_once_mid_pull(server):
    users = client_for(server).users()
    first = next(users)
    server.expire_tokens()
    rest = list(users)
    assert [u["userid"] for u in [first, *rest]] == list(A_MEMBERSHIP)
    assert calls(server, "gettoken") == 2
    assert [code for _, _, code in server.api_log].count(42001) == 1
    assert calls(server, "user/get") == len(A_MEMBERSHIP) + 1


def test_system_busy_is_retried(make_server, caplog):
    server = make_server(busy_every=3)
    client = client_for(server)
    with caplog.at_level(logging.DEBUG, logger="resources.wecom"):
        users = list(client.users())
    assert [u["userid"] for u in users] == list(A_MEMBERSHIP)
    assert [code for _, _, code in server.api_log].count(-1) >= 2
    assert "system busy" in caplog.text
    assert SECRET_A not in caplog.text and client._token and client._token not in caplog.text


def test_system_busy_gives_up_after_three_retries(make_server):
    server = make_server(busy_every=1)
    with pytest.raises(SourceApiError, match=r"t001: department/list failed: errcode -1 .*after 4 attempts") as err:
        client_for(server).departments()
    assert err.value.code == -1
    assert calls(server, "department/list") == 4


def test_rate_limit_is_retried_then_succeeds(make_server):
    server = make_server(per_minute_limit=2, rate_window_s=0.2)
    users = list(client_for(server, max_backoff_s=0.12).users())
    assert [u["userid"] for u in users] == list(A_MEMBERSHIP)
    assert 45009 in [code for _, _, code in server.api_log]


def test_unknown_userid_raises_without_retry(server):
    with pytest.raises(SourceApiError) as err:
        client_for(server).user("nobody")
    assert str(err.value) == "wecom tenant t001: user/get userid=nobody failed: errcode 60111 (userid not found)"
    assert err.value.code == 60111
    assert calls(server, "user/get") == 1


def test_bad_corpsecret_is_a_clear_error(server):
    client = WeComClient(server.url, A, "wrong-secret", label="t001", max_backoff_s=0.01)
    with pytest.raises(SourceApiError, match=r"t001: gettoken corpid=ww0+aa failed: errcode 40001") as err:
        client.departments()
    assert err.value.code == 40001 and "wrong-secret" not in str(err.value)
    assert calls(server, "gettoken") == 1 and calls(server, "department/list") == 0


def test_connection_errors_retried_then_named(caplog):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    client = WeComClient(url, A, SECRET_A, label="t001", max_attempts=3, max_backoff_s=0.01, timeout_s=1)
    with caplog.at_level(logging.DEBUG, logger="resources.wecom"), \
            pytest.raises(SourceApiError, match=r"t001: department/list failed: connection error .*after 3 attempts"):
        client.departments()
    assert SECRET_A not in caplog.text and SECRET_A not in repr(client)


def test_corps_are_isolated(server):
    a, b = client_for(server, A), client_for(server, B)
    assert [d["name"] for d in b.departments()] == ["远航物流", "运营部"]
    assert "远航物流" not in [d["name"] for d in a.departments()]
    with pytest.raises(SourceApiError, match="errcode 60111"):
        a.user("b_chen")
    with pytest.raises(SourceApiError, match="errcode 40096"):
        a.external_contact("wmB001")
    assert [r for p in a.external_contacts_by_user(["b_chen"]) for r in p.records] == []
    assert b.follow_users() == ["b_chen"]
    assert b.corp_tags() == []
    assert [u["userid"] for u in b.users()] == ["b_chen", "b_lin"]
    by_corp = Counter(corpid for corpid, _, _ in server.api_log)
    assert set(by_corp) == {A, B}


def test_resource_builds_configured_clients(server):
    client = WeComApi(max_attempts=2, max_backoff_s=0.01, timeout_s=5).client(server.url, A, SECRET_A, "t001")
    assert client.label == "t001" and client.max_attempts == 2
    assert len(client.departments()) == 5
