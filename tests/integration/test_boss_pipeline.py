"""The boss model in the pipeline on DuckDB: generated data -> ODS -> DWD -> OneID -> boss tables."""
from __future__ import annotations

import csv
import json

import dagster as dg
import pytest

from assets import boss
from assets.partitions import partition_key
from fincdp.demo.run import drop_files
from tests.conftest import BUSINESS_DATE
from tests.support.jobs import job_upstream_of
from tests.support.search_server import search_server  # noqa: F401


CONNECTED = 6  # accounts whose own WeCom corp is connected (the rest keep inferred orgs)


@pytest.fixture(scope="module")
def boss_run(tmp_path_factory):
    from fincdp.demo.generate import generate_tenant
    from fincdp.localsaas.wecom import WeComServer
    from orchestration.definitions import build_definitions
    from tests.conftest import Platform

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("boss")
    mp.setenv("FINCDP_HOME", str(root / "home"))
    p = Platform(root / "home", root / "data")
    tenants = p.tenants()
    for tenant in tenants.tenants:   # t001 with planted committees and customer corps
        generate_tenant(p.data_dir, tenant.id, org_ids=[o.id for o in tenant.orgs], corpid=tenant.sources.wecom.corpid,
                        corpsecret=tenant.sources.wecom.corpsecret(), scale=160, business_date=BUSINESS_DATE,
                        committees=tenant.id == "t001")
    drop_files(tenants, p.data_dir)
    p.start_sources()
    # connect some customers' own corps, served by a WeCom server of their own
    folders = sorted((p.data_dir / "t001/customers").iterdir())[:CONNECTED]
    corps = [json.loads((f / "wecom/corp.json").read_text(encoding="utf-8")) for f in folders]
    customers = WeComServer({c["corpid"]: (c["corpsecret"], f) for c, f in zip(corps, folders)}).start()
    config = {"customer_corps": [{"corpid": c["corpid"], "corpsecret_env": f"T001_CUSTOMER_{i}_SECRET",
                                  "credit_code": c["credit_code"], "base_url": customers.url}
                                 for i, c in enumerate(corps)]}
    config["customer_corps"].append({"corpid": "wwunreachable", "corpsecret_env": "NO_SUCH_SECRET_VAR",
                                     "credit_code": corps[0]["credit_code"]})
    for i, c in enumerate(corps):
        mp.setenv(f"T001_CUSTOMER_{i}_SECRET", c["corpsecret"])
    (root / "home/boss").mkdir(parents=True)
    # the registry file: legal representative, capital and industry by credit code
    with (p.data_dir / "t001/truth/people.csv").open(encoding="utf-8") as f:
        names = {r["person_id"]: r["name"] for r in csv.DictReader(f)}
    with (p.data_dir / "t001/truth/enterprises.csv").open(encoding="utf-8") as f, \
            (root / "home/boss/t001_registry.csv").open("w", encoding="utf-8", newline="") as out:
        w = csv.writer(out)
        w.writerow(["credit_code", "legal_representative", "registered_capital", "industry"])
        for r in csv.DictReader(f):
            w.writerow([r["credit_code"], names.get(r["legal_representative_id"], ""), "1000000.00", r["industry"]])
    (root / "home/boss/t001.yaml").write_text(json.dumps(config), encoding="utf-8")   # JSON is YAML
    defs = build_definitions()
    job = job_upstream_of(defs, ["boss", "decision_makers"], ["ads", "ads_person_360"], ["dwm", "dwm_person_golden"])  # and what the profile index reads
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(partition_key=partition_key("t001", BUSINESS_DATE), instance=instance)
        assert result.success
        first = tables(p)
        again = job.execute_in_process(partition_key=partition_key("t001", BUSINESS_DATE), instance=instance)
        assert again.success
        second = tables(p)
    yield p, first, second, folders
    customers.stop()
    p.sources.stop()
    mp.undo()


def tables(p) -> dict[str, list[dict]]:
    names = [boss.ADS, boss.ACCOUNTS, boss.ROLES, boss.GAPS, boss.WARNINGS, boss.UNKNOWN, boss.STAFF, boss.COVERAGE, boss.HISTORY]
    with p.session("t001") as s:
        return {t: s.arrow(f"select * from {t}").to_pylist() for t in names}


