"""Turn received source records into ODS rows and dead letters.

Pure functions over one batch: validate, type, protect personal data, dedupe. Writing happens in
store.py. Shared by the batch assets and (later) a long-lived stream consumer.
"""
from __future__ import annotations

import functools
import gc
import ipaddress
import json
import math
import operator
import os
import re
import tempfile
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa

from fincdp.pii import (InvalidValue, TenantCipher, c3_fields, is_c3_name, is_mobile_number,
                        normalize_credit_code, normalize_email, normalize_id_number, normalize_phone)
from assets.ingestion.specs import PAYLOAD_PII, CheckContext, EntitySpec, Field

DECIMAL = pa.decimal128(38, 6)
_TS = pa.timestamp("us", tz="UTC")
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(), "int": pa.int64(), "float": pa.float64(), "decimal": DECIMAL,
    "bool": pa.bool_(), "timestamp": _TS, "epoch": _TS, "date": pa.date32(), "json": pa.string(),
    "string_list": pa.list_(pa.string()), "int_list": pa.list_(pa.int64()),
}
_PAYLOAD_KINDS = sorted(set(PAYLOAD_PII.values()))
C3_REMOVED = "[C3 value removed at ingestion]"


@dataclass(frozen=True)
class LandingContext:
    tenant_id: str
    org_ids: frozenset[str]
    timezone: str
    cipher: TenantCipher
    business_date: date
    batch_id: str
    ingested_at: datetime

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass
class DeadLetter:
    record_ref: str           # source id, or file:line, so an operator can find the record
    field: str | None
    error_type: str           # c3_rejected, missing_field, invalid_type, invalid_value, schema, ...
    reason: str               # never contains the rejected value
    payload: Any              # the record as received (C3 values removed); stored encrypted


@dataclass
class Processed:
    rows: pa.Table            # every row that landed, superseded versions of a repeated id included
    dead: list[DeadLetter]
    received: int
    duplicates: int           # repeats of an id within the batch, merged into one row
    # Which rows are the batch (None: all): the writer lets the database skip the others as it
    # inserts, rather than copying the batch without them (~1.3 KB a landed event).
    keep: pa.Array | None = None

    @property
    def landed(self) -> int:
        return self.received - len(self.dead)

    @property
    def table(self) -> pa.Table:
        """The batch: one row per id, its newest version."""
        return self.rows if self.keep is None else self.rows.filter(self.keep)


# --- typing -------------------------------------------------------------------------------------

def _to_string(v: Any, ctx: LandingContext) -> str:
    if isinstance(v, (dict, list)):
        raise InvalidValue("expected text, got a JSON object or list")
    return v if isinstance(v, str) else str(v)


