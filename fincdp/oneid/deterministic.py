"""The deterministic stage: strong identifiers merge records, in priority order, without conflicts.

Records are numbered 0..n-1, oldest first; a cluster is named by its oldest record (its root), so the
identity that survives a merge is always the oldest, and a full rebuild names clusters as the
incremental runs did. Each priority level links the current clusters through the identifier values
of that level in one connected-components pass (scipy), so long chains of links cost nothing extra.

What stops a bad merge:
- hub limits: a value shared by more records than its type's `max_records` links nothing (reported);
- exclusive types (credit code, ID number): a level whose links would put two different values into
  one cluster has those links cut, one identifier value at a time, most specific value first; the
  stronger links of earlier levels stay; every cut is reported for review;
- reviewers' decisions: an approved pair is linked first, a rejected pair is never put together.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fincdp.oneid.rules import MergeRules

APPROVED = "review:approved"


@dataclass(frozen=True)
class Conflict:
    """A link that was cut: identifier `value` of `identifier_type` would have joined the clusters of
    records `record_a` and `record_b` (indices), which differ on `exclusive_type` (or a reviewer kept
    them apart: 'review:rejected')."""
    identifier_type: str
    value: str
    record_a: int
    record_b: int
    reason: str


@dataclass
class StrongResult:
    root: np.ndarray                                # per record: index of its cluster's oldest record
    joined_by: np.ndarray                           # per record: the identifier type that joined it, or None
    hubs: list[tuple[str, str, int]] = field(default_factory=list)    # (type, value, records) not used
    conflicts: list[Conflict] = field(default_factory=list)


def _codes(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    encoded = pc.dictionary_encode(array)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def resolve_strong(n_records: int, record: np.ndarray, identifier_type: pa.Array, value: pa.Array,
                   rules: MergeRules, *, approved: list[tuple[int, int]] = (),
                   rejected: list[tuple[int, int]] = (), counts_toward_hubs: np.ndarray | None = None
                   ) -> StrongResult:
    """Cluster records 0..n_records-1 on their key identifiers: (record[i], identifier_type[i], value[i])
    rows, values already normalised and valid as keys (fincdp.oneid.identifiers).

    `counts_toward_hubs` (per record, default all): which records count against a type's `max_records`.
    Observations of a person (web/app events) are not people: a visitor's fifty events with their own
    phone do not make that phone a switchboard."""
    record = np.asarray(record, dtype=np.int64)
    if len(record) == 0:  # no identifier links: only reviewers' approvals join records
        result = StrongResult(root=np.arange(n_records, dtype=np.int64),
                              joined_by=np.full(n_records, None, dtype=object))
        if approved:
            result.root = _link_pairs(result.root, np.array([a for a, _ in approved], dtype=np.int64),
                                      np.array([b for _, b in approved], dtype=np.int64), result.joined_by, APPROVED)
        return result
    types = pa.array(identifier_type, pa.string())
    type_code, type_names = _codes(types)
    key_code, keys = _codes(pc.binary_join_element_wise(types, pa.array(value, pa.string()), "\x1f"))
    type_names = type_names.to_pylist()
    n_keys = max(len(keys), 1)
    key_type = np.zeros(n_keys, dtype=np.int64)
    key_type[key_code] = type_code

    # One link per (record, value).
    pair = np.unique(record * n_keys + key_code)
    record, key_code = pair // n_keys, pair % n_keys
    key_records = np.bincount(key_code, minlength=n_keys) if counts_toward_hubs is None else \
        np.bincount(key_code, weights=np.asarray(counts_toward_hubs, dtype=np.int64)[record], minlength=n_keys
                    ).astype(np.int64)

    type_rules = [rules.rule(name) for name in type_names]
    strong = np.array([r.strength == "strong" for r in type_rules], dtype=bool)
    limit = np.array([r.max_records or np.iinfo(np.int64).max for r in type_rules], dtype=np.int64)
    hub = key_records > limit[key_type]
    result = StrongResult(root=np.arange(n_records, dtype=np.int64), joined_by=np.full(n_records, None, dtype=object))
    for k in np.flatnonzero(hub & strong[key_type]):
        t, v = keys[int(k)].as_py().split("\x1f", 1)
        result.hubs.append((t, v, int(key_records[k])))

    # Exclusive values per cluster, kept at the cluster's root index.
    exclusive = {t: np.full(n_records, -1, dtype=np.int64)
                 for t, r in enumerate(type_rules) if r.exclusive and r.strength == "strong"}
    for t, values in exclusive.items():
        sel = key_type[key_code] == t
        np.maximum.at(values, record[sel], key_code[sel])

    usable = strong[key_type[key_code]] & ~hub[key_code]
    label = result.root
    rejected = [(int(a), int(b)) for a, b in rejected]

    def key_text(k: int) -> tuple[str, str]:
        t, v = keys[k].as_py().split("\x1f", 1)
        return t, v

    levels = sorted({type_rules[t].priority for t in range(len(type_rules)) if strong[t]})
    if approved:
        a = np.array([p[0] for p in approved], dtype=np.int64)
        b = np.array([p[1] for p in approved], dtype=np.int64)
        label = _link_pairs(label, a, b, result.joined_by, APPROVED)
    for priority in levels:
        level_types = {t for t in range(len(type_rules)) if strong[t] and type_rules[t].priority == priority}
        sel = usable & np.isin(key_type[key_code], list(level_types))
        if not sel.any():
            continue
        rec, code = record[sel], key_code[sel]
        roots_of_links = label[rec]
        graph = coo_matrix((np.ones(len(rec), dtype=np.int8), (roots_of_links, n_records + code)),
                           shape=(n_records + n_keys, n_records + n_keys))
        n_comp, comp = connected_components(graph, directed=False)
        roots = np.unique(label)
        comp_of_root = comp[roots]

        conflicted = np.zeros(n_comp, dtype=bool)
        for values in exclusive.values():
            v = values[roots]
            has = v >= 0
            low = np.full(n_comp, np.iinfo(np.int64).max)
            high = np.full(n_comp, -1)
            np.minimum.at(low, comp_of_root[has], v[has])
            np.maximum.at(high, comp_of_root[has], v[has])
            conflicted |= (high >= 0) & (low != high)
        for a, b in rejected:
            if comp[label[a]] == comp[label[b]] and label[a] != label[b]:
                conflicted[comp[label[a]]] = True

        first = np.full(n_comp, n_records, dtype=np.int64)
        np.minimum.at(first, comp_of_root, roots)
        new_root = np.arange(n_records, dtype=np.int64)
        clean = ~conflicted[comp_of_root]
        new_root[roots[clean]] = first[comp_of_root[clean]]
        level_name = "|".join(sorted(type_names[t] for t in level_types))
        if conflicted.any():
            bad_links = conflicted[comp[roots_of_links]]
            _cut_conflicts(new_root, roots_of_links[bad_links], code[bad_links], key_records, exclusive,
                           rejected, label, key_text, result.conflicts)
        for values in exclusive.values():
            moved = roots[new_root[roots] != roots]
            np.maximum.at(values, new_root[moved], values[moved])
        changed = new_root[label] != label
        result.joined_by[changed & (result.joined_by == None)] = level_name  # noqa: E711 (numpy)
        label = new_root[label]
    result.root = label
    return result


def _link_pairs(label: np.ndarray, a: np.ndarray, b: np.ndarray, joined_by: np.ndarray, why: str) -> np.ndarray:
    n = len(label)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (label[a], label[b])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = np.full(n, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    new = first[comp[label]]
    joined_by[(new != label) & (joined_by == None)] = why  # noqa: E711
    return new


class OldestRoots:
    """Disjoint sets of identity roots where each join names the root that stays (the older record, so
    that identities keep their id); find() compresses paths as it goes."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    def join(self, gone: int, keep: int) -> None:
        self.parent[gone] = keep

    def __bool__(self) -> bool:
        return bool(self.parent)


