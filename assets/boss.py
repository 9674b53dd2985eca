"""The boss model in the pipeline: org charts, buying committees and boss scores per tenant and date.

Runs after OneID (people and accounts are one_ids) beside the ADS step, on the configured engine, and
replaces whole tables through `warehouse.writer` (docs/boss.md lists their columns):

- dwm.boss_staff_org        the firm's own WeCom corp: each member's leader, depth, departments led;
- dws.boss_account_coverage the firm's staff on each account: owner, followers, the owner's leader;
- dwm.boss_org_history      member department/title/leader over time (valid_from/valid_to);
- dws.boss_committee_roles  (account, opportunity, person, role) with confidence and evidence;
- dws.boss_committee_gaps   e.g. no economic buyer on an open opportunity;
- dws.boss_org_warnings     bad org data (cycles, departed leaders, ...), by org and member;
- dws.boss_unknown_titles   titles no mapping table knows, for the table's maintainers;
- ads.ads_decision_makers   per account and person: level, reports_to_one_id, roles, boss_score and
                            its factors, contact window;
- ads.ads_buying_committees per account: who holds which role, the gaps, registry data by credit code.

The firm's staff org and the customers' orgs never mix: staff are WeCom userids of the tenant's own
corp, customers are person one_ids. Customers' org charts come from connected customer corps when a
tenant configures them (`customer_corps` in its boss YAML) and are otherwise inferred from titles.
"""

import json
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa

from assets.boss_customers import CUSTOMER_ORG_ASSETS, CUSTOMER_ORG_KEYS, customer_orgs_from_ods
from assets.partitions import tenant_day, tenant_day_of
from fincdp import settings
from fincdp.boss.callbacks import apply_follow_events, read_events, staff_timeline
from fincdp.boss.config import BossConfig
from fincdp.boss.customers import fetch_customer_orgs
from fincdp.boss.history import HISTORY_SCHEMA, TRACKED, update_history
from fincdp.boss.org import build_org
from fincdp.boss.tenant import TenantInputs, assess_tenant, name_key, read_registry
from resources.pii import PiiVault
from resources.warehouse import Warehouse, read_table
from resources.wecom import WeComApi

STAFF, COVERAGE, HISTORY = "dwm.boss_staff_org", "dws.boss_account_coverage", "dwm.boss_org_history"
ROLES, GAPS, WARNINGS, UNKNOWN = ("dws.boss_committee_roles", "dws.boss_committee_gaps", "dws.boss_org_warnings",
                                  "dws.boss_unknown_titles")
ADS, ACCOUNTS = "ads.ads_decision_makers", "ads.ads_buying_committees"
STAFF_ORG = "staff"  # the org key of the tenant's own corp in the history and warnings


class BossModelConfig(dg.Config):
    """`config_path`: a YAML file over fincdp/boss/boss.yaml (default FINCDP_HOME/boss/<tenant>.yaml
    when it exists); `registry_path`: enterprise registry CSV joined by credit code (default
    FINCDP_HOME/boss/<tenant>_registry.csv when it exists)."""
    config_path: str = ""
    registry_path: str = ""


def tenant_file(explicit: str, name: str) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.exists():
            raise FileNotFoundError(f"boss model: {path} does not exist")
        return path
    path = settings.home() / "boss" / name
    return path if path.exists() else None


def _list(value) -> list:
    """List columns arrive as lists (DuckDB, ClickHouse) or JSON text (MySQL)."""
    if value is None:
        return []
    if isinstance(value, str):
        return json.loads(value) if value.strip() else []
    return list(value)


def _rows(session, table: str, sql: str, params=None) -> list[dict]:
    return session.arrow(sql, params).to_pylist() if session.table_exists(table) else []


