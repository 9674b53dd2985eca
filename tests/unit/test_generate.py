"""The demo data generator: determinism, valid identifiers, planted bad records, integrity, truth."""
from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import phonenumbers
import pyarrow.parquet as pq
import pytest
from stdnum.cn import ric, uscc

from fincdp.demo import generate, generate_tenant
from fincdp.demo.identifiers import EMAIL_RE, phone_kind

DAY = date(2026, 11, 25)
TENANTS = [
    {"id": "acme", "org_ids": ["acme", "acme_hk"], "corpid": "ww0000000000000001", "corpsecret": "secret-a"},
    {"id": "globex", "org_ids": ["globex"], "corpid": "ww0000000000000002", "corpsecret": "secret-b"},
]
ARGS = dict(scale=300, events_per_contact=10.0, seed=7, business_date=DAY, days=2)
TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    generate(root, TENANTS, **ARGS)
    return root


@pytest.fixture(scope="module")
def acme(out) -> "DataSet":
    return DataSet(out / "acme")


class DataSet:
    """One tenant's generated folder, parsed."""

    def __init__(self, root: Path):
        self.root = root
        self.manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        self.dates = self.manifest["business_dates"]
        crm = {n: self.jsonl(f"crm/{n}.jsonl") for n in ("enterprises", "contacts", "leads", "opportunities", "calls")}
        self.enterprises, self.contacts, self.leads = crm["enterprises"], crm["contacts"], crm["leads"]
        self.opportunities, self.calls = crm["opportunities"], crm["calls"]
        self.departments = json.loads((root / "wecom/departments.json").read_text(encoding="utf-8"))
        self.users = self.jsonl("wecom/users.jsonl")
        self.externals = self.jsonl("wecom/external_contacts.jsonl")
        self.tags = json.loads((root / "wecom/corp_tags.json").read_text(encoding="utf-8"))
        self.truth = self.csv("ground_truth.csv")
        self.people = {r["person_id"]: r for r in self.csv("truth/people.csv")}
        self.truth_enterprises = {r["enterprise_id"]: r for r in self.csv("truth/enterprises.csv")}

    def jsonl(self, rel: str) -> list:
        return [json.loads(line) for line in (self.root / rel).read_text(encoding="utf-8").splitlines()]

    def csv(self, rel: str) -> list[dict]:
        with (self.root / rel).open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    def contact_files(self) -> dict[str, list[dict]]:
        files = {}
        for d in self.dates:
            files[f"files/contacts_{d}.csv"] = [{k: (v or None) for k, v in r.items()}
                                                for r in self.csv(f"files/contacts_{d}.csv")]
            files[f"files/contacts_{d}.parquet"] = pq.read_table(self.root / f"files/contacts_{d}.parquet").to_pylist()
        return files

    def event_lines(self) -> dict[str, list[str]]:
        return {f"files/events_{d}.jsonl": (self.root / f"files/events_{d}.jsonl").read_text(encoding="utf-8")
                .splitlines() for d in self.dates}

    def bad(self, kind: str, rel: str) -> int:
        return self.manifest["bad_records"][kind].get(rel, 0)


def email_ok(value: str) -> bool:
    return bool(EMAIL_RE.match(unicodedata.normalize("NFKC", value).strip()))


def on_business_dates(value: str, dates: list[str]) -> bool:
    t = datetime.fromisoformat(value)
    return t.utcoffset() == timedelta(hours=8) and t.date().isoformat() in dates


# ------------------------------------------------------------------ layout, manifest, determinism

