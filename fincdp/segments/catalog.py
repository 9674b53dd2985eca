"""The field catalogue of the segment language: every name a rule may use, in one place.

A profile or enterprise field maps to the warehouse table and column it is read from and its type,
which decides the operators it accepts. The member unit is the person OneID: person fields come from
the golden record (dwm.dwm_person_golden, one row per one_id) or are aggregated over the person's CRM
contacts (ads.ads_person_360, several contacts may share one one_id); enterprise fields come from
ads.ads_enterprise_360 through the person's CRM enterprise. Personal data (names, phones, emails) is
deliberately absent: rules may test that a phone is on file, never what it is.
"""
from __future__ import annotations

from dataclasses import dataclass

# Where each source of fields is read from (`layer.table`, as Warehouse sessions name tables).
GOLDEN = "dwm.dwm_person_golden"
PERSON_360 = "ads.ads_person_360"
ENTERPRISE_360 = "ads.ads_enterprise_360"
EVENTS = "dwm.dwm_person_events"   # dwd_sdk__events resolved to one_ids
CALLS = "dwd.dwd_crm__calls"
PERSON_TAGS = "dwm.dwm_person_tags"
IDENTITY_MAP = "oneid.identity_map"

TYPES = ("string", "integer", "number", "boolean", "date")


@dataclass(frozen=True)
class Field:
    name: str          # what rules write: person.title, enterprise.industry
    table: str         # GOLDEN, PERSON_360 or ENTERPRISE_360
    column: str        # the table's column
    type: str          # one of TYPES
    description: str
    aggregate: str | None = None   # PERSON_360 fields: how a person's contacts combine (sum, max, count)
    presence: bool = False         # boolean "column is not null" (e.g. a token is on file)


def _person(name, column, type_, description, **kw) -> Field:
    return Field(f"person.{name}", GOLDEN, column, type_, description, **kw)


def _activity(name, aggregate, type_, description) -> Field:
    return Field(f"person.{name}", PERSON_360, name if aggregate != "count" else "contact_id", type_,
                 description, aggregate=aggregate)


def _enterprise(name, type_, description) -> Field:
    return Field(f"enterprise.{name}", ENTERPRISE_360, name, type_, description)


FIELDS: dict[str, Field] = {f.name: f for f in [
    _person("title", "title", "string", "Job title (golden record: CRM first, then files, then WeCom)."),
    _person("company_name", "company_name", "string", "Company name from files or WeCom (golden record)."),
    _person("enterprise_id", "crm_enterprise_id", "string", "The CRM enterprise the person works for."),
    _person("source_records", "source_records", "integer", "Source records OneID joined into the person."),
    _person("has_mobile", "mobile_token", "boolean", "A mobile number is on file.", presence=True),
    _person("has_email", "email_token", "boolean", "An email address is on file.", presence=True),
    _activity("crm_contacts", "count", "integer", "CRM contact records of the person."),
    _activity("calls_7d", "sum", "integer", "CRM calls in the 7 days up to the business date."),
    _activity("calls_30d", "sum", "integer", "CRM calls in the 30 days up to the business date."),
    _activity("calls_all", "sum", "integer", "All CRM calls."),
    _activity("events_7d", "sum", "integer", "Web/app events in the 7 days up to the business date."),
    _activity("events_30d", "sum", "integer", "Web/app events in the 30 days up to the business date."),
    _activity("events_all", "sum", "integer", "All web/app events."),
    _activity("leads", "sum", "integer", "CRM leads."),
    _activity("converted_leads", "sum", "integer", "CRM leads converted."),
    _activity("last_active_on", "max", "date", "Last day with a call or an event."),
    _enterprise("enterprise_name", "string", "Enterprise name (CRM)."),
    _enterprise("credit_code", "string", "Unified social credit code."),
    _enterprise("industry", "string", "Industry."),
    _enterprise("province", "string", "Province."),
    _enterprise("city", "string", "City."),
    _enterprise("crm_contacts", "integer", "CRM contacts at the enterprise."),
    _enterprise("wecom_contacts", "integer", "WeCom external contacts at the enterprise."),
    _enterprise("calls_7d", "integer", "Calls to the enterprise's contacts, 7 days."),
    _enterprise("calls_30d", "integer", "Calls to the enterprise's contacts, 30 days."),
    _enterprise("events_30d", "integer", "Events of the enterprise's contacts, 30 days."),
    _enterprise("last_active_on", "date", "Last active day of any of its contacts."),
    _enterprise("open_opportunities", "integer", "Open opportunities."),
    _enterprise("open_pipeline_amount", "number", "Amount of open opportunities."),
    _enterprise("won_opportunities", "integer", "Won opportunities."),
    _enterprise("won_amount", "number", "Amount won."),
]}

# Operators by field type; `value` shape each one takes is checked in language.py.
OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("eq", "ne", "in", "not_in", "is_null", "not_null"),
    "integer": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "is_null", "not_null"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_null", "not_null"),
    "boolean": ("eq",),
    "date": ("eq", "gt", "gte", "lt", "lte", "between", "within_last_days", "not_within_last_days",
             "is_null", "not_null"),
}

# OneID record sources a `linked:` condition may name (oneid.identity_map.record_source).
LINK_SOURCES = ("crm_contact", "wecom_external_contact", "file_contact", "sdk_event")

# Event fields a rule may filter on (dwm.dwm_person_events columns).
EVENT_FILTERS = {"type": "event_type", "domain": "event_domain", "action": "event_action",
                 "object": "event_object", "source": "event_source"}

MAX_WINDOW_DAYS = 3660  # ten years: a longer window is a typo, not a rule
