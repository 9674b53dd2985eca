"""Weak contact points a name corroborates: an employee-typed mobile joins the identity that owns it.

A sales rep adds a customer on WeCom, where the customer shows a nickname ('Sunny', '静待花开'), and
types the customer's mobile and a remark ('蔡经理', '袁玉兰-赛凯'). That mobile is low-trust (someone
else typed it, maybe wrongly), so it never merges on its own (dwd_identifiers marks it weak). It joins
the one other identity holding the same value as a strong key when a name corroborates it:

- one of that identity's names is a name in the record's own name or remarks ('袁玉兰-赛凯': 袁玉兰), or
- the record names its surname only ('蔡经理', '老蔡' for 蔡荣) and no name there contradicts: a name
  with the same surname but not the identity's ('王伟' against 王芳) refuses the link.

Address forms are taken off first (老/小/阿 before a surname; 总, 经理, 老师, 先生, 女士 ... after it).
Names of another surname are ignored: a remark also holds company brands, and a WeChat nickname is
whatever its owner likes. Never joined: a value strong in more than one other identity (ambiguous), two
identities holding different exclusive identifiers (ID numbers), a pair a reviewer kept apart. Refused
links are reported for review; a joined identity gets the type's `corroborated` confidence.
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from fincdp.oneid.deterministic import OldestRoots
from fincdp.oneid.rules import MergeRules
from fincdp.pii import name_key

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_PREFIXES = ("老", "小", "阿")
# Longest first: '总监' before '总'.
_SUFFIXES = tuple(sorted(("总", "总监", "经理", "老师", "先生", "女士", "小姐", "主任", "工", "董", "董事长",
                          "哥", "姐", "局", "处", "科长", "行长", "律师", "会计", "老板", "医生"), key=len, reverse=True))
REJECTED = "review:rejected"


@dataclass(frozen=True)
class Refusal:
    """A weak value on `record` that did not join the identity of `holder` (its oldest record holding the
    value as a strong key): 'different name', 'no name agrees', 'different <exclusive type>',
    review:rejected, or a confidence under the tenant's merge threshold."""
    identifier_type: str
    value: str
    record: int
    holder: int
    reason: str


@dataclass
class CorroboratedResult:
    root: np.ndarray
    confidence: np.ndarray
    evidence: np.ndarray
    joined: int = 0                      # identities joined to another by a corroborated weak value
    refused: list[Refusal] = field(default_factory=list)


@lru_cache(maxsize=1 << 16)  # remarks repeat ('王总', '张经理'): each distinct text is read once
def name_tokens(text: str | None) -> frozenset[str]:
    """The Chinese names a text may hold, address forms taken off: '蔡经理' -> {'蔡'},
    '袁玉兰-赛凯' -> {'袁玉兰', '赛凯'}, '老王' -> {'王'}; Latin words and digits are not names here."""
    if not text:
        return frozenset()
    out = set()
    for run in _CJK_RUN.findall(unicodedata.normalize("NFKC", text)):
        for suffix in _SUFFIXES:
            if len(run) > len(suffix) and run.endswith(suffix):
                run = run[:-len(suffix)]
                break
        if len(run) > 1 and run.startswith(_PREFIXES):
            run = run[1:]
        out.add(run)
    return frozenset(out)


@lru_cache(maxsize=1 << 16)
def _shown_name_tokens(name: str | None) -> frozenset[str]:
    """The names in a record's name as shown: spaces and dots inside a name are no separators ('杨 宁')."""
    return name_tokens(name_key(name)) if name else frozenset()


def agreement(tokens: set[str], names: set[str]) -> str:
    """'name' (a full name agrees), 'surname' (only a surname is named, nothing contradicts it),
    'different name' (a name of the same surname that is not one of `names`) or 'none'."""
    if tokens & names:
        return "name"
    surname = contradiction = False
    for t in tokens:
        for n in names:
            if n.startswith(t):
                surname = True
            elif t[0] == n[0]:
                contradiction = True
    return "different name" if contradiction else "surname" if surname else "none"


