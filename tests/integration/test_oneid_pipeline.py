"""OneID in the daily job on DuckDB: identities from dwd_identifiers, stable across runs, merges and
splits in the history, conflicts to the review queue, reviewers' decisions respected, hubs held."""
from __future__ import annotations

import json
from datetime import date

import dagster as dg
from stdnum.cn import ric

from assets.partitions import partition_key
from tests.integration.test_ods_assets import drop, write_tenant_data

DAY1, DAY2 = date(2026, 11, 24), date(2026, 11, 25)


def id_number(serial: int) -> str:
    body = f"11010519800101{serial:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum reads the first 17 characters


def contact(i: int, day: date, **fields) -> dict:
    return {"id": f"C{i}", "name": f"联系人{i}", "updated_at": f"{day}T10:00:00+08:00", **fields}


def run(defs, instance, day: date, run_config=None):
    from tests.support.jobs import WAREHOUSE_KEYS, job_upstream_of

    result = job_upstream_of(defs, *WAREHOUSE_KEYS).execute_in_process(
        partition_key=partition_key("t001", day), instance=instance, run_config=run_config)
    assert result.success
    return result


def identities(p) -> dict[str, str]:
    with p.session("t001") as s:
        return dict(s.rows("select record_id, one_id from oneid.identity_map where record_source = 'crm_contact'"))


def test_identities_are_stable_explained_and_reviewed(platform, capsys):
    from orchestration.definitions import build_definitions

    p = platform
    hub = "13900000000"  # an agent's mobile typed into six contacts, more than phone's limit of five
    switchboard = "021-5888 1234"  # two colleagues' desk line: under the limit, but a fixed line is no key
    write_tenant_data(p.data_dir, "t001", contacts=[
        contact(1, DAY1, mobile="13812340001"),
        contact(2, DAY1, mobile="+86 138 1234 0001"),                     # the same phone, written otherwise
        contact(3, DAY1, mobile="13812340003", email="Wang@Corp-Example.com"),
        contact(4, DAY1, email="wang@corp-example.com"),                  # the same email, other case
        contact(5, DAY1, mobile="13812340005", id_number=id_number(1)),
        contact(6, DAY1, mobile="13812340005", id_number=id_number(2)),   # shared phone, different ID numbers
        *[contact(10 + i, DAY1, mobile=hub) for i in range(6)],
        contact(20, DAY1, mobile=switchboard), contact(21, DAY1, mobile=switchboard),
    ])
    p.start_sources()
    crm = p.sources.crm
    defs = build_definitions()
    with dg.instance_for_test() as instance:
        run(defs, instance, DAY1)
        day1 = identities(p)
        assert day1["C1"] == day1["C2"] and day1["C3"] == day1["C4"] and day1["C1"] != day1["C3"]
        assert day1["C5"] != day1["C6"]                        # the phone link was cut
        assert len({day1[f"C{10 + i}"] for i in range(6)}) == 6  # the hub glued nothing
        assert day1["C20"] != day1["C21"]
        with p.session("t001") as s:
            [(review, reason, status)] = s.rows("select review_id, reason, status from oneid.review_queue")
            assert reason == "different id_number" and status == "open"
            assert s.scalar("select count(*) from oneid.identifier_hubs where identifier_type = 'phone'") == 1
            assert s.rows("select evidence from oneid.identity_map where record_id = 'C2'") == [("phone",)]
            assert s.scalar("select count(distinct one_id) from ads.ads_person_360") == len(set(day1.values()))

        run(defs, instance, DAY1)  # the same day again: the same identities, no history
        assert identities(p) == day1

        # Day 2: C4's email changes (a split), C7 links C1's phone and C3's email (a merge), and a
        # reviewer approves the ID-number conflict.
        crm.upsert("hx-crm", "contacts", contact(4, DAY2, email="li@corp-example.com"))
        crm.upsert("hx-crm", "contacts", contact(7, DAY2, mobile="13812340001", email="wang@corp-example.com"))
        run(defs, instance, DAY2, {"ops": {"oneid__identities": {"config": {
            "approve": [review], "reviewer": "auditor.zhang"}}}})
        day2 = identities(p)
        assert day2["C1"] == day2["C2"] == day2["C3"] == day2["C7"] == day1["C1"]  # the oldest id survives
        assert day2["C4"] not in set(day1.values())                               # split off: a new id
        assert day2["C5"] == day2["C6"] == day1["C5"]                             # approved by review
        with p.session("t001") as s:
            history = s.rows("select action, one_id, other_one_id, rule from oneid.identity_history "
                             "where business_date = ? order by action", [DAY2])
            # C7 joined C1 by phone; C3's identity then joined them by C7's email.
            assert ("merge", day1["C1"], day1["C3"], "email") in history
            assert ("merge", day1["C5"], day1["C6"], "review:approved") in history
            assert [h[0] for h in history].count("split") == 1
            assert s.rows("select status, decided_by from oneid.review_queue") == [("approved", "auditor.zhang")]
            # Golden record: one row per person, each attribute from the most recent CRM record having it.
            assert s.rows("select person_name, person_name_source, source_records, mobile_token is not null "
                          "from dwm.dwm_person_golden where one_id = ?", [day1["C1"]]) == [("联系人7", "crm_contact", 4, True)]
            assert s.scalar("select count(*) from dwm.dwm_person_golden") == len(set(day2.values()))

        # The same queue from the command line: decided items listed with who decided; a wrong id or a
        # missing reviewer name is refused and changes nothing.
        from fincdp.cli import main

        assert main(["oneid", "review", "list", "--tenant", "t001"]) == 0
        assert "no review items" in capsys.readouterr().out
        assert main(["oneid", "review", "list", "--tenant", "t001", "--all"]) == 0
        assert review in (listing := capsys.readouterr().out) and "auditor.zhang" in listing
        assert main(["oneid", "review", "reject", "Rnot-a-review", "--tenant", "t001", "--by", "li"]) == 2
        assert "no review item Rnot-a-review" in capsys.readouterr().err
        with p.session("t001") as s:
            assert s.rows("select status, decided_by from oneid.review_queue") == [("approved", "auditor.zhang")]


