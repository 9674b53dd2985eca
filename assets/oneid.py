"""OneID: person and enterprise identities from the DWD identifier table, per tenant and date.

Runs between the two dbt steps (DWD, then DWM/DWS/ADS), on the configured engine, and writes the
`oneid` layer of the tenant's warehouse:

- oneid.records          every record ever seen, oldest first (the order that names clusters);
- oneid.identity_map     record -> one_id, with confidence and the rule that joined it;
- oneid.identity_history merges and splits, with the rule and the run's date;
- oneid.review_queue     links cut by a conflict, for a human: approve (merge) or reject (keep apart);
                         decisions are recorded with who and when, and every later run respects them;
- oneid.identifier_hubs  identifier values shared by too many records to merge anything.

Identifiers arrive as the pipeline's per-tenant tokens: normalised and keyed at the door, so equal
tokens are equal identifiers and no raw personal data is needed here.
"""

import hashlib
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assets.partitions import tenant_day, tenant_day_of
from fincdp.oneid.deterministic import resolve_strong
from fincdp.oneid.identity import changes, mint
from resources.warehouse import Warehouse

RECORDS, MAP, HISTORY, REVIEW, HUBS = ("oneid.records", "oneid.identity_map", "oneid.identity_history",
                                       "oneid.review_queue", "oneid.identifier_hubs")
ENTITY_TYPES = ("enterprise", "person")
DECISIONS = ("approved", "rejected")


class OneIdConfig(dg.Config):
    """Review decisions to record before resolving (ids from oneid.review_queue)."""
    approve: list[str] = []
    reject: list[str] = []
    reviewer: str = ""


def review_id(entity_type: str, record_a: str, record_b: str, identifier_type: str, identifier: str) -> str:
    a, b = sorted((record_a, record_b))
    return "R" + hashlib.sha256("\x1f".join((entity_type, a, b, identifier_type, identifier)).encode()).hexdigest()[:16]


def _table(session, table: str) -> list[dict]:
    return session.arrow(f"select * from {table}").to_pylist() if session.table_exists(table) else []


