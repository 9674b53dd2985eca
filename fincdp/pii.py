"""Personal data at the door: normalise, then keep only a keyed token (for matching) and a
ciphertext (for authorised display). Raw values never reach a table or a log.

- Tokens are HMAC-SHA256 under a per-tenant key: equal values match within a tenant and never
  across tenants, and a token cannot be reversed by hashing a dictionary of phone numbers.
- Ciphertexts are AES-256-GCM under a per-tenant data key with AAD = tenant|column, so a value
  copied to another tenant or column fails to decrypt.
- Both keys derive (HKDF) from one per-tenant master key held by a KeyProvider; the local key file
  is the default provider and the interface admits a KMS.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# JR/T 0171 class C3 (authentication data): a CDP must never ingest it. Matched on field names after
# lower-casing and removing separators; configurable per deployment later.
C3_FIELD_NAMES = frozenset({
    "cardnumber", "cardno", "bankcard", "bankcardno", "pan", "cvn", "cvv", "cvv2", "cvc",
    "password", "passwd", "pwd", "pin", "pincode", "trackdata", "track1", "track2", "银行卡号", "卡号",
    "密码", "交易密码", "cvn2",
})


@functools.lru_cache(maxsize=4096)
def is_c3_name(key: str) -> bool:
    return re.sub(r"[\s_\-.]", "", key).lower() in C3_FIELD_NAMES


def c3_fields(record: dict) -> list[str]:
    """Names of fields in `record` (and one level of nested objects) that hold C3 data."""
    found = []
    for key, value in record.items():
        if is_c3_name(str(key)):
            found.append(str(key))
        elif isinstance(value, dict):
            found.extend(f"{key}.{name}" for name in c3_fields(value) if "." not in name)
    return found


class InvalidValue(ValueError):
    """A value that cannot be normalised; the message says why and never contains the value."""


# --- normalisation -----------------------------------------------------------------------------

_PHONE_STRIP = str.maketrans("", "", " -()\u00a0\t.")
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")


def _nfkc(value: str) -> str:
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def normalize_phone(value: str) -> str:
    """E.164 (+86…) for mainland mobiles and landlines (full-width digits, +86/0086, separators)."""
    if value.__class__ is str and len(value) == 11 and value.isascii() and value.isdigit() \
            and value[0] == "1" and value[1] in "3456789":
        return "+86" + value  # a bare mainland mobile number, the usual case, as the steps below find it
    digits = _nfkc(str(value)).strip().translate(_PHONE_STRIP)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if _CN_MOBILE.fullmatch(digits):
        return "+86" + digits
    import phonenumbers  # slower general path: landlines (switchboards), other countries

    try:
        parsed = phonenumbers.parse(digits if digits.startswith("+") else digits, "CN")
    except phonenumbers.NumberParseException:
        raise InvalidValue("not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidValue("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_mobile_number(e164: str) -> bool:
    """A mainland mobile, the only phone that names one person: a fixed line is usually a company
    switchboard shared by colleagues, so identity resolution takes it as evidence, never as a key."""
    return e164.startswith("+86") and _CN_MOBILE.fullmatch(e164[3:]) is not None


_EMAIL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[a-z0-9.\-]+\.[a-z0-9\-]{2,}")


def normalize_email(value: str) -> str:
    email = _nfkc(str(value)).strip().lower()
    if email.count("@") != 1:
        raise InvalidValue("not an email address")
    local, domain = email.split("@")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidValue("email domain is not a valid internationalised domain") from None
    email = f"{local}@{domain}"
    if not _EMAIL.fullmatch(email) or ".." in email or local.startswith(".") or local.endswith("."):
        raise InvalidValue("not an email address")
    return email


_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def normalize_id_number(value: str) -> tuple[str, str | None]:
    """Resident ID (GB 11643). Returns (normalised, warning); the warning is set when the region
    code did not exist in the birth year, which real IDs sometimes show."""
    from stdnum.cn import ric

    number = _nfkc(str(value)).strip().replace(" ", "").upper()
    if re.fullmatch(r"\d{15}", number):  # legacy first-generation ID: no check digit
        try:
            ric.get_birth_date("0" * 6 + "19" + number[6:12] + "0" * 4)
        except Exception:
            raise InvalidValue("15-digit ID number has an impossible birth date") from None
        return number, "legacy 15-digit ID number"
    if not re.fullmatch(r"\d{17}[\dX]", number):
        raise InvalidValue("ID number must be 18 characters: 17 digits and a digit or X")
    check = "10X98765432"[sum(int(d) * w for d, w in zip(number, _RIC_WEIGHTS)) % 11]
    if number[-1] != check:
        raise InvalidValue("ID number check character does not match (GB 11643)")
    try:
        ric.get_birth_date(number)
    except Exception:
        raise InvalidValue("ID number has an impossible birth date") from None
    if not _region_known(number[:6], number[6:10]):
        return number, "region code unknown for the birth year"
    return number, None


@functools.lru_cache(maxsize=1 << 16)
def _region_known(region: str, year: str) -> bool:
    """Whether the region code existed in that birth year (stdnum's lookup depends on nothing else
    and is slow, so each pair is looked up once)."""
    from stdnum.cn import ric

    try:
        ric.get_birth_place(region + year + "0101" + "0000")
    except Exception:
        return False
    return True


def normalize_credit_code(value: str) -> tuple[str, bool]:
    """Unified social credit code (GB 32100). Returns (normalised, check_passed): early pilot codes
    are legitimate but fail the check, so a failed check is a flag, not a rejection."""
    from stdnum.cn import uscc

    code = _nfkc(str(value)).strip().replace(" ", "").upper()
    if not re.fullmatch(r"[0-9A-HJ-NP-RT-UW-Y]{18}", code):
        raise InvalidValue("credit code must be 18 characters of 0-9 and A-Y without I, O, Z, S, V")
    return code, uscc.calc_check_digit(code) == code[-1]


_NAME_DOTS = str.maketrans({"・": "·", "•": "·", "．": "·", "‧": "·", "∙": "·"})


def name_key(value: str) -> str:
    """A matching key for person names (the original is kept for display)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value).translate(_NAME_DOTS)).lower()


