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
tokens are equal identifiers and no raw personal data is needed here. People then go through the
probabilistic stage (Splink, fincdp.oneid.probabilistic) over name, company and title, with the tokens
as exact-match evidence: pairs at the tenant's `oneid_confidence_threshold` link identities, pairs in the
review band join the review queue, links that would join two ID numbers are cut and queued. Then a
device seen with identities that complement each other (one knows the mobile, one the e-mail) joins them
(fincdp.oneid.weak), and a mobile an employee typed joins the identity holding it when a name agrees
(fincdp.oneid.corroborated).
"""

import hashlib
import json
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assets.partitions import tenant_day, tenant_day_of
from fincdp.oneid.corroborated import CorroboratedResult, link_corroborated
from fincdp.oneid.deterministic import resolve_strong
from fincdp.oneid.identifiers import payload_device_ids
from fincdp.oneid.identity import changes, mint
from fincdp.oneid.probabilistic import Attribute, Cut, Evidence, LinkResult, clean_column, link
from fincdp.oneid.weak import attach_weak
from fincdp.pii import company_key
from resources.warehouse import Warehouse, read_table

RECORDS, MAP, HISTORY, REVIEW, HUBS = ("oneid.records", "oneid.identity_map", "oneid.identity_history",
                                       "oneid.review_queue", "oneid.identifier_hubs")
# The probabilistic stage's state between runs: the trained model, each person record's input
# fingerprint, and the pairs scored so far (only pairs touching a new or changed record are scored again).
MODEL, INPUTS, SCORED = "oneid.splink_model", "oneid.splink_inputs", "oneid.splink_scored_pairs"
# A stored model is retrained after this many days (or when the compared columns change, or on request).
MODEL_MAX_AGE_DAYS = 7
ENTITY_TYPES = ("enterprise", "person")
DECISIONS = ("approved", "rejected")
# Splink needs enough records to learn m and u from; a smaller tenant keeps the strong-id result.
PROBABILISTIC_MIN_RECORDS = 100
# Comparison attributes of a person record, one row per record key (DuckDB dialect; translated per engine).
PERSON_ATTRIBUTES = {
    "dwd.dwd_crm__contacts":
        "select 'crm_contact:' || c.contact_id as record_key, c.contact_name as name, e.enterprise_name as company, "
        "c.title as title from dwd.dwd_crm__contacts c "
        "left join dwd.dwd_crm__enterprises e on c.enterprise_id = e.enterprise_id",
    "dwd.dwd_wecom__external_contacts":
        "select 'wecom_external_contact:' || external_userid as record_key, contact_name as name, "
        # a personal WeChat account has no company of its own: the one its follower noted stands in
        "coalesce(corp_full_name, corp_name, remark_corp_name) as company, position as title "
        "from dwd.dwd_wecom__external_contacts",
    "dwd.dwd_file__contacts":
        "select 'file_contact:' || file_contact_id as record_key, contact_name as name, company, title "
        "from dwd.dwd_file__contacts",
}


# The device an identified event came from (weak: it joins identities only through fincdp.oneid.weak).
# Read from the payload, which holds no personal data once landed; only events OneID knows (those
# with a phone or e-mail) can be joined.
EVENT_DEVICES = ("select 'sdk_event:' || event_id as record_key, payload from dwd.dwd_sdk__events "
                 "where payload_phone_token is not null or payload_email_token is not null")
# What two identities joined by a device must not disagree on (besides exclusive identifiers).
CONTACT_POINTS = ("phone", "email")


class OneIdConfig(dg.Config):
    """Review decisions to record before resolving (ids from oneid.review_queue); `retrain`: train the
    probabilistic model afresh and rescore every pair instead of only new and changed records."""
    approve: list[str] = []
    reject: list[str] = []
    reviewer: str = ""
    retrain: bool = False


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


def _ordered_keys(known: pa.Table, live: pa.Array) -> pa.Array:
    """Record keys oldest first: known ones in their first-seen order, then new ones by key."""
    known_keys = known.sort_by("seq")["record_key"].combine_chunks()
    fresh = live.filter(pc.invert(pc.is_in(live, known_keys)))
    return pa.concat_arrays([known_keys, fresh.take(pc.sort_indices(fresh))])


def _aligned(keys: pa.Array, record_keys: pa.Array, values: pa.Array) -> pa.Array:
    """`values` (one per record key) in the order of `keys`; null where a key has none."""
    position = pc.index_in(keys, record_keys)
    return values.take(position) if len(values) else pa.nulls(len(keys), values.type)


def _person_attributes(session, keys: pa.Array) -> pa.Table:
    parts = [session.arrow(sql) for table, sql in PERSON_ATTRIBUTES.items() if session.table_exists(table)]
    schema = pa.schema([("record_key", pa.string()), ("name", pa.string()), ("company", pa.string()),
                        ("title", pa.string())])
    found = pa.concat_tables([t.select(schema.names).cast(schema) for t in parts]) if parts else schema.empty_table()
    # one row per record (a WeCom contact appears once per employee following it)
    found = found.group_by("record_key").aggregate([(c, "min") for c in ("name", "company", "title")])
    table = {c: _aligned(keys, found["record_key"].combine_chunks(), found[f"{c}_min"].combine_chunks())
             for c in ("name", "company", "title")}
    # companies compared without their legal form: a rep notes '恩悌包装' for 恩悌包装有限公司
    encoded = pc.dictionary_encode(table["company"])
    table["company"] = pa.array([company_key(v) or None if v else None for v in encoded.dictionary.to_pylist()],
                                pa.string()).take(encoded.indices)
    return pa.table(table)


def _fingerprints(inputs: pa.Table) -> pa.Array:
    """Per record, a digest of everything the probabilistic stage compares: equal means unchanged."""
    text = [pc.fill_null(pc.cast(inputs[c], pa.string()), "\x00") for c in inputs.column_names]
    joined = pc.binary_join_element_wise(*text, "\x1f") if len(text) > 1 else text[0]
    return pa.array([hashlib.md5(v.encode()).hexdigest() for v in joined.to_pylist()], pa.string())


def _stored_model(session, signature: str, business_date) -> dict | None:
    """The tenant's trained model, if it compares these columns and is recent enough to reuse."""
    if not session.table_exists(MODEL):
        return None
    rows = session.rows(f"select trained_on, signature, model_json from {MODEL}")
    if not rows:
        return None
    trained_on, stored_signature, model_json = rows[0]
    if isinstance(trained_on, datetime):
        trained_on = trained_on.date()
    if stored_signature != signature or (business_date - trained_on).days >= MODEL_MAX_AGE_DAYS:
        return None
    return json.loads(model_json)


