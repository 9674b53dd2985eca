"""WeCom change callbacks end to end against the real local servers: the local WeCom server pushes signed,
encrypted change_contact / change_external_contact events for admin changes; the tenant's receiver
verifies, decrypts and stores them; the sensor launches the boss model, whose staff org, account
coverage and org history show the changes dated by the callbacks; the scheduled org sync then pulls the
same org."""
from __future__ import annotations

import base64
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import requests

from assets import boss
from assets.partitions import partition_key
from fincdp.boss.callbacks import CallbackInbox, read_events
from fincdp.boss.receiver import CallbackReceiver
from fincdp.localsaas.wecom_callbacks import event_xml, user_fields
from fincdp.wecom_crypto import WeComCrypto
from tests.conftest import BUSINESS_DATE

TOKEN, KEY = "cbToken2026", base64.b64encode(bytes(range(32))).decode().rstrip("=")
CALLBACK_ENV = {"FINCDP_T001_WECOM_CALLBACK_TOKEN": TOKEN, "FINCDP_T001_WECOM_CALLBACK_AES_KEY": KEY}


def _receiver(tenant):
    wecom = tenant.sources.wecom
    return CallbackReceiver(tenant.id, wecom.callback.crypto(wecom.corpid), CallbackInbox(tenant.id)).start()


def test_receiver_verifies_stores_once_and_rejects_forgeries(platform, monkeypatch):
    from fincdp.localsaas.wecom import WeComServer

    for k, v in CALLBACK_ENV.items():
        monkeypatch.setenv(k, v)
    tenant = platform.tenants().get("t001")
    corpid = tenant.sources.wecom.corpid
    data = platform.data_dir / "t001/wecom"
    data.mkdir(parents=True)
    (data / "users.jsonl").write_text(json.dumps({"userid": "zhangwei", "name": "张伟", "mobile": "13800001234",
                                                  "department": [1], "direct_leader": [], "status": 1}) + "\n")
    with WeComServer({corpid: ("s", platform.data_dir / "t001")}) as wecom:
        receiver = _receiver(tenant)
        try:
            # registration checks the URL with an echostr the receiver must decrypt
            r = requests.post(wecom.url + "/admin/callbacks/register",
                              json={"corpid": corpid, "url": receiver.callback_url, "token": TOKEN,
                                    "encoding_aes_key": KEY}, timeout=5)
            assert r.json()["errcode"] == 0
            r = requests.post(wecom.url + "/admin/contact/change", timeout=10, json={
                "corpid": corpid, "change_type": "update_user", "userid": "zhangwei",
                "changes": {"position": "销售总监", "department": [1, 2]}})
            assert r.json() == {"errcode": 0, "errmsg": "ok", "callback_status": 200}
            # the change is in the API as well, and the event reached the inbox with org fields only
            assert wecom._corps[corpid].users["zhangwei"]["position"] == "销售总监"
            [(_, event)] = read_events("t001")
            assert event.fields == {"UserID": "zhangwei", "Department": [1, 2], "Position": "销售总监",
                                    "DirectLeader": [], "Status": 1}
            # WeCom's retry of the same event is acknowledged and not stored twice
            xml = event_xml(corpid, "change_contact", "update_user", user_fields("lisi", {"position": "经理"}), 1764200000)
            crypto = WeComCrypto(TOKEN, KEY, corpid)
            assert wecom.callbacks.send(corpid, "update_user", xml) == 200
            assert wecom.callbacks.send(corpid, "update_user", xml) == 200
            assert len(read_events("t001")) == 2 and receiver.duplicates == 1
            # a forged signature: 403, dead-lettered, nothing stored
            encrypt = crypto.encrypt(xml.replace("lisi", "mallory"))
            body = f"<xml><ToUserName>{corpid}</ToUserName><Encrypt>{encrypt}</Encrypt></xml>"
            r = requests.post(receiver.callback_url, params={"msg_signature": "0" * 40, "timestamp": "1", "nonce": "2"},
                              data=body.encode(), timeout=5)
            assert r.status_code == 403
            # signed with the right token but encrypted with another key: 400
            other = WeComCrypto(TOKEN, base64.b64encode(bytes(32)).decode().rstrip("="), corpid).encrypt(xml)
            r = requests.post(receiver.callback_url, data=f"<xml><Encrypt>{other}</Encrypt></xml>".encode(), timeout=5,
                              params={"msg_signature": crypto.signature("1", "2", other), "timestamp": "1", "nonce": "2"})
            assert r.status_code == 400
            # a URL check with a wrong signature is refused too
            r = requests.get(receiver.callback_url, params={"msg_signature": "0" * 40, "timestamp": "1", "nonce": "2",
                                                            "echostr": crypto.encrypt("x")}, timeout=5)
            assert r.status_code == 403
            assert len(read_events("t001")) == 2
            letters = receiver.inbox.dead_letters()
            assert [d["reason"] for d in letters] == ["bad_signature", "undecryptable", "bad_signature"]
        finally:
            receiver.stop()
            receiver.inbox.close()
    stored = b"".join(p.read_bytes() for p in (platform.home / "wecom_callbacks").iterdir())
    assert "张伟".encode() not in stored and b"13800001234" not in stored and b"mallory" not in stored


