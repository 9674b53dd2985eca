"""Turn received source records into ODS rows and dead letters.

Pure functions over one batch: validate, type, protect personal data, dedupe. Writing happens in
store.py. Shared by the batch assets and (later) a long-lived stream consumer.
"""
from __future__ import annotations

import functools
import ipaddress
import json
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring as _json_string
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pyarrow as pa

from fincdp.pii import (InvalidValue, TenantCipher, c3_fields, is_c3_name, normalize_credit_code,
                        normalize_email, normalize_id_number, normalize_phone)
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


@functools.lru_cache(maxsize=None)
def ods_schema(spec: EntitySpec) -> pa.Schema:
    fields = [c for f in spec.fields for c in _field_columns(f)]
    for name in spec.scan_json_pii:
        for kind in _PAYLOAD_KINDS:
            fields += [pa.field(f"{name}_{kind}_token", pa.string()), pa.field(f"{name}_{kind}_enc", pa.binary())]
    return pa.schema(fields + META_FIELDS)


# --- one batch, column by column ------------------------------------------------------------------
# Work goes field by field over the whole batch (tight loops, no per-row dispatch), and a row's first
# error in field order decides its dead letter, as a row-by-row reading would. Conversions and
# personal-data normalisation are pure functions of the value, so each distinct value is worked out
# once per batch (events repeat timestamps, IPs and payload phone numbers); ciphertexts are not
# shared: every value gets its own nonce.

_MISSING = object()
# json.dumps(value, ensure_ascii=False, sort_keys=True, default=str), without building an encoder per call.
_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode


class _Encoded:
    """A stand-in (a redacted payload) and its JSON text, which goes into `_raw` as it is."""
    __slots__ = ("value", "json")

    def __init__(self, value: Any, text: str):
        self.value, self.json = value, text


def _json_value(value: Any) -> str:
    """The JSON text json.dumps (as in _dumps) writes for `value` inside an object."""
    cls = value.__class__
    if cls is str:
        return _json_string(value)
    if value is None:
        return "null"
    if cls is _Encoded:
        return value.json
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return int.__repr__(value)
    return _dumps(value)


class _Batch:
    def __init__(self, records: list[Any]):
        self.records = records
        self.errors: list[tuple[str, str, str] | None] = [None] * len(records)
        self.flags: list[list[str] | None] = [None] * len(records)
        self.redacted: dict[str, list] = {}  # field -> per row, its stand-in in `_raw` (None: as received)
        self.columns: dict[str, list] = {}
        self.pii: dict[str, dict[str, tuple]] = {}  # kind -> value -> what _protect_text made of it

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

    def protected(self, ctx: LandingContext, kind: str, text: str) -> tuple[str | None, str, str, str | None]:
        memo = self.pii.get(kind)
        if memo is None:
            memo = self.pii[kind] = {}
        found = memo.get(text)
        if found is None:
            found = memo[text] = _protect_text(ctx, kind, text)
        return found


def _protect_text(ctx: LandingContext, kind: str, text: str) -> tuple[str | None, str, str, str | None]:
    """(token or None, what to encrypt, redacted stand-in for the raw record, flag message or None)."""
    try:
        normalized, warning = _normalize_pii(kind, text)
    except InvalidValue as exc:
        # Keep the value (encrypted) but never match on it; the flag tells quality checks.
        return None, text, "inv:" + ctx.cipher.token(f"{kind}_raw", text)[:32], str(exc)
    token = ctx.cipher.token(kind, normalized)
    return token, normalized, "tok:" + token, warning


def _shape(spec: EntitySpec, records: list[Any], batch: _Batch) -> list[dict]:
    rows: list[dict] = []
    c3_by_keys: dict[tuple, bool] = {}     # field names -> does any name a C3 field
    nested_c3: dict[tuple, bool] = {}      # names inside a nested object -> does any name a C3 field
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
        suspect = c3_by_keys.get(keys)
        if suspect is None:
            suspect = c3_by_keys[keys] = any(is_c3_name(str(key)) for key in keys)
        if not suspect:  # only nested objects can still hold C3 data (c3_fields looks one level down)
            for value in record.values():
                if isinstance(value, dict):
                    inner = tuple(value)
                    found = nested_c3.get(inner)
                    if found is None:
                        found = nested_c3[inner] = any("." not in str(k) and is_c3_name(str(k)) for k in inner)
                    if found:
                        suspect = True
                        break
        if suspect:
            c3 = c3_fields(record)
            batch.reject(i, c3[0], "c3_rejected",
                         f"field {c3[0]!r} holds C3 authentication data (JR/T 0171), which is never ingested")
        rows.append(record)
    return rows


