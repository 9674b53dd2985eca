"""Small hand-made warehouse tables in the shapes segments read, and rules whose members are known.

Six people (P1..P6) as of business date D; see the comments for what each one has. `load` writes
them through any writer session (DuckDB, MySQL, ClickHouse), so the same input reaches every engine.
"""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

D = dt.date(2026, 11, 25)


def _days(n: int) -> dt.date:
    return D - dt.timedelta(days=n)


def tables(day: dt.date = D, *, p6_title: str | None = None, a_class_moves: bool = False) -> dict[str, pa.Table]:
    """The input of one business date. p6_title / a_class_moves (tag A from P1 to P2) vary it between
    days for entry/exit tests."""
    golden = pa.Table.from_pylist([
        # P1: chairman, mobile, enterprise E1 (manufacturing, won 100), 3 calls in 7 days, 3 web events
        {"one_id": "P1", "person_name": "张三丰", "title": "董事长", "mobile_token": "tok1", "email_token": None,
         "company_name": None, "crm_enterprise_id": "E1", "source_records": 3},
        # P2: no mobile, real-estate enterprise E2, a connected call 2 days ago, long inactive
        {"one_id": "P2", "person_name": "李四", "title": "采购经理", "mobile_token": None, "email_token": "tok2",
         "company_name": None, "crm_enterprise_id": "E2", "source_records": 1},
        # P3: chairman from a file, no CRM contact or enterprise, app login today, tag B
        {"one_id": "P3", "person_name": "王五", "title": "董事长", "mobile_token": "tok3", "email_token": None,
         "company_name": "某某科技", "crm_enterprise_id": None, "source_records": 1},
        # P4: no title, two CRM contacts (1 call each in 7 days), two WeCom records
        {"one_id": "P4", "person_name": "赵六", "title": None, "mobile_token": None, "email_token": None,
         "company_name": None, "crm_enterprise_id": "E1", "source_records": 4},
        # P5: CFO at a bank, 5 calls, events only 31 days ago
        {"one_id": "P5", "person_name": "孙七", "title": "财务总监", "mobile_token": None, "email_token": None,
         "company_name": None, "crm_enterprise_id": "E3", "source_records": 1},
        # P6: a golden record and nothing else
        {"one_id": "P6", "person_name": "周八", "title": p6_title, "mobile_token": None, "email_token": None,
         "company_name": None, "crm_enterprise_id": None, "source_records": 1},
    ])
    golden = golden.append_column("as_of_date", pa.array([day] * golden.num_rows, pa.date32()))
    person_360 = pa.Table.from_pylist([
        {"contact_id": "C1", "one_id": "P1", "calls_7d": 3, "calls_30d": 4, "calls_all": 9, "events_7d": 3,
         "events_30d": 3, "events_all": 5, "leads": 1, "converted_leads": 1, "last_active_on": _days(1)},
        {"contact_id": "C2", "one_id": "P2", "calls_7d": 0, "calls_30d": 1, "calls_all": 2, "events_7d": 0,
         "events_30d": 1, "events_all": 1, "leads": 0, "converted_leads": 0, "last_active_on": _days(40)},
        {"contact_id": "C4a", "one_id": "P4", "calls_7d": 1, "calls_30d": 1, "calls_all": 1, "events_7d": 0,
         "events_30d": 0, "events_all": 0, "leads": 0, "converted_leads": 0, "last_active_on": _days(5)},
        {"contact_id": "C4b", "one_id": "P4", "calls_7d": 1, "calls_30d": 2, "calls_all": 2, "events_7d": 0,
         "events_30d": 0, "events_all": 0, "leads": 2, "converted_leads": 0, "last_active_on": _days(6)},
        {"contact_id": "C5", "one_id": "P5", "calls_7d": 5, "calls_30d": 5, "calls_all": 5, "events_7d": 0,
         "events_30d": 0, "events_all": 2, "leads": 0, "converted_leads": 0, "last_active_on": _days(3)},
    ], schema=pa.schema([("contact_id", pa.string()), ("one_id", pa.string()), *[(c, pa.int64()) for c in (
        "calls_7d", "calls_30d", "calls_all", "events_7d", "events_30d", "events_all", "leads", "converted_leads")],
        ("last_active_on", pa.date32())]))
    enterprise = pa.Table.from_pylist([
        {"enterprise_id": "E1", "enterprise_name": "华东制造", "industry": "制造业", "province": "江苏省",
         "crm_contacts": 3, "won_amount": 100.0, "open_opportunities": 1},
        {"enterprise_id": "E2", "enterprise_name": "万家地产", "industry": "房地产业", "province": "广东省",
         "crm_contacts": 1, "won_amount": 0.0, "open_opportunities": 0},
        {"enterprise_id": "E3", "enterprise_name": "远航银行", "industry": "金融业", "province": "北京市",
         "crm_contacts": 1, "won_amount": 20.5, "open_opportunities": 2},
    ])
    events, identity = [], []
    for i, (person, etype, ago) in enumerate([
            ("P1", "web.view.page", 1), ("P1", "web.view.page", 2), ("P1", "web.click.button", 6),
            ("P2", "web.submit.form", 10), ("P3", "app.login.account", 0),
            ("P5", "web.view.page", 31), ("P5", "web.view.page", 35)]):
        domain, action, obj = etype.split(".")
        events.append({"event_id": f"ev{i}", "event_type": etype, "event_domain": domain, "event_action": action,
                       "event_object": obj, "event_source": domain, "business_date": _days(ago)})
        identity.append({"entity_type": "person", "record_source": "sdk_event", "record_id": f"ev{i}", "one_id": person})
    events.append({"event_id": "ev_anon", "event_type": "web.view.page", "event_domain": "web", "event_action": "view",
                   "event_object": "page", "event_source": "web", "business_date": D})  # nobody's: no identity
    for contact, person in [("C1", "P1"), ("C2", "P2"), ("C4a", "P4"), ("C4b", "P4"), ("C5", "P5")]:
        identity.append({"entity_type": "person", "record_source": "crm_contact", "record_id": contact, "one_id": person})
    for wecom, person in [("W1", "P1"), ("W3", "P3"), ("W4a", "P4"), ("W4b", "P4")]:
        identity.append({"entity_type": "person", "record_source": "wecom_external_contact", "record_id": wecom,
                         "one_id": person})
    identity.append({"entity_type": "enterprise", "record_source": "crm_enterprise", "record_id": "E1", "one_id": "X1"})
    calls = pa.Table.from_pylist([
        {"call_id": "k1", "contact_id": "C2", "is_connected": True, "business_date": _days(2)},
        {"call_id": "k2", "contact_id": "C1", "is_connected": False, "business_date": _days(1)},
        {"call_id": "k3", "contact_id": "C5", "is_connected": True, "business_date": _days(20)},
    ])
    tags = [{"one_id": "P2" if a_class_moves else "P1", "tag_id": "t_a", "tag_name": "A类", "group_name": "客户等级"},
            {"one_id": "P3", "tag_id": "t_b", "tag_name": "B类", "group_name": "客户等级"},
            {"one_id": "P4", "tag_id": "t_s", "tag_name": "已签约", "group_name": "客户阶段"}]
    by_event = {i["record_id"]: i["one_id"] for i in identity if i["record_source"] == "sdk_event"}
    person_events = pa.Table.from_pylist([{"one_id": by_event[e["event_id"]], **e} for e in events
                                          if e["event_id"] in by_event])
    return {
        "dwm.dwm_person_golden": golden,
        "dwm.dwm_person_events": person_events,
        "ads.ads_person_360": person_360,
        "ads.ads_enterprise_360": enterprise,
        "dwd.dwd_sdk__events": pa.Table.from_pylist(events),
        "oneid.identity_map": pa.Table.from_pylist(identity),
        "dwd.dwd_crm__calls": calls,
        "dwm.dwm_person_tags": pa.Table.from_pylist(tags),
    }