def test_manifest_counts_equal_the_files(acme):
    m = acme.manifest
    assert m["tenant"] == "acme" and m["seed"] == 7 and m["scale"] == 300
    assert m["business_dates"] == ["2026-11-24", "2026-11-25"]
    expected = {"crm/enterprises.jsonl", "crm/contacts.jsonl", "crm/leads.jsonl", "crm/opportunities.jsonl",
                "crm/calls.jsonl", "wecom/departments.json", "wecom/users.jsonl", "wecom/external_contacts.jsonl",
                "wecom/corp_tags.json", "wecom/tags.json", "ground_truth.csv", "truth/people.csv",
                "truth/enterprises.csv"}
    for d in m["business_dates"]:
        expected |= {f"files/contacts_{d}.csv", f"files/contacts_{d}.parquet", f"files/events_{d}.jsonl"}
    assert set(m["counts"]) == expected
    on_disk = {p.relative_to(acme.root).as_posix() for p in acme.root.rglob("*") if p.is_file()}
    assert on_disk == expected | {"manifest.json", "wecom/corp.json"}
    for rel, n in m["counts"].items():
        path = acme.root / rel
        if rel.endswith(".jsonl"):
            assert len(path.read_text(encoding="utf-8").splitlines()) == n, rel
        elif rel.endswith(".csv"):
            assert len(acme.csv(rel)) == n, rel
        elif rel.endswith(".parquet"):
            assert pq.read_metadata(path).num_rows == n, rel
        else:
            assert len(json.loads(path.read_text(encoding="utf-8"))) == n, rel
    corp = json.loads((acme.root / "wecom/corp.json").read_text(encoding="utf-8"))
    assert corp["corpid"] == "ww0000000000000001" and corp["corpsecret"] == "secret-a" and corp["name"]


def test_sizes_follow_scale(acme):
    c = acme.manifest["counts"]
    assert c["crm/contacts.jsonl"] == 300
    assert 35 <= c["crm/enterprises.jsonl"] <= 42
    assert c["crm/leads.jsonl"] == 180 and c["crm/opportunities.jsonl"] == 45 and c["crm/calls.jsonl"] == 600
    events = sum(n for rel, n in c.items() if rel.startswith("files/events_"))
    assert 3000 <= events <= 3100
    assert 0.35 <= c["wecom/external_contacts.jsonl"] / 300 <= 0.45
    assert c["wecom/users.jsonl"] == 20


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_bytes(out, tmp_path):
    t = TENANTS[0]
    again = generate_tenant(tmp_path, t["id"], org_ids=t["org_ids"], corpid=t["corpid"], corpsecret=t["corpsecret"],
                            other_tenants=["globex"], **ARGS)
    assert again == json.loads((out / "acme/manifest.json").read_text(encoding="utf-8"))
    assert _files(tmp_path / "acme") == _files(out / "acme")


def test_another_seed_gives_other_data(out, tmp_path):
    t = TENANTS[0]
    generate_tenant(tmp_path, t["id"], org_ids=t["org_ids"], corpid=t["corpid"], corpsecret=t["corpsecret"],
                    **{**ARGS, "seed": 8})
    a = DataSet(out / "acme")
    b = DataSet(tmp_path / "acme")
    assert not {p["mobile"] for p in a.people.values()} & {p["mobile"] for p in b.people.values()}


def test_tenants_share_no_people(out):
    a, b = DataSet(out / "acme"), DataSet(out / "globex")
    assert not {p["mobile"] for p in a.people.values()} & {p["mobile"] for p in b.people.values()}
    assert not {p["email"] for p in a.people.values()} & {p["email"] for p in b.people.values()}
    assert not {e["credit_code"] for e in a.enterprises} & {e["credit_code"] for e in b.enterprises} - {None}
    assert {u["userid"] for u in a.users} != {u["userid"] for u in b.users}


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "notes.txt").write_text("mine")
    t = TENANTS[0]
    with pytest.raises(FileExistsError):
        generate_tenant(tmp_path, "acme", org_ids=t["org_ids"], corpid=t["corpid"], corpsecret=t["corpsecret"], **ARGS)


# ------------------------------------------------------------------ identifiers and planted bad values

def test_check_characters_match_the_published_vectors():
    from fincdp.demo import identifiers as ids

    assert ids.uscc_check("91512081MA62K0260") == "E" and ids.uscc_check("11320000MB151840X") == "J"
    assert ids.uscc_check("91350100M000100Y4") == "3"  # domain-notes 2.1: ...Y4Z fails, should end in 3
    assert ids.org_code_check("MA62K026") == "0" and ids.org_code_check("MB151840") == "X"  # GB 11714 inside
    assert ids.ric_check("11010519491231002") == "X" and ids.ric_check("44052418800101001") == "4"


