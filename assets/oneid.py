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


def resolve_tenant(session, tenant, business_date, *, now: datetime | None = None) -> dict:
    """One resolution of every identity of the tenant; returns counts for the materialization."""
    now = now or datetime.now(timezone.utc)
    rules = tenant.merge_rules()
    links = session.arrow(
        "select entity_type, record_source || ':' || record_id as record_key, identifier_type, identifier, "
        "strength from dwd.dwd_identifiers")
    known = _table(session, RECORDS)
    previous = {r["record_key"]: r["one_id"] for r in _table(session, MAP)}
    review = _table(session, REVIEW)
    history = _table(session, HISTORY)

    # Oldest first: records keep their first-seen position; new ones follow, by key.
    seen = {(r["entity_type"], r["record_key"]) for r in known}
    fresh = sorted({(e, k) for e, k in zip(links["entity_type"].to_pylist(), links["record_key"].to_pylist())} - seen)
    records = known + [{"entity_type": e, "record_key": k, "seq": len(known) + i, "first_seen_on": business_date}
                       for i, (e, k) in enumerate(fresh)]

    identity_rows, hub_rows, counts = [], [], {"records": 0, "merges": 0, "splits": 0, "review_open": 0}
    new_history = []
    for entity_type in ENTITY_TYPES:
        keys = [r["record_key"] for r in sorted(records, key=lambda r: r["seq"]) if r["entity_type"] == entity_type]
        index = {k: i for i, k in enumerate(keys)}
        mask = np.array([e == entity_type for e in links["entity_type"].to_pylist()], dtype=bool)
        rows = links.filter(pa.array(mask))
        strong = rows.filter(pa.array([s == "strong" for s in rows["strength"].to_pylist()], pa.bool_()))
        decided = {d: [(index[r["record_a"]], index[r["record_b"]]) for r in review
                       if r["entity_type"] == entity_type and r["status"] == d
                       and r["record_a"] in index and r["record_b"] in index] for d in DECISIONS}
        result = resolve_strong(len(keys), np.array([index[k] for k in strong["record_key"].to_pylist()], dtype=np.int64),
                                strong["identifier_type"], strong["identifier"], rules,
                                approved=decided["approved"], rejected=decided["rejected"])
        current = {k: mint(tenant.id, entity_type, keys[int(root)]) for k, root in zip(keys, result.root)}
        joined = {k: result.joined_by[i] for i, k in enumerate(keys)}
        # Records no longer in DWD keep no identity (deleted upstream); their order is kept.
        live = set(rows["record_key"].to_pylist())
        for i, k in enumerate(keys):
            if k in live:
                identity_rows.append({"entity_type": entity_type, "record_source": k.split(":", 1)[0],
                                      "record_id": k.split(":", 1)[1], "record_key": k, "one_id": current[k],
                                      "confidence": 1.0, "evidence": joined[k] or "self"})
        counts["records"] += len(live)
        counts[f"{entity_type}_identities"] = len({current[k] for k in live})
        for change in changes({k: v for k, v in previous.items() if k in index}, current, joined):
            new_history.append({"business_date": business_date, "recorded_at": now, "entity_type": entity_type,
                                "action": change.action, "one_id": change.one_id, "other_one_id": change.other_one_id,
                                "records": change.records, "rule": change.rule})
            counts[change.action + "s"] += 1
        existing = {r["review_id"] for r in review}
        for c in result.conflicts:
            a, b = keys[c.record_a], keys[c.record_b]
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
    session.replace_table(RECORDS, pa.Table.from_pylist(records, schema=_RECORDS))
    session.replace_table(MAP, pa.Table.from_pylist(identity_rows, schema=_MAP))
    session.replace_table(HISTORY, pa.Table.from_pylist(history + new_history, schema=_HISTORY))
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