def _protect_column(ctx: LandingContext, f: Field, values: list, batch: _Batch) -> None:
    errors = batch.errors
    tokens: list = [None] * len(values)
    ciphertexts: list = [None] * len(values)
    stand_ins = batch.redactions(f.name)
    rows, plaintexts = [], []
    for i, value in enumerate(values):
        if value is None or value == "" or errors[i] is not None:
            continue
        if f.pii == "phone_list":
            if not isinstance(value, list):
                batch.reject(i, f.name, "invalid_type", f"field {f.name!r}: expected a list of phone numbers")
                continue
            found = []
            for j, item in enumerate(value):
                token, _, _, message = batch.protected(ctx, "phone", item if isinstance(item, str) else str(item))
                if message:
                    batch.flag(i, f"{f.name}[{j}]: {message}")
                if token:
                    found.append(token)
            tokens[i] = found
            rows.append(i)
            plaintexts.append(json.dumps(value, ensure_ascii=False))
            stand_ins[i] = [f"tok:{t}" for t in found]
            continue
        token, plaintext, stand_ins[i], message = batch.protected(
            ctx, f.pii, value if isinstance(value, str) else str(value))
        if message:
            batch.flag(i, f"{f.name}: {message}")
        tokens[i] = token
        rows.append(i)
        plaintexts.append(plaintext)
    for i, blob in zip(rows, ctx.cipher.encrypt_many(f.name, plaintexts)):
        ciphertexts[i] = blob
    suffix = "_tokens" if f.pii == "phone_list" else "_token"
    batch.columns[f.name + suffix] = tokens
    batch.columns[f.name + "_enc"] = ciphertexts


def _typed_column(ctx: LandingContext, f: Field, values: list, batch: _Batch, *, redacted_later: bool = False
                  ) -> None:
    """Type one field. redacted_later: a JSON object here is written by _json_pii_column, so it is
    left as it is rather than serialised twice."""
    convert = _CONVERTERS[f.type]
    errors = batch.errors
    out: list = [None] * len(values)
    check_ok: list = [None] * len(values) if f.credit_code else []
    plain_text = f.type == "string"
    keep_objects = redacted_later and f.type == "json" and f.enum is None and not f.credit_code
    memo: dict[str, Any] = {}  # text -> converted value or the InvalidValue it raised
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
                    try:
                        converted = convert(value, ctx)
                    except InvalidValue as exc:
                        converted = exc
                    memo[value] = converted
                if isinstance(converted, InvalidValue):
                    batch.reject(i, f.name, "invalid_type", f"field {f.name!r}: {converted}")
                    continue
        elif keep_objects and cls is dict:
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
    stand_ins = batch.redactions(name)
    errors = batch.errors
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
                token, plaintext, clean[key], message = batch.protected(
                    ctx, kind, value if isinstance(value, str) else str(value))
                if message:
                    batch.flag(i, f"{name}.{key}: {message}")
                if columns[f"{name}_{kind}_token"][i] is None:
                    columns[f"{name}_{kind}_token"][i] = token
                    columns[f"{name}_{kind}_enc"][i] = ctx.cipher.encrypt(f"{name}.{key}", plaintext)
        redacted_json[i] = text = _dumps(clean)
        stand_ins[i] = _Encoded(clean, text)
    batch.columns.update(columns)


def _raw_records(rows: list[dict], keep: list[int], redacted: dict[str, list]) -> list[str]:
    """Each kept row as received, personal data replaced by its stand-in, as JSON with sorted keys:
    the text json.dumps(..., ensure_ascii=False, sort_keys=True, default=str) writes, built column
    by column for rows that share their field names."""
    raws: list = [None] * len(keep)
    groups: dict[tuple, list[int]] = {}
    for position, i in enumerate(keep):
        keys = tuple(rows[i])
        group = groups.get(keys)
        if group is None:
            groups[keys] = [position]
        else:
            group.append(position)
    for keys, positions in groups.items():
        indexes = [keep[p] for p in positions]
        if not keys or not all(k.__class__ is str for k in keys):  # {} or unusual names: the plain way
            for position, i in zip(positions, indexes):
                record = dict(rows[i])
                for key, stand_ins in redacted.items():
                    if stand_ins[i] is not None:
                        s = stand_ins[i]
                        record[key] = s.value if s.__class__ is _Encoded else s
                raws[position] = _dumps(record)
            continue
        ordered = sorted(keys)
        template = "{" + ", ".join(_json_string(k).replace("%", "%%") + ": %s" for k in ordered) + "}"
        texts = []
        for key in ordered:
            values = [rows[i][key] for i in indexes]
            stand_ins = redacted.get(key)
            if stand_ins is not None:
                values = [v if s is None else s for v, s in zip(values, [stand_ins[i] for i in indexes])]
            texts.append([_json_string(v) if v.__class__ is str else _json_value(v) for v in values])
        for position, text in zip(positions, [template % t for t in zip(*texts)]):
            raws[position] = text
    return raws


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


