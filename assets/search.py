"""Search indexes per tenant: the person profile index and the segment-membership index.

Both are built from the warehouse through `Warehouse.query()` (so the same code reads DuckDB, MySQL
or ClickHouse), loaded into a new physical index and published by an atomic alias swap
(resources/search.py). Documents carry a stable `_id` (the OneID; segment id + OneID) and are a pure
function of the warehouse rows, so a reindex of the same input gives the same documents.

Personal data: names are masked (fincdp.masking) before they leave the warehouse; tokens and
ciphertexts are never selected. The mappings are `dynamic: strict`, so a field that is not declared
here is refused by the index instead of being indexed with a guessed type.

A person's decision-maker fields come from the boss model (ads.ads_decision_makers): the account where
their boss_score is highest. To add profile fields: select them in `profile_rows`, set them in
`profile_document`, and declare them in `PROFILE_MAPPINGS`.
"""

import time
from datetime import date, datetime, timezone
from typing import Iterator

import dagster as dg
import duckdb
import pyarrow as pa

from assets.boss import ADS_SCHEMA as DECISION_MAKERS_SCHEMA
from assets.partitions import tenant_day, tenant_day_of
from fincdp.masking import mask_name
from resources.search import IndexKind, SearchIndex
from resources.warehouse import ReadSession, Warehouse, read_table

_KW = {"type": "keyword"}
_INT = {"type": "integer"}
_DATE = {"type": "date", "format": "strict_date"}

PROFILE_MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "one_id": _KW,
        "name_masked": _KW,
        "title": {"type": "keyword", "fields": {"text": {"type": "text"}}},
        "company_name": {"type": "keyword", "fields": {"text": {"type": "text"}}},
        "enterprise_ids": _KW,
        "contact_ids": _KW,
        "source_records": _INT,
        "has_mobile": {"type": "boolean"},
        "has_email": {"type": "boolean"},
        "calls_7d": _INT, "calls_30d": _INT, "calls_all": _INT,
        "events_7d": _INT, "events_30d": _INT, "events_all": _INT,
        "leads": _INT, "converted_leads": _INT,
        "last_active_on": _DATE,
        "as_of_date": _DATE,
        "decision_maker_level": _KW,
        "reports_to_one_id": _KW,
        "buying_roles": _KW,
        "boss_score": {"type": "double"},
        "boss_account_one_id": _KW,
        "boss_account_rank": _INT,
        "contact_window": _KW,
        "contact_weekdays": _INT,
        "contact_hour_start": _INT,
        "contact_hour_end": _INT,
    },
}

SEGMENT_MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "segment_id": _KW,
        "segment_version": _INT,
        "one_id": _KW,
        "entered_at": {"type": "date"},
        "as_of_date": _DATE,
    },
}

PROFILES = IndexKind("profiles", PROFILE_MAPPINGS)
SEGMENTS = IndexKind("segments", SEGMENT_MAPPINGS)

GOLDEN, PERSON_360, MEMBERSHIP = "dwm.dwm_person_golden", "ads.ads_person_360", "segments.membership"
DECISION_MAKERS = "ads.ads_decision_makers"  # the boss model's output (assets/boss.py)
_BOSS = ("decision_maker_level", "reports_to_one_id", "buying_roles", "boss_score", "account_one_id", "account_rank",
         "contact_window", "contact_weekdays", "contact_hour_start", "contact_hour_end")
_COUNTS = ("calls_7d", "calls_30d", "calls_all", "events_7d", "events_30d", "events_all", "leads", "converted_leads")


