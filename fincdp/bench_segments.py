"""`fincdp bench segments`: 20 segments over 1M person profiles and 10M events on DuckDB.

The tables are generated directly in the shapes the segments read (dwm_person_golden, ads_person_360,
ads_enterprise_360, dwd_sdk__events, dwd_crm__calls, dwm_person_tags, oneid.identity_map) with DuckDB
SQL: the full pipeline would take far longer at this size and the segment queries do not care who
built the tables. Each segment is compiled and run through the warehouse read session (the asset's
code path) `repeat` times; the median per segment is compared with the target (<= 1 s), beside a
same-run baseline: plain scans of the events table. The whole asset step (all 20 segments with
entries/exits and the state tables written) is timed once on top.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path

import duckdb

from fincdp.segments.compiler import compile_segment
from fincdp.segments.language import parse_segment
from fincdp.segments.membership import update_segments

D = dt.date(2026, 11, 25)
TARGET_S = 1.0
BEGIN, END = "<!-- bench:segments -->", "<!-- /bench:segments -->"

EVENT_TYPES = ["web.view.page", "web.click.button", "web.search.product", "web.view.product", "web.submit.form",
               "web.download.whitepaper", "app.view.screen", "app.click.banner", "app.open.notification",
               "app.login.account", "app.register.account", "miniapp.view.page", "miniapp.share.article",
               "miniapp.login.account", "miniapp.submit.form"]
TITLES = ["董事长", "总经理", "财务总监", "采购总监", "资金部总监", "采购经理", "会计主管", "出纳", "项目经理", "行政经理"]
INDUSTRIES = ["制造业", "建筑业", "房地产业", "批发和零售业", "金融业", "交通运输、仓储和邮政业", "信息传输、软件和信息技术服务业"]
PROVINCES = ["江苏省", "广东省", "北京市", "上海市", "浙江省", "四川省", "山东省"]
TAGS = [("客户等级", "A类"), ("客户等级", "B类"), ("客户等级", "C类"), ("客户阶段", "已签约"), ("关注产品", "供应链金融")]

# Twenty rules a marketing team would write: attributes, enterprise, tags, events, calls, links, logic.
SEGMENTS = {
    "s01_decision_makers": {"field": "person.title", "op": "in", "value": ["董事长", "总经理", "财务总监"]},
    "s02_reachable": {"all": [{"field": "person.has_mobile", "op": "eq", "value": True},
                              {"field": "person.title", "op": "not_null"}]},
    "s03_manufacturing": {"field": "enterprise.industry", "op": "eq", "value": "制造业"},
    "s04_big_won": {"field": "enterprise.won_amount", "op": "gte", "value": 500000},
    "s05_a_class": {"tag": {"group": "客户等级", "name": "A类"}},
    "s06_signed_or_a": {"any": [{"tag": "已签约"}, {"tag": "A类"}]},
    "s07_web_7d": {"event": {"domain": "web", "within_days": 7}},
    "s08_form_30d": {"event": {"type": ["web.submit.form", "miniapp.submit.form"], "within_days": 30}},
    "s09_heavy_app": {"event": {"domain": "app", "within_days": 30, "min_count": 5}},
    "s10_no_web_30d": {"not": {"event": {"domain": "web", "within_days": 30}}},
    "s11_called_connected": {"call": {"within_days": 30, "connected": True}},
    "s12_not_called": {"not": {"call": {"within_days": 7}}},
    "s13_calls_7d": {"field": "person.calls_7d", "op": "gte", "value": 2},
    "s14_dormant": {"field": "person.last_active_on", "op": "not_within_last_days", "value": 60},
    "s15_wecom_linked": {"linked": {"source": "wecom_external_contact"}},
    "s16_multi_source": {"field": "person.source_records", "op": "gte", "value": 3},
    "s17_leads_unconverted": {"all": [{"field": "person.leads", "op": "gte", "value": 1},
                                      {"field": "person.converted_leads", "op": "eq", "value": 0}]},
    "s18_jiangsu_web_buyers": {"all": [{"field": "enterprise.province", "op": "eq", "value": "江苏省"},
                                       {"event": {"type": "web.view.product", "within_days": 30}}]},
    "s19_hot_not_called": {"all": [{"event": {"domain": "web", "within_days": 7, "min_count": 3}},
                                   {"not": {"call": {"within_days": 7, "connected": True}}},
                                   {"field": "person.has_mobile", "op": "eq", "value": True}]},
    "s20_vip_mix": {"all": [{"any": [{"tag": "A类"}, {"field": "enterprise.won_amount", "op": "gte", "value": 800000}]},
                            {"not": {"field": "enterprise.industry", "op": "eq", "value": "房地产业"}},
                            {"event": {"within_days": 30, "min_count": 2}}]},
}


def _list(values) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def generate(con: duckdb.DuckDBPyConnection, profiles: int, events: int) -> dict[str, int]:
    """The seven tables at the given size (deterministic: hashes of the row number, no RNG state)."""
    enterprises = max(profiles // 20, 10)
    con.execute("set preserve_insertion_order = false")
    for schema in ("dwm", "ads", "dwd", "oneid", "segments"):
        con.execute(f"create schema if not exists {schema}")
    h = "(hash(i * 2654435761 + {k}) % 1000000)::bigint"  # a stable pseudo-random 0..999999 per row and key
    con.execute(f"""create or replace table dwm.dwm_person_golden as
        select 'P' || i as one_id, 1 + ({h.format(k=1)} % 4)::int as source_records, null::varchar as person_name,
               {_list(TITLES)}[1 + ({h.format(k=2)} % {len(TITLES)})::int] as title,
               case when {h.format(k=3)} < 700000 then 'm' || i end as mobile_token,
               case when {h.format(k=4)} < 400000 then 'e' || i end as email_token,
               null::varchar as company_name,
               case when {h.format(k=5)} < 800000 then 'E' || ({h.format(k=6)} % {enterprises}) end as crm_enterprise_id,
               date '{D}' as as_of_date
        from range({profiles}) t(i)""")
    # CRM contacts: 90% of people have one, a tenth of those a second one.
    con.execute(f"""create or replace table ads.ads_person_360 as
        with c as (
            select 'C' || i as contact_id, 'P' || i as one_id, i from range({profiles}) t(i)
            where {h.format(k=7)} < 900000
            union all
            select 'C' || i || 'b', 'P' || i, i + {profiles} from range({profiles}) t(i)
            where {h.format(k=8)} < 90000
        )
        select contact_id, one_id, ({h.format(k=9)} % 5)::bigint as calls_7d, ({h.format(k=10)} % 12)::bigint as calls_30d,
               ({h.format(k=11)} % 40)::bigint as calls_all, ({h.format(k=12)} % 8)::bigint as events_7d,
               ({h.format(k=13)} % 20)::bigint as events_30d, ({h.format(k=14)} % 60)::bigint as events_all,
               ({h.format(k=15)} % 3)::bigint as leads, ({h.format(k=16)} % 2)::bigint as converted_leads,
               date '{D}' - ({h.format(k=17)} % 120)::int as last_active_on, date '{D}' as as_of_date
        from c""")
    con.execute(f"""create or replace table ads.ads_enterprise_360 as
        select 'E' || i as enterprise_id, '企业' || i as enterprise_name, null::varchar as credit_code,
               {_list(INDUSTRIES)}[1 + ({h.format(k=20)} % {len(INDUSTRIES)})::int] as industry,
               {_list(PROVINCES)}[1 + ({h.format(k=21)} % {len(PROVINCES)})::int] as province, null::varchar as city,
               ({h.format(k=22)} % 30)::bigint as crm_contacts, ({h.format(k=23)} % 10)::bigint as wecom_contacts,
               0::bigint as calls_7d, 0::bigint as calls_30d, 0::bigint as events_30d, null::date as last_active_on,
               ({h.format(k=24)} % 4)::bigint as open_opportunities, 0.0::double as open_pipeline_amount,
               ({h.format(k=25)} % 3)::bigint as won_opportunities, ({h.format(k=26)})::double as won_amount,
               date '{D}' as as_of_date
        from range({enterprises}) t(i)""")
    # Events over 90 days, every one resolved to a person by OneID (identity_map rows): the heaviest case.
    con.execute(f"""create or replace table dwd.dwd_sdk__events as
        with e as (select i, {_list(EVENT_TYPES)}[1 + ({h.format(k=30)} % {len(EVENT_TYPES)})::int] as event_type
                   from range({events}) t(i))
        select 'ev' || i as event_id, null::varchar as org_id, null::timestamp as occurred_at,
               split_part(event_type, '.', 1) as event_source, event_type,
               split_part(event_type, '.', 1) as event_domain, split_part(event_type, '.', 2) as event_action,
               split_part(event_type, '.', 3) as event_object, date '{D}' - ({h.format(k=31)} % 90)::int as business_date
        from e
        order by business_date  -- landed day by day, as the incremental model appends them""")
    con.execute(f"""create or replace table dwd.dwd_crm__calls as
        select 'k' || i as call_id, 'C' || ({h.format(k=40)} % {profiles}) as contact_id, null::varchar as agent_userid,
               {h.format(k=41)} < 550000 as is_connected, date '{D}' - ({h.format(k=42)} % 90)::int as business_date
        from range({profiles * 2}) t(i)""")
    con.execute(f"""create or replace table oneid.identity_map as
        select 'person' as entity_type, 'sdk_event' as record_source, 'ev' || i as record_id,
               'P' || ({h.format(k=50)} % {profiles}) as one_id
        from range({events}) t(i)
        union all
        select 'person', 'crm_contact', contact_id, one_id from ads.ads_person_360
        union all
        select 'person', 'wecom_external_contact', 'W' || i, 'P' || ({h.format(k=52)} % {profiles})
        from range({profiles // 3}) t(i)
        union all
        select 'enterprise', 'crm_enterprise', enterprise_id, 'X' || enterprise_id from ads.ads_enterprise_360""")
    con.execute(f"""create or replace table dwm.dwm_person_tags as
        select distinct 'P' || ({h.format(k=60)} % {profiles}) as one_id, 't' || (i % {len(TAGS)}) as tag_id,
               {_list([t for _, t in TAGS])}[1 + (i % {len(TAGS)})::int] as tag_name,
               {_list([g for g, _ in TAGS])}[1 + (i % {len(TAGS)})::int] as group_name, date '{D}' as as_of_date
        from range({profiles // 2}) t(i)""")
    con.execute("checkpoint")
    return {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in (
        "dwm.dwm_person_golden", "ads.ads_person_360", "ads.ads_enterprise_360", "dwd.dwd_sdk__events",
        "dwd.dwd_crm__calls", "oneid.identity_map", "dwm.dwm_person_tags")}


def build_person_events(con: duckdb.DuckDBPyConnection) -> int:
    """dwm.dwm_person_events as its dbt model builds it (dbt_project/models/dwm/dwm_person_events.sql):
    the one join of events to OneIDs per day that the event rules then share."""
    con.execute("""create or replace table dwm.dwm_person_events as
        select identities.one_id, events.event_id, events.event_type, events.event_domain, events.event_action,
               events.event_object, events.event_source, events.business_date
        from dwd.dwd_sdk__events as events
        inner join (select record_id, one_id from oneid.identity_map where record_source = 'sdk_event') as identities
            on events.event_id = identities.record_id
        order by events.business_date""")
    con.execute("checkpoint")
    return con.execute("select count(*) from dwm.dwm_person_events").fetchall()[0][0]


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def run(work: Path, *, profiles: int = 1_000_000, events: int = 10_000_000, repeat: int = 3,
        report: Path | None = None) -> dict:
    from resources.warehouse import WarehouseSession

    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    path = work / f"segments-{profiles}-{events}.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        gen_s, counts = _timed(lambda: generate(con, profiles, events))
        print(f"generated in {gen_s:.1f} s: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)
        model_s, counts["dwm.dwm_person_events"] = _timed(lambda: build_person_events(con))
        print(f"dwm.dwm_person_events built in {model_s:.1f} s", flush=True)
        session = WarehouseSession(None, con)
        segments = [parse_segment({"id": sid, "version": 1, "kind": "dynamic", "description": sid, "rule": rule},
                                  f"bench:{sid}") for sid, rule in SEGMENTS.items()]
        baselines = {
            "count(*) of the events table": "select count(*) from dwd.dwd_sdk__events",
            "events per person over 30 days (dwm_person_events: scan, filter, group by)":
                "select count(*) from (select one_id, count(*) from dwm.dwm_person_events "
                f"where business_date > date '{D}' - 30 group by one_id)",
        }
        base = {name: statistics.median(_timed(lambda: session.rows(sql))[0] for _ in range(repeat))
                for name, sql in baselines.items()}
        rows = []
        for segment in segments:
            compiled = compile_segment(segment, D)
            times, size = [], 0
            for _ in range(repeat):
                seconds, table = _timed(lambda: session.arrow(compiled.sql))
                times.append(seconds)
                size = table.num_rows
            rows.append((segment.id, size, statistics.median(times)))
            print(f"{segment.id:<24} {size:>9,} members  median {statistics.median(times):.3f} s", flush=True)
        step_s, results = _timed(lambda: update_segments(session, segments, D))
        step2_s, _ = _timed(lambda: update_segments(session, segments, D + dt.timedelta(days=1)))
        member_rows = sum(r.size for r in results)
    finally:
        con.close()
        path.unlink(missing_ok=True)
        Path(str(path) + ".wal").unlink(missing_ok=True)
    load_after = os.getloadavg()[0]
    median = statistics.median(s for _, _, s in rows)
    summary = {"profiles": profiles, "events": events, "generate_s": gen_s, "model_s": model_s, "median_s": median,
               "max_s": max(s for _, _, s in rows), "baselines": base, "segments": rows,
               "asset_step_s": step_s, "asset_step_next_day_s": step2_s,
               "load": (load_before, load_after), "member_rows": member_rows, "counts": counts}
    print(f"median per segment {median:.3f} s (target <= {TARGET_S} s); whole asset step {step_s:.1f} s, "
          f"next day {step2_s:.1f} s", flush=True)
    if report is not None:
        _write(report, _markdown(summary, repeat), f"`fincdp bench segments`: DuckDB, {profiles:,} profiles / {events:,} events")
    return summary


def _markdown(s: dict, repeat: int) -> str:
    verdict = "meets" if s["median_s"] <= TARGET_S else "misses"
    lines = [
        f"Measured {dt.date.today()} on this machine ({platform.machine()}, 2 cores shared with other work: "
        f"load average {s['load'][0]:.1f} at the start, {s['load'][1]:.1f} at the end), DuckDB "
        f"{duckdb.__version__}: `fincdp bench segments --profiles {s['profiles']} --events {s['events']} "
        f"--repeat {repeat} --report docs/benchmarks.md`. Tables generated in the ADS/DWD shapes by DuckDB SQL "
        f"in {s['generate_s']:.0f} s (" + ", ".join(f"{t} {n:,}" for t, n in s["counts"].items()) + ").",
        f"Building `dwm.dwm_person_events` (events joined to OneIDs once a day, the dbt model's SQL) took "
        f"{s['model_s']:.1f} s; event rules read it instead of joining the identity map each.",
        "",
        f"**Median {s['median_s']:.3f} s per segment over the 20 segments (target ≤ {TARGET_S:.0f} s: {verdict} it); "
        f"slowest {s['max_s']:.3f} s.** Each figure is the median of {repeat} runs of the compiled query through the "
        "warehouse read session, fetching all members as Arrow.",
        "",
        "| same-run baseline | median s |", "|---|---|",
        *[f"| {name} | {sec:.3f} |" for name, sec in s["baselines"].items()],
        "",
        "| segment | members | median s |", "|---|---|---|",
        *[f"| {sid} | {size:,} | {sec:.3f} |" for sid, size, sec in s["segments"]],
        "",
        f"The whole asset step for the 20 segments (evaluate, entries/exits against the history, write "
        f"membership, history and snapshots; {s['member_rows']:,} membership rows): {s['asset_step_s']:.1f} s on the "
        f"first day (every member is an entry), {s['asset_step_next_day_s']:.1f} s on the next.",
    ]
    return "\n".join(lines)


def _write(report: Path, body: str, title: str) -> None:
    from fincdp.bench_report import replace_block

    replace_block(report, BEGIN, END, f"## Segments ({title})\n\n{body}")