def _source_ids(spec: EntitySpec, rows: list[dict], errors: list) -> list[str | None]:
    """Each landing row's source id (its id fields joined with ':'); None for rejected rows."""
    if len(spec.id_fields) == 1:
        [name] = spec.id_fields
        return [None if error is not None else value if (value := row.get(name)).__class__ is str else str(value)
                for row, error in zip(rows, errors)]
    return [None if error is not None else ":".join([str(row.get(k)) for k in spec.id_fields])
            for row, error in zip(rows, errors)]


def process(spec: EntitySpec, records: list[Any], refs: list[str], ctx: LandingContext) -> Processed:
    """Land one batch: every record becomes a row or a dead letter (received = landed + dead)."""
    batch = _Batch(records)
    rows = _shape(spec, records, batch)
    errors = batch.errors
    for f in spec.fields:
        values = [row.get(f.name) for row in rows]
        if f.required:
            for i, value in enumerate(values):
                if value is None or value == "":
                    batch.reject(i, f.name, "missing_field", f"required field {f.name!r} is missing or empty")
        if f.pii:
            _protect_column(ctx, f, values, batch)
        else:
            _typed_column(ctx, f, values, batch, redacted_later=f.name in spec.scan_json_pii)
    if spec.checks:
        check_ctx = CheckContext(ctx.tenant_id, ctx.org_ids)
        for i, row in enumerate(rows):
            if errors[i] is None:
                for check in spec.checks:
                    for name, error_type, reason in check(row, check_ctx)[:1]:
                        batch.reject(i, name, error_type, f"field {name!r}: {reason}")
    for name in spec.scan_json_pii:
        _json_pii_column(ctx, name, rows, batch)

    dead = [DeadLetter(refs[i], error[0] or None, error[1], error[2], strip_c3(records[i]))
            for i, error in enumerate(errors) if error is not None]
    source_ids = _source_ids(spec, rows, errors)
    chosen: dict[str, int] = {}  # source id -> row index; the newest version wins, ties go to the later
    order = batch.columns.get(spec.updated_field) if spec.updated_field else None
    duplicates = 0
    for i, source_id in enumerate(source_ids):
        if source_id is None:
            continue
        previous = chosen.get(source_id)
        if previous is not None:
            duplicates += 1
            if order is not None and order[previous] and order[i] and order[previous] > order[i]:
                continue
        chosen[source_id] = i
    keep = sorted(chosen.values()) if duplicates else [i for i, e in enumerate(errors) if e is None]
    every_row = len(keep) == len(rows)

    raws = _raw_records(rows, keep, batch.redacted)
    n = len(keep)
    meta = {"_source_id": source_ids if every_row else [source_ids[i] for i in keep],
            "_record_hash": ctx.cipher.record_hashes(raws), "_raw": raws,
            "_dq_flags": [batch.flags[i] or [] for i in keep]}
    constants = {"_tenant_id": ctx.tenant_id, "_source": spec.source, "_business_date": ctx.business_date,
                 "_batch_id": ctx.batch_id, "_ingested_at": ctx.ingested_at}
    schema = ods_schema(spec)
    arrays = []
    for f in schema:
        if f.name in constants:
            arrays.append(pa.repeat(pa.scalar(constants[f.name], f.type), n))
        elif f.name in meta:
            arrays.append(pa.array(meta[f.name], f.type))
        else:
            column = batch.columns[f.name]
            arrays.append(pa.array(column if every_row else [column[i] for i in keep], f.type))
    return Processed(pa.Table.from_arrays(arrays, schema=schema), dead, len(records), duplicates)


def with_rejections(processed: Processed, rejected: list[DeadLetter]) -> Processed:
    """Add records rejected before landing (lines that are not JSON, unreadable files)."""
    return replace(processed, dead=processed.dead + rejected, received=processed.received + len(rejected))


def land_chunk(spec: EntitySpec, chunk: list, ctx: LandingContext) -> tuple[Processed, int]:
    """Land a chunk of file records (files.FileRecord); runs in worker processes for large files."""
    rejected = [DeadLetter(r.ref, None, "parse", r.parse_error, r.record) for r in chunk if r.parse_error]
    good = [r for r in chunk if not r.parse_error]
    return with_rejections(process(spec, [r.record for r in good], [r.ref for r in good], ctx), rejected), len(chunk)
