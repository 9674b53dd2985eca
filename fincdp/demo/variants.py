"""How one person's name, title or company is written in different systems.

Each function takes the canonical value and a numpy Generator and returns what a source shows.
Identifier variants (mobile, email, codes) live in `identifiers`.
"""
from __future__ import annotations

import numpy as np

from fincdp.demo import pools as P

_ALIASES: dict[str, tuple[str, ...]] = {t: a for t, _, a in P.TOP_TITLES}
for _level in P.TITLES.values():
    for _t, _a in _level:
        _ALIASES[_t] = _a


def name(rng: np.random.Generator, canonical: str, dotted: bool, typo: float, other: float = 0.0) -> str:
    """Typos (homophones, traditional forms) with probability `typo`; other spellings (a space in
    the name, a different interpunct for dotted names) with probability `other`."""
    if dotted and rng.random() < max(other, 0.3):
        sep = P.DOT_VARIANTS[1 + int(rng.integers(len(P.DOT_VARIANTS) - 1))]
        return canonical.replace("·", sep)
    r = rng.random()
    if r < typo:
        chars = list(canonical)
        if dotted:
            return canonical.replace("·", "")
        if rng.random() < 0.2 and any(c in P.TRADITIONAL for c in chars):
            return "".join(P.TRADITIONAL.get(c, c) for c in chars)
        spots = [i for i, c in enumerate(chars) if c in P.TYPOS and i > 0] or \
                [i for i, c in enumerate(chars) if c in P.TYPOS]
        if spots:
            i = spots[int(rng.integers(len(spots)))]
            chars[i] = P.TYPOS[chars[i]]
            return "".join(chars)
        return canonical
    if r < typo + other and not dotted and len(canonical) == 2:
        return canonical[0] + " " + canonical[1]
    return canonical


def title(rng: np.random.Generator, canonical: str, alias: float) -> str:
    aliases = _ALIASES.get(canonical, ())
    if aliases and rng.random() < alias:
        return aliases[int(rng.integers(len(aliases)))]
    return canonical


def half_width(text: str) -> str:
    return text.replace("（", "(").replace("）", ")")


def without_suffix(legal: str) -> str:
    for suffix in P.LEGAL_SUFFIXES:
        if legal.endswith(suffix):
            return legal[: -len(suffix)]
    return legal


def company(rng: np.random.Generator, legal: str, short: str, brand: str,
            weights: tuple[float, float, float, float, float]) -> str:
    """One of: legal name, half-width brackets, without 有限公司, short name, brand (weights in order)."""
    w = np.asarray(weights, float)
    k = int(rng.choice(5, p=w / w.sum()))
    if k == 1:
        if "（" in legal:
            return half_width(legal)
        stem = without_suffix(legal)
        return f"{stem} {legal[len(stem):]}"
    if k == 2:
        return without_suffix(legal)
    if k == 3:
        return short
    if k == 4:
        return brand
    return legal
