"""Seniority from job titles: a keyword table per sector, the longest keyword wins, manual overrides.

Titles arrive noisy (全角/半角, spaces, English abbreviations, 财务部经理 vs 财务经理), so matching is on
keywords rather than whole titles; titles no table knows are counted for whoever maintains the table.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from fincdp.boss.config import BossConfig


def normalise(title: str | None) -> str:
    """NFKC (full-width to half-width), lower case, no whitespace."""
    if not title:
        return ""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(title))).lower()


@dataclass(frozen=True)
class TitleLevel:
    level: str | None       # None: no table knows the title
    table: str              # override | corporate | public | none
    keyword: str            # what matched ("" for none)
    function: str | None    # general, finance, it, ... (None: unknown)


def _compile(keyword: str) -> re.Pattern:
    kw = normalise(keyword)
    if kw.isascii():  # whole words: "it" must not match inside "audit"
        return re.compile(r"(?<![a-z])" + re.escape(kw) + r"(?![a-z])")
    return re.compile(re.escape(kw))


class TitleMapper:
    """`level(title)` per the config's tables; `unknown` counts titles that matched nothing."""

    def __init__(self, config: BossConfig):
        titles = config["titles"]
        self.config = config
        self._tables = {name: [(normalise(k), _compile(k), lv) for lv, kws in titles[name].items() for k in kws]
                        for name in ("corporate", "public")}
        self._overrides = {normalise(t): lv for t, lv in (titles["overrides"] or {}).items()}
        self._senior_prefixes = tuple(normalise(p) for p in titles["senior_prefixes"])
        self._public_kw = [normalise(k) for k in titles["public_sector_keywords"]]
        self._functions = [(normalise(k), _compile(k), fn) for fn, kws in config["functions"].items() for k in kws]
        self.unknown: Counter = Counter()
        self._cache: dict[tuple[str | None, bool], TitleLevel] = {}

    def is_public_sector(self, organisation_name: str | None) -> bool:
        name = normalise(organisation_name)
        return bool(name) and any(k in name for k in self._public_kw)

    def _best(self, table: str, title: str) -> tuple[str, str] | None:
        hits = [(len(kw), -self.config.rank(lv), kw, lv) for kw, pattern, lv in self._tables[table] if pattern.search(title)]
        if not hits:
            return None
        _, _, kw, lv = max(hits)  # longest keyword; on a tie, the higher level
        if lv == "entry" and title.startswith(self._senior_prefixes):
            lv = "senior"
        return kw, lv

    def function(self, title: str | None) -> str | None:
        t = normalise(title)
        hits = [(len(kw), kw, fn) for kw, pattern, fn in self._functions if pattern.search(t)]
        return max(hits)[2] if hits else None

    def level(self, title: str | None, *, public_sector: bool = False) -> TitleLevel:
        key = (title, public_sector)
        got = self._cache.get(key)
        if got is None:  # titles repeat a lot: match each distinct one once
            got = self._cache[key] = self._level(title, public_sector)
        if got.table == "none" and got.keyword == "" and normalise(title):
            self.unknown[normalise(title)] += 1
        return got

    def _level(self, title: str | None, public_sector: bool) -> TitleLevel:
        t = normalise(title)
        fn = self.function(title)
        if not t:
            return TitleLevel(None, "none", "", None)
        if t in self._overrides:
            return TitleLevel(self._overrides[t], "override", t, fn)
        order = ("public", "corporate") if public_sector else ("corporate", "public")
        for table in order:
            best = self._best(table, t)
            if best:
                return TitleLevel(best[1], table, best[0], fn)
        return TitleLevel(None, "none", "", fn)

    def unknown_titles(self) -> list[tuple[str, int]]:
        """Titles no table matched, most frequent first: candidates for the mapping table."""
        return sorted(self.unknown.items(), key=lambda kv: (-kv[1], kv[0]))
