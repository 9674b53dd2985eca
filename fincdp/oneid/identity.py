"""Stable OneIDs and their history.

A cluster's one_id is minted from its oldest record (records keep the order in which they were first
seen), so: a one_id survives every run in which its oldest record stays in the cluster; on a merge the
oldest cluster's id survives; on a split the part without that record gets a newly minted id; and a
full rebuild over the same record order names every cluster as the incremental runs did. Every merge
and split is written to the history with the rule that caused it.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

PREFIX = {"person": "P", "enterprise": "E"}


def mint(tenant_id: str, entity_type: str, record_key: str) -> str:
    """A one_id from the cluster's oldest record; the tenant is hashed in, so equal records of two
    tenants never share an id."""
    digest = hashlib.sha256(f"{tenant_id}\x1f{entity_type}\x1f{record_key}".encode()).hexdigest()
    return PREFIX[entity_type] + digest[:20]


@dataclass(frozen=True)
class Change:
    action: str          # merge | split
    one_id: str          # the surviving (merge) or newly minted (split) id
    other_one_id: str    # the id absorbed (merge) or split from (split)
    records: int         # records that moved
    rule: str            # what joined them (merge) or why they parted (split)


def changes(previous: dict[str, str], current: dict[str, str], joined_by: dict[str, str]) -> list[Change]:
    """Merges and splits between two assignments record_key -> one_id. Records new in `current` or
    gone from it are not changes of identity."""
    moved: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record, old in previous.items():
        new = current.get(record)
        if new is not None and new != old:
            moved[(old, new)].append(record)
    surviving, existed = set(current.values()), set(previous.values())
    found = []
    for (old, new), records in sorted(moved.items()):
        if new in existed and old not in surviving:  # `old` was absorbed by an older identity
            rule = sorted({joined_by.get(r) or "unknown" for r in records})[0]
            found.append(Change("merge", new, old, len(records), rule))
        else:  # these records left `old`: for a new identity (minted) or another existing one
            found.append(Change("split", new, old, len(records), "links removed or cut"))
    return found