def load(session, data: dict[str, pa.Table]) -> None:
    for name, table in data.items():
        session.replace_table(name, table)


# (rule, members on D): every kind of condition, and the edge cases of missing values.
CASES = [
    ({"all": [{"field": "person.title", "op": "in", "value": ["董事长", "财务总监"]},
              {"field": "person.has_mobile", "op": "eq", "value": True}]}, {"P1", "P3"}),
    ({"not": {"field": "enterprise.industry", "op": "eq", "value": "房地产业"}}, {"P1", "P3", "P4", "P5", "P6"}),
    ({"event": {"domain": "web", "within_days": 7, "min_count": 3}}, {"P1"}),
    ({"event": {"within_days": 30}}, {"P1", "P2", "P3"}),
    ({"event": {"type": ["web.submit.form", "app.login.account"], "within_days": 1}}, {"P3"}),
    ({"not": {"call": {"within_days": 7, "connected": True}}}, {"P1", "P3", "P4", "P5", "P6"}),
    ({"call": {"within_days": 30, "min_count": 1}}, {"P1", "P2", "P5"}),
    ({"field": "person.calls_7d", "op": "lt", "value": 2}, {"P2", "P3", "P6"}),
    ({"field": "person.calls_7d", "op": "gte", "value": 2}, {"P1", "P4", "P5"}),
    ({"field": "person.crm_contacts", "op": "eq", "value": 2}, {"P4"}),
    ({"any": [{"tag": {"group": "客户等级", "name": "A类"}}, {"tag": "B类"}]}, {"P1", "P3"}),
    ({"linked": {"source": "wecom_external_contact", "min_count": 2}}, {"P4"}),
    ({"field": "person.last_active_on", "op": "not_within_last_days", "value": 30}, {"P2", "P3", "P6"}),
    ({"field": "person.last_active_on", "op": "between", "value": ["2026-11-19", "2026-11-24"]}, {"P1", "P4", "P5"}),
    ({"field": "enterprise.won_amount", "op": "gt", "value": 50}, {"P1", "P4"}),
    ({"field": "person.enterprise_id", "op": "is_null"}, {"P3", "P6"}),
    ({"field": "person.title", "op": "ne", "value": "董事长"}, {"P2", "P5"}),  # a missing title is no title
    ({"all": [{"any": [{"tag": "A类"}, {"field": "enterprise.province", "op": "eq", "value": "北京市"}]},
              {"not": {"field": "person.calls_all", "op": "gt", "value": 100}}]}, {"P1", "P5"}),
    ({"field": "person.title", "op": "eq", "value": "董事长' or '1'='1"}, set()),  # a value is only ever a literal
]