def profile_rows(session: ReadSession) -> pa.Table:
    """One row per person OneID: the golden record joined with the person's CRM contacts, summed.
    Plain SQL that every engine runs; the per-person aggregation is done in Arrow."""
    golden = session.arrow(
        f"select one_id, person_name, title, company_name, crm_enterprise_id, source_records, as_of_date "
        f"from {GOLDEN}")
    contacts = session.arrow(
        f"select one_id, contact_id, enterprise_id, enterprise_name, has_mobile, has_email, "
        f"{', '.join(_COUNTS)}, last_active_on, as_of_date from {PERSON_360} where one_id is not null")
    boss = read_table(session, DECISION_MAKERS, DECISION_MAKERS_SCHEMA).select(["one_id", *_BOSS])
    # Aggregated and joined in an in-process DuckDB over the fetched Arrow tables, whatever the engine.
    con = duckdb.connect()
    try:
        con.register("golden", golden)
        con.register("contacts", contacts)
        con.register("boss", boss)
        sums = ", ".join(f"sum({c})::bigint as {c}" for c in _COUNTS)
        return con.sql(f"""
            with per_person as (
                select one_id, list(distinct contact_id order by contact_id) as contact_ids,
                       list(distinct enterprise_id order by enterprise_id) filter (where enterprise_id is not null)
                           as enterprise_ids,
                       max(enterprise_name) as enterprise_name, bool_or(has_mobile::boolean) as has_mobile,
                       bool_or(has_email::boolean) as has_email, {sums},
                       max(last_active_on) as last_active_on, max(as_of_date) as contacts_as_of
                from contacts group by one_id
            )
            , top_account as (  -- the account where the person weighs most
                select * exclude (pick) from (
                    select *, row_number() over (partition by one_id
                                                 order by boss_score desc nulls last, account_one_id) as pick
                    from boss) where pick = 1
            )
            select coalesce(g.one_id, p.one_id) as one_id, g.person_name, g.title, g.company_name,
                   g.crm_enterprise_id, g.source_records, g.as_of_date,
                   p.* exclude (one_id), b.* exclude (one_id)
            from golden g full join per_person p on g.one_id = p.one_id
            left join top_account b on b.one_id = coalesce(g.one_id, p.one_id)
            order by 1""").to_arrow_table()
    finally:
        con.close()


