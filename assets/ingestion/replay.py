"""Replaying dead letters after a fix: each open dead letter of a tenant and date goes through the
same landing path again; those that now pass land, the rest stay open with the new reason.
Idempotent: a replayed dead letter is closed, and landing upserts by source id."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timezone

from assets.ingestion import store
from assets.ingestion.landing import process
from assets.ingestion.specs import spec_for
from fincdp.pii import TenantCipher
from resources.warehouse import WarehouseSession

# A whole file that could not be read is fixed by dropping a corrected file, not by replay.
NOT_REPLAYABLE = ("file_unreadable",)


def replay_dead_letters(session: WarehouseSession, cipher: TenantCipher, business_date: date, *,
                        source: str | None = None, entity: str | None = None) -> list[dict]:
    store.ensure_meta(session)
    sql = (f"select dead_letter_id, source, entity, payload_enc from {store.DEAD_LETTERS} "
           f"where business_date = ? and status = 'open' and error_type not in ({', '.join('?' * len(NOT_REPLAYABLE))})")
    params: list = [business_date, *NOT_REPLAYABLE]
    if source:
        sql, params = sql + " and source = ?", params + [source]
    if entity:
        sql, params = sql + " and entity = ?", params + [entity]
    grouped: dict[tuple[str, str], list[tuple[str, object]]] = defaultdict(list)
    for dead_id, src, ent, payload_enc in session.rows(sql + " order by received_at, dead_letter_id", params):
        payload = json.loads(cipher.decrypt(store.DEAD_LETTER_AAD, payload_enc))
        if isinstance(payload, str):  # a line that was not JSON: it may parse now
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
        grouped[(src, ent)].append((dead_id, payload))

    results = []
    for (src, ent), items in sorted(grouped.items()):
        spec = spec_for(src, ent)
        batch = store.start_batch(session, spec, business_date, kind="replay",
                                  detail=f"replay {datetime.now(timezone.utc).isoformat()}", replace_partition=False)
        ctx = store.landing_context(session, cipher, batch)
        ids = [dead_id for dead_id, _ in items]
        processed = process(spec, [payload for _, payload in items], ids, ctx)
        still_failing = {d.record_ref: d for d in processed.dead}
        now = datetime.now(timezone.utc)
        # Land what passes without writing new dead letters; the open ones are updated in place.
        store.write_page(session, batch, replace(processed, dead=[], received=processed.landed), cipher,
                         next_cursor=None)
        with session.transaction():
            for dead_id in ids:
                if dead_id in still_failing:
                    failure = still_failing[dead_id]
                    session.execute(f"update {store.DEAD_LETTERS} set attempts = attempts + 1, reason = ?, "
                                    "field = ?, error_type = ? where dead_letter_id = ?",
                                    [failure.reason, failure.field, failure.error_type, dead_id])
                else:
                    session.execute(f"update {store.DEAD_LETTERS} set status = 'replayed', attempts = attempts + 1, "
                                    "resolved_at = ?, resolved_by_batch = ? where dead_letter_id = ?",
                                    [now, batch.batch_id, dead_id])
            session.execute(f"update {store.BATCHES} set received = ?, dead_lettered = ? where batch_id = ?",
                            [len(ids), len(still_failing), batch.batch_id])
            store.finish_batch(session, batch)
        results.append({"source": src, "entity": ent, "replayed": len(ids),
                        "landed": len(ids) - len(still_failing), "still_failing": len(still_failing),
                        "batch_id": batch.batch_id})
    return results