def _previous_pairs(session, keys: pa.Array, fingerprints: pa.Array) -> dict:
    """`dirty` (new or changed records) and `previous` (stored pairs among the others, renumbered)."""
    dirty = np.ones(len(keys), dtype=bool)
    if session.table_exists(INPUTS):
        before = session.arrow(f"select record_key, fingerprint from {INPUTS}")
        old = _aligned(keys, before["record_key"].combine_chunks(), before["fingerprint"].combine_chunks())
        dirty = ~pc.fill_null(pc.equal(old, fingerprints), False).to_numpy(zero_copy_only=False)
    if not session.table_exists(SCORED):
        return {"dirty": dirty, "previous": None}
    scored = session.arrow(f"select * from {SCORED}")
    left = pc.fill_null(pc.index_in(scored["record_key_l"], keys), -1).to_numpy().astype(np.int64)
    right = pc.fill_null(pc.index_in(scored["record_key_r"], keys), -1).to_numpy().astype(np.int64)
    keep = (left >= 0) & (right >= 0)  # both records still people of the tenant
    keep[keep] = ~dirty[left[keep]] & ~dirty[right[keep]]
    previous = scored.drop_columns(["record_key_l", "record_key_r"]).filter(pa.array(keep))
    previous = previous.add_column(0, "record_l", pa.array(left[keep])).add_column(1, "record_r", pa.array(right[keep]))
    return {"dirty": dirty, "previous": previous}