def login(i: int, device: str, **payload) -> str:
    """An app login event on `device`, naming the person by the mobile or e-mail in `payload`."""
    return json.dumps({"event_id": f"evt_{i}", "tenant_id": "t001", "org_id": "hx_sh", "one_id": None,
                       "occurred_at": f"{DAY2}T10:0{i}:00+08:00", "source": "app", "type": "app.login.account",
                       "ip": "10.0.0.1", "ua": "UA", "payload": {"device_id": device, "session_id": "s1", **payload}},
                      ensure_ascii=False) + "\n"


def test_a_device_completes_a_person_and_a_shared_device_joins_nobody(platform):
    from orchestration.definitions import build_definitions

    p = platform
    write_tenant_data(p.data_dir, "t001", contacts=[
        contact(1, DAY2, name="王芳", mobile="13812340001"),
        contact(2, DAY2, name="李雷", mobile="13812340002"),
        contact(3, DAY2, name="韩梅", mobile="13812340003"),
        contact(4, DAY2, name="张伟", mobile="13812340004"),
        contact(5, DAY2, name="刘洋", email="liu@corp-example.com"),
    ])
    drop(p, "t001", f"events_{DAY2}.jsonl", "".join([
        # 王芳 on her own phone: once by mobile, once by a private e-mail no record knows
        login(1, "dev-wang", mobile="13812340001"), login(2, "dev-wang", email="fang@home-example.com"),
        # an office PC: two colleagues, each by their own mobile
        login(3, "pc-office", mobile="13812340002"), login(4, "pc-office", mobile="13812340003"),
        # a PC two people used: 张伟 by mobile, 刘洋 by e-mail; their names differ
        login(5, "pc-front-desk", mobile="13812340004"), login(6, "pc-front-desk", email="liu@corp-example.com"),
    ]))
    p.start_sources()
    with dg.instance_for_test() as instance:
        result = run(build_definitions(), instance, DAY2)
    meta = result.asset_materializations_for_node("oneid__identities")[0].metadata
    assert (meta["weak_attached"].value, meta["weak_refused"].value) == (1, 2)
    with p.session("t001") as s:
        ids = {key: (one_id, confidence, evidence) for key, one_id, confidence, evidence in s.rows(
            "select record_key, one_id, confidence, evidence from oneid.identity_map where entity_type = 'person'")}
        wang = ids["crm_contact:C1"][0]
        assert ids["sdk_event:evt_1"][0] == wang
        assert ids["sdk_event:evt_2"] == (wang, 0.9, "device_id")     # joined by the device alone: not certain
    one = {key.split(":")[1]: one_id for key, (one_id, _, _) in ids.items()}
    assert one["C2"] == one["evt_3"] != one["C3"] == one["evt_4"]    # the office PC joined nobody
    assert one["C4"] == one["evt_5"] != one["C5"] == one["evt_6"]    # nor did the front-desk PC
    assert {c for _, c, _ in ids.values() if c < 1} == {0.9}


