"""Chinese identifiers with their check characters, and the ways people write them.

Builders: unified social credit codes (GB 32100, with the GB 11714 organisation-code check inside),
resident ID numbers (GB 11643), mobiles. Variants: how the same value is typed in another system
(full-width digits, +86, spaces, mixed case). Breakers: values that must fail validation, for the
planted bad records. See docs/demo-data.md, "Variations" and "Planted bad records".
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

# What the pipeline treats as a well-formed email after NFKC and strip (docs/demo-data.md).
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def uscc_check(first17: str) -> str:
    """GB 32100 check character: C18 = (31 - sum(Ci*Wi) mod 31) mod 31."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check(first8: str) -> str:
    """GB 11714 check character of the nine-character organisation code."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(first8, _ORG_WEIGHTS))
    c9 = 11 - total % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)


def make_uscc(rng: np.random.Generator, division: str, new_style: bool) -> str:
    """A valid code for a company ("91") registered in `division` (six digits).

    Old companies keep their eight-digit organisation code; codes issued since 2015 start with MA.
    """
    r = rng.integers(0, 1 << 30, 8).tolist()
    if new_style:
        body = "MA" + "".join(USCC_ALPHABET[x % 31] for x in r[:6])
    else:
        body = str(r[0] % 9 + 1) + "".join(str(x % 10) for x in r[1:8])
    org = body + org_code_check(body)  # the check is a digit or X, both in the USCC alphabet
    first17 = "91" + division + org
    return first17 + uscc_check(first17)


def break_uscc(rng: np.random.Generator, code: str) -> tuple[str, str]:
    """A code that fails `stdnum.cn.uscc`, and how it was broken."""
    kind = ("check", "check", "length", "letter")[int(rng.integers(4))]
    if kind == "check":
        wrong = [c for c in USCC_ALPHABET if c != code[-1]]
        return code[:-1] + wrong[int(rng.integers(len(wrong)))], kind
    if kind == "length":
        return code[:-1], kind
    return code[:10] + "O" + code[11:], kind  # O is not in the alphabet


def ric_check(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _RIC_WEIGHTS))
    return "10X98765432"[total % 11]


def make_ric(region: str, birth: str, seq: int) -> str:
    """birth as YYYYMMDD; seq 1..999, odd for men and even for women."""
    first17 = f"{region}{birth}{seq:03d}"
    return first17 + ric_check(first17)


def mobile_variant(rng: np.random.Generator, mobile: str, messy: float) -> str:
    """The same mobile as someone might type it; plain with probability 1 - messy."""
    if rng.random() >= messy:
        return mobile
    kind = int(rng.integers(9))
    a, b, c = mobile[:3], mobile[3:7], mobile[7:]
    if kind == 0:
        return "+86" + mobile
    if kind == 1:
        return f"+86 {a} {b} {c}"
    if kind == 2:
        return "0086" + mobile
    if kind == 3:
        return f"{a}-{b}-{c}"
    if kind == 4:
        return f"{a} {b} {c}"
    if kind == 5:
        return mobile.translate(_FULL_WIDTH)
    if kind == 6:
        return "86" + mobile
    if kind == 7:
        return f"(+86){mobile}"
    return f" {mobile} "


def break_mobile(rng: np.random.Generator, mobile: str) -> str:
    """A value in a mobile field that no normalisation makes a valid Chinese number."""
    while True:
        kind = int(rng.integers(4))
        if kind == 0:
            bad = mobile[:-1]                          # a digit lost
        elif kind == 1:
            bad = mobile + str(int(rng.integers(10)))  # a digit too many
        elif kind == 2:
            bad = "12" + mobile[2:]                    # no such mobile range
        else:
            bad = "10" + mobile[2:]
        if phone_kind(bad) == "invalid":
            return bad


def phone_kind(value: str) -> str:
    """"mobile", "landline" or "invalid" after the normalisation of domain-notes 2.3
    (NFKC, strip spaces, dashes, brackets, +86/0086/86) and libphonenumber's CN metadata."""
    import phonenumbers

    x = re.sub(r"[\s\-()+]", "", unicodedata.normalize("NFKC", value))
    if x.startswith("0086"):
        x = x[4:]
    elif x.startswith("86") and len(x) == 13:
        x = x[2:]
    try:
        number = phonenumbers.parse(x, "CN")
    except phonenumbers.NumberParseException:
        return "invalid"
    if not phonenumbers.is_valid_number(number):
        return "invalid"
    kind = phonenumbers.number_type(number)
    if kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return "mobile"
    return "landline" if kind == phonenumbers.PhoneNumberType.FIXED_LINE else "invalid"


def email_variant(rng: np.random.Generator, email: str, messy: float) -> str:
    if rng.random() >= messy:
        return email
    kind = int(rng.integers(4))
    local, domain = email.split("@")
    if kind == 0:
        return email.upper()
    if kind == 1:
        return local[:1].upper() + local[1:] + "@" + domain.capitalize()
    if kind == 2:
        return local.title() + "@" + domain
    return f" {email}"


def break_email(rng: np.random.Generator, email: str) -> str:
    """A value in an email field that fails EMAIL_RE whatever the case or surrounding spaces."""
    local, domain = email.split("@")
    while True:
        kind = int(rng.integers(5))
        if kind == 0:
            bad = local + domain                         # @ lost
        elif kind == 1:
            bad = local + "@" + domain.split(".")[0]     # no top-level domain
        elif kind == 2:
            bad = local + "@@" + domain
        elif kind == 3:
            bad = local[:2] + " " + local[2:] + "@" + domain
        else:
            bad = local + "@" + domain.replace(".", ",", 1)
        if not email_is_valid(bad):
            return bad


def email_is_valid(value: str) -> bool:
    return bool(EMAIL_RE.match(unicodedata.normalize("NFKC", value).strip()))