def link_people(session, keys: pa.Array, rows: pa.Table, cluster: np.ndarray, joined_by: np.ndarray, rules,
                rejected: list[tuple[int, int]], business_date, *, retrain: bool = False) -> "LinkResult | str":
    """The probabilistic stage over a tenant's people, after the strong ids (`cluster`, `joined_by`), as a
    result over all `keys`, or why the stage was skipped. Only people records (CRM, WeCom, files) take part:
    events have nothing to compare and reach their person through strong ids, with their cluster.

    Incremental: with a stored model (trained within MODEL_MAX_AGE_DAYS on the same columns), only pairs
    touching a new or changed record are scored; the others come from the stored pairs. A rebuild with the
    same model scores the same pairs, so it gives the same identities."""
    n = len(keys)
    sub = np.flatnonzero(~np.char.startswith(keys.to_numpy(zero_copy_only=False).astype(str), "sdk_event:"))
    if len(sub) < PROBABILISTIC_MIN_RECORDS:
        return f"skipped: {len(sub)} person records (needs {PROBABILISTIC_MIN_RECORDS} to train on)"
    sub_keys = keys.take(pa.array(sub))
    position = np.full(n, -1, dtype=np.int64)
    position[sub] = np.arange(len(sub))
    # a deterministic cluster inside the subset is named by its first (oldest) member there
    _, first, inverse = np.unique(cluster[sub], return_index=True, return_inverse=True)
    columns = {"record": pa.array(np.arange(len(sub))), "cluster": pa.array(first[inverse])}
    attributes_table = _person_attributes(session, sub_keys)
    columns.update({c: attributes_table[c] for c in attributes_table.column_names})
    evidence, exclusive = [], {}
    # A phone no record holds as a key is a fixed line (weak wherever it appears): colleagues at one desk
    # share it, so it says "same desk", not "same person". As evidence beside company and title it merged
    # colleagues of other names (demo scale 4000: 8 wrong pairs, p 0.95-0.99).
    # Only phones: other weak values of strong types (typed by someone else, shared) stay evidence.
    phones = rows.filter(pc.equal(rows["identifier_type"], "phone"))
    is_key = pc.is_in(rows["identifier"], phones.filter(pc.equal(phones["strength"], "strong"))["identifier"])
    rows = rows.filter(pc.invert(pc.and_(pc.equal(rows["identifier_type"], "phone"), pc.invert(is_key))))
    for identifier_type in sorted(set(rows["identifier_type"].to_pylist())):
        of_type = rows.filter(pc.equal(rows["identifier_type"], identifier_type))
        per_record = of_type.group_by("record_key").aggregate([("identifier", "min")])
        value = _aligned(sub_keys, per_record["record_key"].combine_chunks(),
                         per_record["identifier_min"].combine_chunks())
        rule = rules.rule(identifier_type)
        if rule.exclusive and rule.strength == "strong":
            exclusive[identifier_type] = np.array(value.to_pylist(), dtype=object)
        # a value no two records share (a CRM key, a WeCom id) can never agree: no evidence in it
        if (pc.max(pc.value_counts(value.drop_null()).field("counts")).as_py() or 0) > 1:
            columns[identifier_type] = value
            evidence.append(Evidence(identifier_type, identifier_type, tokens=True))
    attributes = [Attribute("name", "name"), Attribute("company", "text"), Attribute("title", "text")]
    kept_apart = [(position[a], position[b]) for a, b in rejected if position[a] >= 0 and position[b] >= 0]
    inputs = pa.table(columns)
    signature = ",".join([a.column for a in attributes] + [e.column for e in evidence])
    fingerprints = _fingerprints(inputs.drop_columns(["record", "cluster"]))
    stored = None if retrain else _stored_model(session, signature, business_date)
    incremental = {}
    if stored is not None:
        incremental = {"model": stored, **_previous_pairs(session, sub_keys, fingerprints)}
    try:
        linked = link(inputs, attributes, evidence, rules, joined_by=joined_by[sub], exclusive=exclusive,
                      rejected=kept_apart, **incremental)
    except ValueError as exc:  # nothing to block or train on: the strong-id result stands
        return f"skipped: {exc}"
    if stored is None:
        session.replace_table(MODEL, pa.table({"trained_on": pa.array([business_date], pa.date32()),
                                               "signature": [signature], "model_json": [json.dumps(linked.model)]}))
    session.replace_table(INPUTS, pa.table({"record_key": sub_keys, "fingerprint": fingerprints}))
    scored = linked.scored
    session.replace_table(SCORED, scored.drop_columns(["record_l", "record_r"]).add_column(
        0, "record_key_l", sub_keys.take(scored["record_l"])).add_column(
        1, "record_key_r", sub_keys.take(scored["record_r"])))

    # back to all records: a deterministic cluster follows its people records' identity
    group_of_cluster = np.arange(n)
    group_of_cluster[cluster[sub]] = sub[linked.root]
    group = group_of_cluster[cluster]
    oldest = np.full(n, n, dtype=np.int64)
    np.minimum.at(oldest, group, np.arange(n))
    confidence_of_cluster = np.ones(n)
    np.minimum.at(confidence_of_cluster, cluster[sub], linked.confidence)
    evidence_all = joined_by.copy()
    evidence_all[sub] = linked.evidence
    pairs = linked.pairs.set_column(0, "record_l", pa.array(sub[linked.pairs["record_l"].to_numpy()])) \
        .set_column(1, "record_r", pa.array(sub[linked.pairs["record_r"].to_numpy()]))
    cuts = [Cut(int(sub[c.record_a]), int(sub[c.record_b]), c.probability, c.reason) for c in linked.cuts]
    return LinkResult(root=oldest[group], confidence=confidence_of_cluster[cluster], evidence=evidence_all,
                      pairs=pairs, cuts=cuts, hubs=linked.hubs, blocking_rules=linked.blocking_rules,
                      training_rules=linked.training_rules, timings=linked.timings, rescored=linked.rescored)


