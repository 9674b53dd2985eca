"""CRM records (enterprises, contacts, leads, opportunities, calls) rendered from the world.

The CRM is the cleanest source but not clean: ~1 % of enterprises and contacts are entered twice,
some mobiles are written with +86 or spaces, a switchboard stands in for some mobiles, and a few
mobiles, emails and credit codes are plainly wrong (counted in `bad`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from fincdp.demo import identifiers as ids
from fincdp.demo import variants as V
from fincdp.demo.timeline import CALLS, Clock, iso
from fincdp.demo.world import World, weighted
from fincdp.demo.wecom import Firm


@dataclass
class Crm:
    enterprises: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    leads: list[dict] = field(default_factory=list)
    opportunities: list[dict] = field(default_factory=list)
    enterprise_truth: list[int] = field(default_factory=list)  # world enterprise per CRM enterprise row
    contact_truth: list[int] = field(default_factory=list)     # world person per CRM contact row
    bad: Counter = field(default_factory=Counter)              # planted bad values by kind
    flags: Counter = field(default_factory=Counter)


def planted(n: int, rate: float) -> int:
    """How many bad records to plant among n: the rate, but at least one when there are records."""
    return 0 if n == 0 else min(n, max(1, round(n * rate)))


def _stamps(rng: np.random.Generator, clock: Clock, n: int, history_days: int) -> tuple[list[str], list[str]]:
    updated = clock.times(rng, clock.split(rng, n))
    created = clock.before(rng, updated, history_days)
    return iso(created), iso(updated)


def build(rng: np.random.Generator, world: World, firm: Firm, owners: list[str], clock: Clock,
          scale: int) -> Crm:
    crm = Crm()
    ent, ppl = world.enterprises, world.people

    # -------- enterprises: every CRM enterprise once, ~1 % a second time under another name
    n_ent = world.n_crm_enterprises
    dup_ent = rng.choice(n_ent, round(n_ent * 0.01), replace=False).tolist()
    rows = list(range(n_ent)) + dup_ent
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    is_dup = np.zeros(len(rows), bool)
    first_seen: dict[int, int] = {}
    for i, e in enumerate(rows):
        if e in first_seen:
            is_dup[i] = True
        else:
            first_seen[e] = i
    created, updated = _stamps(rng, clock, len(rows), 1500)
    deleted = rng.random(len(rows)) < 0.005
    invalid = set(rng.choice(len(rows), planted(len(rows), 0.005), replace=False).tolist())
    rep_name = {e: ppl.name[ent.legal_rep[e]] for e in range(n_ent)}
    ent_row_ids: dict[int, list[str]] = {}
    for i, e in enumerate(rows):
        rid = f"ent_{i + 1:06d}"
        ent_row_ids.setdefault(e, []).append(rid)
        code = ent.credit_code[e]
        name = ent.legal_name[e]
        if is_dup[i]:
            name = V.company(rng, name, ent.short_name[e], ent.brand[e], (0, 3, 4, 2, 0))
            code = code if rng.random() < 0.5 else None
        else:
            name = V.company(rng, name, ent.short_name[e], ent.brand[e], (88, 8, 4, 0, 0))
        if i in invalid:
            code, kind = ids.break_uscc(rng, ent.credit_code[e])
            crm.bad["invalid_credit_code"] += 1
            crm.bad["credit_code_check_failed" if kind == "check" else "credit_code_malformed"] += 1
        elif code and rng.random() < 0.02:
            code = code.lower()
        crm.enterprises.append({
            "id": rid, "name": name, "credit_code": code, "industry": ent.industry[e],
            "province": ent.city[e].province, "city": ent.city[e].name, "address": ent.address[e],
            "legal_representative": rep_name[e], "registered_capital": ent.registered_capital[e],
            "created_at": created[i], "updated_at": updated[i], "deleted": bool(deleted[i]),
        })
        crm.enterprise_truth.append(e)

    # -------- contacts: one per CRM person, ~1 % of people a second time
    n_people = world.n_crm_people
    dup_people = rng.choice(n_people, scale - n_people, replace=False).tolist() if scale > n_people else []
    rows = list(range(n_people)) + dup_people
    rows = [rows[i] for i in rng.permutation(len(rows))]
    seen: set[int] = set()
    switch_people: set[int] = set()
    for e, number in enumerate(ent.switchboard):
        if number:
            members = [p for p in ent.members[e] if p < n_people]
            k = min(len(members), int(rng.integers(2, 5)))
            switch_people.update(int(x) for x in rng.choice(members, k, replace=False))
    created, updated = _stamps(rng, clock, len(rows), 1200)
    deleted = (rng.random(len(rows)) < 0.01).tolist()
    r_mobile, r_email, r_id, r_ent = rng.random((4, len(rows))).tolist()
    mobiles, emails, switch_rows = [], [], set()
    for i, p in enumerate(rows):
        again = p in seen
        seen.add(p)
        e = ppl.ent[p]
        if p in switch_people and not again:
            mobile = ent.switchboard[e]
            switch_rows.add(i)
            crm.flags["shared_switchboard"] += 1
        elif r_mobile[i] < 0.02:
            mobile = None
        else:
            mobile = ids.mobile_variant(rng, ppl.mobile[p], 0.4 if again else 0.12)
        email = None if r_email[i] < (0.25 if again else 0.08) else ids.email_variant(rng, ppl.email[p], 0.1)
        mobiles.append(mobile)
        emails.append(email)
    # the plainly wrong ones, never on the same record, never on a switchboard
    can_mobile = [i for i, m in enumerate(mobiles) if m and i not in switch_rows]
    bad_mobile = set(rng.choice(can_mobile, planted(len(can_mobile), 0.005), replace=False).tolist()) \
        if can_mobile else set()
    can_email = [i for i, m in enumerate(emails) if m and i not in bad_mobile]
    bad_email = set(rng.choice(can_email, planted(len(can_email), 0.005), replace=False).tolist()) \
        if can_email else set()
    for i, p in enumerate(rows):
        e = ppl.ent[p]
        if i in bad_mobile:
            mobiles[i] = ids.break_mobile(rng, ppl.mobile[p])
            crm.bad["invalid_mobile"] += 1
        if i in bad_email:
            emails[i] = ids.break_email(rng, ppl.email[p])
            crm.bad["invalid_email"] += 1
        erows = ent_row_ids[e]
        ent_id = erows[-1] if len(erows) > 1 and r_ent[i] < 0.3 else erows[0]
        id_number = ppl.id_number[p] if r_id[i] < 0.9 else None
        if id_number and id_number.endswith("X") and r_id[i] < 0.2:
            id_number = id_number[:-1] + "x"
        crm.contacts.append({
            "id": f"con_{i + 1:07d}", "enterprise_id": ent_id,
            "name": V.name(rng, ppl.name[p], ppl.dotted[p], 0.01, 0.01), "mobile": mobiles[i], "email": emails[i],
            "id_number": id_number, "title": ppl.title[p], "gender": "male" if ppl.gender[p] == "M" else "female",
            "created_at": created[i], "updated_at": updated[i], "deleted": deleted[i],
        })
        crm.contact_truth.append(p)

    # -------- leads -> opportunities (converted leads only)
    n_leads = round(scale * 0.6)
    n_opps = round(n_leads * 0.25)
    sales = firm.sales
    lead_contact = rng.integers(0, len(crm.contacts), n_leads)
    has_opp = np.zeros(n_leads, bool)
    has_opp[rng.choice(n_leads, n_opps, replace=False)] = True
    statuses, status_p = weighted([("new", 25), ("contacted", 30), ("qualified", 15), ("disqualified", 30)])
    status_draw = rng.choice(len(statuses), n_leads, p=status_p)
    channels, channel_p = weighted([("web_form", 25), ("event", 15), ("referral", 15), ("wecom", 15),
                                    ("cold_call", 15), ("partner", 10), ("ad", 5)])
    channel_draw = rng.choice(len(channels), n_leads, p=channel_p)
    owner_draw = rng.random(n_leads)
    other_owner = rng.integers(0, 1 << 30, n_leads)
    created, updated = _stamps(rng, clock, n_leads, 400)
    deleted = (rng.random(n_leads) < 0.01).tolist()
    lead_contact, has_opp_l = lead_contact.tolist(), has_opp.tolist()
    status_draw, channel_draw = status_draw.tolist(), channel_draw.tolist()
    owner_draw, other_owner = owner_draw.tolist(), other_owner.tolist()
    for i in range(n_leads):
        c = crm.contacts[lead_contact[i]]
        e = ppl.ent[crm.contact_truth[lead_contact[i]]]
        if owner_draw[i] < 0.8:
            owner = owners[e]
        elif owner_draw[i] < 0.95 or not firm.inactive:
            owner = sales[other_owner[i] % len(sales)]
        else:  # someone who has since left: the record was never handed over
            owner = firm.inactive[other_owner[i] % len(firm.inactive)]
        crm.leads.append({
            "id": f"lead_{i + 1:07d}", "contact_id": c["id"], "enterprise_id": c["enterprise_id"],
            "channel": channels[channel_draw[i]],
            "status": "converted" if has_opp_l[i] else statuses[status_draw[i]],
            "owner_userid": owner, "created_at": created[i], "updated_at": updated[i],
            "deleted": deleted[i] and not has_opp_l[i],
        })

    stages, stage_p = weighted([("prospecting", 20), ("proposal", 20), ("negotiation", 15), ("won", 25), ("lost", 20)])
    products = ["供应链金融", "应收账款保理", "融资租赁", "票据贴现", "跨境结算"]
    opp_leads = np.flatnonzero(has_opp).tolist()
    stage_draw = rng.choice(len(stages), n_opps, p=stage_p).tolist()
    amounts = (np.round(np.exp(rng.normal(np.log(2e6), 1.0, n_opps)) / 1000) * 1000).tolist()
    updated_t = clock.times(rng, clock.split(rng, n_opps))
    created_t = clock.before(rng, updated_t, 300)
    day = updated_t.astype("datetime64[D]")
    back = rng.integers(0, 60, n_opps)
    fwd = rng.integers(15, 180, n_opps)
    closed = np.maximum(day - np.where(back < 30, back, 0).astype("timedelta64[D]"), created_t.astype("datetime64[D]"))
    expected = day + fwd.astype("timedelta64[D]")
    closed_s, expected_s = np.datetime_as_string(closed).tolist(), np.datetime_as_string(expected).tolist()
    has_expected = (fwd % 5 != 0).tolist()
    day_s = np.datetime_as_string(day).tolist()
    keep_owner = (rng.random(n_opps) < 0.85).tolist()
    other = rng.integers(0, len(sales), n_opps).tolist()
    opp_deleted = (rng.random(n_opps) < 0.005).tolist()
    created, updated = iso(created_t), iso(updated_t)
    for j, li in enumerate(opp_leads):
        lead = crm.leads[li]
        e = ppl.ent[crm.contact_truth[lead_contact[li]]]
        stage = stages[stage_draw[j]]
        close = closed_s[j] if stage in ("won", "lost") else expected_s[j] if has_expected[j] else None
        quarter = (int(day_s[j][5:7]) - 1) // 3 + 1
        crm.opportunities.append({
            "id": f"opp_{j + 1:07d}", "lead_id": lead["id"], "enterprise_id": lead["enterprise_id"],
            "name": f"{ent.short_name[e]}-{products[int(amounts[j]) % len(products)]}-{day_s[j][:4]}Q{quarter}",
            "stage": stage, "amount": f"{amounts[j]:.2f}", "currency": "CNY", "close_date": close,
            "owner_userid": lead["owner_userid"] if keep_owner[j] else sales[other[j]],
            "created_at": created[j], "updated_at": updated[j], "deleted": opp_deleted[j],
        })

    return crm


def calls(rng: np.random.Generator, world: World, crm: Crm, firm: Firm, owners: list[str], clock: Clock,
          n_calls: int) -> Iterator[dict]:
    """Call records, made one by one as they are written (there are 2·scale of them)."""
    ppl = world.people
    contact_ids = [c["id"] for c in crm.contacts]
    contact_mobiles = [c["mobile"] or "" for c in crm.contacts]
    call_contact = rng.integers(0, len(crm.contacts), n_calls)
    started_t = clock.times(rng, clock.split(rng, n_calls), CALLS)
    outcomes, outcome_p = weighted([("connected", 55), ("no_answer", 25), ("busy", 8), ("voicemail", 12)])
    outcome_draw = rng.choice(len(outcomes), n_calls, p=outcome_p)
    connected_s = np.clip(np.exp(rng.normal(np.log(180), 0.8, n_calls)), 10, 3600).astype(int)
    voicemail_s = rng.integers(15, 60, n_calls)
    outbound = rng.random(n_calls) < 0.65
    agent_draw = rng.random(n_calls)
    agent_pick = rng.integers(0, 1 << 30, n_calls)
    plus86 = rng.random(n_calls) < 0.2
    durations = np.where(outcome_draw == 0, connected_s, np.where(outcome_draw == 3, voicemail_s, 0))
    updated_t = started_t + (durations + rng.integers(1, 120, n_calls)).astype("timedelta64[s]")
    started, updated = iso(started_t), iso(updated_t)
    call_contact, outbound, plus86 = call_contact.tolist(), outbound.tolist(), plus86.tolist()
    agent_draw, agent_pick = agent_draw.tolist(), agent_pick.tolist()
    durations, outcome_draw = durations.tolist(), outcome_draw.tolist()
    for i in range(n_calls):
        ci = call_contact[i]
        p = crm.contact_truth[ci]
        e = ppl.ent[p]
        on_file = contact_mobiles[ci]
        if outbound[i] and on_file.startswith("0") and "-" in on_file:
            phone = on_file.replace("-", "")  # dialled the switchboard on file
        else:
            phone = ("+86" if plus86[i] else "") + ppl.mobile[p]
        agent = owners[e] if agent_draw[i] < 0.4 else firm.service[agent_pick[i] % len(firm.service)]
        yield {
            "id": f"call_{i + 1:08d}", "contact_id": contact_ids[ci], "agent_userid": agent,
            "direction": "outbound" if outbound[i] else "inbound", "phone": phone, "started_at": started[i],
            "duration_s": durations[i], "outcome": outcomes[outcome_draw[i]], "updated_at": updated[i],
        }
