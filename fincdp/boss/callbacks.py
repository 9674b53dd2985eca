"""WeCom change callbacks (`change_contact`, `change_external_contact`) into the org history.

The receiver (fincdp/boss/receiver.py) verifies and decrypts each callback, keeps only the org fields of
the event (`parse_event`: names, mobiles, emails, avatars and addresses are dropped before anything is
stored) and appends it to the tenant's callback inbox: a SQLite file per tenant under FINCDP_HOME, not the
tenant's DuckDB file, because a pipeline run holds that file for minutes while WeCom waits 5 s for an
answer. SQLite in WAL mode lets the receiver append while a run reads. An event is stored once
(`event_id`: a hash of its kept content, so WeCom's retries of one event collapse) and a rejected
callback is dead-lettered with its reason and the body's hash and size, never the body.

The boss asset reads the inbox (`pending_events`, `staff_timeline`): events newer than the last WeCom
snapshot are applied to the snapshot's departments and members in CreateTime order, and the org
history gets a version dated by each event's CreateTime (in the tenant's time zone).
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterable
from zoneinfo import ZoneInfo

from fincdp import settings

USER_CHANGES = ("create_user", "update_user", "delete_user")
PARTY_CHANGES = ("create_party", "update_party", "delete_party")
EXTERNAL_CHANGES = ("add_external_contact", "add_half_external_contact", "edit_external_contact",
                    "del_external_contact", "del_follow_user", "transfer_fail")
# What an event keeps: the org fields. A user event's Name, Mobile, Email, Avatar, Alias, Telephone,
# Address, Gender and ExtAttr are dropped here (a department's Name is an org unit, not a person's).
KEEP = {
    "user": ("UserID", "NewUserID", "Department", "MainDepartment", "IsLeaderInDept", "DirectLeader", "Position",
             "Status"),
    "party": ("Id", "Name", "ParentId", "Order"),
    "external": ("UserID", "ExternalUserID", "State", "Source", "FailReason"),
}


class CallbackError(ValueError):
    """A callback that cannot be stored: the message names the problem, never the payload."""


@dataclass(frozen=True)
class OrgEvent:
    event_id: str
    corpid: str
    event: str             # change_contact | change_external_contact
    change_type: str
    create_time: int       # epoch seconds (CreateTime)
    fields: dict           # the kept fields, typed

    def day(self, tz: str) -> date:
        return datetime.fromtimestamp(self.create_time, timezone.utc).astimezone(ZoneInfo(tz)).date()


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _strs(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


_LISTS = ("Department", "IsLeaderInDept", "DirectLeader")
_TYPES = {"Department": _ints, "IsLeaderInDept": _ints, "DirectLeader": _strs, "MainDepartment": int,
          "Status": int, "Id": int, "ParentId": int, "Order": int}


def parse_event(xml_text: str) -> OrgEvent:
    """The decrypted callback XML -> an OrgEvent with only the org fields; unknown events are errors."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise CallbackError(f"decrypted callback is not XML: {exc}") from None
    raw = {child.tag: (child.text or "").strip() for child in root}
    event, change = raw.get("Event", ""), raw.get("ChangeType", "")
    if raw.get("MsgType") != "event" or event not in ("change_contact", "change_external_contact"):
        raise CallbackError(f"not an org change event (MsgType {raw.get('MsgType')!r}, Event {event!r})")
    kind = ("user" if change in USER_CHANGES else "party" if change in PARTY_CHANGES else
            "external" if change in EXTERNAL_CHANGES and event == "change_external_contact" else None)
    if kind is None:
        raise CallbackError(f"{event}: ChangeType {change!r} is not handled")
    try:
        create_time = int(raw["CreateTime"])
        # an empty list element is a change (all direct leaders removed); an absent one is not
        fields = {k: _TYPES.get(k, str)(raw[k]) for k in KEEP[kind]
                  if k in raw and (raw[k] != "" or k in _LISTS)}
    except (KeyError, ValueError) as exc:
        raise CallbackError(f"{event}/{change}: malformed field ({type(exc).__name__})") from None
    required = {"user": "UserID", "party": "Id", "external": "ExternalUserID"}[kind]
    if required not in fields:
        raise CallbackError(f"{event}/{change}: no {required}")
    # WeCom retries one event with the same content: the content is its identity (FromUserName +
    # CreateTime alone would merge two members changed in the same second). Only kept fields go into
    # the hash: one over a name or mobile could be reversed by trying candidates.
    identity = [raw.get("ToUserName", ""), event, change, create_time, sorted(fields.items())]
    event_id = hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode()).hexdigest()[:32]
    return OrgEvent(event_id, raw.get("ToUserName", ""), event, change, create_time, fields)


