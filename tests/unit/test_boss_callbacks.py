"""WeCom change callbacks: event parsing (only org fields kept), the inbox, applying events to an org."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from fincdp.boss.callbacks import (CallbackError, CallbackInbox, apply_events, last_seq, parse_event, read_events,
                                   staff_timeline)
from fincdp.boss.org import build_org
from fincdp.localsaas.wecom_callbacks import event_xml, party_fields, user_fields

CORP = "ww7e1a0c0000000001"
T0 = int(datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc).timestamp())   # 11:00 in Shanghai


def user_event(change, userid, user=None, at=T0, new=None, corp=CORP):
    return parse_event(event_xml(corp, "change_contact", change, user_fields(userid, user, new), at))


def party_event(change, dept_id, dept=None, at=T0):
    return parse_event(event_xml(CORP, "change_contact", change, party_fields(dept_id, dept), at))


DEPTS = [{"id": 1, "name": "总部", "parentid": 0, "department_leader": ["ceo"]},
         {"id": 2, "name": "销售部", "parentid": 1, "department_leader": ["sales_head"]},
         {"id": 3, "name": "财务部", "parentid": 1, "department_leader": ["cfo"]}]


def member(userid, dept, leader=None, is_leader=0, position="经理"):
    return {"userid": userid, "department": [dept], "is_leader_in_dept": [is_leader],
            "direct_leader": [leader] if leader else [], "main_department": dept, "status": 1, "position": position}


MEMBERS = [member("ceo", 1, is_leader=1, position="总经理"), member("sales_head", 2, "ceo", 1, "销售总监"),
           member("cfo", 3, "ceo", 1, "财务总监"), member("rep", 2, "sales_head", position="客户经理"),
           member("acct", 3, "cfo", position="会计")]


def test_an_update_user_event_keeps_org_fields_and_drops_personal_data():
    user = {"name": "张伟", "mobile": "13800001234", "email": "zw@example.com", "department": [2, 3],
            "main_department": 3, "is_leader_in_dept": [0, 1], "direct_leader": ["ceo", "cfo"], "position": "财务经理",
            "status": 1, "gender": "1"}
    e = user_event("update_user", "rep", user)
    assert (e.corpid, e.event, e.change_type, e.create_time) == (CORP, "change_contact", "update_user", T0)
    assert e.fields == {"UserID": "rep", "Department": [2, 3], "MainDepartment": 3, "IsLeaderInDept": [0, 1],
                        "DirectLeader": ["ceo", "cfo"], "Position": "财务经理", "Status": 1}
    assert e.day("Asia/Shanghai") == date(2026, 11, 27)
    # a retry of the same event has the same identity; another member changed in the same second does not
    assert user_event("update_user", "rep", user).event_id == e.event_id
    assert user_event("update_user", "acct", user).event_id != e.event_id
    # the identity holds no trace of dropped fields (a hash over a name could be reversed by guessing)
    assert user_event("update_user", "rep", {**user, "name": "李四", "mobile": "13900000000"}).event_id == e.event_id


@pytest.mark.parametrize("xml, message", [
    ("<xml><MsgType>text</MsgType></xml>", "not an org change"),
    (event_xml(CORP, "change_contact", "update_tag", [("TagId", 1)], T0), "not handled"),
    (event_xml(CORP, "change_contact", "update_user", [("Department", "1")], T0), "no UserID"),
    (event_xml(CORP, "change_contact", "update_user", [("UserID", "a"), ("Status", "x")], T0), "malformed"),
    ("<xml><unclosed>", "not XML"),
])
def test_events_that_cannot_be_used_are_errors_naming_the_problem(xml, message):
    with pytest.raises(CallbackError, match=message):
        parse_event(xml)


def test_a_member_moved_and_a_leader_who_left():
    events = [user_event("update_user", "rep", {"department": [3], "main_department": 3, "direct_leader": ["cfo"]}),
              user_event("delete_user", "sales_head")]
    deps, mems = apply_events(DEPTS, MEMBERS, events)
    by_id = {m["userid"]: m for m in mems}
    assert "sales_head" not in by_id
    assert by_id["rep"]["department"] == [3] and by_id["rep"]["is_leader_in_dept"] == [0]
    assert by_id["rep"]["position"] == "客户经理"          # not in the event: unchanged
    assert {d["id"]: d["department_leader"] for d in deps}[2] == []
    org = build_org(deps, mems)
    assert org.reports_to("rep") == "cfo" and org.positions["rep"].department_id == 3
    # the inputs are not changed in place
    assert MEMBERS[3]["department"] == [2] and DEPTS[1]["department_leader"] == ["sales_head"]


def test_a_departed_leaders_reports_climb_to_the_parent_department():
    _, mems = apply_events(DEPTS, [*MEMBERS, member("rep2", 2, "sales_head")], [user_event("delete_user", "sales_head")])
    assert build_org(apply_events(DEPTS, [], [])[0], mems).reports_to("rep2") == "ceo"


def test_renames_follow_every_reference_and_parties_change():
    events = [user_event("update_user", "cfo", {}, new="cfo_wang"), party_event("create_party", 4, {"name": "风控部", "parentid": 1}),
              party_event("update_party", 3, {"name": "财务中心"}), party_event("delete_party", 2)]
    deps, mems = apply_events(DEPTS, MEMBERS, events)
    by_id = {m["userid"]: m for m in mems}
    assert "cfo" not in by_id and by_id["acct"]["direct_leader"] == ["cfo_wang"]
    assert {d["id"]: (d["name"], d["parentid"]) for d in deps} == {1: ("总部", 0), 3: ("财务中心", 1), 4: ("风控部", 1)}
    assert {d["id"]: d["department_leader"] for d in deps}[3] == ["cfo_wang"]


def test_timeline_dates_versions_by_event_date_and_ignores_other_corps():
    day = 86400
    events = [user_event("update_user", "rep", {"position": "高级客户经理"}, at=T0 - 2 * day),          # 11-25
              user_event("update_user", "acct", {"position": "主管会计"}, at=T0),                      # 11-27
              user_event("delete_user", "rep", at=T0 + day),                                            # 11-28
              user_event("delete_user", "ceo", at=T0, corp="wwother")]
    timeline = staff_timeline(DEPTS, MEMBERS, events, date(2026, 11, 26), "Asia/Shanghai", CORP)
    assert [d for d, _, _ in timeline] == [date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 28)]
    positions = [{m["userid"]: m["position"] for m in mems} for _, _, mems in timeline]
    assert positions[0]["rep"] == "高级客户经理" and positions[0]["acct"] == "会计"
    assert positions[1]["acct"] == "主管会计" and "rep" not in positions[2] and "ceo" in positions[2]


def test_the_inbox_stores_each_event_once_and_dead_letters_without_the_body(tmp_path, monkeypatch):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path))
    e = user_event("update_user", "rep", {"name": "张伟", "department": [3]})
    assert read_events("t001") == [] and last_seq("t001") == 0
    with CallbackInbox("t001") as inbox:
        assert inbox.append(e) is True
        assert inbox.append(e) is False
        inbox.dead_letter("bad_signature", "msg_signature mismatch", "<xml>张伟 13800001234</xml>".encode())
        letters = inbox.dead_letters()
    assert [(s, x.event_id, x.fields) for s, x in read_events("t001")] == [(1, e.event_id, e.fields)]
    assert last_seq("t001") == 1 and read_events("t001", after_seq=1) == [] and read_events("t002") == []
    assert [(d["reason"], d["body_bytes"]) for d in letters] == [("bad_signature", len("<xml>张伟 13800001234</xml>".encode()))]
    stored = b"".join(p.read_bytes() for p in (tmp_path / "wecom_callbacks").iterdir())
    assert "张伟".encode() not in stored and b"13800001234" not in stored


def test_the_model_applies_events_between_its_snapshot_and_the_next_one(tmp_path, monkeypatch):
    """Older events are in the snapshot; events after a later date's snapshot belong to that date."""
    from types import SimpleNamespace

    from assets.boss import pending_events

    monkeypatch.setenv("FINCDP_HOME", str(tmp_path))
    at = lambda h: datetime(2026, 11, 26, h, tzinfo=timezone.utc)  # noqa: E731

    class Session:
        def __init__(self, snapshot, following):
            self.values = {"<=": snapshot, ">": following}

        def table_exists(self, table):
            return table == "ods.wecom_users"

        def scalar(self, sql, params):
            return self.values["<=" if "<=" in sql else ">"]

    with CallbackInbox("t001") as inbox:
        for h in (1, 5, 9):
            inbox.append(user_event("update_user", f"u{h}", {"position": "经理"}, at=int(at(h).timestamp())))
    tenant = SimpleNamespace(id="t001")
    pending = lambda snapshot, following: sorted(e.fields["UserID"] for e in pending_events(  # noqa: E731
        Session(snapshot, following), tenant, date(2026, 11, 25)))
    assert pending(at(3), None) == ["u5", "u9"]
    assert pending(at(3), at(7)) == ["u5"]
    assert pending(None, None) == ["u1", "u5", "u9"]