_COMPANY_SUFFIXES = re.compile(r"(股份有限公司|有限责任公司|有限公司|集团)$")


def company_key(value: str) -> str:
    """A matching key for company names: NFKC brackets and spaces, legal-form suffix removed."""
    name = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value))
    return _COMPANY_SUFFIXES.sub("", name)


# --- keys and crypto ----------------------------------------------------------------------------

class KeyProvider(Protocol):
    def master_key(self, tenant_id: str) -> bytes:
        """The tenant's 32-byte master key."""


class LocalKeyFileProvider:
    """One key file per tenant (base64 of 32 random bytes, mode 0600). Losing the file makes the
    tenant's ciphertexts unreadable and changes its tokens: back it up like a database."""

    def __init__(self, directory: Path, *, create: bool = True):
        self.directory = Path(directory)
        self.create = create

    def master_key(self, tenant_id: str) -> bytes:
        path = self.directory / f"{tenant_id}.key"
        if not path.exists():
            if not self.create:
                raise FileNotFoundError(f"no key file for tenant {tenant_id!r} at {path}")
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(os.urandom(32)).decode())
        key = base64.b64decode(path.read_text().strip())
        if len(key) != 32:
            raise ValueError(f"key file for tenant {tenant_id!r} does not hold a 32-byte key")
        return key


def _derive(master: bytes, purpose: str, tenant_id: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"fincdp|{purpose}|v1|{tenant_id}".encode()).derive(master)


_KEY_VERSION = b"\x01"  # first byte of every ciphertext, so keys can rotate later


@dataclass
class TenantCipher:
    """Tokens and ciphertexts for one tenant."""
    tenant_id: str
    token_key: bytes
    data_key: bytes

    @classmethod
    def for_tenant(cls, tenant_id: str, provider: KeyProvider) -> "TenantCipher":
        master = provider.master_key(tenant_id)
        return cls(tenant_id, _derive(master, "token", tenant_id), _derive(master, "data", tenant_id))

    def __post_init__(self) -> None:
        self._aead = AESGCM(self.data_key)
        # Keyed once; copying a keyed HMAC is ~2x cheaper than keying it for every value. The OpenSSL
        # object inside hmac.HMAC copies without the Python wrapper's overhead (same digest).
        mac = hmac.new(self.token_key, digestmod=hashlib.sha256)
        inner = getattr(mac, "_hmac", None)
        self._mac = mac if inner is None else inner

    def __getstate__(self) -> dict:  # keys only, so worker processes can land chunks in parallel
        return {"tenant_id": self.tenant_id, "token_key": self.token_key, "data_key": self.data_key}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def token(self, kind: str, normalized: str) -> str:
        mac = self._mac.copy()
        mac.update(f"{kind}\x1f{normalized}".encode())
        return mac.hexdigest()

    def tokens(self, kind: str, normalized: list[str]) -> list[str]:
        """token(kind, value) of each value."""
        base = self._mac.copy()
        base.update(f"{kind}\x1f".encode())
        copy = base.copy
        out = []
        for value in normalized:
            mac = copy()
            mac.update(value.encode())
            out.append(mac.hexdigest())
        return out

    def record_hash(self, canonical: bytes) -> str:
        mac = self._mac.copy()
        mac.update(b"record\x1f" + canonical)
        return mac.hexdigest()

    def record_hashes(self, canonicals: Iterable[bytes]) -> list[str]:
        """record_hash of each (bytes or memoryviews)."""
        base = self._mac.copy()
        base.update(b"record\x1f")
        copy = base.copy
        out = []
        for canonical in canonicals:
            mac = copy()
            mac.update(canonical)
            out.append(mac.hexdigest())
        return out

    def _aad(self, column: str) -> bytes:
        return f"{self.tenant_id}|{column}".encode()

    def encrypt(self, column: str, value: str) -> bytes:
        nonce = os.urandom(12)
        return _KEY_VERSION + nonce + self._aead.encrypt(nonce, value.encode(), self._aad(column))

    def encrypt_many(self, column: str, values: list[str]) -> list[bytes]:
        """encrypt() of each value, each under its own random nonce (drawn in one call)."""
        aad, seal = self._aad(column), self._aead.encrypt
        nonces = os.urandom(12 * len(values))
        out = []
        for i, value in enumerate(values):
            nonce = nonces[12 * i:12 * i + 12]
            out.append(_KEY_VERSION + nonce + seal(nonce, value.encode(), aad))
        return out

    def decrypt(self, column: str, blob: bytes) -> str:
        if blob[:1] != _KEY_VERSION:
            raise ValueError(f"ciphertext for column {column!r} has an unknown key version")
        return self._aead.decrypt(blob[1:13], blob[13:], self._aad(column)).decode()