# --- the inbox ---------------------------------------------------------------------------------------

_SCHEMA = """
create table if not exists events (
    seq integer primary key autoincrement,
    event_id text not null unique,
    corpid text not null, event text not null, change_type text not null,
    create_time integer not null, fields text not null, received_at text not null);
create table if not exists dead_letters (
    id integer primary key autoincrement, received_at text not null, reason text not null,
    error text not null, body_sha256 text not null, body_bytes integer not null);
"""


def inbox_path(tenant_id: str) -> Path:
    return settings.home() / "wecom_callbacks" / f"{tenant_id}.sqlite"


class CallbackInbox:
    """One tenant's append-only callback store (thread-safe; other processes may read it meanwhile)."""

    def __init__(self, tenant_id: str, path: Path | None = None):
        self.tenant_id = tenant_id
        self.path = path or inbox_path(tenant_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._con.execute("pragma journal_mode=wal")
        self._con.execute("pragma synchronous=full")  # an acknowledged event survives a power cut
        self._con.executescript(_SCHEMA)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "CallbackInbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def append(self, e: OrgEvent) -> bool:
        """Store the event; False when it was stored before (a retry)."""
        with self._lock:
            cur = self._con.execute(
                "insert or ignore into events (event_id, corpid, event, change_type, create_time, fields, received_at)"
                " values (?, ?, ?, ?, ?, ?, ?)",
                (e.event_id, e.corpid, e.event, e.change_type, e.create_time,
                 json.dumps(e.fields, ensure_ascii=False, sort_keys=True), _now()))
            return cur.rowcount == 1

    def dead_letter(self, reason: str, error: str, body: bytes) -> None:
        with self._lock:
            self._con.execute("insert into dead_letters (received_at, reason, error, body_sha256, body_bytes) "
                              "values (?, ?, ?, ?, ?)", (_now(), reason, error, hashlib.sha256(body).hexdigest(),
                                                         len(body)))

    def dead_letters(self) -> list[dict]:
        with self._lock:
            cur = self._con.execute("select received_at, reason, error, body_sha256, body_bytes from dead_letters "
                                    "order by id")
            return [dict(zip([d[0] for d in cur.description], row)) for row in cur.fetchall()]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _query(tenant_id: str, sql: str, params: tuple = ()) -> list[tuple] | None:
    """Rows from the tenant's inbox over a read-only connection; None when it never received a callback."""
    path = inbox_path(tenant_id)
    if not path.exists():
        return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def read_events(tenant_id: str, after_seq: int = 0) -> list[tuple[int, OrgEvent]]:
    """(seq, event) in arrival order; none when the tenant never received a callback."""
    rows = _query(tenant_id, "select seq, event_id, corpid, event, change_type, create_time, fields from events "
                             "where seq > ? order by seq", (after_seq,)) or []
    return [(r[0], OrgEvent(r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))) for r in rows]


def last_seq(tenant_id: str) -> int:
    """The newest event's sequence number (0: none yet); the sensor's cursor per tenant."""
    rows = _query(tenant_id, "select coalesce(max(seq), 0) from events")
    return rows[0][0] if rows else 0


# --- applying events to an org snapshot ------------------------------------------------------------------

