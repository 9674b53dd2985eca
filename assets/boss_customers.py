"""Connected customer corps' org charts landed in ODS (docs/boss.md), for the boss model to read.

Per tenant and business date, every corp of the tenant's boss config `customer_corps` is pulled through
the WeCom API into `ods.wecom_customer_departments` and `ods.wecom_customer_users`, with the landing code
of every other source: mobiles, emails and telephones become tokens and ciphertexts there. A member's
name is no landing PII kind, so it is protected here before landing: `name_token` is the tenant's HMAC
of the name key (what the boss model matches contacts on), `name_enc` the AES-GCM ciphertext (AAD
tenant|column); the name itself, avatars, addresses and other member fields never land. A corp that
cannot be read is logged and counted; the boss model then uses its newest earlier snapshot.
"""

import base64

import dagster as dg

from assets.ingestion import store
from assets.ingestion.ods import ingest_pages
from assets.ingestion.specs import CUSTOMER_DEPARTMENTS, CUSTOMER_USERS, EntitySpec
from assets.partitions import tenant_day, tenant_day_of
from fincdp.boss.config import BossConfig
from fincdp.boss.customers import CorpUnreadable, read_corp
from fincdp.boss.tenant import name_key
from resources.pii import PiiVault
from resources.warehouse import Warehouse
from resources.wecom import WeComApi

USER_KEEP = ("userid", "department", "position", "is_leader_in_dept", "direct_leader", "main_department", "status",
             "mobile", "email", "biz_mail", "telephone")
DEPT_KEEP = ("id", "name", "department_leader", "parentid", "order")


def name_token(cipher, name: str | None) -> str | None:
    key = name_key(name) if name else ""
    return cipher.token("name", key) if key else None


def _records(spec: EntitySpec, corpid: str, departments: list[dict], users: list[dict], cipher) -> list[dict]:
    if spec is CUSTOMER_DEPARTMENTS:
        return [{"corpid": corpid, **{k: d.get(k) for k in DEPT_KEEP}} for d in departments]
    column = f"{CUSTOMER_USERS.table}.name"
    return [{"corpid": corpid, **{k: u.get(k) for k in USER_KEEP}, "name_token": name_token(cipher, u.get("name")),
             "name_enc": base64.b64encode(cipher.encrypt(column, u["name"])).decode() if u.get("name") else None}
            for u in users]


def customer_corps_of(tenant_id: str) -> list[dict]:
    from assets.boss import tenant_file   # one rule for where a tenant's boss YAML lives

    return BossConfig.load(tenant_file("", f"{tenant_id}.yaml"))["customer_corps"]


_SPECS = (CUSTOMER_DEPARTMENTS, CUSTOMER_USERS)
CUSTOMER_ORG_KEYS = [dg.AssetKey(["ods", s.asset_name]) for s in _SPECS]


@dg.multi_asset(specs=[dg.AssetSpec(key, description=s.description, kinds={"python", "duckdb"},
                                    tags={"source": "wecom"}) for key, s in zip(CUSTOMER_ORG_KEYS, _SPECS)],
                name="ods_wecom_customer_orgs", group_name="ingestion", partitions_def=tenant_day)
def customer_orgs(context: dg.AssetExecutionContext, wecom: WeComApi, warehouse: Warehouse, pii: PiiVault):
    """Each corp read once for both tables, so its departments and members are one snapshot."""
    day = tenant_day_of(context)
    corps = customer_corps_of(day.tenant.id)
    base_url = day.tenant.sources.wecom.base_url if day.tenant.sources.wecom else None
    cipher = pii.cipher(day.tenant.id)
    read, unread = [], []
    for corp in corps:
        try:
            read.append((corp["corpid"], *read_corp(corp, day.tenant.id, base_url, wecom.client)))
        except CorpUnreadable as exc:
            unread.append(corp["corpid"])
            context.log.warning(str(exc))
    with warehouse.session(day.tenant) as session:
        for key, spec in zip(CUSTOMER_ORG_KEYS, _SPECS):
            id_field = "id" if spec is CUSTOMER_DEPARTMENTS else "userid"

            def pages(cursor, spec=spec, id_field=id_field):
                for corpid, departments, users in read:
                    records = _records(spec, corpid, departments, users, cipher)
                    yield records, [f"corpid={corpid} {id_field}={r.get(id_field)}" for r in records], None

            batch = ingest_pages(session, cipher, spec, day, pages, workers=1)
            published = warehouse.publish(session, spec.table, day.business_date)
            counts = store.partition_counts(session, spec, day.business_date)
            yield dg.MaterializeResult(asset_key=key, metadata={
                "dagster/row_count": counts["rows"], "received": counts["received"], "landed": counts["landed"],
                "dead_lettered": counts["dead_lettered"], "batch_id": batch.batch_id, "corps": len(corps),
                "corps_unreadable": ", ".join(unread) or "none", **published})


CUSTOMER_ORG_ASSETS = [customer_orgs]


def customer_orgs_from_ods(session, tenant_id: str, corps: list[dict], business_date, cipher,
                           enterprises: list[dict], contacts: list[dict]):
    """Each configured corp's newest landed snapshot up to `business_date`, matched to the account's
    contacts by name token (the tenant's HMAC of the name key: no name is read). A corp with no landed
    snapshot is a `corp_unreadable` warning."""
    from assets.boss import _list, _rows   # the boss asset's readers (list columns differ by engine)
    from fincdp.boss.customers import match_customer_orgs

    wanted = {c["corpid"] for c in corps}
    users = _rows(session, CUSTOMER_USERS.table, "select corpid, userid, name_token, department, position, "
                  "is_leader_in_dept, direct_leader, main_department, status, _business_date from "
                  f"{CUSTOMER_USERS.table} where _business_date <= ?", [business_date])
    depts = _rows(session, CUSTOMER_DEPARTMENTS.table, "select corpid, id, name, department_leader, parentid, "
                  f"_business_date from {CUSTOMER_DEPARTMENTS.table} where _business_date <= ?", [business_date])
    newest: dict[str, object] = {}
    for r in users:
        if r["corpid"] in wanted and (r["corpid"] not in newest or r["_business_date"] > newest[r["corpid"]]):
            newest[r["corpid"]] = r["_business_date"]
    fetched: dict = {c: f"tenant {tenant_id} customer corp {c}: no landed snapshot up to {business_date} "
                        f"({CUSTOMER_USERS.table})" for c in wanted - set(newest)}
    for corpid, day in newest.items():
        members = [{"userid": r["userid"], "name_token": r["name_token"], "department": _list(r["department"]),
                    "position": r["position"], "is_leader_in_dept": _list(r["is_leader_in_dept"]),
                    "direct_leader": _list(r["direct_leader"]), "main_department": r["main_department"],
                    "status": r["status"]}
                   for r in users if r["corpid"] == corpid and r["_business_date"] == day]
        departments = [{"id": r["id"], "name": r["name"], "parentid": r["parentid"],
                        "department_leader": _list(r["department_leader"])}
                       for r in depts if r["corpid"] == corpid and r["_business_date"] == day]
        fetched[corpid] = (sorted(departments, key=lambda d: d["id"]), sorted(members, key=lambda m: m["userid"]))
    return match_customer_orgs(corps, fetched, enterprises, contacts, lambda u: u.get("name_token"),
                               lambda key: cipher.token("name", key))
