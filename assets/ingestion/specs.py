"""What each source entity looks like when it lands in ODS: one declarative spec per entity.

A spec names the ODS table, the source id, typed fields and which fields hold personal data. The
landing code (landing.py) is generic over specs, so a new source entity is a new spec, not new code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

FieldType = Literal["string", "int", "float", "decimal", "bool", "timestamp", "epoch", "date",
                    "json", "string_list", "int_list"]
# Personal-data kinds: stored as <name>_token + <name>_enc, never as the raw value.
PiiKind = Literal["phone", "email", "id_number", "ip", "phone_list"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType = "string"
    required: bool = False
    pii: PiiKind | None = None
    enum: tuple[Any, ...] | None = None
    credit_code: bool = False  # normalised, with a <name>_check_ok flag column


@dataclass(frozen=True)
class EntitySpec:
    source: str                 # crm, wecom, file, sdk
    entity: str                 # contacts, departments, ...
    fields: tuple[Field, ...]
    id_fields: tuple[str, ...]  # joined with ':' into _source_id
    updated_field: str | None = None  # newest wins when a batch repeats an id
    flatten: Callable[[dict], dict] | None = None  # source shape -> flat record
    checks: tuple[Callable[[dict, "CheckContext"], list[tuple[str, str, str]]], ...] = ()
    # Events dedupe on their id across all dates; entity snapshots only within a date.
    dedupe_across_dates: bool = False
    # JSON fields whose keys may hold personal data (see PAYLOAD_PII): tokenised and redacted.
    scan_json_pii: tuple[str, ...] = ()
    description: str = ""

    @property
    def table(self) -> str:
        return f"ods.{self.source}_{self.entity}"

    @property
    def asset_name(self) -> str:
        return f"{self.source}_{self.entity}"


@dataclass(frozen=True)
class CheckContext:
    tenant_id: str
    org_ids: frozenset[str]


F = Field

_CRM_TS = (F("created_at", "timestamp"), F("updated_at", "timestamp", required=True),
           F("deleted", "bool"))

CRM_ENTERPRISES = EntitySpec(
    "crm", "enterprises", (
        F("id", required=True), F("name", required=True), F("credit_code", credit_code=True),
        F("industry"), F("province"), F("city"), F("address"), F("legal_representative"),
        F("registered_capital", "decimal"), *_CRM_TS),
    id_fields=("id",), updated_field="updated_at",
    description="CRM enterprise accounts with unified social credit codes.")

CRM_CONTACTS = EntitySpec(
    "crm", "contacts", (
        F("id", required=True), F("enterprise_id"), F("name"), F("mobile", pii="phone"),
        F("email", pii="email"), F("id_number", pii="id_number"), F("title"), F("gender"), *_CRM_TS),
    id_fields=("id",), updated_field="updated_at",
    description="CRM contacts; mobile, email and ID number only as tokens and ciphertexts.")

CRM_LEADS = EntitySpec(
    "crm", "leads", (
        F("id", required=True), F("contact_id"), F("enterprise_id"), F("channel"),
        F("status", required=True, enum=("new", "contacted", "qualified", "disqualified", "converted")),
        F("owner_userid"), *_CRM_TS),
    id_fields=("id",), updated_field="updated_at", description="CRM leads.")

CRM_OPPORTUNITIES = EntitySpec(
    "crm", "opportunities", (
        F("id", required=True), F("lead_id"), F("enterprise_id"), F("name"),
        F("stage", required=True, enum=("prospecting", "proposal", "negotiation", "won", "lost")),
        F("amount", "decimal"), F("currency"), F("close_date", "date"), F("owner_userid"), *_CRM_TS),
    id_fields=("id",), updated_field="updated_at", description="CRM opportunities (lead -> win/loss).")

CRM_CALLS = EntitySpec(
    "crm", "calls", (
        F("id", required=True), F("contact_id"), F("agent_userid"),
        F("direction", required=True, enum=("inbound", "outbound")), F("phone", pii="phone"),
        F("started_at", "timestamp", required=True), F("duration_s", "int"),
        F("outcome", enum=("connected", "no_answer", "busy", "voicemail")),
        F("updated_at", "timestamp", required=True)),
    id_fields=("id",), updated_field="updated_at", description="Call-center call records.")

WECOM_DEPARTMENTS = EntitySpec(
    "wecom", "departments", (
        F("id", "int", required=True), F("name", required=True), F("name_en"),
        F("department_leader", "string_list"), F("parentid", "int", required=True), F("order", "int")),
    id_fields=("id",), description="The firm's WeCom departments (daily snapshot).")

WECOM_USERS = EntitySpec(
    "wecom", "users", (
        F("userid", required=True), F("name"), F("department", "int_list"), F("order", "int_list"),
        F("position"), F("is_leader_in_dept", "int_list"), F("direct_leader", "string_list"),
        F("main_department", "int"), F("status", "int", enum=(1, 2, 4, 5)), F("alias"),
        F("open_userid"), F("gender"), F("mobile", pii="phone"), F("email", pii="email"),
        F("biz_mail", pii="email"), F("telephone", pii="phone")),
    id_fields=("userid",), description="The firm's WeCom members (daily snapshot).")


def _flatten_external_contact(record: dict) -> dict:
    contact = record.get("external_contact")
    follow = record.get("follow_info")
    if not isinstance(contact, dict) or not isinstance(follow, dict):
        raise ValueError("expected objects external_contact and follow_info")
    return {
        **{k: contact.get(k) for k in ("external_userid", "name", "type", "gender", "position",
                                        "corp_name", "corp_full_name", "unionid")},
        "follow_userid": follow.get("userid"), "remark": follow.get("remark"),
        "description": follow.get("description"), "createtime": follow.get("createtime"),
        "tag_id": follow.get("tag_id"), "remark_corp_name": follow.get("remark_corp_name"),
        "remark_mobiles": follow.get("remark_mobiles"), "add_way": follow.get("add_way"),
        "oper_userid": follow.get("oper_userid"), "state": follow.get("state"),
    }


WECOM_EXTERNAL_CONTACTS = EntitySpec(
    "wecom", "external_contacts", (
        F("external_userid", required=True), F("follow_userid", required=True), F("name"),
        F("type", "int", enum=(1, 2)), F("gender", "int"), F("position"), F("corp_name"),
        F("corp_full_name"), F("unionid"), F("remark"), F("description"), F("createtime", "epoch"),
        F("tag_id", "string_list"), F("remark_corp_name"), F("remark_mobiles", pii="phone_list"),
        F("add_way", "int"), F("oper_userid"), F("state")),
    id_fields=("external_userid", "follow_userid"), flatten=_flatten_external_contact,
    description="Customers (external contacts) and the member following each (daily snapshot).")


def flatten_corp_tags(group: dict) -> list[dict]:
    """One record per tag of a get_corp_tag_list group, carrying the group's fields."""
    return [{"group_id": group.get("group_id"), "group_name": group.get("group_name"),
             "group_deleted": group.get("deleted"), **tag} for tag in group.get("tag") or [{}]]