def test_credit_codes_valid_except_the_planted(acme):
    codes = [e["credit_code"] for e in acme.enterprises if e["credit_code"]]
    invalid = [c for c in codes if not uscc.is_valid(c)]
    assert len(invalid) == acme.bad("invalid_credit_code", "crm/enterprises.jsonl") >= 1
    malformed = [c for c in invalid if not re.fullmatch(r"[0-9A-HJ-NP-RT-UW-Y]{18}", uscc.compact(c))]
    assert len(malformed) == acme.bad("credit_code_malformed", "crm/enterprises.jsonl")
    assert len(invalid) - len(malformed) == acme.bad("credit_code_check_failed", "crm/enterprises.jsonl")
    assert all(uscc.is_valid(e["credit_code"]) for e in acme.truth_enterprises.values())


def test_id_numbers_pass_gb11643_with_regions_of_the_birth_year(acme):
    numbers = [c["id_number"] for c in acme.contacts if c["id_number"]]
    assert 0.12 <= len(numbers) / len(acme.contacts) <= 0.28
    assert all(ric.is_valid(n) for n in numbers)
    for p in acme.people.values():
        if p["id_number"]:
            assert ric.get_birth_date(p["id_number"]).strftime("%Y%m%d") == p["birth_date"]
            assert int(p["id_number"][16]) % 2 == (1 if p["gender"] == "M" else 0)


def test_mobiles_valid_except_planted_and_switchboards(acme):
    assert all(phone_kind(p["mobile"]) == "mobile" for p in acme.people.values())
    kinds = Counter(phone_kind(c["mobile"]) for c in acme.contacts if c["mobile"])
    assert kinds["invalid"] == acme.bad("invalid_mobile", "crm/contacts.jsonl") >= 1
    assert kinds["landline"] == acme.manifest["flags"]["shared_switchboard"]["crm/contacts.jsonl"] >= 2
    switchboards = Counter(c["mobile"] for c in acme.contacts if c["mobile"] and phone_kind(c["mobile"]) == "landline")
    assert all(n >= 2 for n in switchboards.values())  # shared by several contacts of one enterprise
    for rel, rows in acme.contact_files().items():
        kinds = Counter(phone_kind(r["mobile"]) for r in rows if r["mobile"])
        assert kinds["invalid"] == acme.bad("invalid_mobile", rel) >= 1, rel
        assert kinds["landline"] == 0, rel
    for x in acme.externals:
        assert all(phone_kind(m) == "mobile" for f in x["follow_user"] for m in f["remark_mobiles"])
    assert all(phone_kind(c["phone"]) in ("mobile", "landline") for c in acme.calls)


def test_variants_are_planted(acme):
    mobiles = [c["mobile"] for c in acme.contacts if c["mobile"]]
    for rows in acme.contact_files().values():
        mobiles += [r["mobile"] for r in rows if r["mobile"]]
    assert any(m.startswith("+86") for m in mobiles) and any(" " in m.strip() for m in mobiles)
    assert any(unicodedata.normalize("NFKC", m) != m for m in mobiles)  # full-width digits
    emails = [c["email"] for c in acme.contacts if c["email"]]
    assert any(e != e.lower() for e in emails)
    truth_names = {p["name"] for p in acme.people.values()}
    shown = [c["name"] for c in acme.contacts] + [x["external_contact"]["name"] for x in acme.externals]
    assert any(n not in truth_names for n in shown)  # typos and other spellings
    full_names = [x["external_contact"].get("corp_full_name", "") for x in acme.externals]
    assert any("（" in n for n in full_names)


