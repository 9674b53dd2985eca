"""The segment rule language: YAML definitions, parsed and validated into a rule tree.

A definition (docs/segments.md) is one file `segments/<tenant_id>/<segment_id>.yaml`:

    id: active_a_class
    version: 2
    kind: dynamic                  # or static: a snapshot kept per version
    description: A-class customers active on the web this month
    rule:
      all:
        - tag: {group: 客户等级, name: A类}
        - event: {domain: web, within_days: 30, min_count: 3}
        - not: {field: enterprise.industry, op: eq, value: 房地产}

Validation collects every problem, each naming the file, the path in the rule and what is wrong
(with a close-match suggestion for misspelt names), so a marketer can fix a file in one pass.
"""
from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml

from fincdp.segments.catalog import EVENT_FILTERS, FIELDS, LINK_SOURCES, MAX_WINDOW_DAYS, OPERATORS, Field

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # part of an asset key: ["segments", id]
KINDS = ("static", "dynamic")
TOP_KEYS = ("id", "version", "kind", "description", "rule")
CONDITION_KEYS = ("all", "any", "not", "field", "event", "call", "tag", "linked")


class SegmentError(ValueError):
    """A definition that cannot be used; `problems` lists each as "path: what is wrong"."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + ("\n" + "\n".join(f"  {p}" for p in problems)
                                          if len(problems) > 1 else problems[0]))


# --- the rule tree -----------------------------------------------------------------------------

@dataclass(frozen=True)
class All:
    children: tuple["Rule", ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple["Rule", ...]


@dataclass(frozen=True)
class Not:
    child: "Rule"


@dataclass(frozen=True)
class FieldCondition:
    field: Field
    op: str
    value: Any = None


@dataclass(frozen=True)
class EventCondition:
    filters: tuple[tuple[str, tuple[str, ...]], ...]   # (dwd_sdk__events column, accepted values)
    within_days: int
    min_count: int = 1


@dataclass(frozen=True)
class CallCondition:
    within_days: int
    min_count: int = 1
    connected: bool | None = None


@dataclass(frozen=True)
class TagCondition:
    name: str | None = None
    group: str | None = None
    tag_id: str | None = None


@dataclass(frozen=True)
class LinkCondition:
    source: str
    min_count: int = 1


Rule = Union[All, AnyOf, Not, FieldCondition, EventCondition, CallCondition, TagCondition, LinkCondition]


@dataclass(frozen=True)
class Segment:
    id: str
    version: int
    kind: str
    description: str
    rule: Rule
    source: str                  # the file it came from (for errors and metadata)
    tenant_id: str | None = None  # from the folder segments/<tenant_id>/

    @property
    def static(self) -> bool:
        return self.kind == "static"


# --- parsing -----------------------------------------------------------------------------------

def _suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_date(v: Any) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return None
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            return None
    return None


class _Parser:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def unknown_keys(self, node: dict, allowed, path: str) -> None:
        for key in node:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"unknown key {key!r}{_suggest(key, allowed)}; "
                                           f"expected one of {', '.join(allowed)}")

    def window(self, node: dict, path: str) -> int | None:
        days = node.get("within_days")
        if days is None:
            self.fail(path, "missing within_days (the window in days up to the business date)")
        elif not _is_int(days) or not 1 <= days <= MAX_WINDOW_DAYS:
            self.fail(f"{path}.within_days", f"bad window {days!r}: expected a whole number of days "
                                             f"from 1 to {MAX_WINDOW_DAYS}")
        else:
            return days
        return None

    def min_count(self, node: dict, path: str) -> int:
        k = node.get("min_count", 1)
        if not _is_int(k) or k < 1:
            self.fail(f"{path}.min_count", f"expected a whole number >= 1, got {k!r}")
            return 1
        return k

    def rule(self, node: Any, path: str) -> Rule | None:
        if not isinstance(node, dict) or not node:
            self.fail(path, f"expected a condition (a mapping with one of {', '.join(CONDITION_KEYS)}), "
                            f"got {type(node).__name__}")
            return None
        kinds = [k for k in node if k in CONDITION_KEYS]
        if not kinds:
            key = next(iter(node))
            self.fail(f"{path}.{key}", f"unknown condition {key!r}{_suggest(key, CONDITION_KEYS)}; "
                                       f"expected one of {', '.join(CONDITION_KEYS)}")
            return None
        if len(kinds) > 1:
            self.fail(path, f"one condition per item, found {', '.join(kinds)}: put them under all/any")
            return None
        kind = kinds[0]
        if kind in ("all", "any"):
            self.unknown_keys(node, (kind,), path)
            items = node[kind]
            if not isinstance(items, list) or not items:
                self.fail(f"{path}.{kind}", "expected a non-empty list of conditions")
                return None
            children = [self.rule(item, f"{path}.{kind}[{i}]") for i, item in enumerate(items)]
            return (All if kind == "all" else AnyOf)(tuple(c for c in children if c is not None))
        if kind == "not":
            self.unknown_keys(node, ("not",), path)
            child = self.rule(node["not"], f"{path}.not")
            return Not(child) if child is not None else None
        if kind == "field":
            return self.field(node, path)
        body, sub = node[kind], f"{path}.{kind}"
        self.unknown_keys(node, (kind,), path)
        if kind == "tag" and isinstance(body, str):
            body = {"name": body}
        if not isinstance(body, dict):
            self.fail(sub, f"expected a mapping, got {type(body).__name__}")
            return None
        return getattr(self, kind)(body, sub)

    def field(self, node: dict, path: str) -> FieldCondition | None:
        self.unknown_keys(node, ("field", "op", "value"), path)
        name = node.get("field")
        field = FIELDS.get(name) if isinstance(name, str) else None
        if field is None:
            self.fail(f"{path}.field", f"unknown field {name!r}{_suggest(name, FIELDS)} "
                                       "(fields: docs/segments.md, fincdp/segments/catalog.py)")
            return None
        op = node.get("op")
        allowed = OPERATORS[field.type]
        if op not in allowed:
            self.fail(f"{path}.op", f"operator {op!r} does not apply to {field.name} ({field.type})"
                                    f"{_suggest(op, allowed)}; expected one of {', '.join(allowed)}")
            return None
        value = node.get("value")
        if op in ("is_null", "not_null"):
            if "value" in node:
                self.fail(f"{path}.value", f"{op} takes no value")
            return FieldCondition(field, op)
        checked = self.value(field, op, value, f"{path}.value")
        return FieldCondition(field, op, checked) if checked is not None else None

    def value(self, field: Field, op: str, value: Any, path: str) -> Any:
        kind = field.type

        def one(v: Any) -> Any:
            if kind == "string" and isinstance(v, str):
                return v
            if kind == "integer" and _is_int(v):
                return v
            if kind == "number" and _is_number(v):
                return v
            if kind == "boolean" and isinstance(v, bool):
                return v
            if kind == "date" and _as_date(v) is not None:
                return _as_date(v)
            return None

        expected = {"string": "a string", "integer": "a whole number", "number": "a number",
                    "boolean": "true or false", "date": "a date YYYY-MM-DD"}[kind]
        if op in ("within_last_days", "not_within_last_days"):
            if not _is_int(value) or not 1 <= value <= MAX_WINDOW_DAYS:
                self.fail(path, f"bad window {value!r} for {op} on {field.name}: expected a whole number "
                                f"of days from 1 to {MAX_WINDOW_DAYS}")
                return None
            return value
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                self.fail(path, f"{op} on {field.name} needs a non-empty list of {expected}s, got {value!r}")
                return None
            items = [one(v) for v in value]
            bad = [v for v, c in zip(value, items) if c is None]
            if bad:
                self.fail(path, f"wrong type for {field.name} ({kind}): {bad[0]!r} is not {expected}")
                return None
            return tuple(items)
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(path, f"between on {field.name} needs [low, high], got {value!r}")
                return None
            lo, hi = one(value[0]), one(value[1])
            if lo is None or hi is None:
                self.fail(path, f"wrong type for {field.name} ({kind}): between needs two values, each {expected}")
                return None
            if lo > hi:
                self.fail(path, f"between on {field.name}: low {value[0]!r} is above high {value[1]!r}")
                return None
            return (lo, hi)
        checked = one(value)
        if checked is None:
            self.fail(path, f"wrong type for {field.name} ({kind}) with {op}: {value!r} is not {expected}")
        return checked

    def event(self, node: dict, path: str) -> EventCondition | None:
        self.unknown_keys(node, (*EVENT_FILTERS, "within_days", "min_count"), path)
        filters = []
        for key, column in EVENT_FILTERS.items():
            if key not in node:
                continue
            v = node[key]
            values = v if isinstance(v, list) else [v]
            if not values or not all(isinstance(x, str) and x for x in values):
                self.fail(f"{path}.{key}", f"expected a non-empty string or list of strings, got {v!r}")
                continue
            if key == "type":
                for x in values:
                    if len(x.split(".")) != 3:
                        self.fail(f"{path}.type", f"event type {x!r} is not <domain>.<action>.<object>")
            filters.append((column, tuple(values)))
        days, k = self.window(node, path), self.min_count(node, path)
        return EventCondition(tuple(filters), days, k) if days is not None else None

    def call(self, node: dict, path: str) -> CallCondition | None:
        self.unknown_keys(node, ("within_days", "min_count", "connected"), path)
        connected = node.get("connected")
        if connected is not None and not isinstance(connected, bool):
            self.fail(f"{path}.connected", f"expected true or false, got {connected!r}")
        days, k = self.window(node, path), self.min_count(node, path)
        return CallCondition(days, k, connected) if days is not None else None

    def tag(self, node: dict, path: str) -> TagCondition | None:
        self.unknown_keys(node, ("name", "group", "id"), path)
        for key in ("name", "group", "id"):
            if key in node and not (isinstance(node[key], str) and node[key]):
                self.fail(f"{path}.{key}", f"expected a non-empty string, got {node[key]!r}")
                return None
        if "name" not in node and "id" not in node:
            self.fail(path, "a tag needs its name (optionally with its group) or its id")
            return None
        return TagCondition(node.get("name"), node.get("group"), node.get("id"))

    def linked(self, node: dict, path: str) -> LinkCondition | None:
        self.unknown_keys(node, ("source", "min_count"), path)
        source = node.get("source")
        if source not in LINK_SOURCES:
            self.fail(f"{path}.source", f"unknown OneID record source {source!r}{_suggest(source, LINK_SOURCES)}; "
                                        f"expected one of {', '.join(LINK_SOURCES)}")
            return None
        return LinkCondition(source, self.min_count(node, path))


def parse_segment(document: Any, source: str, *, expected_id: str | None = None,
                  tenant_id: str | None = None) -> Segment:
    """Validate one parsed YAML document; raises SegmentError listing every problem."""
    p = _Parser()
    if not isinstance(document, dict):
        raise SegmentError(source, [f"expected a mapping with {', '.join(TOP_KEYS)}, got {type(document).__name__}"])
    for key in document:
        if key not in TOP_KEYS:
            p.fail(str(key), f"unknown key {key!r}{_suggest(key, TOP_KEYS)}; expected {', '.join(TOP_KEYS)}")
    for key in TOP_KEYS:
        if key not in document:
            p.fail(key, "missing")
    seg_id, version, kind, description = (document.get(k) for k in ("id", "version", "kind", "description"))
    if "id" in document and not (isinstance(seg_id, str) and ID_PATTERN.match(seg_id)):
        p.fail("id", f"{seg_id!r} is not a segment id: lower-case letters, digits and _, starting with a letter")
    elif expected_id is not None and seg_id != expected_id:
        p.fail("id", f"{seg_id!r} differs from the file name {expected_id!r}: name the file <id>.yaml")
    if "version" in document and not (_is_int(version) and version >= 1):
        p.fail("version", f"expected a whole number >= 1, got {version!r}")
    if "kind" in document and kind not in KINDS:
        p.fail("kind", f"unknown kind {kind!r}{_suggest(kind, KINDS)}; expected static or dynamic")
    if "description" in document and not (isinstance(description, str) and description.strip()):
        p.fail("description", "expected a non-empty text")
    rule = p.rule(document["rule"], "rule") if "rule" in document else None
    if p.problems:
        raise SegmentError(source, p.problems)
    return Segment(seg_id, version, kind, description.strip(), rule, source, tenant_id)


def load_segment(path: Path, *, tenant_id: str | None = None) -> Segment:
    """Read and validate one definition file; its id must be its file name."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SegmentError(str(path), ["file not found"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SegmentError(str(path), [f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})"]) from None
    return parse_segment(document, str(path), expected_id=path.stem, tenant_id=tenant_id)


def segments_root() -> Path:
    """Where definitions live: FINCDP_SEGMENTS_DIR, else the repository's segments/ folder."""
    from fincdp.settings import REPO_ROOT

    return Path(os.environ.get("FINCDP_SEGMENTS_DIR") or REPO_ROOT / "segments")


def load_tenant_segments(tenant_id: str, root: Path | None = None) -> list[Segment]:
    """Every definition of a tenant (segments/<tenant_id>/*.yaml), by id; raises SegmentError
    naming every bad file."""
    folder = (root or segments_root()) / tenant_id
    segments, errors = [], []
    for path in sorted(folder.glob("*.yaml")):
        try:
            segments.append(load_segment(path, tenant_id=tenant_id))
        except SegmentError as exc:
            errors.append(str(exc))
    if errors:
        raise SegmentError(f"tenant {tenant_id!r} segments", errors)
    return segments
