"""Org history as a slowly changing table: one row per (org, member) and version of its department,
title, leader and status, with valid_from / valid_to (open: NULL). Re-running a date changes nothing;
running an earlier date after a later one never rewrites the later versions."""
from __future__ import annotations

from datetime import date

import pyarrow as pa

TRACKED = ("department_id", "position", "reports_to", "is_active")
HISTORY_SCHEMA = pa.schema([("org", pa.string()), ("member", pa.string()), ("department_id", pa.int64()),
                            ("position", pa.string()), ("reports_to", pa.string()), ("is_active", pa.bool_()),
                            ("valid_from", pa.date32()), ("valid_to", pa.date32())])


def update_history(previous: list[dict], current: list[dict], as_of: date) -> list[dict]:
    """previous: history rows; current: {org, member, *TRACKED} as of `as_of`. A member missing from
    `current` has its open version closed (it left the org or the account)."""
    rows = [dict(r) for r in previous]
    open_rows = {(r["org"], r["member"]): r for r in rows if r["valid_to"] is None}
    latest = max((d for r in rows for d in (r["valid_from"], r["valid_to"]) if d is not None), default=None)
    if latest is not None and latest > as_of:
        return rows  # a later date was already recorded: history only moves forward
    seen = set()
    for c in current:
        key = (c["org"], c["member"])
        seen.add(key)
        now = {k: c.get(k) for k in TRACKED}
        old = open_rows.get(key)
        if old is not None and all(old[k] == now[k] for k in TRACKED):
            continue
        if old is not None:
            if old["valid_from"] == as_of:  # changed again on the same date: replace that version
                old.update(now)
                continue
            old["valid_to"] = as_of
        rows.append({"org": key[0], "member": key[1], **now, "valid_from": as_of, "valid_to": None})
    for key, old in open_rows.items():
        if key not in seen:
            old["valid_to"] = as_of
    return sorted(rows, key=lambda r: (r["org"], r["member"], r["valid_from"]))