def test_follow_callbacks_add_and_end_follows():
    from fincdp.boss.callbacks import apply_follow_events

    def follow_event(change, userid, external, at=T0):
        return parse_event(event_xml(CORP, "change_external_contact", change,
                                     [("UserID", userid), ("ExternalUserID", external)], at))

    rows = [{"external_userid": "wm1", "follow_userid": "rep", "position": "财务总监", "corp_name_key": "远航物流",
             "followed_at": datetime(2026, 1, 5, tzinfo=timezone.utc)}]
    out = {(r["external_userid"], r["follow_userid"]): r for r in apply_follow_events(rows, [
        follow_event("add_external_contact", "acct", "wm1"), follow_event("del_follow_user", "rep", "wm1"),
        follow_event("add_external_contact", "rep", "wm2", at=T0 - 10), follow_event("del_external_contact", "rep", "wm2"),
        follow_event("add_external_contact", "rep", "wm3"), user_event("delete_user", "acct")])}
    assert set(out) == {("wm1", "acct"), ("wm3", "rep")}   # wm2 was added, then deleted later
    assert out[("wm1", "acct")]["position"] == "财务总监" and out[("wm3", "rep")]["position"] is None
    assert out[("wm1", "acct")]["followed_at"] == datetime.fromtimestamp(T0, timezone.utc)
    assert "following" not in rows[0] and len(rows) == 1   # the input is not changed
