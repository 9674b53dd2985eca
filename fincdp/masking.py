"""Display masks for personal data shown outside the encrypted store (search indexes, previews).

A masked value identifies nobody on its own and is only for a person looking at a screen; matching
uses the per-tenant tokens (fincdp.pii). Masks are deterministic, so a reindex gives the same value.
"""
from __future__ import annotations

import unicodedata


def mask_name(value: str | None) -> str | None:
    """Keep the first character of each word, star the rest: 张三丰 -> 张**, John Smith -> J*** S****."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return None
    return " ".join(word[0] + "*" * (len(word) - 1) for word in text.split())