def test_one_top_boss_per_account_and_factors_reproduce(boss_run):
    _, t, _, _ = boss_run
    ads = t[boss.ADS]
    assert ads
    accounts = {r["account_one_id"] for r in ads}
    assert sorted(r["account_one_id"] for r in ads if r["account_rank"] == 1) == sorted(accounts)
    for r in ads:
        assert r["boss_score"] == pytest.approx(r["grade_weight"] * r["interaction_freq"] * r["decision_score"],
                                                abs=1e-5)
        assert r["contact_hour_start"] < r["contact_hour_end"]
    # every role in the ADS is in the committee table and the other way round
    roles = {(r["account_one_id"], r["one_id"], r["role"]) for r in t[boss.ROLES]}
    ads_roles = {(r["account_one_id"], r["one_id"], x) for r in ads for x in r["buying_roles"].split(",") if x}
    assert roles == ads_roles
    assert any(r["role"] == "economic_buyer" for r in t[boss.ROLES])


def test_staff_org_follows_the_firms_wecom_corp(boss_run):
    p, t, _, _ = boss_run
    staff = {r["userid"]: r for r in t[boss.STAFF]}
    users = [json.loads(line) for line in
             (p.data_dir / "t001/wecom/users.jsonl").read_text(encoding="utf-8").splitlines()]
    active = {u["userid"] for u in users if u["status"] not in (2, 5)}
    assert set(staff) == {u["userid"] for u in users}
    tops = [u for u, r in staff.items() if r["is_active"] and r["reports_to_userid"] is None]
    assert len(tops) == 1 and staff[tops[0]]["reporting_depth"] == 0
    for u in users:
        leaders = [x for x in u["direct_leader"] if x in active]
        if u["userid"] in active and leaders:
            assert staff[u["userid"]]["reports_to_userid"] == leaders[0], u["userid"]
    # customers' accounts carry the owner and the owner's own leader from the staff org
    cov = t[boss.COVERAGE]
    assert cov and all(r["owner_reports_to_userid"] == staff[r["owner_userid"]]["reports_to_userid"]
                       for r in cov if r["owner_userid"] in staff)


def test_no_personal_data_in_the_boss_tables(boss_run):
    p, t, _, _ = boss_run
    with (p.data_dir / "t001/truth/people.csv").open(encoding="utf-8") as f:
        people = list(csv.DictReader(f))
    names = {r["name"] for r in people}
    contact_points = {v for r in people for v in (r["mobile"], r["email"]) if v}
    for table, rows in t.items():
        for r in rows:
            for v in r.values():
                if isinstance(v, str):   # evidence and messages included
                    assert v not in names and not any(c in v for c in contact_points), (table, v)


def test_rerun_changes_nothing(boss_run):
    _, first, second, _ = boss_run
    assert first == second
    assert all(r["valid_to"] is None for r in first[boss.HISTORY])



