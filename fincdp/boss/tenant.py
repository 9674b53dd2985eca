"""The boss model over one tenant's accounts: plain rows in, plain rows out (the asset and the bench
share it). Personal data never enters: people are keys (one_id), legal representatives are compared
as name keys in memory and only the match is kept."""
from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from fincdp.boss.committee import AccountResult, Opportunity, Person, assess_account
from fincdp.boss.config import BossConfig
from fincdp.boss.org import OrgChart, OrgWarning, build_org
from fincdp.boss.score import Interaction
from fincdp.boss.titles import TitleMapper


def name_key(name: str | None) -> str:
    """As the dbt macro name_key: NFKC, middle dots unified, no whitespace, lower case."""
    if not name:
        return ""
    s = unicodedata.normalize("NFKC", name)
    s = re.sub(r"[・•．‧∙]", "·", s)
    return re.sub(r"\s+", "", s).lower()


def credit_key(code: str | None) -> str:
    return (code or "").strip().upper()


def read_registry(path: Path | str) -> dict[str, dict]:
    """Registry file (CSV: credit_code, legal_representative, registered_capital, industry) by credit code.
    A row without a credit code is an error naming its line."""
    out: dict[str, dict] = {}
    with Path(path).open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"credit_code", "legal_representative"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"registry file {path}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            code = credit_key(row.get("credit_code"))
            if not code:
                raise ValueError(f"registry file {path} line {line}: no credit_code")
            out[code] = {"legal_representative_key": name_key(row.get("legal_representative")),
                         "registered_capital": row.get("registered_capital") or None,
                         "industry": row.get("industry") or None}
    return out


@dataclass
class CustomerOrg:
    """A connected customer corp's org chart, and which of its userids are which people."""
    departments: list[dict]
    members: list[dict]
    people: dict[str, str]               # userid -> person key
    renames: dict[str, str] = field(default_factory=dict)


@dataclass
class TenantInputs:
    contacts: list[dict]                 # contact_id, enterprise_id, person, title, name_key
    enterprises: list[dict]              # enterprise_id, account, name, credit_code, legal_representative_key
    interactions: list[dict]             # person, at (datetime), outcome
    opportunities: list[dict]            # opportunity_id, enterprise_id, stage, lead_person
    customer_orgs: dict[str, CustomerOrg] = field(default_factory=dict)   # account -> org
    registry: dict[str, dict] = field(default_factory=dict)               # credit code -> registry row
    titles: dict[str, str] = field(default_factory=dict)   # person -> title from other sources (WeCom position)
    level_overrides: dict[str, str] = field(default_factory=dict)        # person -> level (manual)


@dataclass
class TenantResult:
    accounts: dict[str, AccountResult]
    org_warnings: list[tuple[str, OrgWarning]]
    unknown_titles: list[tuple[str, int]]
    legal_rep_matches: int = 0
    account_info: dict[str, dict] = field(default_factory=dict)   # credit code, registry capital/industry


def _pseudonymous(w: OrgWarning, corp: CustomerOrg, account: str) -> OrgWarning:
    """A customer's userids (often pinyin names) leave only as the person's key or a hash of the userid."""
    ids = sorted({m["userid"] for m in corp.members} | set(corp.renames) | set(corp.renames.values()),
                 key=len, reverse=True)
    if not ids:
        return w
    pattern = re.compile("|".join(re.escape(u) for u in ids))

    def sub(m: re.Match) -> str:
        u = m.group(0)
        return corp.people.get(u) or "member:" + hashlib.sha256(f"{account}|{u}".encode()).hexdigest()[:12]

    return OrgWarning(w.kind, pattern.sub(sub, w.subject), pattern.sub(sub, w.message))


def assess_tenant(inputs: TenantInputs, config: BossConfig, as_of: date) -> TenantResult:
    mapper = TitleMapper(config)
    ent_account = {e["enterprise_id"]: e.get("account") or e["enterprise_id"] for e in inputs.enterprises}
    account_info: dict[str, dict] = {}
    for e in sorted(inputs.enterprises, key=lambda e: e["enterprise_id"]):
        info = account_info.setdefault(ent_account[e["enterprise_id"]], {
            "names": [], "registry_legal": set(), "crm_legal": set(), "credit_code": None, "registered_capital": None,
            "industry": None, "in_registry": False})
        info["names"].append(e.get("name") or "")
        info["credit_code"] = info["credit_code"] or credit_key(e.get("credit_code")) or None
        reg = inputs.registry.get(credit_key(e.get("credit_code")))
        if reg:  # the registry is the authority on the legal representative, capital and industry
            info.update(in_registry=True, registered_capital=reg.get("registered_capital"), industry=reg.get("industry"))
            if reg.get("legal_representative_key"):
                info["registry_legal"].add(reg["legal_representative_key"])
        if e.get("legal_representative_key"):
            info["crm_legal"].add(e["legal_representative_key"])
    for info in account_info.values():
        info["legal"] = info["registry_legal"] or info["crm_legal"]
        info["legal_source"] = "registry" if info["registry_legal"] else "crm enterprise record"

    people: dict[str, dict[str, Person]] = defaultdict(dict)   # account -> person -> Person
    for c in sorted(inputs.contacts, key=lambda c: c["contact_id"]):
        account = ent_account.get(c.get("enterprise_id"))
        if account is None:
            continue
        key = c["person"]
        p = people[account].get(key)
        if p is None:
            p = people[account][key] = Person(key)
        p.title = p.title or c.get("title") or None
        if c.get("name_key") and c["name_key"] in account_info[account]["legal"]:
            p.is_legal_rep = True
            p.legal_rep_source = account_info[account]["legal_source"]
    person_accounts: dict[str, list[str]] = defaultdict(list)
    for account, ps in people.items():
        for key, p in ps.items():
            person_accounts[key].append(account)
            if not p.title and inputs.titles.get(key):
                p.title = inputs.titles[key]
            p.level_override = inputs.level_overrides.get(key)
    for i in inputs.interactions:
        for account in person_accounts.get(i["person"], ()):
            people[account][i["person"]].interactions.append(Interaction(i["at"], i["outcome"]))
    opps: dict[str, list[Opportunity]] = defaultdict(list)
    for o in sorted(inputs.opportunities, key=lambda o: o["opportunity_id"]):
        account = ent_account.get(o.get("enterprise_id"))
        if account is not None:
            opps[account].append(Opportunity(o["opportunity_id"], o.get("stage") or "", o.get("lead_person")))

    warnings: list[tuple[str, OrgWarning]] = []
    accounts: dict[str, AccountResult] = {}
    for account in sorted(set(people) | set(opps)):
        ps = people.get(account, {})
        org: OrgChart | None = None
        corp = inputs.customer_orgs.get(account)
        if corp is not None:
            org = build_org(corp.departments, corp.members, corp.renames)
            warnings += [(account, _pseudonymous(w, corp, account)) for w in org.warnings]
            for userid, key in corp.people.items():
                if key in ps:
                    ps[key].org_userid = corp.renames.get(userid, userid)
        public = any(mapper.is_public_sector(n) for n in account_info.get(account, {}).get("names", []))
        accounts[account] = assess_account(account, list(ps.values()), opps.get(account, []), mapper=mapper,
                                           config=config, as_of=as_of, org=org, public_sector=public)
    matches = sum(1 for a in accounts.values() for r in a.people.values() if r.is_legal_rep)
    return TenantResult(accounts, warnings, mapper.unknown_titles(), matches, account_info)
