"""OneID's probabilistic stage in the pipeline's resolution, on hand-made DWD tables with known people.

WeCom external contacts carry no strong identifier the CRM knows: only their name, company and title
say who they are. Namesakes at other companies must stay apart; a visitor's events reach their person
through the phone they typed, not through Splink.
"""
from __future__ import annotations

import dataclasses
import random
from datetime import date

import pyarrow as pa
import pytest

from assets.oneid import resolve_tenant

DAY = date(2026, 11, 25)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
         "霞", "平", "刚", "桂英", "建华", "晓东", "志强"]
COMPANIES = [f"{city}{trade}有限公司" for city in ("上海", "北京", "深圳", "杭州", "南京", "成都")
             for trade in ("华信投资", "远航科技", "金桥资产", "恒通贸易", "明德咨询")]
TITLES = ["财务总监", "总经理", "采购经理", "IT主管", "副总裁", "投资经理", "行政专员", "风控经理"]


@dataclasses.dataclass
class World:
    people: list[dict]          # name, company, title, phone token, records
    namesakes: list[str]        # WeCom ids of people with a CRM person's name at another company
    personal: list[dict]        # people whose WeCom account is a personal one: no company but the rep's note
    desks: list[tuple[str, str]]  # CRM ids of two colleagues (same company and title) sharing a desk line


def build(session, seed: int = 3) -> World:
    rng = random.Random(seed)
    names = rng.sample([s + g for s in SURNAMES for g in GIVEN], 160)
    people = [{"name": name, "company": rng.choice(COMPANIES), "title": rng.choice(TITLES),
               "phone": f"tok-phone-{i:04d}", "crm": f"C{i:04d}"} for i, name in enumerate(names)]
    enterprises = {c: f"E{i:03d}" for i, c in enumerate(COMPANIES)}
    contacts, wecom, files, identifiers = [], [], [], []

    def ident(source, record, kind, value, strength="strong"):
        identifiers.append(("person", source, record, kind, value, strength))

    for p in people:
        contacts.append((p["crm"], p["name"], enterprises[p["company"]], p["title"]))
        ident("crm_contact", p["crm"], "crm_id", p["crm"])
        ident("crm_contact", p["crm"], "phone", p["phone"])
    for i, p in enumerate(people[:90]):  # the same people, added on WeCom: no phone, sometimes an alias
        p["wecom"] = f"wm{i:04d}"
        shown = p["name"] + (" Kevin" if i % 7 == 0 else "")
        wecom.append((p["wecom"], shown, p["company"], None, p["title"], None))
        ident("wecom_external_contact", p["wecom"], "wecom_external_userid", p["wecom"])
    for i, p in enumerate(people[90:130]):  # a sign-up file: the same phone joins them deterministically
        p["file"] = f"signups.csv:{i}"
        files.append((p["file"], p["name"], p["company"], p["title"]))
        ident("file_contact", p["file"], "phone", p["phone"])
    namesakes = []
    for i, p in enumerate(people[130:150]):  # another person of the same name at another company
        other = next(c for c in COMPANIES if c != p["company"] and c[:2] != p["company"][:2])
        wid = f"wmx{i:04d}"
        namesakes.append(wid)
        wecom.append((wid, p["name"], other, None, rng.choice([t for t in TITLES if t != p["title"]]), None))
        ident("wecom_external_contact", wid, "wecom_external_userid", wid)
    for i, p in enumerate(people[150:160]):  # personal WeChat: the name, and the company a rep noted
        p["wecom"] = f"wmp{i:04d}"
        wecom.append((p["wecom"], p["name"], None, None, None, p["company"].removesuffix("有限公司")))
        ident("wecom_external_contact", p["wecom"], "wecom_external_userid", p["wecom"])
    desks, other = [], random.Random(seed + 1)  # colleagues at one desk line: weak, a key of nobody's
    spare = [n for n in (s + g for s in SURNAMES for g in GIVEN) if n not in names]
    for k in range(12):
        company, title = other.choice(COMPANIES), other.choice(TITLES)
        pair = (f"D{k:02d}a", f"D{k:02d}b")
        for crm_id in pair:
            contacts.append((crm_id, spare.pop(other.randrange(len(spare))), enterprises[company], title))
            ident("crm_contact", crm_id, "crm_id", crm_id)
            ident("crm_contact", crm_id, "phone", f"tok-desk-{k:02d}", "weak")
        desks.append(pair)
    for i, p in enumerate(people[:25]):  # a visitor's events carry the phone they typed
        for j in range(8):
            ident("sdk_event", f"evt{i:03d}{j}", "phone", p["phone"])

    def table(name, columns, rows):
        session.replace_table(name, pa.table({c: [r[k] for r in rows] for k, c in enumerate(columns)},
                                             schema=pa.schema([(c, pa.string()) for c in columns])))

    table("dwd.dwd_crm__enterprises", ["enterprise_id", "enterprise_name"], [(v, k) for k, v in enterprises.items()])
    table("dwd.dwd_crm__contacts", ["contact_id", "contact_name", "enterprise_id", "title"], contacts)
    table("dwd.dwd_wecom__external_contacts", ["external_userid", "contact_name", "corp_full_name", "corp_name",
                                                "position", "remark_corp_name"], wecom)
    table("dwd.dwd_file__contacts", ["file_contact_id", "contact_name", "company", "title"], files)
    table("dwd.dwd_identifiers", ["entity_type", "record_source", "record_id", "identifier_type", "identifier",
                                  "strength"], identifiers)
    return World(people, namesakes, people[150:160], desks)