def test_connected_customer_corps_give_real_reporting_lines(boss_run):
    p, t, _, folders = boss_run
    with p.session("t001") as s:
        one_id = dict(s.rows("select record_id, one_id from oneid.identity_map where record_source = 'crm_contact'"))
        account_of = dict(s.rows("select record_id, one_id from oneid.identity_map "
                                 "where record_source = 'crm_enterprise'"))
    truth = {}
    with (p.data_dir / "t001/ground_truth.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["source"] == "crm" and r["entity"] == "person" and r["source_id"] in one_id:
                truth.setdefault(r["person_id"], set()).add(one_id[r["source_id"]])
    with (p.data_dir / "t001/truth/customer_members.csv").open(encoding="utf-8") as f:
        members = {(r["enterprise_id"], r["userid"]): r["person_id"] for r in csv.DictReader(f)}
    ads = {(r["account_one_id"], r["one_id"]): r for r in t[boss.ADS]}
    checked = 0
    for folder in folders:
        eid = folder.name
        users = [json.loads(x) for x in (folder / "wecom/users.jsonl").read_text(encoding="utf-8").splitlines()]
        active = {u["userid"] for u in users if u["status"] == 1}
        for u in users:
            me = truth.get(members[(eid, u["userid"])], set())
            rows = [r for (a, o), r in ads.items() if o in me]
            if len(me) != 1 or not rows or u["userid"] not in active:
                continue
            assert rows[0]["org_source"] == "wecom", u
            leader = next((x for x in u["direct_leader"] if x in active), None)
            boss_ids = truth.get(members.get((eid, leader)), set()) if leader else set()
            if len(boss_ids) == 1:
                assert rows[0]["reports_to_one_id"] == next(iter(boss_ids)), (eid, u["userid"])
                checked += 1
    assert checked >= 3
    # the corp whose secret is missing is a warning naming the tenant and corp, not a failure
    assert any(w["kind"] == "corp_unreadable" and "wwunreachable" in w["message"] and "t001" in w["message"]
               for w in t[boss.WARNINGS])
    assert account_of and {r["org_source"] for r in t[boss.ADS]} == {"wecom", "inferred"}


def test_account_committees_with_registry_data(boss_run):
    _, t, _, _ = boss_run
    accounts = {r["account_one_id"]: r for r in t[boss.ACCOUNTS]}
    assert set(accounts) == {r["account_one_id"] for r in t[boss.ADS]}
    for r in t[boss.ROLES]:
        if r["role"] in ("economic_buyer", "signer", "technical_decision_maker"):
            assert accounts[r["account_one_id"]][r["role"] + "_one_id"] == r["one_id"]
    gaps = {}
    for g in t[boss.GAPS]:
        gaps.setdefault(g["account_one_id"], set()).add(g["gap"])
    assert all(accounts[a]["gaps"] == ",".join(sorted(k)) for a, k in gaps.items())
    registered = [a for a in accounts.values() if a["in_registry"]]
    assert len(registered) > len(accounts) * 0.8 and all(a["industry"] and a["registered_capital"] for a in registered)
    assert any("(registry)" in r["evidence"] for r in t[boss.ROLES] if r["role"] == "signer")


def test_the_profile_index_carries_each_persons_decision_maker_fields(boss_run, search_server):
    """Sales search people by level and role: the profile document holds the person's decision-maker
    fields from the account where their boss_score is highest."""
    from assets.search import PROFILES, profile_documents, profile_rows
    from resources.search import SearchIndex
    from resources.warehouse import Warehouse

    p, first, _, _ = boss_run
    tenant = p.tenants().get("t001")
    with Warehouse().query(tenant) as session:
        rows = profile_rows(session)
    search = SearchIndex(url=search_server.url)
    search.publish(tenant, PROFILES, profile_documents(rows))
    best = {}
    for r in sorted(first[boss.ADS], key=lambda r: (-(r["boss_score"] or 0.0), r["account_one_id"])):
        best.setdefault(r["one_id"], r)
    assert best
    with search.client(tenant) as es:
        docs = {h["_id"]: h["_source"] for h in es.search(index="t001-profiles", size=10_000,
                                                          query={"exists": {"field": "decision_maker_level"}},
                                                          )["hits"]["hits"]}
    assert set(docs) == {o for o, r in best.items() if r["decision_maker_level"] is not None}
    for one_id, doc in docs.items():
        r = best[one_id]
        assert doc["decision_maker_level"] == r["decision_maker_level"]
        assert doc.get("reports_to_one_id") == r["reports_to_one_id"]   # a null field may be left out
        assert doc["buying_roles"] == sorted(x for x in (r["buying_roles"] or "").split(",") if x)
        assert doc["boss_score"] == pytest.approx(r["boss_score"]) and doc["boss_account_one_id"] == r["account_one_id"]


def test_customer_corps_land_in_ods_without_names_or_mobiles(boss_run):
    """The connected corps' org charts are in ODS (what the model read), names only as token and ciphertext."""
    import base64

    from assets.boss_customers import CUSTOMER_DEPARTMENTS, CUSTOMER_USERS, name_token
    from resources.pii import PiiVault

    p, _, _, folders = boss_run
    with p.session("t001") as s:
        users = s.arrow(f"select * from {CUSTOMER_USERS.table}").to_pylist()
        depts = s.arrow(f"select * from {CUSTOMER_DEPARTMENTS.table}").to_pylist()
    cipher = PiiVault().cipher("t001")
    landed = {}
    for folder in folders:
        corp = json.loads((folder / "wecom/corp.json").read_text(encoding="utf-8"))
        source = [json.loads(x) for x in (folder / "wecom/users.jsonl").read_text(encoding="utf-8").splitlines()]
        rows = {r["userid"]: r for r in users if r["corpid"] == corp["corpid"]}
        assert set(rows) == {u["userid"] for u in source}
        assert {d["id"] for d in depts if d["corpid"] == corp["corpid"]} == {
            d["id"] for d in json.loads((folder / "wecom/departments.json").read_text(encoding="utf-8"))}
        for u in source:
            r = rows[u["userid"]]
            assert r["name_token"] == name_token(cipher, u["name"])
            assert cipher.decrypt(f"{CUSTOMER_USERS.table}.name", base64.b64decode(r["name_enc"])) == u["name"]
            assert r["direct_leader"] == u["direct_leader"] and r["position"] == u.get("position")
            for v in r.values():
                if isinstance(v, str):
                    assert u["name"] not in v and not (u.get("mobile") and u["mobile"][-8:] in v), (u["userid"], v)
        landed[corp["corpid"]] = len(rows)
    assert len(landed) == len(folders) and not any(r["corpid"] == "wwunreachable" for r in users)