def wecom_customer(xid: str, shown: str, remark: str, mobiles: list[str]) -> dict:
    """A personal WeChat account (type 1: a nickname, no company) a rep added, noting a remark and mobile."""
    return {"external_contact": {"external_userid": xid, "name": shown, "type": 1, "unionid": f"o{xid}"},
            "follow_user": [{"userid": "rep.li", "remark": remark, "description": "", "createtime": 1764000000,
                             "tags": [], "remark_mobiles": mobiles, "add_way": 1, "oper_userid": "rep.li"}]}


def test_a_mobile_typed_by_a_rep_joins_its_owner_only_when_a_name_agrees(platform):
    from orchestration.definitions import build_definitions

    p = platform
    write_tenant_data(p.data_dir, "t001", contacts=[
        contact(1, DAY2, name="蔡荣", mobile="13812340001"), contact(2, DAY2, name="王芳", mobile="13812340002")])
    wecom = p.data_dir / "t001" / "wecom"
    wecom.mkdir(parents=True, exist_ok=True)
    (wecom / "departments.json").write_text(json.dumps([{"id": 1, "name": "销售部", "parentid": 0, "order": 1}]))
    (wecom / "users.jsonl").write_text(json.dumps({"userid": "rep.li", "name": "李", "department": [1],
                                                   "main_department": 1, "status": 1}) + "\n")
    (wecom / "external_contacts.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in [
        wecom_customer("wmSunny", "Sunny", "蔡经理", ["+86 138 1234 0001"]),   # 蔡荣's mobile, her surname
        wecom_customer("wmWang", "阳光", "王伟", ["13812340002"]),               # 王芳's mobile, another 王
    ]), encoding="utf-8")
    p.start_sources()
    with dg.instance_for_test() as instance:
        result = run(build_definitions(), instance, DAY2)
    assert result.asset_materializations_for_node("oneid__identities")[0].metadata["corroborated_joined"].value == 1
    with p.session("t001") as s:
        ids = {key: (one_id, confidence, evidence) for key, one_id, confidence, evidence in s.rows(
            "select record_key, one_id, confidence, evidence from oneid.identity_map where entity_type = 'person'")}
        assert ids["wecom_external_contact:wmSunny"] == (ids["crm_contact:C1"][0], 0.9,
                                                         "phone typed by an employee, surname agrees")
        assert ids["wecom_external_contact:wmWang"][0] != ids["crm_contact:C2"][0]
        assert s.rows("select record_a, record_b, identifier_type, reason from oneid.review_queue") == [
            ("wecom_external_contact:wmWang", "crm_contact:C2", "phone", "different name")]
