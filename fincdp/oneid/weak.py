"""Weak-id attachment: a device (or cookie) joins the identities it was seen with when they complement
each other, after the strong and probabilistic stages.

A visitor logs in with their mobile one day and with their e-mail the next, on the same phone: the two
logins resolve to two identities (each a strong key of its own), and only the device says they are one
person. Devices are also shared (an office PC, a family tablet), so a device links nothing unless:

- it was seen with at most its type's `max_identities` identities (`None`: the type never attaches);
- no two of those identities contradict each other: two different values of an exclusive type (ID
  number, credit code), two different sets of strong mobiles or e-mails, two different names
  (records' name keys, exact), or a pair a reviewer kept apart. One contradiction and the device is
  taken as shared: it attaches nothing, and it is reported.

So a device only completes a person (one identity knows the mobile, the other the e-mail); two people
who each typed their own mobile on one PC stay two. The identity that survives is the oldest; the others
join with confidence `WEAK_CONFIDENCE` and evidence `device` (the identifier type).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from fincdp.oneid.deterministic import OldestRoots
from fincdp.oneid.rules import MergeRules

# The confidence of an identity joined by a weak identifier alone: under a strong key's 1.0.
WEAK_CONFIDENCE = 0.9


@dataclass(frozen=True)
class Refusal:
    """A weak identifier value that attached nothing: seen with `identities` identities, too many for its
    type (`reason` 'shared by N identities') or contradicting each other ('different name', ...)."""
    identifier_type: str
    value: str
    identities: int
    reason: str


@dataclass
class WeakResult:
    root: np.ndarray             # per record: the identity's oldest record, after the weak links
    confidence: np.ndarray       # per record
    evidence: np.ndarray         # per record
    attached: int = 0            # identities joined to an older one by a weak identifier
    refused: list[Refusal] = field(default_factory=list)


def attach_weak(root: np.ndarray, confidence: np.ndarray, evidence: np.ndarray, weak: list[tuple[int, str, str]],
                facts: list[tuple[int, str, str]], rules: MergeRules, *,
                rejected: list[tuple[int, int]] = ()) -> WeakResult:
    """Join identities (`root`: per record, its identity's oldest record) through weak identifiers.

    `weak`: (record, identifier_type, value) rows; types whose rule has no `max_identities` are ignored.
    `facts`: (record, kind, value) rows an identity must not hold two different sets of (exclusive ids,
    strong mobiles and e-mails, name keys). `rejected`: record pairs a reviewer kept apart."""
    root = np.asarray(root, dtype=np.int64).copy()
    confidence, evidence = np.asarray(confidence, dtype=np.float64).copy(), np.asarray(evidence, dtype=object).copy()
    result = WeakResult(root=root, confidence=confidence, evidence=evidence)
    groups: dict[tuple[str, str], set[int]] = defaultdict(set)
    for record, identifier_type, value in weak:
        if rules.rule(identifier_type).max_identities is not None:
            groups[(identifier_type, value)].add(int(root[record]))
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        return result

    touched = set().union(*groups.values())
    held: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record, kind, value in facts:
        r = int(root[record])
        if r in touched:
            held[r][kind].add(value)
    apart: dict[int, set[int]] = defaultdict(set)
    for a, b in rejected:
        ra, rb = int(root[a]), int(root[b])
        if ra != rb:
            apart[ra].add(rb)
            apart[rb].add(ra)

    joins = OldestRoots()
    find = joins.find

    def contradiction(x: int, y: int) -> str | None:
        hx, hy = held.get(x, {}), held.get(y, {})
        for kind in sorted(set(hx) & set(hy)):
            if hx[kind] and hy[kind] and not hx[kind] & hy[kind]:
                return f"different {kind}"
        if any(find(o) == y for o in apart.get(x, ())):
            return "review:rejected"
        return None

    # values in a fixed order (oldest identity first), so a rebuild joins the same identities
    for (identifier_type, value), identities in sorted(groups.items(), key=lambda kv: (min(kv[1]), kv[0])):
        limit = rules.rule(identifier_type).max_identities
        if len(identities) > limit:
            result.refused.append(Refusal(identifier_type, value, len(identities),
                                          f"shared by {len(identities)} identities (limit {limit})"))
            continue
        current = sorted({find(i) for i in identities})
        reason = next((why for x, y in _pairs(current) if (why := contradiction(x, y))), None)
        if reason:
            result.refused.append(Refusal(identifier_type, value, len(identities), reason))
            continue
        keep = current[0]
        for gone in current[1:]:
            joins.join(gone, keep)
            for kind, values in held.pop(gone, {}).items():
                held[keep][kind] |= values
            apart[keep] |= apart.pop(gone, set())
            joined = root == gone
            confidence[joined] = np.minimum(confidence[joined], WEAK_CONFIDENCE)
            own = joined & (np.arange(len(root)) == gone)
            evidence[own] = identifier_type
            others = joined & ~own
            evidence[others] = [f"{identifier_type}; {e}" if e else identifier_type for e in evidence[others].tolist()]
            result.attached += 1
    if joins:
        roots = np.unique(root)
        final = np.array([find(int(r)) for r in roots.tolist()], dtype=np.int64)
        result.root = final[np.searchsorted(roots, root)]
    return result


def _pairs(items: list[int]):
    for i, x in enumerate(items):
        for y in items[i + 1:]:
            yield x, y