def identity_map(session) -> dict[str, tuple[str, float, str]]:
    return {key: (one_id, confidence, evidence) for key, one_id, confidence, evidence in session.rows(
        "select record_key, one_id, confidence, evidence from oneid.identity_map where entity_type = 'person'")}


@pytest.fixture
def tenant(platform):
    return platform.tenants().get("t001")


def test_people_without_shared_identifiers_are_linked_by_name_company_and_title(platform, tenant):
    from resources.warehouse import Warehouse

    with Warehouse().session(tenant) as session:
        world = build(session)
        counts = resolve_tenant(session, tenant, DAY)
        ids = identity_map(session)

    assert counts.get("probabilistic_merged", 0) > 0, counts
    on_wecom = [p for p in world.people if "wecom" in p]
    found = [p for p in on_wecom if ids[f"wecom_external_contact:{p['wecom']}"][0] == ids[f"crm_contact:{p['crm']}"][0]]
    assert len(found) >= 0.9 * len(on_wecom), f"{len(found)} of {len(on_wecom)} WeCom contacts found their CRM person"
    for p in found:
        one_id, confidence, evidence = ids[f"wecom_external_contact:{p['wecom']}"]
        assert evidence.startswith("splink p=") and tenant.oneid_confidence_threshold <= confidence <= 1.0
    crm_ids = {ids[f"crm_contact:{p['crm']}"][0] for p in world.people}
    assert not [w for w in world.namesakes if ids[f"wecom_external_contact:{w}"][0] in crm_ids], \
        "a namesake at another company was merged into a CRM person"
    # a desk line says 'same desk', not 'same person': colleagues of one company and title stay apart
    assert not [d for d in world.desks if ids[f"crm_contact:{d[0]}"][0] == ids[f"crm_contact:{d[1]}"][0]]
    # a personal account shows no company: the one its rep noted (without the legal form) stands in
    personal = [p for p in world.personal if ids[f"wecom_external_contact:{p['wecom']}"][0] in crm_ids]
    assert all(ids[f"wecom_external_contact:{p['wecom']}"][0] == ids[f"crm_contact:{p['crm']}"][0] for p in personal)
    assert len(personal) >= 8, f"{len(personal)} of {len(world.personal)} personal accounts found their CRM person"
    for p in world.people[90:130]:
        assert ids[f"file_contact:{p['file']}"][:3:2] == (ids[f"crm_contact:{p['crm']}"][0], "phone")
    for i, p in enumerate(world.people[:25]):
        assert ids[f"sdk_event:evt{i:03d}0"][0] == ids[f"crm_contact:{p['crm']}"][0]

    with Warehouse().session(tenant) as session:  # a re-run names every identity the same way
        resolve_tenant(session, tenant, DAY)
        assert {k: v[0] for k, v in identity_map(session).items()} == {k: v[0] for k, v in ids.items()}


