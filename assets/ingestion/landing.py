"""Turn received source records into ODS rows and dead letters.

Pure functions over one batch: validate, type, protect personal data, dedupe. Writing happens in
store.py. Shared by the batch assets and (later) a long-lived stream consumer.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field, replace
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


# --- one batch, column by column ------------------------------------------------------------------
# Work goes field by field over the whole batch (tight loops, no per-row dispatch), and a row's first
# error in field order decides its dead letter, as a row-by-row reading would.

class _Batch:
    def __init__(self, records: list[Any]):
        self.records = records
        self.errors: list[tuple[str, str, str] | None] = [None] * len(records)
        self.flags: list[list[str] | None] = [None] * len(records)
        self.redactions: list[dict | None] = [None] * len(records)
        self.columns: dict[str, list] = {}

    def reject(self, i: int, field: str, error_type: str, reason: str) -> None:
        if self.errors[i] is None:
            self.errors[i] = (field, error_type, reason)

    def flag(self, i: int, message: str) -> None:
        if self.flags[i] is None:
            self.flags[i] = []
        self.flags[i].append(message)

    def redact(self, i: int, name: str, stand_in: Any) -> None:
        if self.redactions[i] is None:
            self.redactions[i] = {}
        self.redactions[i][name] = stand_in


def _shape(spec: EntitySpec, records: list[Any], batch: _Batch) -> list[dict]:
    rows: list[dict] = []
    c3_by_keys: dict[tuple, list[str]] = {}
    for i, record in enumerate(records):
        if spec.flatten is not None:
            try:
                record = spec.flatten(record)
            except (ValueError, AttributeError, TypeError) as exc:
                batch.reject(i, "", "schema", f"record does not have the expected shape: {exc}")
                rows.append({})
                continue
        if not isinstance(record, dict):
            batch.reject(i, "", "schema", "record is not a JSON object")
            rows.append({})
            continue
        keys = tuple(record)
        c3 = c3_by_keys.get(keys)
        if c3 is None or dict in map(type, record.values()):  # nested objects are checked each time
            c3 = c3_fields(record)
            c3_by_keys[keys] = [name for name in c3 if "." not in name]
        if c3:
            batch.reject(i, c3[0], "c3_rejected",
                         f"field {c3[0]!r} holds C3 authentication data (JR/T 0171), which is never ingested")
        rows.append(record)
    return rows


def _protect_column(ctx: LandingContext, f: Field, values: list, batch: _Batch) -> None:
    tokens: list = [None] * len(values)
    ciphertexts: list = [None] * len(values)
    for i, value in enumerate(values):
        if value is None or value == "" or batch.errors[i] is not None:
            continue
        if f.pii == "phone_list":
            if not isinstance(value, list):
                batch.reject(i, f.name, "invalid_type", f"field {f.name!r}: expected a list of phone numbers")
                continue
            found = []
            for j, item in enumerate(value):
                flags: list[str] = []
                token, _, _ = _protect(ctx, f"{f.name}[{j}]", "phone", item, flags)
                for message in flags:
                    batch.flag(i, message)
                if token:
                    found.append(token)
            tokens[i] = found
            ciphertexts[i] = ctx.cipher.encrypt(f.name, json.dumps(value, ensure_ascii=False))
            batch.redact(i, f.name, [f"tok:{t}" for t in found])
            continue
        flags = []
        tokens[i], ciphertexts[i], stand_in = _protect(ctx, f.name, f.pii, value, flags)
        for message in flags:
            batch.flag(i, message)
        batch.redact(i, f.name, stand_in)
    suffix = "_tokens" if f.pii == "phone_list" else "_token"
    batch.columns[f.name + suffix] = tokens
    batch.columns[f.name + "_enc"] = ciphertexts


def _typed_column(ctx: LandingContext, f: Field, values: list, batch: _Batch) -> None:
    convert = _CONVERTERS[f.type]
    out: list = [None] * len(values)
    check_ok: list = [None] * len(values) if f.credit_code else []
    plain_text = f.type == "string"
    for i, value in enumerate(values):
        if value is None or value == "" or batch.errors[i] is not None:
            continue
        if plain_text and value.__class__ is str:
            converted = value
        else:
            try:
                converted = convert(value, ctx)
            except InvalidValue as exc:
                batch.reject(i, f.name, "invalid_type", f"field {f.name!r}: {exc}")
                continue
        if f.enum is not None and converted not in f.enum:
            batch.reject(i, f.name, "invalid_enum",
                         f"field {f.name!r}: {converted!r} is not one of {', '.join(map(str, f.enum))}")
            continue
        if f.credit_code:
            try:
                converted, check_ok[i] = normalize_credit_code(converted)
            except InvalidValue as exc:
                batch.reject(i, f.name, "invalid_value", f"field {f.name!r}: {exc}")
                continue
            if not check_ok[i]:
                batch.flag(i, f"{f.name}: check character does not match (GB 32100)")
        out[i] = converted
    batch.columns[f.name] = out
    if f.credit_code:
        batch.columns[f"{f.name}_check_ok"] = check_ok


def _json_pii_column(ctx: LandingContext, name: str, rows: list[dict], batch: _Batch) -> None:
    """Tokenise personal data inside a JSON field (event payloads) and keep it redacted."""
    columns = {f"{name}_{kind}_{part}": [None] * len(rows) for kind in _PAYLOAD_KINDS for part in ("token", "enc")}
    redacted_json = batch.columns[name]
    for i, record in enumerate(rows):
        payload = record.get(name)
        if batch.errors[i] is not None or not isinstance(payload, dict):
            continue
        clean = dict(payload)
        for key, kind in PAYLOAD_PII.items():
            if payload.get(key) in (None, ""):
                continue
            flags: list[str] = []
            token, enc, clean[key] = _protect(ctx, f"{name}.{key}", kind, payload[key], flags)
            for message in flags:
                batch.flag(i, message)
            if columns[f"{name}_{kind}_token"][i] is None:
                columns[f"{name}_{kind}_token"][i], columns[f"{name}_{kind}_enc"][i] = token, enc
        redacted_json[i] = json.dumps(clean, ensure_ascii=False, sort_keys=True, default=str)
        batch.redact(i, name, clean)
    batch.columns.update(columns)


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
    batch = _Batch(records)
    rows = _shape(spec, records, batch)
    for f in spec.fields:
        values = [row.get(f.name) for row in rows]
        if f.required:
            for i, value in enumerate(values):
                if value is None or value == "":
                    batch.reject(i, f.name, "missing_field", f"required field {f.name!r} is missing or empty")
        if f.pii:
            _protect_column(ctx, f, values, batch)
        else:
            _typed_column(ctx, f, values, batch)
    if spec.checks:
        check_ctx = CheckContext(ctx.tenant_id, ctx.org_ids)
        for i, row in enumerate(rows):
            if batch.errors[i] is None:
                for check in spec.checks:
                    for name, error_type, reason in check(row, check_ctx)[:1]:
                        batch.reject(i, name, error_type, f"field {name!r}: {reason}")
    for name in spec.scan_json_pii:
        _json_pii_column(ctx, name, rows, batch)

    dead: list[DeadLetter] = []
    chosen: dict[str, int] = {}  # source id -> row index; the newest version wins, ties go to the later
    order = batch.columns.get(spec.updated_field) if spec.updated_field else None
    duplicates = 0
    source_ids: list[str | None] = [None] * len(rows)
    for i, row in enumerate(rows):
        if batch.errors[i] is not None:
            field, error_type, reason = batch.errors[i]
            dead.append(DeadLetter(refs[i], field or None, error_type, reason, strip_c3(records[i])))
            continue
        source_ids[i] = source_id = ":".join(str(row.get(k)) for k in spec.id_fields)
        previous = chosen.get(source_id)
        if previous is not None:
            duplicates += 1
            if order is not None and order[previous] and order[i] and order[previous] > order[i]:
                continue
        chosen[source_id] = i
    keep = sorted(chosen.values())

    raws, hashes = [], []
    for i in keep:
        redacted = rows[i] if batch.redactions[i] is None else {**rows[i], **batch.redactions[i]}
        raw = json.dumps(redacted, ensure_ascii=False, sort_keys=True, default=str)
        raws.append(raw)
        hashes.append(ctx.cipher.record_hash(raw.encode()))
    n = len(keep)
    meta = {"_tenant_id": [ctx.tenant_id] * n, "_source": [spec.source] * n,
            "_source_id": [source_ids[i] for i in keep], "_business_date": [ctx.business_date] * n,
            "_batch_id": [ctx.batch_id] * n, "_ingested_at": [ctx.ingested_at] * n, "_record_hash": hashes,
            "_raw": raws, "_dq_flags": [batch.flags[i] or [] for i in keep]}
    schema = ods_schema(spec)
    arrays = [pa.array(meta[f.name] if f.name in meta else [batch.columns[f.name][i] for i in keep], f.type)
              for f in schema]
    return Processed(pa.Table.from_arrays(arrays, schema=schema), dead, len(records), duplicates)


def with_rejections(processed: Processed, rejected: list[DeadLetter]) -> Processed:
    """Add records rejected before landing (lines that are not JSON, unreadable files)."""
    return replace(processed, dead=processed.dead + rejected, received=processed.received + len(rejected))


def land_chunk(spec: EntitySpec, chunk: list, ctx: LandingContext) -> tuple[Processed, int]:
    """Land a chunk of file records (files.FileRecord); runs in worker processes for large files."""
    rejected = [DeadLetter(r.ref, None, "parse", r.parse_error, r.record) for r in chunk if r.parse_error]
    good = [r for r in chunk if not r.parse_error]
    return with_rejections(process(spec, [r.record for r in good], [r.ref for r in good], ctx), rejected), len(chunk)