WECOM_CORP_TAGS = EntitySpec(
    "wecom", "corp_tags", (
        F("id", required=True), F("name", required=True), F("group_id", required=True), F("group_name"),
        F("create_time", "epoch"), F("order", "int"), F("deleted", "bool"), F("group_deleted", "bool")),
    id_fields=("id",), description="Customer tags and their groups (daily snapshot).")

FILE_CONTACTS = EntitySpec(
    "file", "contacts", (
        F("record_id", required=True), F("name"), F("mobile", pii="phone"), F("email", pii="email"),
        F("company"), F("title"), F("city"), F("signed_up_at", "timestamp")),
    id_fields=("_file", "record_id"), updated_field="signed_up_at",
    description="Contact lists dropped as files (sign-ups, partner lists).")

EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
# Keys inside JSON fields that hold personal data, and the kind each normalises as.
PAYLOAD_PII = {"mobile": "phone", "phone": "phone", "email": "email", "id_number": "id_number"}


def _check_event(row: dict, ctx: CheckContext) -> list[tuple[str, str, str]]:
    problems = []
    if row.get("tenant_id") not in (None, ctx.tenant_id):
        problems.append(("tenant_id", "tenant_mismatch",
                         f"event belongs to another tenant, not {ctx.tenant_id!r}"))
    if row.get("org_id") is not None and row["org_id"] not in ctx.org_ids:
        problems.append(("org_id", "invalid_value", f"org_id {row['org_id']!r} is not an org of this tenant"))
    if row.get("type") is not None and not EVENT_TYPE.fullmatch(str(row["type"])):
        problems.append(("type", "schema", "type must be <domain>.<action>.<object> in lower case"))
    if row.get("payload") is not None and not isinstance(row["payload"], dict):
        problems.append(("payload", "schema", "payload must be a JSON object"))
    return problems