def _to_int(v: Any, ctx: LandingContext) -> int:
    if isinstance(v, bool):
        raise InvalidValue("expected an integer, got a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    raise InvalidValue("expected an integer")


def _to_float(v: Any, ctx: LandingContext) -> float:
    if isinstance(v, bool):
        raise InvalidValue("expected a number, got a boolean")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InvalidValue("expected a number") from None


def _to_decimal(v: Any, ctx: LandingContext) -> Decimal:
    if isinstance(v, bool):
        raise InvalidValue("expected a decimal, got a boolean")
    try:
        value = Decimal(str(v).strip())
    except InvalidOperation:
        raise InvalidValue("expected a decimal number") from None
    if not value.is_finite() or value != value.quantize(Decimal("0.000001")) or abs(value) >= 10**32:
        raise InvalidValue("decimal out of range (32 integer digits, 6 decimals)")
    return value


def _to_bool(v: Any, ctx: LandingContext) -> bool:
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in ("true", "1", "yes", "y", "t"):
        return True
    if text in ("false", "0", "no", "n", "f"):
        return False
    raise InvalidValue("expected true or false")


def _to_timestamp(v: Any, ctx: LandingContext) -> datetime:
    if isinstance(v, datetime):
        moment = v
    else:
        try:
            moment = datetime.fromisoformat(str(v).strip())
        except ValueError:
            raise InvalidValue("expected an ISO 8601 timestamp") from None
    if moment.tzinfo is None:  # a local time without offset means the tenant's zone
        moment = moment.replace(tzinfo=ctx.zone)
    return moment.astimezone(timezone.utc)


def _to_epoch(v: Any, ctx: LandingContext) -> datetime:
    seconds = _to_int(v, ctx)
    if not 0 <= seconds < 2**33:
        raise InvalidValue("epoch seconds out of range")
    return datetime.fromtimestamp(seconds, timezone.utc)


def _to_date(v: Any, ctx: LandingContext) -> date:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    try:
        return date.fromisoformat(str(v).strip())
    except ValueError:
        raise InvalidValue("expected a date YYYY-MM-DD") from None


def _to_json(v: Any, ctx: LandingContext) -> str:
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            raise InvalidValue("expected JSON") from None
    return canonical_json(v).decode()


def _to_string_list(v: Any, ctx: LandingContext) -> list[str]:
    if not isinstance(v, list) or any(isinstance(x, (dict, list)) for x in v):
        raise InvalidValue("expected a list of strings")
    return [str(x) for x in v if x is not None]


def _to_int_list(v: Any, ctx: LandingContext) -> list[int]:
    if not isinstance(v, list):
        raise InvalidValue("expected a list of integers")
    return [_to_int(x, ctx) for x in v]


def converted_or_error(convert: Callable[[Any, LandingContext], Any], value: Any, ctx: LandingContext) -> Any:
    """convert(value, ctx), or the InvalidValue it raised (a batch keeps either per distinct text)."""
    try:
        return convert(value, ctx)
    except InvalidValue as exc:
        return exc


_CONVERTERS: dict[str, Callable[[Any, LandingContext], Any]] = {
    "string": _to_string, "int": _to_int, "float": _to_float, "decimal": _to_decimal,
    "bool": _to_bool, "timestamp": _to_timestamp, "epoch": _to_epoch, "date": _to_date,
    "json": _to_json, "string_list": _to_string_list, "int_list": _to_int_list,
}


# --- personal data ------------------------------------------------------------------------------

_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _normalize_pii(kind: str, value: Any) -> tuple[str, str | None]:
    """(normalised, warning) or InvalidValue."""
    if kind == "phone":
        return normalize_phone(value), None
    if kind == "email":
        return normalize_email(value), None
    if kind == "id_number":
        return normalize_id_number(value)
    if kind == "ip":
        text = str(value).strip()
        if _IPV4.fullmatch(text):  # already the canonical dotted quad ipaddress would write
            return text, None
        try:
            return str(ipaddress.ip_address(text)), None
        except ValueError:
            raise InvalidValue("not an IP address") from None
    raise KeyError(kind)


# --- schema -------------------------------------------------------------------------------------

META_FIELDS = [
    pa.field("_tenant_id", pa.string()), pa.field("_source", pa.string()),
    pa.field("_source_id", pa.string()), pa.field("_business_date", pa.date32()),
    pa.field("_batch_id", pa.string()), pa.field("_ingested_at", _TS),
    pa.field("_record_hash", pa.string()), pa.field("_raw", pa.string()),
    pa.field("_dq_flags", pa.list_(pa.string())),
]


def _field_columns(f: Field) -> list[pa.Field]:
    if f.pii == "phone_list":
        return [pa.field(f"{f.name}_tokens", pa.list_(pa.string())), pa.field(f"{f.name}_enc", pa.binary())]
    if f.pii == "phone":
        return [pa.field(f"{f.name}_token", pa.string()), pa.field(f"{f.name}_enc", pa.binary()),
                pa.field(f"{f.name}_is_mobile", pa.bool_())]
    if f.pii:
        return [pa.field(f"{f.name}_token", pa.string()), pa.field(f"{f.name}_enc", pa.binary())]
    columns = [pa.field(f.name, _ARROW_TYPES[f.type])]
    if f.credit_code:
        columns.append(pa.field(f"{f.name}_check_ok", pa.bool_()))
    return columns


@functools.lru_cache(maxsize=None)
def ods_schema(spec: EntitySpec) -> pa.Schema:
    fields = [c for f in spec.fields for c in _field_columns(f)]
    for name in spec.scan_json_pii:
        for kind in _PAYLOAD_KINDS:
            fields += [pa.field(f"{name}_{kind}_token", pa.string()), pa.field(f"{name}_{kind}_enc", pa.binary())]
        fields.append(pa.field(f"{name}_phone_is_mobile", pa.bool_()))
    return pa.schema(fields + META_FIELDS)


# --- one batch, column by column ------------------------------------------------------------------
# Work goes field by field (tight loops, no per-row dispatch) over blocks of rows small enough to stay
# in CPU caches; a row's first error in field order decides its dead letter, as a row-by-row reading
# would. Deduplication then runs over the whole batch. Conversions and personal-data normalisation are
# pure functions of the value, so each distinct value is worked out once per batch (events repeat
# timestamps, IPs and payload phone numbers); ciphertexts are never shared: each value gets its nonce.

BLOCK_ROWS = 1024
_MISSING = object()
_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME  # date and time values: str(), as json


def canonical_json(value: Any, *, finite: bool = False) -> bytes:
    """The UTF-8 JSON text ODS keeps for a value (`_raw`, JSON fields): keys sorted, no white space,
    text unescaped; values JSON has no type for as their str(). orjson writes it; what orjson cannot
    write (integers beyond 64 bits, text with lone surrogates) or would write as null (NaN and
    Infinity, kept as json writes them) goes to json, to the same text. finite: value is known to
    hold neither NaN nor Infinity."""
    if finite or _finite(value):
        try:
            return orjson.dumps(value, default=str, option=_ORJSON)
        except orjson.JSONEncodeError:
            pass
    return utf8_json(value, sort_keys=True, separators=(",", ":"))


def utf8_json(value: Any, **options: Any) -> bytes:
    """json.dumps(value, ensure_ascii=False, default=str, **options) as UTF-8; text with a lone
    surrogate (json.loads reads "\ud800" escapes) has it escaped, as JSON allows, for no UTF-8 holds it."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str, **options).encode()
    except UnicodeEncodeError:
        return json.dumps(value, default=str, **options).encode()


def _finite(value: Any) -> bool:
    """No NaN or Infinity in value, at any depth."""
    cls = value.__class__
    if cls is dict:
        values = value.values()
    elif cls is list or cls is tuple:
        values = value
    else:
        return cls is not float or math.isfinite(value)
    for item in values:
        kind = item.__class__
        if kind is str or item is None or kind is int or kind is bool:
            continue
        if not _finite(item):
            return False
    return True


def _lone_surrogate(value: Any) -> tuple[str, str] | None:
    """(field, the surrogate) of the first text in value (a record), at any depth, that holds a lone
    surrogate."""
    if value.__class__ is dict:
        items = value.items()
    elif value.__class__ is list or value.__class__ is tuple:
        items = ((f"[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    for key, item in items:
        kind = item.__class__
        if kind is str:
            if item.isascii():
                continue
            try:
                item.encode()
                continue
            except UnicodeEncodeError as exc:
                found = "", item[exc.start]
        elif kind is dict or kind is list or kind is tuple:
            found = _lone_surrogate(item)
            if found is None:
                continue
        else:
            continue
        name = key if isinstance(key, str) else str(key)
        if found[0]:
            name = name + found[0] if found[0][:1] == "[" else f"{name}.{found[0]}"
        return name, found[1]
    return None


def _json_objects(objects: list[dict], stand_ins: dict[str, list] | None = None, *, finite: bool = False
                  ) -> list[bytes]:
    """canonical_json(o) for each object, with stand_ins[key][j], where set, in place of objects[j][key]."""
    if not stand_ins:
        return [canonical_json(o, finite=finite) for o in objects]
    columns = list(stand_ins.items())
    texts = []
    for j, obj in enumerate(objects):
        replaced = None
        for key, column in columns:
            stand_in = column[j]
            if stand_in is not None:
                if replaced is None:
                    replaced = dict(obj)
                replaced[key] = stand_in
        texts.append(canonical_json(obj if replaced is None else replaced, finite=finite))
    return texts


class _Memo:
    """What is worked out once per batch: C3 verdicts by field names, conversions by value."""

    def __init__(self) -> None:
        self.c3_by_keys: dict[tuple, bool] = {}   # field names -> does any name a C3 field
        self.nested_c3: dict[tuple, bool] = {}    # names inside a nested object -> does any
        self.untitled: dict[tuple, bool] = {}     # field names -> is any not text (CSV cells past the header)
        self.typed: dict[str, dict] = {}          # field -> text -> converted value or its InvalidValue
        self.pii: dict[str, dict] = {}            # kind -> text -> _protect_text(...)

    def protected(self, ctx: LandingContext, kind: str, text: str) -> tuple[str | None, str, str, str | None]:
        memo = self.pii.get(kind)
        if memo is None:
            memo = self.pii[kind] = {}
        found = memo.get(text)
        if found is None:
            found = memo[text] = _protect_text(ctx, kind, text)
        return found


class _Block:
    """Some consecutive records of a batch, worked on column by column."""

    def __init__(self, records: list[Any], memo: _Memo):
        self.records = records
        self.memo = memo
        self.errors: list[tuple[str, str, str] | None] = [None] * len(records)
        self.flags: list[list[str] | None] = [None] * len(records)
        self.redacted: dict[str, list] = {}  # field -> per row, its stand-in in `_raw` (None: as received)
        self.columns: dict[str, list] = {}

    def reject(self, i: int, field: str, error_type: str, reason: str) -> None:
        if self.errors[i] is None:
            self.errors[i] = (field, error_type, reason)

    def flag(self, i: int, message: str) -> None:
        if self.flags[i] is None:
            self.flags[i] = []
        self.flags[i].append(message)

    def redactions(self, name: str) -> list:
        column = self.redacted.get(name)
        if column is None:
            column = self.redacted[name] = [None] * len(self.records)
        return column


def _protect_text(ctx: LandingContext, kind: str, text: str) -> tuple[str | None, str, str, str | None]:
    """(token or None, what to encrypt, redacted stand-in for the raw record, flag message or None)."""
    try:
        normalized, warning = _normalize_pii(kind, text)
    except InvalidValue as exc:
        # Keep the value (encrypted) but never match on it; the flag tells quality checks.
        return None, text, "inv:" + ctx.cipher.token(f"{kind}_raw", text)[:32], str(exc)
    token = ctx.cipher.token(kind, normalized)
    return token, normalized, "tok:" + token, warning


def _shape(spec: EntitySpec, records: list[Any], block: _Block, strict: bool) -> list[dict]:
    rows: list[dict] = []
    c3_by_keys, nested_c3 = block.memo.c3_by_keys, block.memo.nested_c3
    for i, record in enumerate(records):
        if spec.flatten is not None:
            try:
                record = spec.flatten(record)
            except (ValueError, AttributeError, TypeError) as exc:
                block.reject(i, "", "schema", f"record does not have the expected shape: {exc}")
                rows.append({})
                continue
        if not isinstance(record, dict):
            block.reject(i, "", "schema", "record is not a JSON object")
            rows.append({})
            continue
        keys = tuple(record)
        suspect = c3_by_keys.get(keys)
        if suspect is None:
            suspect = c3_by_keys[keys] = any(is_c3_name(str(key)) for key in keys)
        if not suspect and dict in map(type, record.values()):  # c3_fields also looks one level down
            for value in record.values():
                if value.__class__ is dict:
                    inner = tuple(value)
                    found = nested_c3.get(inner)
                    if found is None:
                        found = nested_c3[inner] = any("." not in str(k) and is_c3_name(str(k)) for k in inner)
                    if found:
                        suspect = True
                        break
        if suspect:
            c3 = c3_fields(record)
            block.reject(i, c3[0], "c3_rejected",
                         f"field {c3[0]!r} holds C3 authentication data (JR/T 0171), which is never ingested")
        untitled = block.memo.untitled.get(keys)
        if untitled is None:
            untitled = block.memo.untitled[keys] = not all(key.__class__ is str for key in keys)
        if untitled:  # csv.DictReader keeps cells past the header under None: no field to land them in
            block.reject(i, "", "schema", "record has values without a field name (a CSV row with more "
                                          "cells than its header)")
        elif not strict:  # json reads "\ud800" escapes into text that no column or cipher can take
            found = _lone_surrogate(record)
            if found is not None:
                block.reject(i, found[0], "invalid_value", f"field {found[0]!r}: text holds a lone surrogate "
                                                           f"(U+{ord(found[1]):04X}), which is not a Unicode character")
        rows.append(record)
    return rows


def _protect_column(ctx: LandingContext, f: Field, values: list, block: _Block) -> None:
    errors, protected = block.errors, block.memo.protected
    tokens: list = [None] * len(values)
    ciphertexts: list = [None] * len(values)
    stand_ins = block.redactions(f.name)
    rows, plaintexts = [], []
    for i, value in enumerate(values):
        if value is None or value == "" or errors[i] is not None:
            continue
        if f.pii == "phone_list":
            if not isinstance(value, list):
                block.reject(i, f.name, "invalid_type", f"field {f.name!r}: expected a list of phone numbers")
                continue
            found = []
            for j, item in enumerate(value):
                token, _, _, message = protected(ctx, "phone", item if isinstance(item, str) else str(item))
                if message:
                    block.flag(i, f"{f.name}[{j}]: {message}")
                if token:
                    found.append(token)
            tokens[i] = found
            rows.append(i)
            plaintexts.append(json.dumps(value, ensure_ascii=False))
            stand_ins[i] = [f"tok:{t}" for t in found]
            continue
        token, plaintext, stand_ins[i], message = protected(ctx, f.pii, value if isinstance(value, str) else str(value))
        if message:
            block.flag(i, f"{f.name}: {message}")
        tokens[i] = token
        rows.append(i)
        plaintexts.append(plaintext)
    for i, blob in zip(rows, ctx.cipher.encrypt_many(f.name, plaintexts)):
        ciphertexts[i] = blob
    suffix = "_tokens" if f.pii == "phone_list" else "_token"
    block.columns[f.name + suffix] = tokens
    block.columns[f.name + "_enc"] = ciphertexts
    if f.pii == "phone":  # a token's plaintext is the normalised number (an invalid one has no token)
        block.columns[f.name + "_is_mobile"] = _mobile_flags(tokens, rows, plaintexts)


def _mobile_flags(tokens: list, rows: list[int], plaintexts: list[str]) -> list:
    flags: list = [None] * len(tokens)
    for i, plaintext in zip(rows, plaintexts):
        if tokens[i] is not None:
            flags[i] = is_mobile_number(plaintext)
    return flags


_TEXT_OR_NULL = frozenset({str, type(None)})


def _typed_column(ctx: LandingContext, f: Field, values: list, block: _Block, *, redacted_later: bool = False
                  ) -> None:
    """Type one field. redacted_later: a JSON object here is written by _json_pii_column, so it is
    left as it is rather than serialised twice."""
    if f.type == "string" and f.enum is None and not f.credit_code and _TEXT_OR_NULL.issuperset(map(type, values)):
        # text as it is, empty text null, without a branch per value (rows already rejected do not land)
        block.columns[f.name] = [value or None for value in values] if "" in values else list(values)
        return
    convert = _CONVERTERS[f.type]
    errors = block.errors
    out: list = [None] * len(values)
    check_ok: list = [None] * len(values) if f.credit_code else []
    plain_text = f.type == "string"
    keep_objects = redacted_later and f.type == "json" and f.enum is None and not f.credit_code
    memo = block.memo.typed.get(f.name)
    if memo is None:
        memo = block.memo.typed[f.name] = {}
    for i, value in enumerate(values):
        if value is None or value == "" or errors[i] is not None:
            continue
        cls = value.__class__
        if cls is str:
            if plain_text:
                converted = value
            else:
                converted = memo.get(value, _MISSING)
                if converted is _MISSING:
                    converted = memo[value] = converted_or_error(convert, value, ctx)
                if isinstance(converted, InvalidValue):
                    block.reject(i, f.name, "invalid_type", f"field {f.name!r}: {converted}")
                    continue
        elif keep_objects and cls is dict:
            converted = value
        else:
            converted = converted_or_error(convert, value, ctx)
            if isinstance(converted, InvalidValue):
                block.reject(i, f.name, "invalid_type", f"field {f.name!r}: {converted}")
                continue
        if f.enum is not None and converted not in f.enum:
            block.reject(i, f.name, "invalid_enum",
                         f"field {f.name!r}: {converted!r} is not one of {', '.join(map(str, f.enum))}")
            continue
        if f.credit_code:
            try:
                converted, check_ok[i] = normalize_credit_code(converted)
            except InvalidValue as exc:
                block.reject(i, f.name, "invalid_value", f"field {f.name!r}: {exc}")
                continue
            if not check_ok[i]:
                block.flag(i, f"{f.name}: check character does not match (GB 32100)")
        out[i] = converted
    block.columns[f.name] = out
    if f.credit_code:
        block.columns[f"{f.name}_check_ok"] = check_ok


def _json_pii_column(ctx: LandingContext, name: str, rows: list[dict], block: _Block, strict: bool) -> None:
    """Tokenise personal data inside a JSON field (event payloads) and keep it redacted."""
    columns = {f"{name}_{kind}_{part}": [None] * len(rows) for kind in _PAYLOAD_KINDS for part in ("token", "enc")}
    columns[f"{name}_phone_is_mobile"] = [None] * len(rows)
    errors, protected = block.errors, block.memo.protected
    landing, cleaned = [], []
    for i, record in enumerate(rows):
        if errors[i] is not None:
            continue
        payload = record.get(name)
        if not isinstance(payload, dict):
            continue
        clean = payload
        if not payload.keys().isdisjoint(PAYLOAD_PII):
            clean = dict(payload)
            for key, kind in PAYLOAD_PII.items():
                value = payload.get(key)
                if value in (None, ""):
                    continue
                token, plaintext, clean[key], message = protected(
                    ctx, kind, value if isinstance(value, str) else str(value))
                if message:
                    block.flag(i, f"{name}.{key}: {message}")
                if columns[f"{name}_{kind}_token"][i] is None:
                    columns[f"{name}_{kind}_token"][i] = token
                    columns[f"{name}_{kind}_enc"][i] = ctx.cipher.encrypt(f"{name}.{key}", plaintext)
                    if kind == "phone" and token is not None:
                        columns[f"{name}_phone_is_mobile"][i] = is_mobile_number(plaintext)
        landing.append(i)
        cleaned.append(clean)
    redacted_json, stand_ins = block.columns[name], block.redactions(name)
    for i, clean, text in zip(landing, cleaned, _json_objects(cleaned, finite=strict)):
        redacted_json[i] = text
        stand_ins[i] = clean
    block.columns.update(columns)


def strip_c3(record: Any) -> Any:
    """The record with C3 values replaced, for keeping in the dead-letter table."""
    if not isinstance(record, dict):
        return record
    names = set(c3_fields(record))
    clean = {}
    for key, value in record.items():
        if key in names:
            clean[key] = C3_REMOVED
        elif isinstance(value, dict):
            clean[key] = {k: (C3_REMOVED if f"{key}.{k}" in names else v) for k, v in value.items()}
        else:
            clean[key] = value
    return clean


def _source_ids(spec: EntitySpec, rows: list[dict]) -> list[str]:
    """Each row's source id: its id fields joined with ':'."""
    if len(spec.id_fields) == 1:
        [name] = spec.id_fields
        return [value if (value := row.get(name)).__class__ is str else str(value) for row in rows]
    return [":".join([str(row.get(k)) for k in spec.id_fields]) for row in rows]


_CONSTANT_COLUMNS = ("_tenant_id", "_source", "_business_date", "_batch_id", "_ingested_at")


@functools.lru_cache(maxsize=None)
def _block_schema(spec: EntitySpec) -> pa.Schema:
    """The ODS columns that vary by row (the rest are the batch's constants)."""
    return pa.schema([f for f in ods_schema(spec) if f.name not in _CONSTANT_COLUMNS])


def _land_block(spec: EntitySpec, records: list[Any], ctx: LandingContext, memo: _Memo, strict: bool
                ) -> tuple[list, pa.RecordBatch, list[str]]:
    """(errors per record, the rows that land, their source ids). strict: the records are known to hold
    no NaN, Infinity or lone surrogate (as CSV text and JSON that orjson parsed cannot)."""
    block = _Block(records, memo)
    rows = _shape(spec, records, block, strict)
    errors = block.errors
    names = [f.name for f in spec.fields]
    try:  # every row has every field (files with a header, complete API records): one pass
        by_field = dict(zip(names, zip(*map(operator.itemgetter(*names), rows)))) if len(names) > 1 else None
    except KeyError:
        by_field = None
    for f in spec.fields:
        values = by_field[f.name] if by_field else [row.get(f.name) for row in rows]
        if f.required and (None in values or "" in values):  # `in` runs in C; the loop finds which
            for i, value in enumerate(values):
                if value is None or value == "":
                    block.reject(i, f.name, "missing_field", f"required field {f.name!r} is missing or empty")
        if f.pii:
            _protect_column(ctx, f, values, block)
        else:
            _typed_column(ctx, f, values, block, redacted_later=f.name in spec.scan_json_pii)
    if spec.checks:
        check_ctx = CheckContext(ctx.tenant_id, ctx.org_ids)
        for i, row in enumerate(rows):
            if errors[i] is None:
                for check in spec.checks:
                    for name, error_type, reason in check(row, check_ctx)[:1]:
                        block.reject(i, name, error_type, f"field {name!r}: {reason}")
    for name in spec.scan_json_pii:
        _json_pii_column(ctx, name, rows, block, strict)

    ok = [i for i, error in enumerate(errors) if error is None]
    if len(ok) == len(rows):
        landing, stand_ins, pick = rows, block.redacted, None
    else:
        landing = [rows[i] for i in ok]
        stand_ins = {name: [column[i] for i in ok] for name, column in block.redacted.items()}
        pick = ok
    raws = _json_objects(landing, stand_ins, finite=strict)  # hashed and stored as they are
    source_ids = _source_ids(spec, landing)
    meta = {"_source_id": source_ids, "_record_hash": ctx.cipher.record_hashes(raws), "_raw": raws,
            "_dq_flags": [flags or [] for flags in block.flags] if pick is None else
            [block.flags[i] or [] for i in ok]}
    schema = _block_schema(spec)
    arrays = []
    if pick is None:
        select = None
    elif len(ok) > 1:
        select = operator.itemgetter(*ok)  # the landing rows of a column, in one call
    else:
        select = lambda column: [column[i] for i in ok]  # noqa: E731
    for f in schema:
        column = meta.get(f.name)
        if column is None:
            column = block.columns[f.name] if select is None else select(block.columns[f.name])
        arrays.append(pa.array(column, f.type))
    return errors, pa.RecordBatch.from_arrays(arrays, schema=schema), source_ids


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Landing allocates many short-lived containers while the batch's records (young objects) are
    alive, so the cyclic collector would walk the batch again and again; landing makes no cycles."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def process(spec: EntitySpec, records: list[Any], refs: list[str], ctx: LandingContext) -> Processed:
    """Land one batch: every record becomes a row or a dead letter (received = landed + dead)."""
    with _gc_paused():
        return _process(spec, records, refs, ctx)


def _process(spec: EntitySpec, records: list[Any], refs: list[str], ctx: LandingContext) -> Processed:
    return merge(spec, [_land(spec, records, refs, ctx)], ctx)


@dataclass
class Landed:
    """Consecutive records of a batch landed, before deduplication: `merge` makes the batch of one or
    more of these (a file chunk's parts land in different processes and merge where they are written)."""
    table: pa.Table | None    # one row per record that landed, in input order (_block_schema)
    source_ids: list[str]
    dead: list[DeadLetter]
    received: int             # records landed here, as rows or dead letters
    rejected: list[DeadLetter] = field(default_factory=list)  # records that never reached landing
    spooled: str | None = None  # instead of `table`: an Arrow file holding it (see spool)

    def spool(self, directory: str) -> None:
        """Move the table into an Arrow file in `directory` (shared memory, as a rule) for another
        process to map: a pickled table (~1.3 KB a landed event) is copied four times on its way
        through a pipe, and receiving it was about a quarter of the writing process's CPU
        (docs/ingest-throughput.md)."""
        path = None
        try:
            fd, path = tempfile.mkstemp(suffix=".arrow", dir=directory)
            with os.fdopen(fd, "wb") as handle, pa.ipc.new_file(handle, self.table.schema) as writer:
                writer.write_table(self.table)
        except OSError:  # e.g. a container's small /dev/shm is full: the table goes through the pipe
            if path is not None:
                with suppress(OSError):
                    os.unlink(path)
            return
        self.table, self.spooled = None, path

    def loaded(self) -> pa.Table:
        """The table, mapped from its file (which is removed at once: the mapping keeps its pages)."""
        if self.table is None:
            with pa.memory_map(self.spooled) as source:
                self.table = pa.ipc.open_file(source).read_all()
            os.unlink(self.spooled)
            self.spooled = None
        return self.table


def _land(spec: EntitySpec, records: list[Any], refs: list[str], ctx: LandingContext, *, strict: bool = False
          ) -> Landed:
    memo = _Memo()
    dead: list[DeadLetter] = []
    blocks: list[pa.RecordBatch] = []
    source_ids: list[str] = []
    for start in range(0, len(records), BLOCK_ROWS):
        part = records[start:start + BLOCK_ROWS]
        errors, rows, ids = _land_block(spec, part, ctx, memo, strict)
        dead += [DeadLetter(refs[start + i], error[0] or None, error[1], error[2], strip_c3(part[i]))
                 for i, error in enumerate(errors) if error is not None]
        blocks.append(rows)
        source_ids += ids
    return Landed(pa.Table.from_batches(blocks, schema=_block_schema(spec)), source_ids, dead, len(records))


def merge(spec: EntitySpec, parts: list[Landed], ctx: LandingContext) -> Processed:
    """One batch from its landed parts, in order: repeated ids merged (the newest version wins, ties go
    to the later), the batch's constant columns added. Dead letters keep input order, records rejected
    before landing last."""
    if len(parts) == 1:
        [only] = parts
        source_ids, table = only.source_ids, only.loaded()
    else:
        source_ids = [i for part in parts for i in part.source_ids]
        table = pa.concat_tables([part.loaded() for part in parts])
    chosen: dict[str, int] = {}  # source id -> row
    duplicates = 0
    order = None  # the rows' updated_field values, read once a repeat needs them
    for i, source_id in enumerate(source_ids):
        previous = chosen.get(source_id)
        if previous is not None:
            duplicates += 1
            if spec.updated_field:
                if order is None:
                    order = _comparable_values(table.column(spec.updated_field))
                if order[previous] is not None and order[i] is not None and order[previous] > order[i]:
                    continue
        chosen[source_id] = i
    keep = None
    if duplicates:  # the chosen rows, in order
        mask = [False] * len(source_ids)
        for i in chosen.values():
            mask[i] = True
        keep = pa.array(mask, pa.bool_())
    constants = {"_tenant_id": ctx.tenant_id, "_source": spec.source, "_business_date": ctx.business_date,
                 "_batch_id": ctx.batch_id, "_ingested_at": ctx.ingested_at}
    schema = ods_schema(spec)
    columns = [pa.repeat(pa.scalar(constants[f.name], f.type), table.num_rows) if f.name in constants
               else table.column(f.name) for f in schema]
    dead = [d for part in parts for d in part.dead] + [d for part in parts for d in part.rejected]
    received = sum(part.received + len(part.rejected) for part in parts)
    return Processed(pa.Table.from_arrays(columns, schema=schema), dead, received, duplicates, keep)


def _comparable_values(column: pa.ChunkedArray) -> list:
    """A column's values as Python values that compare as they do (timestamps as their microseconds:
    datetimes with a zone cost microseconds each to make)."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    return column.to_pylist()


def with_rejections(processed: Processed, rejected: list[DeadLetter]) -> Processed:
    """Add records rejected before landing (lines that are not JSON, unreadable files)."""
    return replace(processed, dead=processed.dead + rejected, received=processed.received + len(rejected))