def test_emails_valid_except_planted(acme):
    assert all(email_ok(p["email"]) for p in acme.people.values())
    bad = [c["email"] for c in acme.contacts if c["email"] and not email_ok(c["email"])]
    assert len(bad) == acme.bad("invalid_email", "crm/contacts.jsonl") >= 1
    for rel, rows in acme.contact_files().items():
        bad = [r["email"] for r in rows if r["email"] and not email_ok(r["email"])]
        assert len(bad) == acme.bad("invalid_email", rel) >= 1, rel
    domains = Counter(p["email"].split("@")[1] for p in acme.people.values())
    assert domains["qq.com"] + domains["163.com"] > 0  # free mail beside corporate domains


def test_duplicate_file_rows_match_the_manifest(acme):
    for rel, rows in acme.contact_files().items():
        seen = Counter(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)
        dups = sum(n - 1 for n in seen.values())
        assert dups == acme.bad("duplicate_file_row", rel) >= 1, rel
        ids = Counter(r["record_id"] for r in rows)
        assert sum(n - 1 for n in ids.values()) == dups  # a duplicate is the whole row again


def test_broken_and_duplicate_events_match_the_manifest(acme):
    for rel, lines in acme.event_lines().items():
        kinds = Counter()
        ids = Counter()
        first_line: dict[str, str] = {}
        for line in lines:
            e = json.loads(line)
            if not e.get("event_id"):
                kinds["missing_event_id"] += 1
            elif not isinstance(e.get("type"), str) or not TYPE_RE.match(e["type"]):
                kinds["bad_event_type"] += 1
            elif not _parses(e.get("occurred_at")):
                kinds["bad_occurred_at"] += 1
            elif not isinstance(e.get("payload"), dict):
                kinds["payload_not_object"] += 1
            elif e["tenant_id"] != "acme":
                kinds["foreign_tenant_event"] += 1
                assert e["tenant_id"] == "globex"  # another tenant of the same generate() call
            else:
                ids[e["event_id"]] += 1
                assert first_line.setdefault(e["event_id"], line) == line  # re-sent, not a clash
                assert e["source"] == e["type"].split(".")[0] and e["one_id"] is None
                assert e["org_id"] in ("acme", "acme_hk") and e["event_id"].startswith("evt_")
                assert e["source"] in ("web", "app", "miniapp")
        for kind in acme.manifest["broken_event_kinds"]:
            assert kinds[kind] == acme.bad(kind, rel) >= 1, (rel, kind)
        assert sum(n - 1 for n in ids.values()) == acme.bad("duplicate_event", rel) >= 1
        assert 0.005 <= sum(kinds.values()) / len(lines) <= 0.02


def _parses(value) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).utcoffset() is not None
    except ValueError:
        return False


def test_the_pipeline_normalisers_reject_exactly_the_planted_values(acme):
    pii = pytest.importorskip("fincdp.pii")

    def rejected(normalise, values) -> int:
        n = 0
        for v in values:
            try:
                normalise(v)
            except pii.InvalidValue:
                n += 1
        return n

    sources = {"crm/contacts.jsonl": acme.contacts, **acme.contact_files()}
    for rel, rows in sources.items():
        assert rejected(pii.normalize_phone, [r["mobile"] for r in rows if r["mobile"]]) == \
            acme.bad("invalid_mobile", rel), rel
        assert rejected(pii.normalize_email, [r["email"] for r in rows if r["email"]]) == \
            acme.bad("invalid_email", rel), rel
    codes = [e["credit_code"] for e in acme.enterprises if e["credit_code"]]
    assert rejected(pii.normalize_credit_code, codes) == acme.bad("credit_code_malformed", "crm/enterprises.jsonl")
    assert all(pii.normalize_id_number(c["id_number"])[1] is None for c in acme.contacts if c["id_number"])


# ------------------------------------------------------------------ referential integrity