@pytest.fixture(scope="module")
def org_run(tmp_path_factory):
    from fincdp.demo.generate import generate_tenant
    from fincdp.demo.run import drop_files
    from orchestration.definitions import build_definitions
    from tests.conftest import Platform
    from tests.support.jobs import job_upstream_of

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("callbacks")
    mp.setenv("FINCDP_HOME", str(root / "home"))
    for k, v in CALLBACK_ENV.items():
        mp.setenv(k, v)
    p = Platform(root / "home", root / "data")
    tenants = p.tenants()
    for tenant in tenants.tenants:
        generate_tenant(p.data_dir, tenant.id, org_ids=[o.id for o in tenant.orgs], corpid=tenant.sources.wecom.corpid,
                        corpsecret=tenant.sources.wecom.corpsecret(), scale=80, business_date=BUSINESS_DATE)
    drop_files(tenants, p.data_dir)
    p.start_sources()
    defs = build_definitions()
    job = job_upstream_of(defs, ["boss", "decision_makers"])
    instance_cm = dg.instance_for_test()
    instance = instance_cm.__enter__()
    assert job.execute_in_process(partition_key=partition_key("t001", BUSINESS_DATE), instance=instance).success
    try:
        yield p, defs, instance
    finally:
        instance_cm.__exit__(None, None, None)
        p.sources.stop()
        mp.undo()


def _tables(p):
    with p.session("t001") as s:
        return {t: s.arrow(f"select * from {t}").to_pylist() for t in (boss.STAFF, boss.HISTORY, boss.COVERAGE)}


def _pick(users):
    """A leader with an active direct report, a member to move who leads nobody, and a new leader."""
    active = {u["userid"]: u for u in users if u["status"] == 1}
    reports = {}
    for u in active.values():
        if u["direct_leader"] and u["direct_leader"][0] in active:
            reports.setdefault(u["direct_leader"][0], []).append(u["userid"])
    leaders = {u for u in reports} | {x for u in active.values() for x in u.get("direct_leader", [])}
    leader = sorted((u for u in reports if active[u]["direct_leader"]), key=lambda u: (-len(reports[u]), u))[0]
    mover = next(u for u in sorted(active) if u not in leaders and u != leader and u not in reports[leader])
    target = next(u for u in sorted(reports) if u not in (leader, mover)
                  and active[u]["main_department"] != active[mover]["main_department"])
    return leader, reports[leader], mover, target, active