def _day(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def _ids(values) -> list[str]:
    return sorted({str(v) for v in values or () if v is not None})


def profile_document(person: dict) -> dict:
    """The one place a profile document is built from a row of `profile_rows` (masked PII only)."""
    enterprise_ids = _ids(person.get("enterprise_ids"))
    if person.get("crm_enterprise_id") is not None:
        enterprise_ids = _ids([*enterprise_ids, person["crm_enterprise_id"]])
    return {
        "_id": person["one_id"],
        "one_id": person["one_id"],
        "name_masked": mask_name(person.get("person_name")),
        "title": person.get("title"),
        "company_name": person.get("company_name") or person.get("enterprise_name"),
        "enterprise_ids": enterprise_ids,
        "contact_ids": _ids(person.get("contact_ids")),
        "source_records": int(person.get("source_records") or 0),
        "has_mobile": bool(person.get("has_mobile")),
        "has_email": bool(person.get("has_email")),
        **{c: int(person.get(c) or 0) for c in _COUNTS},
        "last_active_on": _day(person.get("last_active_on")),
        "as_of_date": _day(person.get("as_of_date") or person.get("contacts_as_of")),
        "decision_maker_level": person.get("decision_maker_level"),
        "reports_to_one_id": person.get("reports_to_one_id"),
        "buying_roles": sorted(r for r in (person.get("buying_roles") or "").split(",") if r),
        "boss_score": None if person.get("boss_score") is None else float(person["boss_score"]),
        "boss_account_one_id": person.get("account_one_id"),
        "boss_account_rank": None if person.get("account_rank") is None else int(person["account_rank"]),
        "contact_window": person.get("contact_window"),
        "contact_weekdays": [int(d) for d in (person.get("contact_weekdays") or "").split(",") if d],
        "contact_hour_start": None if person.get("contact_hour_start") is None else int(person["contact_hour_start"]),
        "contact_hour_end": None if person.get("contact_hour_end") is None else int(person["contact_hour_end"]),
    }


def profile_documents(rows: pa.Table, batch_rows: int = 20_000) -> Iterator[dict]:
    for batch in rows.to_batches(batch_rows):
        for person in batch.to_pylist():
            yield profile_document(person)


def membership_rows(session: ReadSession, business_date: date) -> pa.Table | None:
    """Each segment's members at its latest evaluation on or before the business date (None: no
    segments table yet)."""
    if not session.table_exists(MEMBERSHIP):
        return None
    return session.arrow(
        f"select m.segment_id, m.segment_version, m.one_id, m.entered_at, m.as_of_date "
        f"from {MEMBERSHIP} m join (select segment_id, max(as_of_date) as latest from {MEMBERSHIP} "
        f"where as_of_date <= ? group by segment_id) l on m.segment_id = l.segment_id and m.as_of_date = l.latest "
        f"order by m.segment_id, m.one_id", [business_date])


def _instant(value) -> str | None:
    """A timestamp as ISO 8601 in UTC with its offset, whatever the engine returned: DuckDB and ClickHouse
    give naive UTC values, MySQL (session time zone +00:00) aware ones."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    return str(value)


def segment_document(member: dict) -> dict:
    return {
        "_id": f"{member['segment_id']}:{member['one_id']}",
        "segment_id": str(member["segment_id"]),
        "segment_version": int(member["segment_version"]),
        "one_id": member["one_id"],
        "entered_at": _instant(member.get("entered_at")),
        "as_of_date": _day(member.get("as_of_date")),
    }


def segment_documents(rows: pa.Table, batch_rows: int = 20_000) -> Iterator[dict]:
    for batch in rows.to_batches(batch_rows):
        for member in batch.to_pylist():
            yield segment_document(member)


def _not_configured(context: dg.AssetExecutionContext) -> None:
    context.log.warning("FINCDP_ES_URL is not set: no search cluster, the index is not built")


@dg.asset(key=["search", "profile_index"], group_name="search", partitions_def=tenant_day,
          deps=[dg.AssetKey(["ads", "ads_person_360"]), dg.AssetKey(["dwm", "dwm_person_golden"]),
                dg.AssetKey(["boss", "decision_makers"])],
          kinds={"elasticsearch"}, output_required=False,
          description="Per-tenant person profile index (alias <prefix>profiles): golden record + 360 "
                      "activity per OneID, masked names only; published by an atomic alias swap.")
def profile_index(context: dg.AssetExecutionContext, warehouse: Warehouse, search: SearchIndex):
    if not search.configured:
        _not_configured(context)
        return
    day = tenant_day_of(context)
    began = time.perf_counter()
    with warehouse.query(day.tenant) as session:
        rows = profile_rows(session)
    read_s = time.perf_counter() - began
    result = search.publish(day.tenant, PROFILES, profile_documents(rows), log=context.log)
    yield dg.MaterializeResult(metadata={**result.metadata(), "warehouse_read_seconds": round(read_s, 3)})


@dg.asset(key=["search", "segment_index"], group_name="search", partitions_def=tenant_day,
          deps=[dg.AssetKey(["segments", "membership"])], kinds={"elasticsearch"}, output_required=False,
          description="Per-tenant segment-membership index (alias <prefix>segments): one document per "
                      "segment and OneID at the segment's latest evaluation; atomic alias swap.")
def segment_index(context: dg.AssetExecutionContext, warehouse: Warehouse, search: SearchIndex):
    if not search.configured:
        _not_configured(context)
        return
    day = tenant_day_of(context)
    with warehouse.query(day.tenant) as session:
        rows = membership_rows(session, day.business_date)
    if rows is None:
        # No segment has been evaluated for this tenant: its membership index is truthfully empty.
        context.log.warning(f"tenant {day.tenant.id}: {MEMBERSHIP} does not exist yet; publishing an empty index")
        rows = pa.table({"segment_id": pa.array([], pa.string())})
    result = search.publish(day.tenant, SEGMENTS, segment_documents(rows), log=context.log)
    yield dg.MaterializeResult(metadata={**result.metadata(),
                                         "segments": len(set(rows["segment_id"].to_pylist()))})


ASSETS = [profile_index, segment_index]
