"""The buying committee behind each account with opportunities (opt-in: `generate_tenant(committees=True)`).

What is planted, per account (truth/committees.csv):
- economic_buyer: the top executive (55 %), else the finance head (30 %) or a vice president (15 %),
  when the account has one (otherwise the top executive);
- signer: the legal representative (85 %), else the economic buyer;
- technical_decision_maker: the most senior IT person, if any;
- user: up to three finance/procurement people at manager level or below;
- influencer: one other person (an assistant or a project manager first), if any.
What the sources show of it: sales calls the committee more than the rest (crm/calls.jsonl gets extra
calls, committee members each with a preferred weekday and hour block where calls connect more often),
and each account's own WeCom org chart (customers/<enterprise_id>/wecom/, a connected customer corp)
with reporting lines from seniority, titles written with aliases, a few leaders who left, departments
without leaders and members in two departments. Nothing here draws from the other stages' random
streams, so the default output does not change.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from fincdp.demo import variants as V
from fincdp.demo.crm import Crm
from fincdp.demo.timeline import Clock, iso
from fincdp.demo.world import World

LEVELS = ("owner", "cxo", "vp", "director", "manager", "senior", "entry")
ROLE_CALLS = {"economic_buyer": 3.0, "signer": 1.5, "technical_decision_maker": 2.5, "user": 2.0, "influencer": 2.0}
FUNCTION_DEPTS = [("财务部", ("财务", "会计", "出纳", "资金", "CFO")), ("信息部", ("信息", "IT", "CIO", "工程师")),
                  ("采购部", ("采购", "供应链")), ("运营部", ("运营", "首席运营官", "项目")),
                  ("风控部", ("风险",)), ("行政部", ("行政", "助理"))]
BLOCKS = [(9, 11), (10, 12), (14, 16), (15, 17), (16, 18)]


def _function(title: str) -> str:
    for dept, words in FUNCTION_DEPTS:
        if any(w in title for w in words):
            return dept
    return "总经办"


@dataclass
class Planted:
    committees: list[tuple[str, str, str]] = field(default_factory=list)       # enterprise_id, person_id, role
    windows: dict[str, tuple[tuple[int, ...], int, int]] = field(default_factory=dict)  # person -> (weekdays, h0, h1)
    calls: list[dict] = field(default_factory=list)
    orgs: dict[str, tuple[list[dict], list[dict]]] = field(default_factory=dict)  # enterprise_id -> (depts, users)
    corps: dict[str, dict] = field(default_factory=dict)   # enterprise_id -> {corpid, corpsecret, credit_code}
    members: list[tuple[str, str, str]] = field(default_factory=list)          # enterprise_id, userid, person_id


def plant(rng: np.random.Generator, world: World, crm: Crm, clock: Clock) -> Planted:
    ent, ppl = world.enterprises, world.people
    out = Planted()
    row_to_ent = {row["id"]: e for row, e in zip(crm.enterprises, crm.enterprise_truth)}
    contact_of: dict[int, str] = {}
    for row, p in zip(crm.contacts, crm.contact_truth):
        if not row["deleted"]:
            contact_of.setdefault(p, row["id"])
    owners = {}
    for o in crm.opportunities:
        e = row_to_ent.get(o["enterprise_id"])
        if e is not None and not o["deleted"]:
            owners.setdefault(e, o["owner_userid"])
    n_calls = 0
    end = clock.day0 + np.timedelta64(len(clock.dates) * 86400 - 1, "s")
    for e in sorted(owners):
        people = [p for p in ent.members[e] if p < world.n_crm_people and p in contact_of]
        if not people:
            continue
        rank = {p: LEVELS.index(ppl.seniority[p]) for p in people}
        people.sort(key=lambda p: (rank[p], not ppl.legal_rep[p], p))
        top = next((p for p in people if ppl.legal_rep[p]), people[0])
        finance = [p for p in people if rank[p] <= 3 and _function(ppl.title[p]) == "财务部"]
        vps = [p for p in people if ppl.seniority[p] == "vp"]
        draw = rng.random()
        eb = (finance[0] if draw >= 0.55 and draw < 0.85 and finance
              else vps[int(rng.integers(len(vps)))] if draw >= 0.85 and vps else top)
        roles: dict[int, list[str]] = {eb: ["economic_buyer"]}
        signer = top if ppl.legal_rep[top] and rng.random() < 0.85 else eb
        roles.setdefault(signer, []).append("signer")
        it = [p for p in people if _function(ppl.title[p]) == "信息部"]
        if it:
            roles.setdefault(it[0], []).append("technical_decision_maker")
        users = [p for p in people if rank[p] >= 4 and _function(ppl.title[p]) in ("财务部", "采购部") and p not in roles]
        for p in users[:3]:
            roles.setdefault(p, []).append("user")
        rest = [p for p in people if p not in roles]
        rest.sort(key=lambda p: (_function(ppl.title[p]) not in ("行政部", "运营部"), p))
        if rest:
            roles.setdefault(rest[0], []).append("influencer")
        for p, rs in roles.items():
            for r in rs:
                out.committees.append((ent.id[e], ppl.id[p], r))
            block = BLOCKS[int(rng.integers(len(BLOCKS)))]
            days = tuple(sorted(int(d) for d in rng.choice(np.arange(1, 6), 2, replace=False)))
            out.windows[ppl.id[p]] = (days, block[0], block[1])
            k = int(rng.poisson(max(ROLE_CALLS[r] for r in rs)))
            for _ in range(k):  # one call: any weekday hour 9-18 within 90 days; in the window it connects more
                back = int(rng.integers(0, 90))
                day = (end - np.timedelta64(back, "D")).astype("datetime64[D]")
                weekday = int((day.astype(np.int64) + 3) % 7) + 1   # 1970-01-01 was a Thursday
                in_window = rng.random() < 0.6
                hour = int(rng.integers(block[0], block[1])) if in_window else int(rng.integers(9, 18))
                hit = in_window and weekday in days
                connected = rng.random() < (0.85 if hit else 0.3)
                started = day.astype("datetime64[s]") + np.timedelta64(hour * 3600 + int(rng.integers(0, 3600)), "s")
                updated = clock.day0 + np.timedelta64(int(rng.integers(0, len(clock.dates))) * 86400 + 72000, "s")
                n_calls += 1
                out.calls.append({
                    "id": f"call_c{n_calls:07d}", "contact_id": contact_of[p], "agent_userid": owners[e],
                    "direction": "outbound", "phone": "+86" + ppl.mobile[p], "started_at": iso(np.array([started]))[0],
                    "duration_s": int(rng.integers(60, 900)) if connected else 0,
                    "outcome": "connected" if connected else ("no_answer" if rng.random() < 0.7 else "busy"),
                    "updated_at": iso(np.array([max(updated, started + np.timedelta64(60, "s"))]))[0]})
        out.corps[ent.id[e]] = {"corpid": "wwc" + hashlib.sha256(ent.id[e].encode()).hexdigest()[:15],
                                "corpsecret": "customer-secret-" + ent.id[e], "credit_code": ent.credit_code[e]}
        out.orgs[ent.id[e]], members = _org(rng, ent.id[e], [p for p in ent.members[e]], rank_of(ppl, ent.members[e]),
                                            ppl, top)
        out.members += members
    return out


def rank_of(ppl, people: list[int]) -> dict[int, int]:
    return {p: LEVELS.index(ppl.seniority[p]) for p in people}


def _org(rng: np.random.Generator, eid: str, people: list[int], rank: dict[int, int], ppl,
         top: int) -> tuple[tuple[list[dict], list[dict]], list[tuple[str, str, str]]]:
    """A customer corp in WeCom shapes: 总经办 under the root, a department per function led by its most
    senior member; members report to their department's leader, leaders to the top."""
    people = sorted(people, key=lambda p: (p != top, rank[p], p))
    userid = {p: f"u{i + 1:03d}" for i, p in enumerate(people)}
    dept_of = {p: ("总经办" if p == top else _function(ppl.title[p])) for p in people}
    names = ["总经办"] + sorted({d for d in dept_of.values() if d != "总经办"})
    ids = {n: i + 1 for i, n in enumerate(names)}
    leader = {}
    for p in people:
        leader.setdefault(dept_of[p], p)
    departed = {p for p in people[1:] if rng.random() < 0.04}
    departments = []
    for n in names:
        lead = leader.get(n)
        no_leader = n != "总经办" and rng.random() < 0.1
        departments.append({"id": ids[n], "name": n, "parentid": 0 if n == "总经办" else 1,
                            "department_leader": [] if no_leader or lead is None else [userid[lead]]})
    users = []
    for p in people:
        d = ids[dept_of[p]]
        is_lead = leader[dept_of[p]] == p
        boss = top if is_lead else leader[dept_of[p]]
        depts, flags = [d], [1 if is_lead else 0]
        if not is_lead and rng.random() < 0.05 and len(names) > 1:
            other = ids[names[int(rng.integers(len(names)))]]
            if other != d:
                depts.append(other)
                flags.append(0)
        users.append({"userid": userid[p], "name": ppl.name[p], "department": depts, "is_leader_in_dept": flags,
                      "direct_leader": [] if p == top or rng.random() < 0.3 else [userid[boss]],
                      "main_department": d, "position": V.title(rng, ppl.title[p], 0.4),
                      "status": 5 if p in departed else 1})
    return (departments, users), [(eid, userid[p], ppl.id[p]) for p in people]