def test_a_tenant_can_keep_to_strong_identifiers(platform, tenant):
    from resources.warehouse import Warehouse

    strict = tenant.model_copy(update={"oneid_probabilistic": False})
    with Warehouse().session(strict) as session:
        world = build(session)
        counts = resolve_tenant(session, strict, DAY)
        ids = identity_map(session)
    assert not any(k.startswith("probabilistic") for k in counts)
    crm_ids = {ids[f"crm_contact:{p['crm']}"][0] for p in world.people}
    assert not [p for p in world.people if "wecom" in p and ids[f"wecom_external_contact:{p['wecom']}"][0] in crm_ids]
    assert {confidence for _, confidence, _ in ids.values()} == {1.0}


def test_a_later_day_scores_only_new_and_changed_people_and_a_rebuild_agrees(platform, tenant):
    from resources.warehouse import Warehouse

    day2 = date(2026, 11, 26)
    with Warehouse().session(tenant) as session:
        world = build(session)
        first = resolve_tenant(session, tenant, DAY)
        assert first["probabilistic_model"] == "trained"
        # Day 2: twenty more of the CRM people are added on WeCom, and one WeCom customer changes company.
        late = world.people[90:110]
        session.insert("dwd.dwd_wecom__external_contacts", pa.Table.from_pylist(
            [{"external_userid": f"wl{i:04d}", "contact_name": p["name"], "corp_full_name": p["company"],
              "corp_name": None, "position": p["title"]} for i, p in enumerate(late)],
            schema=session.arrow("select * from dwd.dwd_wecom__external_contacts limit 0").schema))
        session.insert("dwd.dwd_identifiers", pa.Table.from_pylist(
            [{"entity_type": "person", "record_source": "wecom_external_contact", "record_id": f"wl{i:04d}",
              "identifier_type": "wecom_external_userid", "identifier": f"wl{i:04d}", "strength": "strong"}
             for i in range(len(late))], schema=session.arrow("select * from dwd.dwd_identifiers limit 0").schema))
        moved = world.people[0]
        session.execute("update dwd.dwd_wecom__external_contacts set corp_full_name = '广州新开咨询有限公司', "
                        "position = '顾问' where external_userid = ?", [moved["wecom"]])
        second = resolve_tenant(session, tenant, day2)
        incremental = identity_map(session)

        assert second["probabilistic_model"] == "stored"
        assert second["probabilistic_rescored_records"] == len(late) + 1
        for i, p in enumerate(late):
            assert incremental[f"wecom_external_contact:wl{i:04d}"][0] == incremental[f"crm_contact:{p['crm']}"][0]
        assert incremental[f"wecom_external_contact:{moved['wecom']}"][0] != incremental[f"crm_contact:{moved['crm']}"][0]

        # A rebuild with the same model (stored pairs dropped) scores every pair: the same identities.
        for table in ("oneid.splink_inputs", "oneid.splink_scored_pairs"):
            session.execute(f"drop table {table}")
        rebuilt = resolve_tenant(session, tenant, day2)
        assert rebuilt["probabilistic_rescored_records"] > second["probabilistic_rescored_records"]
        assert {k: v[0] for k, v in identity_map(session).items()} == {k: v[0] for k, v in incremental.items()}
        assert resolve_tenant(session, tenant, day2, retrain=True)["probabilistic_model"] == "trained"