def _weak_links(session, keys: pa.Array) -> list[tuple[int, str, str]]:
    """(record, identifier_type, value) of the tenant's weak identifiers that may join identities."""
    if not session.table_exists("dwd.dwd_sdk__events"):
        return []
    events = session.arrow(EVENT_DEVICES)
    if events.num_rows == 0:  # an empty result has null-typed columns on some engines (MySQL)
        return []
    device = payload_device_ids(events["payload"])
    position = pc.index_in(pc.cast(events["record_key"], pa.string()), keys)
    found = pc.and_(pc.is_valid(position), pc.is_valid(device))
    return [(r, "device_id", d) for r, d in zip(pc.filter(position, found).to_pylist(),
                                                 pc.filter(device, found).to_pylist())]


def _contradicting_facts(session, keys: pa.Array, strong: pa.Table, rules, root: np.ndarray,
                         weak_links: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """(record, kind, value) two identities joined by a weak identifier must not differ on: exclusive
    identifiers, strong mobiles and e-mails, and people records' names (name keys). Only for the
    identities the weak identifiers were seen with (a few, among a million people)."""
    seen = np.isin(root, root[np.array([r for r, _, _ in weak_links], dtype=np.int64)])
    kinds = [t for t in set(strong["identifier_type"].to_pylist())
             if t in CONTACT_POINTS or rules.rule(t).exclusive]
    of_kind = strong.filter(pc.is_in(strong["identifier_type"], pa.array(kinds, pa.string())))
    position = pc.index_in(of_kind["record_key"], keys).to_numpy(zero_copy_only=False).astype(np.int64)
    of_kind = of_kind.filter(pa.array(seen[position]))
    facts = list(zip(position[seen[position]].tolist(), of_kind["identifier_type"].to_pylist(),
                     of_kind["identifier"].to_pylist()))
    records = np.flatnonzero(seen)
    names = clean_column(_person_attributes(session, keys.take(pa.array(records)))["name"], "name")
    facts += [(int(i), "name", v) for i, v in zip(records.tolist(), names.to_pylist()) if v is not None]
    return facts


# What employees noted about a person record (WeCom follow remarks), beside its name.
PERSON_REMARKS = ("select 'wecom_external_contact:' || external_userid as record_key, remark "
                  "from dwd.dwd_wecom__external_contacts where remark is not null")


def _corroborated_links(session, keys: pa.Array, rows: pa.Table, strong: pa.Table, root, confidence, joined_by,
                        rules, rejected) -> "CorroboratedResult | None":
    """Employee-typed mobiles (weak phones of people records) that another identity holds as a strong key
    join it when the record's name or remark agrees with that identity's (fincdp.oneid.corroborated).
    Only the identities such a value touches are read (names, remarks, exclusive ids)."""
    kinds = pa.array([t for t in set(rows["identifier_type"].to_pylist()) if rules.rule(t).corroborated], pa.string())
    weak = rows.filter(pc.and_(pc.equal(rows["strength"], "weak"), pc.is_in(rows["identifier_type"], kinds)))
    weak = weak.filter(pc.invert(pc.starts_with(weak["record_key"], "sdk_event:")))  # nothing to name them by
    held = strong.filter(pc.and_(pc.is_in(strong["identifier_type"], kinds),
                                 pc.is_in(strong["identifier"], weak["identifier"].combine_chunks())))
    if weak.num_rows == 0 or held.num_rows == 0:
        return None

    def index(table: pa.Table) -> np.ndarray:
        return pc.index_in(table["record_key"], keys).to_numpy(zero_copy_only=False).astype(np.int64)

    def triples(table: pa.Table) -> list[tuple[int, str, str]]:
        return list(zip(index(table).tolist(), table["identifier_type"].to_pylist(), table["identifier"].to_pylist()))

    touched = np.isin(root, np.concatenate([root[index(weak)], root[index(held)]]))
    exclusive = strong.filter(pc.is_in(strong["identifier_type"], pa.array(
        [t for t in set(strong["identifier_type"].to_pylist()) if rules.rule(t).exclusive], pa.string())))
    exclusive = exclusive.filter(pa.array(touched[index(exclusive)]))
    people = keys.filter(pa.array(touched))
    names = {int(i): n for i, n in zip(np.flatnonzero(touched).tolist(),
                                       _person_attributes(session, people)["name"].to_pylist()) if n}
    remarks: dict[int, list[str]] = {}
    if session.table_exists("dwd.dwd_wecom__external_contacts"):
        noted = session.arrow(PERSON_REMARKS)
        rows_noted = pc.index_in(pc.cast(noted["record_key"], pa.string()), keys).to_pylist() if noted.num_rows else []
        for i, remark in zip(rows_noted, noted["remark"].to_pylist()):
            if i is not None and touched[i]:
                remarks.setdefault(i, []).append(remark)
    return link_corroborated(root, confidence, joined_by, triples(weak), triples(held) + triples(exclusive), names,
                             remarks, rules, rejected=rejected)


def _probabilistic_review(entity_type: str, key_list: list[str], linked: LinkResult, rules
                          ) -> list[tuple[str, str, str, str, str]]:
    """Review items (record_a, record_b, 'probabilistic', agreeing attributes, reason): pairs in the review
    band, and links cut because they would have joined two ID numbers (or a pair a reviewer rejected)."""
    pairs = linked.pairs.filter(pc.equal(linked.pairs["decision"], "review"))
    # a pair already in one identity through other links needs no decision
    apart = linked.root[pairs["record_l"].to_numpy()] != linked.root[pairs["record_r"].to_numpy()]
    pairs = pairs.filter(pa.array(apart))
    items = [(key_list[left], key_list[right], "probabilistic", agreeing or "",
              f"match probability {p:.3f} is under the merge threshold {rules.threshold}")
             for left, right, p, agreeing in zip(pairs["record_l"].to_pylist(), pairs["record_r"].to_pylist(),
                                                  pairs["probability"].to_pylist(), pairs["agreeing"].to_pylist())]
    items += [(key_list[c.record_a], key_list[c.record_b], "probabilistic", f"p={c.probability:.3f}", c.reason)
              for c in linked.cuts]
    return items


def resolve_tenant(session, tenant, business_date, *, now: datetime | None = None, retrain: bool = False) -> dict:
    """One resolution of every identity of the tenant; returns counts for the materialization."""
    now = now or datetime.now(timezone.utc)
    rules = tenant.merge_rules()
    # Events are people only through a strong identifier (a phone or email in their payload): an event
    # known by its IP alone is evidence, not a record of its own.
    links = session.arrow(
        "select entity_type, record_source || ':' || record_id as record_key, identifier_type, identifier, "
        "strength from dwd.dwd_identifiers where record_source <> 'sdk_event' or strength = 'strong'")
    known_records = read_table(session, RECORDS, _RECORDS)
    previous_map = read_table(session, MAP, _MAP)
    review = _table(session, REVIEW)
    history = read_table(session, HISTORY, _HISTORY)

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
        probable: list[tuple[str, str, str, str, str]] = []
        key_list = keys.to_pylist()
        index = {k: i for i, k in enumerate(key_list)}
        strong = rows.filter(pc.equal(rows["strength"], "strong"))
        decided = {d: [(index[r["record_a"]], index[r["record_b"]]) for r in review
                       if r["entity_type"] == entity_type and r["status"] == d
                       and r["record_a"] in index and r["record_b"] in index] for d in DECISIONS}
        result = resolve_strong(len(keys), pc.index_in(strong["record_key"], keys).to_numpy(zero_copy_only=False),
                                strong["identifier_type"], strong["identifier"], rules,
                                approved=decided["approved"], rejected=decided["rejected"],
                                counts_toward_hubs=~np.char.startswith(keys.to_numpy(zero_copy_only=False).astype(str),
                                                                       "sdk_event:"))
        root, confidence, joined_by = result.root, np.ones(len(keys)), result.joined_by
        if entity_type == "person" and tenant.oneid_probabilistic:
            linked = link_people(session, keys, rows, result.root, result.joined_by, rules, decided["rejected"],
                                 business_date, retrain=retrain)
            if isinstance(linked, str):
                counts["probabilistic"] = linked
            else:
                root, confidence, joined_by = linked.root, linked.confidence, linked.evidence
                decisions = pc.value_counts(linked.pairs["decision"]).to_pylist()
                counts.update({f"probabilistic_{d['values']}": d["counts"] for d in decisions})
                counts["probabilistic_model"] = "stored" if linked.blocking_rules == ["stored model"] else "trained"
                counts["probabilistic_seconds"] = round(sum(linked.timings.values()), 1)
                counts["probabilistic_rescored_records"] = linked.rescored
                probable += _probabilistic_review(entity_type, key_list, linked, rules)
        if entity_type == "person":
            weak_links = _weak_links(session, keys)
            if weak_links:
                attached = attach_weak(root, confidence, joined_by, weak_links,
                                       _contradicting_facts(session, keys, strong, rules, root, weak_links), rules,
                                       rejected=decided["rejected"])
                root, confidence, joined_by = attached.root, attached.confidence, attached.evidence
                counts["weak_attached"] = attached.attached
                counts["weak_refused"] = len(attached.refused)
        if entity_type == "person":
            typed = _corroborated_links(session, keys, rows, strong, root, confidence, joined_by, rules,
                                        decided["rejected"])
            if typed is not None:
                root, confidence, joined_by = typed.root, typed.confidence, typed.evidence
                counts["corroborated_joined"] = typed.joined
                probable += [(key_list[r.record], key_list[r.holder], r.identifier_type, r.value, r.reason)
                             for r in typed.refused]
        roots, inverse = np.unique(root, return_inverse=True)
        one_ids = np.array([mint(tenant.id, entity_type, key_list[r]) for r in roots.tolist()], dtype=object)[inverse]

        # Records no longer in DWD keep no identity (deleted upstream); their place in the order stays.
        is_live = pc.is_in(keys, live).to_numpy(zero_copy_only=False)
        live_keys = keys.filter(pa.array(is_live))
        split = pc.split_pattern(live_keys, ":", max_splits=1)
        maps.append(pa.table({
            "entity_type": pa.array([entity_type] * len(live_keys), pa.string()),
            "record_source": pc.list_element(split, 0), "record_id": pc.list_element(split, 1),
            "record_key": live_keys, "one_id": pa.array(one_ids[is_live].tolist(), pa.string()),
            "confidence": pa.array(np.round(confidence[is_live], 4)),
            "evidence": pa.array([j or "self" for j in joined_by[is_live].tolist()], pa.string())},
            schema=_MAP))
        counts["records"] += len(live_keys)
        counts[f"{entity_type}_identities"] = len(set(one_ids[is_live].tolist()))

        before = previous_map.filter(pc.equal(previous_map["entity_type"], entity_type))
        current = dict(zip(key_list, one_ids.tolist()))
        joined = dict(zip(key_list, joined_by.tolist()))
        for change in changes(dict(zip(before["record_key"].to_pylist(), before["one_id"].to_pylist())),
                              current, joined):
            new_history.append({"business_date": business_date, "recorded_at": now, "entity_type": entity_type,
                                "action": change.action, "one_id": change.one_id, "other_one_id": change.other_one_id,
                                "records": change.records, "rule": change.rule})
            counts[change.action + "s"] += 1
        existing = {r["review_id"] for r in review}
        conflicts = [(key_list[c.record_a], key_list[c.record_b], c.identifier_type, c.value, c.reason)
                     for c in result.conflicts]
        for a, b, identifier_type, identifier, reason in conflicts + probable:
            rid = review_id(entity_type, a, b, identifier_type, identifier)
            if rid not in existing:
                existing.add(rid)
                review.append({"review_id": rid, "entity_type": entity_type, "record_a": a, "record_b": b,
                               "identifier_type": identifier_type, "identifier": identifier, "reason": reason,
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
          # Every DWD table read here (PERSON_ATTRIBUTES) and every one dwd_identifiers is built from in
          # the same dbt step: Dagster stops only a blocking check's direct dependents (docs/quality.md).
          deps=[dg.AssetKey(["dwd", t]) for t in (
              "dwd_identifiers", "dwd_crm__contacts", "dwd_crm__enterprises", "dwd_wecom__external_contacts",
              "dwd_file__contacts", "dwd_sdk__events")], kinds={"python"},
          description="Person and enterprise OneIDs from dwd_identifiers: strong identifiers in priority "
                      "order with hub limits and conflict cuts, then Splink over people's names, companies "
                      "and titles; merge/split history; review queue.")
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
        counts = resolve_tenant(session, day.tenant, day.business_date, now=now, retrain=config.retrain)
    return dg.MaterializeResult(metadata={"dagster/row_count": counts["records"], **counts})


ASSETS = [identities]
