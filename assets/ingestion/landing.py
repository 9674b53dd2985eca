"""Turn received source records into ODS rows and dead letters.

Pure functions over one batch: validate, type, protect personal data, dedupe. Writing happens in
store.py. Shared by the batch assets and (later) a long-lived stream consumer.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pyarrow as pa

from fincdp.pii import (InvalidValue, TenantCipher, c3_fields, normalize_credit_code, normalize_email,
                        normalize_id_number, normalize_phone)
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
    table: pa.Table
    dead: list[DeadLetter]
    received: int
    duplicates: int           # repeats of an id within the batch, merged into one row

    @property
    def landed(self) -> int:
        return self.received - len(self.dead)


class _Reject(Exception):
    def __init__(self, field: str, error_type: str, reason: str):
        super().__init__(reason)
        self.field, self.error_type, self.reason = field, error_type, reason


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
    return json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)


def _to_string_list(v: Any, ctx: LandingContext) -> list[str]:
    if not isinstance(v, list) or any(isinstance(x, (dict, list)) for x in v):
        raise InvalidValue("expected a list of strings")
    return [str(x) for x in v if x is not None]


def _to_int_list(v: Any, ctx: LandingContext) -> list[int]:
    if not isinstance(v, list):
        raise InvalidValue("expected a list of integers")
    return [_to_int(x, ctx) for x in v]


_CONVERTERS: dict[str, Callable[[Any, LandingContext], Any]] = {
    "string": _to_string, "int": _to_int, "float": _to_float, "decimal": _to_decimal,
    "bool": _to_bool, "timestamp": _to_timestamp, "epoch": _to_epoch, "date": _to_date,
    "json": _to_json, "string_list": _to_string_list, "int_list": _to_int_list,
}


# --- personal data ------------------------------------------------------------------------------

def _normalize_pii(kind: str, value: Any) -> tuple[str, str | None]:
    """(normalised, warning) or InvalidValue."""
    if kind == "phone":
        return normalize_phone(value), None
    if kind == "email":
        return normalize_email(value), None
    if kind == "id_number":
        return normalize_id_number(value)
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(str(value).strip())), None
        except ValueError:
            raise InvalidValue("not an IP address") from None
    raise KeyError(kind)


def _protect(ctx: LandingContext, column: str, kind: str, value: Any, flags: list[str]
             ) -> tuple[str | None, bytes, str]:
    """(token or None, ciphertext, redacted stand-in for the raw record)."""
    text = value if isinstance(value, str) else str(value)
    try:
        normalized, warning = _normalize_pii(kind, text)
    except InvalidValue as exc:
        # Keep the value (encrypted) but never match on it; the flag tells quality checks.
        flags.append(f"{column}: {exc}")
        return None, ctx.cipher.encrypt(column, text), "inv:" + ctx.cipher.token(f"{kind}_raw", text)[:32]
    if warning:
        flags.append(f"{column}: {warning}")
    token = ctx.cipher.token(kind, normalized)
    return token, ctx.cipher.encrypt(column, normalized), "tok:" + token


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
    if f.pii:
        return [pa.field(f"{f.name}_token", pa.string()), pa.field(f"{f.name}_enc", pa.binary())]
    columns = [pa.field(f.name, _ARROW_TYPES[f.type])]
    if f.credit_code:
        columns.append(pa.field(f"{f.name}_check_ok", pa.bool_()))
    return columns


def ods_schema(spec: EntitySpec) -> pa.Schema:
    fields = [c for f in spec.fields for c in _field_columns(f)]
    for name in spec.scan_json_pii:
        for kind in _PAYLOAD_KINDS:
            fields += [pa.field(f"{name}_{kind}_token", pa.string()), pa.field(f"{name}_{kind}_enc", pa.binary())]
    return pa.schema(fields + META_FIELDS)


# --- one record ---------------------------------------------------------------------------------

def _land_record(spec: EntitySpec, record: Any, ctx: LandingContext, check_ctx: CheckContext
                 ) -> tuple[str, dict]:
    if spec.flatten is not None:
        try:
            record = spec.flatten(record)
        except (ValueError, AttributeError, TypeError) as exc:
            raise _Reject("", "schema", f"record does not have the expected shape: {exc}") from None
    if not isinstance(record, dict):
        raise _Reject("", "schema", "record is not a JSON object")
    c3 = c3_fields(record)
    if c3:
        raise _Reject(c3[0], "c3_rejected",
                      f"field {c3[0]!r} holds C3 authentication data (JR/T 0171), which is never ingested")
    row: dict[str, Any] = {}
    redacted = dict(record)
    flags: list[str] = []
    for f in spec.fields:
        value = record.get(f.name)
        if value is None or value == "":
            if f.required:
                raise _Reject(f.name, "missing_field", f"required field {f.name!r} is missing or empty")
            for column in _field_columns(f):
                row[column.name] = None
            continue
        if f.pii == "phone_list":
            if not isinstance(value, list):
                raise _Reject(f.name, "invalid_type", f"field {f.name!r}: expected a list of phone numbers")
            tokens = []
            for i, item in enumerate(value):
                token, _, _ = _protect(ctx, f"{f.name}[{i}]", "phone", item, flags)
                if token:
                    tokens.append(token)
            row[f"{f.name}_tokens"] = tokens
            row[f"{f.name}_enc"] = ctx.cipher.encrypt(f.name, json.dumps(value, ensure_ascii=False))
            redacted[f.name] = [f"tok:{t}" for t in tokens]
            continue
        if f.pii:
            token, enc, stand_in = _protect(ctx, f.name, f.pii, value, flags)
            row[f"{f.name}_token"], row[f"{f.name}_enc"] = token, enc
            redacted[f.name] = stand_in
            continue
        try:
            converted = _CONVERTERS[f.type](value, ctx)
        except InvalidValue as exc:
            raise _Reject(f.name, "invalid_type", f"field {f.name!r}: {exc}") from None
        if f.enum is not None and converted not in f.enum:
            raise _Reject(f.name, "invalid_enum",
                          f"field {f.name!r}: {converted!r} is not one of {', '.join(map(str, f.enum))}")
        if f.credit_code:
            try:
                converted, check_ok = normalize_credit_code(converted)
            except InvalidValue as exc:
                raise _Reject(f.name, "invalid_value", f"field {f.name!r}: {exc}") from None
            row[f"{f.name}_check_ok"] = check_ok
            if not check_ok:
                flags.append(f"{f.name}: check character does not match (GB 32100)")
        row[f.name] = converted
    for check in spec.checks:
        problems = check(record, check_ctx)
        if problems:
            name, error_type, reason = problems[0]
            raise _Reject(name, error_type, f"field {name!r}: {reason}")
    for name in spec.scan_json_pii:
        payload = record.get(name)
        clean = dict(payload) if isinstance(payload, dict) else payload
        for kind in _PAYLOAD_KINDS:
            row[f"{name}_{kind}_token"] = row[f"{name}_{kind}_enc"] = None
        if isinstance(payload, dict):
            for key, kind in PAYLOAD_PII.items():
                if payload.get(key) in (None, ""):
                    continue
                token, enc, stand_in = _protect(ctx, f"{name}.{key}", kind, payload[key], flags)
                clean[key] = stand_in
                if row[f"{name}_{kind}_token"] is None:
                    row[f"{name}_{kind}_token"], row[f"{name}_{kind}_enc"] = token, enc
            row[name] = json.dumps(clean, ensure_ascii=False, sort_keys=True, default=str)
            redacted[name] = clean
    source_id = ":".join(str(record.get(k) if k in record else row.get(k)) for k in spec.id_fields)
    raw = json.dumps(redacted, ensure_ascii=False, sort_keys=True, default=str)
    row.update(_tenant_id=ctx.tenant_id, _source=spec.source, _source_id=source_id,
               _business_date=ctx.business_date, _batch_id=ctx.batch_id, _ingested_at=ctx.ingested_at,
               _record_hash=ctx.cipher.record_hash(raw.encode()), _raw=raw, _dq_flags=flags)
    return source_id, row


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


def process(spec: EntitySpec, records: list[Any], refs: list[str], ctx: LandingContext) -> Processed:
    """Land one batch: every record becomes a row or a dead letter (received = landed + dead)."""
    check_ctx = CheckContext(ctx.tenant_id, ctx.org_ids)
    rows: dict[str, dict] = {}
    dead: list[DeadLetter] = []
    duplicates = 0
    order_key = spec.updated_field
    for record, ref in zip(records, refs):
        try:
            source_id, row = _land_record(spec, record, ctx, check_ctx)
        except _Reject as rejected:
            dead.append(DeadLetter(ref, rejected.field or None, rejected.error_type, rejected.reason,
                                   strip_c3(record)))
            continue
        previous = rows.get(source_id)
        if previous is not None:
            duplicates += 1
            # Newest version wins; on a tie (or no version field) the later record wins.
            if order_key and previous.get(order_key) and row.get(order_key) \
                    and previous[order_key] > row[order_key]:
                continue
        rows[source_id] = row
    schema = ods_schema(spec)
    table = pa.Table.from_pylist(list(rows.values()), schema=schema)
    return Processed(table, dead, len(records), duplicates)