def apply_events(departments: list[dict], members: list[dict], events: Iterable[OrgEvent]
                 ) -> tuple[list[dict], list[dict]]:
    """The firm's departments and members (build_org shapes) after `events`, in the given order. Fields an
    event does not carry keep their value (since 2022 WeCom sends new callback URLs only UserID and
    Department). External-contact events do not change the org chart."""
    deps = {d["id"]: dict(d, department_leader=list(d.get("department_leader") or [])) for d in departments}
    mems = {m["userid"]: dict(m) for m in members}
    for e in events:
        f = e.fields
        if e.change_type in ("create_user", "update_user"):
            userid = f["UserID"]
            m = mems.pop(userid, None) or {"userid": userid, "department": [], "is_leader_in_dept": [],
                                            "direct_leader": [], "main_department": None, "status": 1,
                                            "position": None}
            new = f.get("NewUserID") or userid
            if new != userid:   # a renamed userid: follow it in every reference
                _replace_userid(deps, mems, userid, new)
            m["userid"] = new
            if "Department" in f:
                m["department"] = f["Department"]
                if "IsLeaderInDept" not in f and len(m.get("is_leader_in_dept") or []) != len(f["Department"]):
                    m["is_leader_in_dept"] = [0] * len(f["Department"])
                if "MainDepartment" not in f and m.get("main_department") not in f["Department"]:
                    m["main_department"] = f["Department"][0] if f["Department"] else None
            for key, name in (("is_leader_in_dept", "IsLeaderInDept"), ("direct_leader", "DirectLeader"),
                              ("main_department", "MainDepartment"), ("position", "Position"), ("status", "Status")):
                if name in f:
                    m[key] = f[name]
            mems[new] = m
        elif e.change_type == "delete_user":
            userid = f["UserID"]
            mems.pop(userid, None)
            # as WeCom does: a deleted member leads no department and is nobody's direct leader any more
            for d in deps.values():
                d["department_leader"] = [u for u in d["department_leader"] if u != userid]
            for m in mems.values():
                m["direct_leader"] = [u for u in (m.get("direct_leader") or []) if u != userid]
        elif e.change_type in ("create_party", "update_party"):
            d = deps.setdefault(f["Id"], {"id": f["Id"], "name": None, "parentid": None, "department_leader": []})
            for key, name in (("name", "Name"), ("parentid", "ParentId"), ("order", "Order")):
                if name in f:
                    d[key] = f[name]
        elif e.change_type == "delete_party":
            deps.pop(f["Id"], None)
    return list(deps.values()), list(mems.values())


def _replace_userid(deps: dict, mems: dict, old: str, new: str) -> None:
    for d in deps.values():
        d["department_leader"] = [new if u == old else u for u in d["department_leader"]]
    for m in mems.values():
        m["direct_leader"] = [new if u == old else u for u in (m.get("direct_leader") or [])]


def apply_follow_events(rows: list[dict], events: Iterable[OrgEvent]) -> list[dict]:
    """External contacts' follow rows (external_userid, follow_userid, position, corp_name_key, followed_at)
    after `change_external_contact` events: a new follow is added (followed at CreateTime, position and
    corp copied from the contact's other follows); a deleted one (`del_external_contact` by the member,
    `del_follow_user` by the customer) is removed, as the next pull will not list it either. Edits carry
    no fields (WeCom expects a re-fetch)."""
    out = {(r["external_userid"], r["follow_userid"]): dict(r) for r in rows}
    for e in sorted(events, key=lambda e: e.create_time):
        if e.event != "change_external_contact" or "UserID" not in e.fields:
            continue
        key = (e.fields["ExternalUserID"], e.fields["UserID"])
        if e.change_type in ("add_external_contact", "add_half_external_contact") and key not in out:
            known = next((r for (x, _), r in out.items() if x == key[0]), {})
            out[key] = {"external_userid": key[0], "follow_userid": key[1], "position": known.get("position"),
                        "corp_name_key": known.get("corp_name_key"),
                        "followed_at": datetime.fromtimestamp(e.create_time, timezone.utc)}
        elif e.change_type in ("del_external_contact", "del_follow_user"):
            out.pop(key, None)
    return list(out.values())


def staff_timeline(departments: list[dict], members: list[dict], events: list[OrgEvent], as_of: date, tz: str,
                   corpid: str | None = None) -> list[tuple[date, list[dict], list[dict]]]:
    """[(date, departments, members)]: the org as of `as_of` (the snapshot with the events of that date
    or earlier), then one state per later event date. Events of another corp are ignored."""
    events = sorted((e for e in events if corpid is None or e.corpid == corpid),
                    key=lambda e: e.create_time)
    early = [e for e in events if e.day(tz) <= as_of]
    deps, mems = apply_events(departments, members, early)
    out = [(as_of, deps, mems)]
    later: dict[date, list[OrgEvent]] = {}
    for e in events:
        if e.day(tz) > as_of:
            later.setdefault(e.day(tz), []).append(e)
    for day in sorted(later):
        deps, mems = apply_events(deps, mems, later[day])
        out.append((day, deps, mems))
    return out
