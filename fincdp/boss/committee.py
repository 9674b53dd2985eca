"""Buying committees per (enterprise account, opportunity): who is the economic buyer, the technical
decision maker, the signer, the users and the influencers, with evidence, confidence and gaps.

One person can hold several roles. Roles come from the person's level and function (titles), the
org chart (a real one from a connected WeCom corp, else inferred from levels), the registry's legal
representative and the interactions: every input is passed in, so results are reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from fincdp.boss.config import BossConfig
from fincdp.boss.org import OrgChart
from fincdp.boss.score import (ContactWindow, Interaction, Score, ScoreInputs, contact_window,
                               decayed_interactions, score)
from fincdp.boss.titles import TitleMapper

ROLES = ("economic_buyer", "technical_decision_maker", "signer", "user", "influencer")


@dataclass
class Person:
    key: str                       # one_id (or a record key before OneID)
    title: str | None = None
    is_legal_rep: bool = False
    org_userid: str | None = None  # the person's userid in the account's own WeCom corp, if connected
    interactions: list[Interaction] = field(default_factory=list)
    level_override: str | None = None  # a person-level manual override (e.g. from a sales rep)
    legal_rep_source: str = "registry"   # where the legal representative came from


@dataclass(frozen=True)
class Opportunity:
    id: str
    stage: str
    lead_person: str | None = None   # the person on the opportunity's lead


@dataclass
class PersonResult:
    key: str
    title: str | None
    level: str | None
    level_source: str              # override | person_override | corporate | public | none
    function: str | None
    reports_to: str | None
    depth: int | None
    org_source: str                # wecom | inferred
    is_leader: bool
    is_legal_rep: bool
    decayed_interactions: float
    score: Score
    window: ContactWindow
    roles: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class RoleRow:
    account: str
    opportunity_id: str | None
    person: str
    role: str
    confidence: float
    evidence: str


@dataclass(frozen=True)
class Gap:
    account: str
    opportunity_id: str | None
    kind: str
    message: str


@dataclass
class AccountResult:
    account: str
    people: dict[str, PersonResult]
    roles: list[RoleRow]
    gaps: list[Gap]


def infer_org(levels: dict[str, str | None], functions: dict[str, str | None], legal_rep: set[str],
              config: BossConfig) -> dict[str, str | None]:
    """Reporting lines guessed from titles when the account's org is not connected: the top is the
    highest level (on a tie the legal representative, then general management); everyone else reports to the lowest-ranked
    person above them in their own function, else to the top."""
    if not levels:
        return {}
    order = sorted(levels, key=lambda k: (config.rank(levels[k]), k not in legal_rep, functions.get(k) != "general", k))
    top = order[0]
    out: dict[str, str | None] = {top: None}
    for k in order[1:]:
        rank = config.rank(levels[k])
        same = [p for p in order if config.rank(levels[p]) < rank and functions.get(p)
                and functions.get(p) == functions.get(k)]
        out[k] = same[-1] if same else top
    return out


def _depths(reports_to: dict[str, str | None]) -> dict[str, int]:
    out = {}
    for k in reports_to:
        seen, cur, d = {k}, reports_to.get(k), 0
        while cur is not None and cur not in seen and cur in reports_to:
            seen.add(cur)
            d += 1
            cur = reports_to.get(cur)
        out[k] = d
    return out


def _confidence(first: float, second: float | None, title_known: bool) -> float:
    """0.5..0.95 by how far the winner leads the runner-up; titles no table knows cost a third."""
    dominance = 1.0 if not second else max(0.0, (first - second) / first)
    c = 0.5 + 0.45 * dominance
    return round(c if title_known else c * 0.67, 3)


def assess_account(account: str, people: list[Person], opportunities: list[Opportunity], *, mapper: TitleMapper,
                   config: BossConfig, as_of: date, org: OrgChart | None = None,
                   public_sector: bool = False) -> AccountResult:
    """Scores, reporting lines, contact windows and buying roles of one account's people."""
    levels, sources, functions = {}, {}, {}
    for p in people:
        t = mapper.level(p.title, public_sector=public_sector)
        levels[p.key], sources[p.key], functions[p.key] = t.level, t.table, t.function
        if p.level_override:
            levels[p.key], sources[p.key] = p.level_override, "person_override"
    by_userid = {p.org_userid: p.key for p in people if p.org_userid}
    legal = {p.key for p in people if p.is_legal_rep}
    has_org = org is not None and any(u in org.positions for u in by_userid)
    if has_org:
        reports, leader, org_source = {}, {}, {}
        inferred = infer_org(levels, functions, legal, config)
        for p in people:
            pos = org.positions.get(p.org_userid) if p.org_userid else None
            if pos is not None:
                # climb past leaders who are not among the account's known people
                boss = next((by_userid[u] for u in org.chain(p.org_userid)[1:] if u in by_userid), None)
                reports[p.key], leader[p.key], org_source[p.key] = boss, bool(pos.leads), "wecom"
            else:
                reports[p.key], leader[p.key], org_source[p.key] = inferred.get(p.key), False, "inferred"
        depth_of = {p.key: (org.positions[p.org_userid].depth if p.org_userid in org.positions else None)
                    for p in people}
    else:
        reports = infer_org(levels, functions, legal, config)
        bosses = set(reports.values())
        leader = {k: k in bosses for k in reports}
        org_source = {k: "inferred" for k in reports}
        depth_of = {k: None for k in reports}
    inferred_depth = _depths(reports)

    results: dict[str, PersonResult] = {}
    for p in people:
        decayed = decayed_interactions(p.interactions, as_of, config)
        real = org_source.get(p.key) == "wecom"
        x = ScoreInputs(levels[p.key], functions[p.key], real, leader.get(p.key, False) if real else False,
                        depth_of.get(p.key) if real else None, p.is_legal_rep, decayed)
        results[p.key] = PersonResult(
            p.key, p.title, levels[p.key], sources[p.key], functions[p.key], reports.get(p.key),
            depth_of.get(p.key) if real else inferred_depth.get(p.key), org_source.get(p.key, "inferred"),
            bool(leader.get(p.key)), p.is_legal_rep, round(decayed, 6), score(x, config),
            contact_window(p.interactions, config))

    roles, gaps = [], []
    committee = config["committee"]
    open_stages = set(committee["open_stages"])

    def ranked(candidates) -> list[PersonResult]:
        return sorted(candidates, key=lambda r: (-r.score.boss_score, config.rank(r.level), r.key))

    def explain(r: PersonResult) -> str:
        t = f"title {r.title!r} -> {r.level or 'unknown'} ({r.level_source})" if r.title else "no title"
        org_txt = (f"org depth {r.depth} ({r.org_source})" if r.depth is not None else "no org position")
        return (f"{t}; function {r.function or 'unknown'}; {org_txt}; decayed interactions "
                f"{r.decayed_interactions:.2f}; boss_score {r.score.boss_score:.4f}")

    eb_pool = ranked(r for r in results.values()
                     if r.level and config.rank(r.level) <= config.rank(committee["economic_buyer_min_level"]))
    tdm_pool = ranked(r for r in results.values() if r.function in committee["technical_functions"]
                      and r.level and config.rank(r.level) <= config.rank(committee["technical_min_level"]))
    eb = eb_pool[0] if eb_pool else None
    tdm = tdm_pool[0] if tdm_pool else None
    signer = next((r for r in ranked(results.values()) if r.is_legal_rep), None)
    legal_source = {p.key: p.legal_rep_source for p in people}

    for opp in opportunities or [Opportunity("", "")]:
        oid = opp.id or None
        is_open = opp.stage in open_stages

        def add(r: PersonResult, role: str, confidence: float, evidence: str) -> None:
            r.roles.add(role)
            roles.append(RoleRow(account, oid, r.key, role, round(confidence, 3), evidence))

        if eb:
            second = eb_pool[1].score.boss_score if len(eb_pool) > 1 else None
            add(eb, "economic_buyer", _confidence(eb.score.boss_score, second, eb.level_source != "none"),
                "highest boss_score at or above " + committee["economic_buyer_min_level"] + ": " + explain(eb))
        elif is_open:
            best = ranked(results.values())
            hint = f"; highest-ranked contact is {best[0].key} ({best[0].level or 'unknown level'})" if best else ""
            gaps.append(Gap(account, oid, "no_economic_buyer",
                            f"open opportunity {opp.id} at {account}: no contact at or above "
                            f"{committee['economic_buyer_min_level']}{hint}"))
        if signer:
            add(signer, "signer", 0.9, f"legal representative ({legal_source[signer.key]}); " + explain(signer))
        elif eb and eb.level in ("owner", "cxo"):
            add(eb, "signer", 0.5, "no legal representative among the contacts: the economic buyer signs")
        elif is_open:
            gaps.append(Gap(account, oid, "no_signer",
                            f"open opportunity {opp.id} at {account}: no legal representative or top executive "
                            "among the contacts"))
        if tdm:
            second = tdm_pool[1].score.boss_score if len(tdm_pool) > 1 else None
            add(tdm, "technical_decision_maker",
                _confidence(tdm.score.boss_score, second, tdm.level_source != "none"),
                "highest boss_score in " + "/".join(committee["technical_functions"]) + ": " + explain(tdm))
        elif is_open:
            gaps.append(Gap(account, oid, "no_technical_decision_maker",
                            f"open opportunity {opp.id} at {account}: no "
                            f"{'/'.join(committee['technical_functions'])} contact at or above "
                            f"{committee['technical_min_level']}"))
        lead_user = results.get(opp.lead_person) if opp.lead_person else None
        taken = {r.key for r in (eb, tdm) if r}
        for r in ranked(results.values()):
            if r.key in taken:
                continue
            low = r.level is None or config.rank(r.level) >= config.rank(committee["user_max_level"])
            if low and r.function in committee["user_functions"]:
                add(r, "user", 0.6 + 0.2 * (r.decayed_interactions > 0), "works in " + r.function + ": " + explain(r))
            elif r is lead_user:
                add(r, "user", 0.5, "contact on the opportunity's lead: " + explain(r))
            elif r.decayed_interactions >= committee["influencer_min_interactions"] or r.function == "admin":
                why = "assistant / gatekeeper" if r.function == "admin" else "engaged without a decision role"
                add(r, "influencer", 0.4 + 0.2 * (r.decayed_interactions >= committee["influencer_min_interactions"]),
                    why + ": " + explain(r))
    return AccountResult(account, results, roles, gaps)