def test_crm_references_hold(acme):
    ent_ids = {e["id"] for e in acme.enterprises}
    contacts = {c["id"]: c for c in acme.contacts}
    leads = {lead["id"]: lead for lead in acme.leads}
    userids = {u["userid"] for u in acme.users}
    assert len(ent_ids) == len(acme.enterprises) and len(contacts) == len(acme.contacts)
    assert all(c["enterprise_id"] in ent_ids for c in acme.contacts)
    for lead in acme.leads:
        assert lead["enterprise_id"] == contacts[lead["contact_id"]]["enterprise_id"]
        assert lead["owner_userid"] in userids
    assert {o["lead_id"] for o in acme.opportunities} == {lid for lid, lead in leads.items()
                                                          if lead["status"] == "converted"}
    for o in acme.opportunities:
        assert o["enterprise_id"] == leads[o["lead_id"]]["enterprise_id"] and o["owner_userid"] in userids
        if o["stage"] in ("won", "lost"):
            assert o["close_date"] and o["close_date"] <= o["updated_at"][:10]
        assert float(o["amount"]) > 0 and o["currency"] == "CNY"
    for c in acme.calls:
        assert c["contact_id"] in contacts and c["agent_userid"] in userids
        assert (c["duration_s"] > 0) == (c["outcome"] in ("connected", "voicemail"))


def test_legal_representative_works_at_the_enterprise(acme):
    truth = {r["source_id"]: r for r in acme.truth}
    for e in acme.enterprises:
        true_e = acme.truth_enterprises[truth[e["id"]]["enterprise_id"]]
        rep = acme.people[true_e["legal_representative_id"]]
        assert rep["name"] == e["legal_representative"] and rep["enterprise_id"] == true_e["enterprise_id"]
        assert rep["is_legal_representative"] == "1"


def test_enterprises_have_three_to_fifteen_people_across_seniority(acme):
    sizes = Counter(p["enterprise_id"] for p in acme.people.values() if p["in_crm"] == "1")
    assert all(3 <= n <= 15 for n in sizes.values())
    levels = Counter(p["seniority"] for p in acme.people.values())
    assert set(levels) == {"owner", "cxo", "vp", "director", "manager", "senior", "entry"}


def test_wecom_org_is_a_tree_with_leaders(acme):
    depts = {d["id"]: d for d in acme.departments}
    users = {u["userid"]: u for u in acme.users}
    assert depts[1]["parentid"] == 0
    assert all(d["parentid"] in depts for d in acme.departments if d["id"] != 1)

    def depth(i: int) -> int:
        return 1 if i == 1 else 1 + depth(depts[i]["parentid"])

    assert 2 <= max(depth(i) for i in depts) <= 4
    for d in acme.departments:
        assert d["department_leader"] and all(u in users for u in d["department_leader"])
    for u in acme.users:
        assert 1 <= len(u["department"]) <= 2 and u["main_department"] in u["department"]
        assert len(u["is_leader_in_dept"]) == len(u["department"]) == len(u["order"])
        for dept, lead in zip(u["department"], u["is_leader_in_dept"]):
            assert dept in depts and (lead == 1) == (u["userid"] in depts[dept]["department_leader"])
        assert len(u["direct_leader"]) <= 5 and all(x in users for x in u["direct_leader"])
        seen, x = set(), u  # direct leaders lead to the head of the root department
        while x["direct_leader"]:
            assert x["userid"] not in seen
            seen.add(x["userid"])
            x = users[x["direct_leader"][0]]
        assert x["userid"] in depts[1]["department_leader"]
    statuses = Counter(u["status"] for u in acme.users)
    assert statuses[1] >= 0.75 * len(acme.users)
    tags = json.loads((acme.root / "wecom/tags.json").read_text(encoding="utf-8"))
    assert all(m["userid"] in users for t in tags for m in t["userlist"])
    assert all(p in depts for t in tags for p in t["partylist"])