def decide(review: list[dict], ids: list[str], decision: str, reviewer: str, now: datetime) -> list[dict]:
    """Record a reviewer's decision on queue items; unknown ids are an error naming them."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    if ids and not reviewer.strip():
        raise ValueError("a review decision needs the reviewer's name")
    known = {r["review_id"]: r for r in review}
    unknown = sorted(set(ids) - set(known))
    if unknown:
        raise KeyError(f"no review item {', '.join(unknown)} in {REVIEW}")
    for i in ids:
        known[i].update(status=decision, decided_by=reviewer.strip(), decided_at=now)
    return review


def _arrow(session, table: str, schema: pa.Schema) -> pa.Table:
    return session.arrow(f"select * from {table}").select(schema.names).cast(schema) \
        if session.table_exists(table) else schema.empty_table()


def _ordered_keys(known: pa.Table, live: pa.Array) -> pa.Array:
    """Record keys oldest first: known ones in their first-seen order, then new ones by key."""
    known_keys = known.sort_by("seq")["record_key"].combine_chunks()
    fresh = live.filter(pc.invert(pc.is_in(live, known_keys)))
    return pa.concat_arrays([known_keys, fresh.take(pc.sort_indices(fresh))])


def resolve_tenant(session, tenant, business_date, *, now: datetime | None = None) -> dict:
    """One resolution of every identity of the tenant; returns counts for the materialization."""
    now = now or datetime.now(timezone.utc)
    rules = tenant.merge_rules()
    # Events are people only through a strong identifier (a phone or email in their payload): an event
    # known by its IP alone is evidence, not a record of its own.
    links = session.arrow(
        "select entity_type, record_source || ':' || record_id as record_key, identifier_type, identifier, "
        "strength from dwd.dwd_identifiers where record_source <> 'sdk_event' or strength = 'strong'")
    known_records = _arrow(session, RECORDS, _RECORDS)
    previous_map = _arrow(session, MAP, _MAP)
    review = _table(session, REVIEW)
    history = _arrow(session, HISTORY, _HISTORY)

    records, maps, hub_rows, new_history = [], [], [], []
    counts = {"records": 0, "merges": 0, "splits": 0}
    next_seq = (pc.max(known_records["seq"]).as_py() or 0) + 1 if known_records.num_rows else 0
    for entity_type in ENTITY_TYPES:
        rows = links.filter(pc.equal(links["entity_type"], entity_type))
        known = known_records.filter(pc.equal(known_records["entity_type"], entity_type))
        live = pc.unique(rows["record_key"].combine_chunks())
        keys = _ordered_keys(known, live)
        n_known = known.num_rows
        records.append(pa.table({
            "entity_type": pa.array([entity_type] * (len(keys) - n_known), pa.string()),
            "record_key": keys.slice(n_known),
            "seq": pa.array(next_seq + np.arange(len(keys) - n_known), pa.int64()),
            "first_seen_on": pa.array([business_date] * (len(keys) - n_known), pa.date32())}, schema=_RECORDS))
        next_seq += len(keys) - n_known
        key_list = keys.to_pylist()
        index = {k: i for i, k in enumerate(key_list)}
        strong = rows.filter(pc.equal(rows["strength"], "strong"))
        decided = {d: [(index[r["record_a"]], index[r["record_b"]]) for r in review
                       if r["entity_type"] == entity_type and r["status"] == d
                       and r["record_a"] in index and r["record_b"] in index] for d in DECISIONS}
        result = resolve_strong(len(keys), pc.index_in(strong["record_key"], keys).to_numpy(zero_copy_only=False),
                                strong["identifier_type"], strong["identifier"], rules,
                                approved=decided["approved"], rejected=decided["rejected"])
        roots, inverse = np.unique(result.root, return_inverse=True)
        one_ids = np.array([mint(tenant.id, entity_type, key_list[r]) for r in roots.tolist()], dtype=object)[inverse]

        # Records no longer in DWD keep no identity (deleted upstream); their place in the order stays.
        is_live = pc.is_in(keys, live).to_numpy(zero_copy_only=False)
        live_keys = keys.filter(pa.array(is_live))
        split = pc.split_pattern(live_keys, ":", max_splits=1)
        maps.append(pa.table({
            "entity_type": pa.array([entity_type] * len(live_keys), pa.string()),
            "record_source": pc.list_element(split, 0), "record_id": pc.list_element(split, 1),
            "record_key": live_keys, "one_id": pa.array(one_ids[is_live].tolist(), pa.string()),
            "confidence": pa.array(np.ones(len(live_keys))),
            "evidence": pa.array([j or "self" for j in result.joined_by[is_live].tolist()], pa.string())},
            schema=_MAP))
        counts["records"] += len(live_keys)
        counts[f"{entity_type}_identities"] = len(set(one_ids[is_live].tolist()))

        before = previous_map.filter(pc.equal(previous_map["entity_type"], entity_type))
        current = dict(zip(key_list, one_ids.tolist()))
        joined = dict(zip(key_list, result.joined_by.tolist()))
        for change in changes(dict(zip(before["record_key"].to_pylist(), before["one_id"].to_pylist())),
                              current, joined):
            new_history.append({"business_date": business_date, "recorded_at": now, "entity_type": entity_type,
                                "action": change.action, "one_id": change.one_id, "other_one_id": change.other_one_id,
                                "records": change.records, "rule": change.rule})
            counts[change.action + "s"] += 1
        existing = {r["review_id"] for r in review}
        for c in result.conflicts:
            a, b = key_list[c.record_a], key_list[c.record_b]
            rid = review_id(entity_type, a, b, c.identifier_type, c.value)
            if rid not in existing:
                existing.add(rid)
                review.append({"review_id": rid, "entity_type": entity_type, "record_a": a, "record_b": b,
                               "identifier_type": c.identifier_type, "identifier": c.value, "reason": c.reason,
                               "status": "open", "raised_on": business_date, "decided_by": None,
                               "decided_at": None})
        hub_rows += [{"entity_type": entity_type, "identifier_type": t, "identifier": v, "records": n,
                      "seen_on": business_date} for t, v, n in result.hubs]

    counts["review_open"] = sum(r["status"] == "open" for r in review)
    counts["hubs"] = len(hub_rows)
    session.replace_table(RECORDS, pa.concat_tables([known_records, *records]))
    # The marts join records to identities on (record_source, record_id) and people on one_id.
    session.replace_table(MAP, pa.concat_tables(maps), indexes=[("record_source", "record_id"), ("one_id",)])
    session.replace_table(HISTORY, pa.concat_tables([history, pa.Table.from_pylist(new_history, schema=_HISTORY)]))
    session.replace_table(REVIEW, pa.Table.from_pylist(review, schema=REVIEW_SCHEMA))
    session.replace_table(HUBS, pa.Table.from_pylist(hub_rows, schema=_HUBS))
    return counts


_TS = pa.timestamp("us", tz="UTC")
_RECORDS = pa.schema([("entity_type", pa.string()), ("record_key", pa.string()), ("seq", pa.int64()),
                      ("first_seen_on", pa.date32())])
_MAP = pa.schema([("entity_type", pa.string()), ("record_source", pa.string()), ("record_id", pa.string()),
                  ("record_key", pa.string()), ("one_id", pa.string()), ("confidence", pa.float64()),
                  ("evidence", pa.string())])
_HISTORY = pa.schema([("business_date", pa.date32()), ("recorded_at", _TS), ("entity_type", pa.string()),
                      ("action", pa.string()), ("one_id", pa.string()), ("other_one_id", pa.string()),
                      ("records", pa.int64()), ("rule", pa.string())])
REVIEW_SCHEMA = pa.schema([("review_id", pa.string()), ("entity_type", pa.string()), ("record_a", pa.string()),
                     ("record_b", pa.string()), ("identifier_type", pa.string()), ("identifier", pa.string()),
                     ("reason", pa.string()), ("status", pa.string()), ("raised_on", pa.date32()),
                     ("decided_by", pa.string()), ("decided_at", _TS)])
_HUBS = pa.schema([("entity_type", pa.string()), ("identifier_type", pa.string()), ("identifier", pa.string()),
                   ("records", pa.int64()), ("seen_on", pa.date32())])


@dg.asset(key=["oneid", "identities"], group_name="oneid", partitions_def=tenant_day,
          deps=[dg.AssetKey(["dwd", "dwd_identifiers"])], kinds={"python"},
          description="Person and enterprise OneIDs from dwd_identifiers: strong identifiers in priority "
                      "order with hub limits and conflict cuts; merge/split history; review queue.")
def identities(context: dg.AssetExecutionContext, config: OneIdConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    day = tenant_day_of(context)
    now = datetime.now(timezone.utc)
    with warehouse.writer(day.tenant) as session:
        if config.approve or config.reject:
            review = _table(session, REVIEW)
            review = decide(review, config.approve, "approved", config.reviewer, now)
            review = decide(review, config.reject, "rejected", config.reviewer, now)
            session.replace_table(REVIEW, pa.Table.from_pylist(review, schema=REVIEW_SCHEMA))
            context.log.info(f"{config.reviewer}: approved {len(config.approve)}, rejected {len(config.reject)}")
        counts = resolve_tenant(session, day.tenant, day.business_date, now=now)
    return dg.MaterializeResult(metadata={"dagster/row_count": counts["records"], **counts})


ASSETS = [identities]