def _cut_conflicts(new_root: np.ndarray, link_roots: np.ndarray, link_codes: np.ndarray, key_records: np.ndarray,
                   exclusive: dict[int, np.ndarray], rejected: list[tuple[int, int]], label: np.ndarray,
                   key_text, conflicts: list[Conflict]) -> None:
    """Union the clusters of conflicting components value by value (most specific value first),
    skipping any value whose link would join different exclusive values or a rejected pair."""
    joins = OldestRoots()
    find = joins.find
    members: dict[int, set[int]] = defaultdict(set)
    for r in set(link_roots.tolist()):
        members[r].add(r)
    values = {t: {r: int(v[r]) for r in members if v[r] >= 0} for t, v in exclusive.items()}
    rejected_roots = [(int(label[a]), int(label[b])) for a, b in rejected]
    by_code: dict[int, list[int]] = defaultdict(list)
    for r, c in zip(link_roots.tolist(), link_codes.tolist()):
        by_code[c].append(r)
    for c in sorted(by_code, key=lambda c: (key_records[c], c)):
        group = sorted(set(by_code[c]))
        for other in group[1:]:
            x, y = find(group[0]), find(other)
            if x == y:
                continue
            reason = None
            for t, held in values.items():
                if x in held and y in held and held[x] != held[y]:
                    reason = f"different {key_text(held[x])[0]}"
            for a, b in rejected_roots:
                if {find(a), find(b)} == {x, y}:
                    reason = "review:rejected"
            if reason:
                t, v = key_text(c)
                conflicts.append(Conflict(t, v, x, y, reason))
                continue
            keep, gone = min(x, y), max(x, y)
            joins.join(gone, keep)
            for held in values.values():
                if gone in held:
                    held[keep] = held.pop(gone)
    for r in members:
        new_root[r] = find(r)
