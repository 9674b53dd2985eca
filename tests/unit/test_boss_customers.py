"""Connected customer corps: members matched to contacts by name key, names dropped, failures are warnings."""
from fincdp.boss.customers import fetch_customer_orgs

ENTERPRISES = [{"enterprise_id": "ent1", "account": "E1", "credit_code": "91310000MA1FL8XQ30"}]
CONTACTS = [{"enterprise_id": "ent1", "person": "P1", "name_key": "张伟"},
            {"enterprise_id": "ent1", "person": "P2", "name_key": "王芳"},
            {"enterprise_id": "ent1", "person": "P3", "name_key": "李娜"},
            {"enterprise_id": "ent1", "person": "P4", "name_key": "李娜"}]   # two contacts share a name


class FakeCorp:
    def __init__(self, base_url, corpid, secret, label):
        self.corpid, self.secret = corpid, secret
        if corpid == "wwdown":
            raise ConnectionError("connection refused")

    def departments(self):
        return [{"id": 1, "parentid": 0, "department_leader": ["zw"]}]

    def users(self):
        return [{"userid": "zw", "name": "张 伟", "department": [1], "status": 1, "position": "总经理"},
                {"userid": "wf", "name": "王芳", "department": [1], "status": 1, "direct_leader": ["zw"]},
                {"userid": "ln", "name": "李娜", "department": [1], "status": 1}]


def test_members_match_unique_names_only_and_names_are_dropped(monkeypatch):
    monkeypatch.setenv("CUST_SECRET", "s")
    corps = [{"corpid": "wwok", "corpsecret_env": "CUST_SECRET", "credit_code": "91310000ma1fl8xq30"}]
    orgs, warnings = fetch_customer_orgs(corps, "t001", "http://wecom", FakeCorp, ENTERPRISES, CONTACTS)
    assert orgs["E1"].people == {"zw": "P1", "wf": "P2"}          # 李娜 is two contacts: not guessed
    assert all("name" not in m for m in orgs["E1"].members)
    assert [(w.kind, w.subject) for _, w in warnings] == [("members_unmatched", "wwok")]


def test_unusable_corps_are_warnings_naming_tenant_and_corp(monkeypatch):
    monkeypatch.setenv("CUST_SECRET", "s")
    corps = [{"corpid": "wwdown", "corpsecret_env": "CUST_SECRET", "credit_code": "91310000MA1FL8XQ30"},
             {"corpid": "wwnosecret", "corpsecret_env": "UNSET_SECRET_VAR", "credit_code": "91310000MA1FL8XQ30"},
             {"corpid": "wwstranger", "corpsecret_env": "CUST_SECRET", "credit_code": "91440300MA5XXXXXXX"}]
    orgs, warnings = fetch_customer_orgs(corps, "t001", "http://wecom", FakeCorp, ENTERPRISES, CONTACTS)
    assert orgs == {}
    got = {w.subject: (w.kind, w.message) for _, w in warnings}
    assert got["wwdown"][0] == "corp_unreadable" and "connection refused" in got["wwdown"][1] \
        and "t001" in got["wwdown"][1]
    assert got["wwnosecret"][0] == "corp_unreadable" and "UNSET_SECRET_VAR" in got["wwnosecret"][1]
    assert got["wwstranger"][0] == "corp_without_account"


def test_customer_org_warnings_carry_no_customer_userids():
    from datetime import date

    from fincdp.boss.config import BossConfig
    from fincdp.boss.tenant import CustomerOrg, TenantInputs, assess_tenant

    members = [{"userid": "zhangwei", "department": [1], "direct_leader": ["wangfang"], "status": 1},
               {"userid": "wangfang", "department": [1], "direct_leader": ["zhangwei"], "status": 1},
               {"userid": "lina", "department": [1], "direct_leader": ["zhangwei"], "status": 1}]
    org = CustomerOrg([{"id": 1, "parentid": 0, "department_leader": []}], members, {"zhangwei": "P1"})
    inputs = TenantInputs([{"contact_id": "c1", "enterprise_id": "ent1", "person": "P1", "title": "总经理"}],
                          ENTERPRISES, [], [], customer_orgs={"E1": org})
    result = assess_tenant(inputs, BossConfig.load(), date(2026, 11, 25))
    texts = " ".join(w.subject + " " + w.message for _, w in result.org_warnings)
    assert any(w.kind == "direct_leader_cycle" for _, w in result.org_warnings)
    assert "P1" in texts and "member:" in texts
    assert not any(u in texts for u in ("zhangwei", "wangfang", "lina"))


