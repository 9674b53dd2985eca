"""Identifier types: how each is normalised and whether a value can serve as a key.

The normalisers are the pipeline's own (fincdp.pii), so a phone written `+86 138 0013 8000`,
`0086-13800138000` or in full-width digits is one phone here as in ODS. A value that fails its
validator (an ID number with a wrong check character, a credit code failing GB 32100) is kept as weak
evidence, never as a key.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from fincdp.pii import (InvalidValue, company_key, is_mobile_number, normalize_credit_code, normalize_email,
                        normalize_id_number, normalize_phone)


_DEVICE_IN_PAYLOAD = r'"device_id"\s*:\s*"(?P<d>[^"]+)"'


def payload_device_ids(payloads: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Each event payload's device id (null where it names none), read from the JSON text as every
    engine returns it, column-wise rather than parsing each payload."""
    return pc.struct_field(pc.extract_regex(pc.cast(payloads, pa.string()), _DEVICE_IN_PAYLOAD), "d")


@dataclass(frozen=True)
class Normalized:
    value: str
    key: bool    # False: evidence only (failed a check), never merges on its own


def _plain(value: str) -> str:
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        raise InvalidValue("empty")
    return text


def _phone(value: str) -> Normalized:
    # Shared fixed lines are often fewer than the hub limit, so the kind, not the count, decides.
    number = normalize_phone(value)
    return Normalized(number, is_mobile_number(number))


def _email(value: str) -> Normalized:
    return Normalized(normalize_email(value), True)


def _id_number(value: str) -> Normalized:
    try:
        number, _warning = normalize_id_number(value)
        return Normalized(number, True)
    except InvalidValue:
        # A wrong check character or birth date: often one typo away from the real number.
        return Normalized(_plain(value).replace(" ", "").upper(), False)


def _credit_code(value: str) -> Normalized:
    try:
        code, check_ok = normalize_credit_code(value)
    except InvalidValue:
        return Normalized(_plain(value).replace(" ", "").upper(), False)
    return Normalized(code, check_ok)


def _case_sensitive(value: str) -> Normalized:
    return Normalized(_plain(value), True)


def _case_insensitive(value: str) -> Normalized:
    return Normalized(_plain(value).lower(), True)


def _company_name(value: str) -> Normalized:
    return Normalized(company_key(_plain(value)), True)


@dataclass(frozen=True)
class IdentifierType:
    name: str
    normalize: Callable[[str], Normalized]
    entity: str          # person | enterprise
    strength: str        # default strength: strong (may merge alone) | weak (evidence)


IDENTIFIER_TYPES: dict[str, IdentifierType] = {t.name: t for t in (
    IdentifierType("credit_code", _credit_code, "enterprise", "strong"),
    IdentifierType("company_name", _company_name, "enterprise", "weak"),
    IdentifierType("id_number", _id_number, "person", "strong"),
    IdentifierType("phone", _phone, "person", "strong"),
    IdentifierType("email", _email, "person", "strong"),
    IdentifierType("wecom_userid", _case_sensitive, "person", "strong"),
    IdentifierType("wecom_external_userid", _case_sensitive, "person", "strong"),
    IdentifierType("wechat_unionid", _case_sensitive, "person", "strong"),
    IdentifierType("crm_id", _case_sensitive, "person", "strong"),
    IdentifierType("cookie", _case_sensitive, "person", "weak"),
    IdentifierType("device_id", _case_insensitive, "person", "weak"),
    IdentifierType("ad_id", _case_insensitive, "person", "weak"),
    IdentifierType("session_id", _case_sensitive, "person", "weak"),
    IdentifierType("ip", _case_sensitive, "person", "weak"),
)}


def normalize_identifier(identifier_type: str, value) -> Normalized | None:
    """The normalised identifier, or None when the value is empty or unusable even as evidence."""
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None
    try:
        kind = IDENTIFIER_TYPES[identifier_type]
    except KeyError:
        raise KeyError(f"unknown identifier type {identifier_type!r}; known: {', '.join(IDENTIFIER_TYPES)}") from None
    try:
        return kind.normalize(value)
    except InvalidValue:
        return None