EVENTS = EntitySpec(
    "sdk", "events", (
        F("event_id", required=True), F("tenant_id", required=True), F("org_id", required=True),
        F("one_id"), F("occurred_at", "timestamp", required=True), F("source", required=True),
        F("type", required=True), F("ip", pii="ip"), F("ua"), F("payload", "json", required=True)),
    id_fields=("event_id",), updated_field="occurred_at", checks=(_check_event,),
    dedupe_across_dates=True, scan_json_pii=("payload",),
    description="Standard events (<domain>.<action>.<object>); payload PII tokenised.")


# Connected customer corps' org charts (assets/boss_customers.py pulls them for the boss model). A
# member's name is no landing PII kind: it arrives already as a token (the tenant's HMAC of the name key)
# and a ciphertext.
CUSTOMER_DEPARTMENTS = EntitySpec(
    "wecom", "customer_departments", (
        F("corpid", required=True), F("id", "int", required=True), F("name"), F("department_leader", "string_list"),
        F("parentid", "int"), F("order", "int")),
    id_fields=("corpid", "id"), description="Connected customer corps' WeCom departments (daily snapshot).")

CUSTOMER_USERS = EntitySpec(
    "wecom", "customer_users", (
        F("corpid", required=True), F("userid", required=True), F("name_token"), F("name_enc"),
        F("department", "int_list"), F("position"), F("is_leader_in_dept", "int_list"),
        F("direct_leader", "string_list"), F("main_department", "int"), F("status", "int"),
        F("mobile", pii="phone"), F("email", pii="email"), F("biz_mail", pii="email"),
        F("telephone", pii="phone")),
    # no enum on status: a value WeCom adds later must not dead-letter a member
    id_fields=("corpid", "userid"),
    description="Connected customer corps' WeCom members (daily snapshot); name only as token and ciphertext.")

CRM_SPECS = (CRM_ENTERPRISES, CRM_CONTACTS, CRM_LEADS, CRM_OPPORTUNITIES, CRM_CALLS)
WECOM_SPECS = (WECOM_DEPARTMENTS, WECOM_USERS, WECOM_EXTERNAL_CONTACTS, WECOM_CORP_TAGS)
CUSTOMER_ORG_SPECS = (CUSTOMER_DEPARTMENTS, CUSTOMER_USERS)
FILE_SPECS = {"contacts": FILE_CONTACTS, "events": EVENTS}  # file name prefix -> spec
ALL_SPECS = (*CRM_SPECS, *WECOM_SPECS, *CUSTOMER_ORG_SPECS, FILE_CONTACTS, EVENTS)


def spec_for(source: str, entity: str) -> EntitySpec:
    for spec in ALL_SPECS:
        if (spec.source, spec.entity) == (source, entity):
            return spec
    raise KeyError(f"no ODS spec for source {source!r} entity {entity!r}")