def link_corroborated(root: np.ndarray, confidence: np.ndarray, evidence: np.ndarray,
                      weak: Sequence[tuple[int, str, str]], strong: Sequence[tuple[int, str, str]],
                      names: dict[int, str], remarks: dict[int, list[str]], rules: MergeRules, *,
                      rejected: Sequence[tuple[int, int]] = ()) -> CorroboratedResult:
    """Join identities (`root`: per record, its identity's oldest record) through weak values that are
    another identity's strong key, when a name corroborates the link.

    `weak`: (record, identifier_type, value) weak rows of people records; types whose rule has no
    `corroborated` confidence are ignored. `strong`: (record, identifier_type, value) strong rows (the
    keys, and exclusive identifiers). `names`: per people record, its name as shown; `remarks`: per
    record, what employees noted about it (WeCom remarks). `rejected`: record pairs a reviewer kept apart."""
    root = np.asarray(root, dtype=np.int64).copy()
    confidence = np.asarray(confidence, dtype=np.float64).copy()
    evidence = np.asarray(evidence, dtype=object).copy()
    result = CorroboratedResult(root=root, confidence=confidence, evidence=evidence)
    trust = {t: rules.rule(t).corroborated for t in {t for _, t, _ in weak}
             if rules.rule(t).corroborated is not None}
    exclusive_types = {t for t in {t for _, t, _ in strong} if rules.rule(t).exclusive}
    wanted = {(t, v) for _, t, v in weak if t in trust}
    if not wanted:
        return result
    holders: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)  # value -> identity -> its oldest holder
    exclusive: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record, t, v in strong:
        r = int(root[record])
        if (t, v) in wanted:
            held = holders[(t, v)]
            held[r] = min(held.get(r, record), record)
        if t in exclusive_types:
            exclusive[r][t].add(v)
    known: dict[int, set[str]] = defaultdict(set)  # identity -> its records' full names (remarks not included)
    for record, name in names.items():
        known[int(root[record])] |= {t for t in _shown_name_tokens(name) if len(t) > 1}
    apart: dict[int, set[int]] = defaultdict(set)
    for a, b in rejected:
        ra, rb = int(root[a]), int(root[b])
        apart[ra].add(rb)
        apart[rb].add(ra)

    # union-find over identities; a group's facts (names, exclusive ids, kept-apart groups) kept at its root
    joins = OldestRoots()
    find = joins.find
    joined_by: dict[int, tuple[int, str, float]] = {}  # identity -> (group it joined, evidence, confidence)

    # oldest record first, so a rebuild joins the same identities in the same order
    for record, t, v in sorted({(int(r), t, v) for r, t, v in weak if (t, v) in wanted}):
        own = find(int(root[record]))
        others = {}
        for identity, holder in holders.get((t, v), {}).items():
            group = find(identity)
            if group != own:
                others[group] = min(others.get(group, holder), holder)
        if len(others) != 1:  # nobody else holds it, or it is ambiguous
            continue
        (other, holder), = others.items()
        reason = None
        for kind in sorted(set(exclusive.get(own, {})) & set(exclusive.get(other, {}))):
            if not exclusive[own][kind] & exclusive[other][kind]:
                reason = f"different {kind}"
        if reason is None and any(find(x) == other for x in apart.get(own, ())):
            reason = REJECTED
        if reason is None and trust[t] < rules.threshold:
            reason = f"confidence {trust[t]} is under the merge threshold {rules.threshold}"
        if reason is None:
            written = _shown_name_tokens(names.get(record))
            written |= {x for w in remarks.get(record, ()) for x in name_tokens(w)}
            agreed = agreement(written, known.get(other, set()))
            if agreed not in ("name", "surname"):
                reason = "no name agrees" if agreed == "none" else agreed
        if reason:
            result.refused.append(Refusal(t, v, record, holder, reason))
            continue
        keep, gone = min(own, other), max(own, other)
        joins.join(gone, keep)
        joined_by[gone] = (keep, f"{t} typed by an employee, {agreed} agrees", trust[t])
        known[keep] |= known.pop(gone, set())
        for kind, values in exclusive.pop(gone, {}).items():
            exclusive[keep][kind] |= values
        apart[keep] |= apart.pop(gone, set())
        result.joined += 1
    if not joins:
        return result
    # each joined identity's records: the weakest link on their way to the surviving identity
    link: dict[int, tuple[str, float]] = {}
    for identity in joined_by:
        path, x = [], identity
        while x in joined_by:
            path.append(joined_by[x])
            x = joined_by[x][0]
        link[identity] = (path[0][1], min(c for _, _, c in path))
    moved = np.flatnonzero(np.isin(root, np.fromiter(link, dtype=np.int64)))
    labels, weakest = zip(*(link[r] for r in root[moved].tolist())) if len(moved) else ((), ())
    confidence[moved] = np.minimum(confidence[moved], np.array(weakest, dtype=np.float64))
    evidence[moved] = [label if e in (None, "self") else f"{label}; {e}"
                       for label, e in zip(labels, evidence[moved].tolist())]
    result.root = root.copy()
    result.root[moved] = [find(r) for r in root[moved].tolist()]
    return result