def test_registry_by_credit_code_is_the_authority_on_the_legal_representative(tmp_path):
    from datetime import date

    import pytest

    from fincdp.boss.config import BossConfig
    from fincdp.boss.tenant import TenantInputs, assess_tenant, read_registry

    f = tmp_path / "registry.csv"
    f.write_text("credit_code,legal_representative,registered_capital,industry\n"
                 "91310000ma1fl8xq30, 王 芳 ,50000000.00,融资租赁\n", encoding="utf-8")
    registry = read_registry(f)
    enterprises = [{**ENTERPRISES[0], "legal_representative_key": "张伟"}]   # the CRM says 张伟
    contacts = [{"contact_id": "c1", "enterprise_id": "ent1", "person": "P1", "name_key": "张伟", "title": "总经理"},
                {"contact_id": "c2", "enterprise_id": "ent1", "person": "P2", "name_key": "王芳", "title": "董事"}]
    inputs = TenantInputs(contacts, enterprises, [], [{"opportunity_id": "o1", "enterprise_id": "ent1",
                                                       "stage": "proposal"}], registry=registry)
    result = assess_tenant(inputs, BossConfig.load(), date(2026, 11, 25))
    signer = [r for r in result.accounts["E1"].roles if r.role == "signer"]
    assert [(r.person, r.confidence) for r in signer] == [("P2", 0.9)] and "(registry)" in signer[0].evidence
    info = result.account_info["E1"]
    assert (info["in_registry"], info["registered_capital"], info["industry"]) == (True, "50000000.00", "融资租赁")
    # without the registry the CRM's legal representative signs
    inputs.registry = {}
    result = assess_tenant(inputs, BossConfig.load(), date(2026, 11, 25))
    assert [r.person for r in result.accounts["E1"].roles if r.role == "signer"] == ["P1"]
    bad = tmp_path / "bad.csv"
    bad.write_text("credit_code,legal_representative\n,张三\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: no credit_code"):
        read_registry(bad)


def test_members_from_ods_match_by_name_token_and_unlanded_corps_are_warnings():
    """ODS holds a keyed hash of each member's name key, never the name: matching compares tokens."""
    from fincdp.boss.customers import match_customer_orgs

    token = lambda key: "tok:" + key[::-1]   # noqa: E731  (any one-way function of the name key)
    users = [{"userid": "zw", "name_token": token("张伟"), "department": [1], "status": 1},
             {"userid": "ln", "name_token": token("李娜"), "department": [1], "status": 1},
             {"userid": "x", "name_token": None, "department": [1], "status": 1}]
    corps = [{"corpid": "wwok", "credit_code": "91310000MA1FL8XQ30"},
             {"corpid": "wwlate", "credit_code": "91310000MA1FL8XQ30"}]
    fetched = {"wwok": ([{"id": 1, "parentid": 0}], users), "wwlate": "tenant t001 customer corp wwlate: no snapshot"}
    orgs, warnings = match_customer_orgs(corps, fetched, ENTERPRISES, CONTACTS, lambda u: u["name_token"], token)
    assert orgs["E1"].people == {"zw": "P1"}            # 李娜 is two contacts; x has no name
    assert all("name_token" not in m for m in orgs["E1"].members)
    assert [(w.kind, w.subject) for _, w in warnings] == [("members_unmatched", "wwok"), ("corp_unreadable", "wwlate")]