def test_external_contacts_follow_the_wecom_shape(acme):
    users = {u["userid"] for u in acme.users}
    tags = {t["id"]: (g["group_name"], t["name"]) for g in acme.tags for t in g["tag"]}
    assert 2 <= len(acme.tags) <= 3
    ids = [x["external_contact"]["external_userid"] for x in acme.externals]
    assert len(set(ids)) == len(ids) and all(i.startswith("wm") for i in ids)
    type2 = [x for x in acme.externals if x["external_contact"]["type"] == 2]
    assert len(type2) >= 0.8 * len(acme.externals)
    assert all(x["external_contact"]["corp_name"] and x["external_contact"]["corp_full_name"] for x in type2)
    for x in acme.externals:
        assert 1 <= len(x["follow_user"]) <= 3
        assert len({f["userid"] for f in x["follow_user"]}) == len(x["follow_user"])
        for f in x["follow_user"]:
            assert f["userid"] in users and isinstance(f["createtime"], int)
            assert all(tags[t["tag_id"]] == (t["group_name"], t["tag_name"]) for t in f["tags"])
    assert any(f["remark_mobiles"] for x in acme.externals for f in x["follow_user"])
    assert any(not f["remark_mobiles"] for x in acme.externals for f in x["follow_user"])


# ------------------------------------------------------------------ ground truth and time

def test_ground_truth_covers_every_person_and_enterprise_record(acme):
    rows = {(r["source"], r["source_id"]): r for r in acme.truth}
    assert len(rows) == len(acme.truth)  # one row per record
    expected = {("crm", e["id"]) for e in acme.enterprises} | {("crm", c["id"]) for c in acme.contacts}
    expected |= {("wecom", x["external_contact"]["external_userid"]) for x in acme.externals}
    for rel, file_rows in acme.contact_files().items():
        expected |= {("file", f"{Path(rel).name}:{r['record_id']}") for r in file_rows}
    for lines in acme.event_lines().values():
        for line in lines:
            e = json.loads(line)
            p = e.get("payload")
            if isinstance(p, dict) and ("mobile" in p or "email" in p):
                expected.add(("event", e["event_id"]))
    assert set(rows) == expected
    for r in acme.truth:
        assert r["enterprise_id"] in acme.truth_enterprises
        if r["entity"] == "person":
            assert acme.people[r["person_id"]]["enterprise_id"] == r["enterprise_id"]
        else:
            assert r["source"] == "crm" and r["person_id"] == ""
    assert acme.manifest["truth"]["ground_truth_by_source"] == dict(Counter(r["source"] for r in acme.truth))


def test_ground_truth_points_at_the_right_people(acme):
    truth = {(r["source"], r["source_id"]): r for r in acme.truth}
    for c in acme.contacts:
        p = acme.people[truth[("crm", c["id"])]["person_id"]]
        if c["id_number"]:
            assert c["id_number"].upper() == p["id_number"]
        assert c["gender"] == ("male" if p["gender"] == "M" else "female")
    for lines in acme.event_lines().values():
        for line in lines:
            e = json.loads(line)
            if ("event", e.get("event_id")) in truth and "email" in e["payload"]:
                p = acme.people[truth[("event", e["event_id"])]["person_id"]]
                assert e["payload"]["email"].strip().lower() == p["email"]


def test_timestamps_fall_on_the_business_dates(acme):
    dates = acme.dates
    for rows in (acme.enterprises, acme.contacts, acme.leads, acme.opportunities, acme.calls):
        assert all(on_business_dates(r["updated_at"], dates) for r in rows)
        assert all(r.get("created_at", "") <= r["updated_at"] for r in rows)
    assert all(on_business_dates(c["started_at"], dates) for c in acme.calls)
    assert {r["updated_at"][:10] for r in acme.contacts} == set(dates)  # spread over both days
    for rel, rows in acme.contact_files().items():
        day = re.search(r"\d{4}-\d{2}-\d{2}", rel).group()
        assert all(on_business_dates(r["signed_up_at"], [day]) for r in rows)
    for rel, lines in acme.event_lines().items():
        for line in lines:
            e = json.loads(line)
            if _parses(e.get("occurred_at")):
                assert on_business_dates(e["occurred_at"], [re.search(r"\d{4}-\d{2}-\d{2}", rel).group()])
    end = datetime(2026, 11, 26, tzinfo=datetime.fromisoformat("2026-11-25T00:00:00+08:00").tzinfo).timestamp()
    assert all(f["createtime"] < end for x in acme.externals for f in x["follow_user"])