def _utc(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def read_inputs(session, as_of: date, follow_events=()) -> tuple[TenantInputs, list[dict], list[dict], dict]:
    """The model's inputs from DWD and OneID: (inputs, staff departments, staff members, extras for the
    account coverage: followers per person and the opportunities with their owners). follow_events:
    WeCom `change_external_contact` callbacks newer than the external-contact snapshot."""
    # only the record sources looked up below: events and file contacts are most of the map at scale
    ids = {(r["record_source"], r["record_id"]): r["one_id"] for r in _rows(
        session, "oneid.identity_map", "select record_source, record_id, one_id from oneid.identity_map where "
        "record_source in ('crm_contact', 'crm_enterprise', 'wecom_external_contact')")}
    contacts = [{"contact_id": r["contact_id"], "enterprise_id": r["enterprise_id"], "title": r["title"],
                 "name_key": r["contact_name_key"], "person": ids.get(("crm_contact", r["contact_id"]),
                                                                      "crm_contact:" + r["contact_id"])}
                for r in _rows(session, "dwd.dwd_crm__contacts", "select contact_id, enterprise_id, title, "
                               "contact_name_key from dwd.dwd_crm__contacts")]
    person_of = {c["contact_id"]: c["person"] for c in contacts}
    ent_rows = _rows(session, "dwd.dwd_crm__enterprises", "select enterprise_id, enterprise_name, enterprise_name_key, "
                     "credit_code, legal_representative from dwd.dwd_crm__enterprises order by enterprise_id")
    enterprises = [{"enterprise_id": r["enterprise_id"], "name": r["enterprise_name"], "credit_code": r["credit_code"],
                    "legal_representative_key": name_key(r["legal_representative"]),
                    "account": ids.get(("crm_enterprise", r["enterprise_id"]))} for r in ent_rows]
    interactions = [{"person": person_of[r["contact_id"]], "at": _utc(r["started_at"]), "outcome": r["outcome"]}
                    for r in _rows(session, "dwd.dwd_crm__calls", "select contact_id, started_at, outcome from "
                                   "dwd.dwd_crm__calls where business_date <= ?", [as_of])
                    if r["contact_id"] in person_of and r["started_at"] is not None]
    leads = _rows(session, "dwd.dwd_crm__leads", "select lead_id, contact_id, created_at from dwd.dwd_crm__leads")
    lead_person = {r["lead_id"]: person_of.get(r["contact_id"]) for r in leads}
    interactions += [{"person": person_of[r["contact_id"]], "at": _utc(r["created_at"]), "outcome": "lead"}
                     for r in leads if r["contact_id"] in person_of and r["created_at"] is not None]
    # WeCom external contacts: their position is a title, the follow an interaction; one who is no CRM
    # contact joins the account whose name key equals their corp_full_name's (inferred org data).
    externals = _rows(session, "dwd.dwd_wecom__external_contacts", "select external_userid, follow_userid, position, "
                      "corp_name_key, followed_at from dwd.dwd_wecom__external_contacts")
    externals = apply_follow_events(externals, follow_events)
    ent_by_name = {}
    for e in ent_rows:
        ent_by_name.setdefault(e["enterprise_name_key"], e["enterprise_id"])
    in_crm = {c["person"] for c in contacts}
    titles, followers, added = {}, {}, set()
    for r in externals:
        person = ids.get(("wecom_external_contact", r["external_userid"]),
                         "wecom_external_contact:" + r["external_userid"])
        followers.setdefault(person, set()).add(r["follow_userid"])
        if r["position"]:
            titles.setdefault(person, r["position"])
        if r["followed_at"] is not None:
            interactions.append({"person": person, "at": _utc(r["followed_at"]), "outcome": "wecom_follow"})
        enterprise = ent_by_name.get(r["corp_name_key"]) if r["corp_name_key"] else None
        if person not in in_crm and enterprise and person not in added:
            added.add(person)
            contacts.append({"contact_id": "wecom:" + r["external_userid"], "enterprise_id": enterprise,
                             "title": r["position"], "name_key": None, "person": person})
    opportunities = [{"opportunity_id": r["opportunity_id"], "enterprise_id": r["enterprise_id"], "stage": r["stage"],
                      "lead_person": lead_person.get(r["lead_id"]), "owner_userid": r["owner_userid"]}
                     for r in _rows(session, "dwd.dwd_crm__opportunities", "select opportunity_id, lead_id, "
                                    "enterprise_id, stage, owner_userid from dwd.dwd_crm__opportunities")]
    departments = [{"id": r["department_id"], "name": r["department_name"], "parentid": r["parent_department_id"],
                    "department_leader": _list(r["leader_userids"])}
                   for r in _rows(session, "dwd.dwd_wecom__departments", "select department_id, department_name, "
                                  "parent_department_id, leader_userids from dwd.dwd_wecom__departments")]
    members = [{"userid": r["userid"], "department": _list(r["department_ids"]),
                "is_leader_in_dept": _list(r["is_leader_in_dept"]), "direct_leader": _list(r["direct_leader_userids"]),
                "main_department": r["main_department_id"], "status": r["status"], "position": r["position"]}
               for r in _rows(session, "dwd.dwd_wecom__members", "select userid, department_ids, is_leader_in_dept, "
                              "direct_leader_userids, main_department_id, status, position from dwd.dwd_wecom__members")]
    inputs = TenantInputs(contacts, enterprises, interactions, opportunities, titles=titles)
    return inputs, departments, members, {"followers": followers, "opportunities": opportunities}


_TS = pa.timestamp("us", tz="UTC")
ADS_SCHEMA = pa.schema([
    ("account_one_id", pa.string()), ("one_id", pa.string()), ("title", pa.string()),
    ("decision_maker_level", pa.string()), ("level_source", pa.string()), ("business_function", pa.string()),
    ("reports_to_one_id", pa.string()), ("reporting_depth", pa.int64()), ("org_source", pa.string()),
    ("is_leader", pa.bool_()), ("is_legal_representative", pa.bool_()), ("buying_roles", pa.string()),
    ("boss_score", pa.float64()), ("grade_weight", pa.float64()), ("interaction_freq", pa.float64()),
    ("decision_score", pa.float64()), ("decayed_interactions", pa.float64()), ("account_rank", pa.int64()),
    ("contact_weekdays", pa.string()), ("contact_hour_start", pa.int64()), ("contact_hour_end", pa.int64()),
    ("contact_window", pa.string()), ("contact_window_source", pa.string()), ("contact_window_successes", pa.int64()),
    ("as_of_date", pa.date32())])
ROLES_SCHEMA = pa.schema([("account_one_id", pa.string()), ("opportunity_id", pa.string()), ("one_id", pa.string()),
                          ("role", pa.string()), ("confidence", pa.float64()), ("evidence", pa.string()),
                          ("as_of_date", pa.date32())])
GAPS_SCHEMA = pa.schema([("account_one_id", pa.string()), ("opportunity_id", pa.string()), ("gap", pa.string()),
                         ("message", pa.string()), ("as_of_date", pa.date32())])
WARNINGS_SCHEMA = pa.schema([("org", pa.string()), ("kind", pa.string()), ("subject", pa.string()),
                             ("message", pa.string()), ("as_of_date", pa.date32())])
UNKNOWN_SCHEMA = pa.schema([("title", pa.string()), ("people", pa.int64()), ("as_of_date", pa.date32())])
STAFF_SCHEMA = pa.schema([("userid", pa.string()), ("reports_to_userid", pa.string()), ("via", pa.string()),
                          ("reporting_depth", pa.int64()), ("department_id", pa.int64()), ("leads_departments", pa.string()),
                          ("position", pa.string()), ("is_active", pa.bool_()), ("as_of_date", pa.date32())])
ACCOUNTS_SCHEMA = pa.schema([
    ("account_one_id", pa.string()), ("credit_code", pa.string()), ("in_registry", pa.bool_()),
    ("registered_capital", pa.string()), ("industry", pa.string()), ("org_source", pa.string()),
    ("people", pa.int64()), ("top_boss_one_id", pa.string()), ("economic_buyer_one_id", pa.string()),
    ("signer_one_id", pa.string()), ("technical_decision_maker_one_id", pa.string()), ("opportunities", pa.int64()),
    ("open_opportunities_with_gaps", pa.int64()), ("gaps", pa.string()), ("as_of_date", pa.date32())])
COVERAGE_SCHEMA = pa.schema([("account_one_id", pa.string()), ("owner_userid", pa.string()),
                             ("owner_reports_to_userid", pa.string()), ("follower_userids", pa.string()),
                             ("open_opportunities", pa.int64()), ("as_of_date", pa.date32())])


def _staff_versions(staff) -> list[dict]:
    return [{"org": STAFF_ORG, "member": u, "department_id": p.department_id, "position": p.position,
             "reports_to": p.reports_to, "is_active": p.active} for u, p in sorted(staff.positions.items())]


def build_tables(inputs: TenantInputs, departments: list[dict], members: list[dict], extra: dict,
                 config: BossConfig, as_of: date, previous_history: list[dict],
                 corp_warnings: list | None = None,
                 later_staff: list[tuple[date, list[dict], list[dict]]] | None = None) -> dict[str, pa.Table]:
    """departments/members: the firm's org as of `as_of`; later_staff: its states on later dates (from
    change callbacks), the last of which is the staff org written out."""
    result = assess_tenant(inputs, config, as_of)
    result.org_warnings[:0] = corp_warnings or []
    ent_account = {e["enterprise_id"]: e.get("account") or e["enterprise_id"] for e in inputs.enterprises}
    opp_count = Counter(ent_account.get(o["enterprise_id"]) for o in inputs.opportunities)
    ads, roles, gaps, accounts = [], [], [], []
    for account, acc in result.accounts.items():
        ranked = sorted(acc.people.values(), key=lambda r: (-r.score.boss_score, r.key))
        info = result.account_info.get(account, {})
        holder = {x.role: x.person for x in acc.roles}   # account-wide roles: the same on every opportunity
        accounts.append({
            "account_one_id": account, "credit_code": info.get("credit_code"),
            "in_registry": bool(info.get("in_registry")), "registered_capital": info.get("registered_capital"),
            "industry": info.get("industry"),
            "org_source": "wecom" if any(r.org_source == "wecom" for r in ranked) else "inferred",
            "people": len(ranked), "top_boss_one_id": ranked[0].key if ranked else None,
            "economic_buyer_one_id": holder.get("economic_buyer"), "signer_one_id": holder.get("signer"),
            "technical_decision_maker_one_id": holder.get("technical_decision_maker"),
            "opportunities": opp_count[account],
            "open_opportunities_with_gaps": len({g.opportunity_id for g in acc.gaps}),
            "gaps": ",".join(sorted({g.kind for g in acc.gaps})), "as_of_date": as_of})
        for rank, r in enumerate(ranked, start=1):
            w = r.window
            ads.append({"account_one_id": account, "one_id": r.key, "title": r.title, "decision_maker_level": r.level,
                        "level_source": r.level_source, "business_function": r.function,
                        "reports_to_one_id": r.reports_to, "reporting_depth": r.depth, "org_source": r.org_source,
                        "is_leader": r.is_leader, "is_legal_representative": r.is_legal_rep,
                        "buying_roles": ",".join(sorted(r.roles)), "boss_score": r.score.boss_score,
                        "grade_weight": r.score.grade_weight, "interaction_freq": r.score.interaction_freq,
                        "decision_score": r.score.decision_score, "decayed_interactions": r.decayed_interactions,
                        "account_rank": rank, "contact_weekdays": ",".join(map(str, w.weekdays)),
                        "contact_hour_start": w.hour_start, "contact_hour_end": w.hour_end,
                        "contact_window": w.label(), "contact_window_source": w.source,
                        "contact_window_successes": w.successes, "as_of_date": as_of})
        roles += [{"account_one_id": x.account, "opportunity_id": x.opportunity_id, "one_id": x.person,
                   "role": x.role, "confidence": x.confidence, "evidence": x.evidence, "as_of_date": as_of}
                  for x in acc.roles]
        gaps += [{"account_one_id": g.account, "opportunity_id": g.opportunity_id, "gap": g.kind,
                  "message": g.message, "as_of_date": as_of} for g in acc.gaps]

    staff = build_org(departments, members)
    current = _staff_versions(staff)
    current += [{"org": account, "member": r.key, "department_id": None, "position": r.title,
                 "reports_to": r.reports_to, "is_active": True}
                for account, acc in result.accounts.items() for r in acc.people.values()]
    history = update_history(previous_history, current, as_of)
    # org changes WeCom called back after the snapshot: a staff version per event date; the customers'
    # open versions are carried over unchanged
    for day, deps, mems in later_staff or ():
        staff = build_org(deps, mems)
        others = [{k: r[k] for k in ("org", "member", *TRACKED)} for r in history
                  if r["valid_to"] is None and r["org"] != STAFF_ORG]
        history = update_history(history, [*_staff_versions(staff), *others], day)
    warnings = [{"org": org, "kind": w.kind, "subject": w.subject, "message": w.message, "as_of_date": as_of}
                for org, w in [*((STAFF_ORG, w) for w in staff.warnings), *result.org_warnings]]
    staff_rows = [{"userid": u, "reports_to_userid": p.reports_to, "via": p.via, "reporting_depth": p.depth,
                   "department_id": p.department_id, "leads_departments": ",".join(map(str, sorted(p.leads))),
                   "position": p.position, "is_active": p.active, "as_of_date": as_of}
                  for u, p in sorted(staff.positions.items())]

    coverage: dict[str, dict] = {}
    for o in extra["opportunities"]:
        account = ent_account.get(o["enterprise_id"])
        if account is None:
            continue
        c = coverage.setdefault(account, {"owners": {}, "followers": set(), "open": 0})
        if o["owner_userid"]:
            c["owners"][o["owner_userid"]] = c["owners"].get(o["owner_userid"], 0) + 1
        c["open"] += o["stage"] in config["committee"]["open_stages"]
    for account, acc in result.accounts.items():
        for key in acc.people:
            if key in extra["followers"]:
                coverage.setdefault(account, {"owners": {}, "followers": set(), "open": 0})["followers"] |= \
                    extra["followers"][key]
    coverage_rows = []
    for account, c in sorted(coverage.items()):
        owner = max(sorted(c["owners"]), key=lambda u: c["owners"][u]) if c["owners"] else None
        boss = staff.positions[owner].reports_to if owner in staff.positions else None
        coverage_rows.append({"account_one_id": account, "owner_userid": owner, "owner_reports_to_userid": boss,
                              "follower_userids": ",".join(sorted(c["followers"])), "open_opportunities": c["open"],
                              "as_of_date": as_of})
    return {
        ADS: pa.Table.from_pylist(ads, schema=ADS_SCHEMA),
        ACCOUNTS: pa.Table.from_pylist(accounts, schema=ACCOUNTS_SCHEMA),
        ROLES: pa.Table.from_pylist(roles, schema=ROLES_SCHEMA),
        GAPS: pa.Table.from_pylist(gaps, schema=GAPS_SCHEMA),
        WARNINGS: pa.Table.from_pylist(warnings, schema=WARNINGS_SCHEMA),
        UNKNOWN: pa.Table.from_pylist([{"title": t, "people": n, "as_of_date": as_of} for t, n in result.unknown_titles],
                                      schema=UNKNOWN_SCHEMA),
        STAFF: pa.Table.from_pylist(staff_rows, schema=STAFF_SCHEMA),
        COVERAGE: pa.Table.from_pylist(coverage_rows, schema=COVERAGE_SCHEMA),
        HISTORY: pa.Table.from_pylist(history, schema=HISTORY_SCHEMA),
    }


def pending_events(session, tenant, business_date: date, snapshot: str = "ods.wecom_users",
                   event: str = "change_contact") -> list:
    """Change callbacks newer than the WeCom member snapshot the DWD holds for `business_date` (older
    ones are in the snapshot already; all of them when there is no snapshot), and older than the
    snapshot of a later date, if one exists (a rerun of a past date does not take today's org)."""
    snapshot_at = next_at = None
    if session.table_exists(snapshot):
        snapshot_at = _utc(session.scalar(f"select max(_ingested_at) from {snapshot} where _business_date <= ?",
                                          [business_date]))
        next_at = _utc(session.scalar(f"select min(_ingested_at) from {snapshot} where _business_date > ?",
                                      [business_date]))
    # CreateTime has whole seconds: an event in the snapshot's own second is applied again (harmless)
    after = int(snapshot_at.timestamp()) if snapshot_at else float("-inf")
    before = next_at.timestamp() if next_at else float("inf")
    return [e for _, e in read_events(tenant.id) if e.event == event and after <= e.create_time < before]


def run_model(session, tenant, business_date: date, cfg: BossConfig, registry_path: Path | None,
              wecom_client, stats: dict | None = None, cipher=None) -> dict[str, pa.Table]:
    """The asset's body on any engine's writer session: read, assess, replace the boss tables."""
    follows = pending_events(session, tenant, business_date, "ods.wecom_external_contacts", "change_external_contact")
    inputs, departments, members, extra = read_inputs(session, business_date, follows)
    inputs.level_overrides = dict(cfg["titles"]["person_overrides"])
    if registry_path is not None:
        inputs.registry = read_registry(registry_path)
    corp_warnings = []
    if cfg["customer_corps"] and cipher is not None:   # landed in ODS by assets/boss_customers.py
        inputs.customer_orgs, corp_warnings = customer_orgs_from_ods(
            session, tenant.id, cfg["customer_corps"], business_date, cipher, inputs.enterprises, inputs.contacts)
    elif cfg["customer_corps"]:   # straight from the WeCom API (no tenant cipher given: bench, tools)
        base_url = tenant.sources.wecom.base_url if tenant.sources.wecom else None
        inputs.customer_orgs, corp_warnings = fetch_customer_orgs(
            cfg["customer_corps"], tenant.id, base_url, wecom_client, inputs.enterprises, inputs.contacts)
    previous = read_table(session, HISTORY, HISTORY_SCHEMA).to_pylist()
    events = pending_events(session, tenant, business_date)
    wecom = tenant.sources.wecom
    timeline = staff_timeline(departments, members, events, business_date, tenant.timezone,
                              wecom.corpid if wecom else None)
    (_, departments, members), later = timeline[0], timeline[1:]
    tables = build_tables(inputs, departments, members, extra, cfg, business_date, previous, corp_warnings,
                          later_staff=later)
    if stats is not None:
        stats.update(callback_events=len(events) + len(follows),
                     org_change_dates=[d.isoformat() for d, _, _ in later])
    for table, data in tables.items():
        session.replace_table(table, data, indexes=[("account_one_id",)] if "account_one_id" in data.column_names
                              else ())
    return tables


@dg.asset(key=["boss", "decision_makers"], group_name="boss", partitions_def=tenant_day, kinds={"python"},
          deps=[dg.AssetKey(["oneid", "identities"]), *(dg.AssetKey(["dwd", m]) for m in (
              "dwd_crm__contacts", "dwd_crm__enterprises", "dwd_crm__calls", "dwd_crm__leads",
              "dwd_crm__opportunities", "dwd_wecom__departments", "dwd_wecom__members",
              "dwd_wecom__external_contacts")), *CUSTOMER_ORG_KEYS],
          description="Org charts (the firm's own and its customers'), buying committees per account and "
                      "opportunity, boss_score = grade_weight x interaction_freq x decision_score, contact windows.")
def decision_makers(context: dg.AssetExecutionContext, config: BossModelConfig, warehouse: Warehouse,
                    wecom: WeComApi, pii: PiiVault) -> dg.MaterializeResult:
    day = tenant_day_of(context)
    tenant = day.tenant
    cfg_path = tenant_file(config.config_path, f"{tenant.id}.yaml")
    cfg = BossConfig.load(cfg_path)
    registry_path = tenant_file(config.registry_path, f"{tenant.id}_registry.csv")
    with warehouse.writer(tenant) as session:
        stats: dict = {}
        tables = run_model(session, tenant, day.business_date, cfg, registry_path, wecom.client, stats,
                           cipher=pii.cipher(tenant.id))
    ads = tables[ADS]
    gaps = tables[GAPS]
    for w in tables[WARNINGS].to_pylist()[:20]:
        context.log.warning(f"tenant {tenant.id} org {w['org']}: {w['message']}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": ads.num_rows, "accounts": len(set(ads["account_one_id"].to_pylist())),
        "roles": tables[ROLES].num_rows, "gaps": gaps.num_rows, "org_warnings": tables[WARNINGS].num_rows,
        "unknown_titles": tables[UNKNOWN].num_rows, "config": str(cfg_path or "defaults"),
        "wecom_callback_events": stats["callback_events"],
        "org_change_dates": ", ".join(stats["org_change_dates"]) or "none"})


ASSETS = [decision_makers, *CUSTOMER_ORG_ASSETS]