def test_callbacks_reach_the_org_history_and_the_boss_output(org_run):
    p, defs, instance = org_run
    from orchestration.org_sync import wecom_callback_sensor

    tenant = p.tenants().get("t001")
    corpid = tenant.sources.wecom.corpid
    wecom = p.sources.wecom
    users = list(wecom._corps[corpid].users.values())
    leader, their_reports, mover, target, active = _pick([dict(u) for u in users])
    before = _tables(p)
    new_dept = active[target]["main_department"]
    # follows: a member following exactly one customer, who shows on that customer's account
    externals = wecom._corps[corpid].externals
    follows = {}
    for ext, c in externals.items():
        for f in c.get("follow_user", []):
            follows.setdefault(f["userid"], []).append(ext)
    covered = {u: r["account_one_id"] for r in before[boss.COVERAGE] for u in r["follower_userids"].split(",") if u}
    single = [u for u in sorted(follows) if len(follows[u]) == 1 and u in covered and u not in (leader, mover)]
    assert len(single) >= 2
    dropped, kept = single[0], single[1]
    newcomer = next(u for u in sorted(active) if u not in follows and u not in (leader, mover, target))

    receiver = _receiver(tenant)
    try:
        wecom.register_callback(corpid, receiver.callback_url, TOKEN, KEY)
        assert wecom.update_user(corpid, mover, department=[new_dept], main_department=new_dept,
                                 is_leader_in_dept=[0], direct_leader=[target]) == 200
        assert wecom.delete_user(corpid, leader) == 200
        assert wecom.delete_external_follow(corpid, dropped, follows[dropped][0], by_customer=True) == 200
        assert wecom.add_external_follow(corpid, newcomer, follows[kept][0]) == 200
        forged = requests.post(receiver.callback_url, data=b"<xml><Encrypt>AAAA</Encrypt></xml>", timeout=5,
                               params={"msg_signature": "f" * 40, "timestamp": "1", "nonce": "1"})
        assert forged.status_code == 403
    finally:
        receiver.stop()
        receiver.inbox.close()
    day = datetime.now(ZoneInfo(tenant.timezone)).date()

    # the sensor asks for the boss model of the newest built date, once
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    result = wecom_callback_sensor(context)
    [request] = result.run_requests
    assert request.partition_key == partition_key("t001", BUSINESS_DATE)
    job = defs.resolve_job_def("wecom_org_changes")
    run = job.execute_in_process(partition_key=request.partition_key, instance=instance,
                                 tags={**request.tags, "dagster/run_key": request.run_key})
    assert run.success
    again = wecom_callback_sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=result.cursor))
    assert again.run_requests == [] and json.loads(again.cursor) == {"t001": 4}

    after = _tables(p)
    staff = {r["userid"]: r for r in after[boss.STAFF]}
    assert leader not in staff and staff[mover]["reports_to_userid"] == target
    assert staff[mover]["department_id"] == new_dept
    assert {staff[r]["reports_to_userid"] for r in their_reports if r != mover}.isdisjoint({leader})
    assert all(r["owner_reports_to_userid"] != leader for r in after[boss.COVERAGE])
    followers = {r["account_one_id"]: set(r["follower_userids"].split(",")) for r in after[boss.COVERAGE]}
    assert all(dropped not in f for f in followers.values())
    assert {kept, newcomer} <= followers[covered[kept]]
    hist = {}
    for r in after[boss.HISTORY]:
        if r["org"] == "staff":
            hist.setdefault(r["member"], []).append(r)
    assert [(r["valid_from"], r["valid_to"]) for r in hist[leader]] == [(BUSINESS_DATE, day)]
    moved = hist[mover]
    assert [(r["valid_from"], r["valid_to"]) for r in moved] == [(BUSINESS_DATE, day), (day, None)]
    assert (moved[-1]["department_id"], moved[-1]["reports_to"]) == (new_dept, target)
    # history before the callbacks is untouched; customers' orgs get no versions from staff callbacks
    assert [r for r in after[boss.HISTORY] if r["org"] != "staff"] == [r for r in before[boss.HISTORY]
                                                                        if r["org"] != "staff"]
    assert all(r["valid_from"] == BUSINESS_DATE for r in before[boss.HISTORY])

    # a rerun changes nothing; the scheduled org sync then pulls the same org from WeCom
    assert job.execute_in_process(partition_key=request.partition_key, instance=instance).success
    assert _tables(p) == after
    assert defs.resolve_job_def("wecom_org_sync").execute_in_process(
        partition_key=request.partition_key, instance=instance).success
    synced = _tables(p)
    assert synced[boss.STAFF] == after[boss.STAFF] and synced[boss.HISTORY] == after[boss.HISTORY]
    assert synced[boss.COVERAGE] == after[boss.COVERAGE]
