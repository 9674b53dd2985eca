"""Evaluate a tenant's segments for a business date and keep membership, history and snapshots.

Tables (layer `segments`, written through Warehouse.writer on every engine):
- segments.membership: the current members of every segment of the tenant, as of the business date
  of the last run (segment_id, segment_version, one_id, entered_at, as_of_date). A contract: the
  Elasticsearch membership index reads these columns.
- segments.membership_history: one row per entry or exit (segment_id, segment_version, one_id,
  change 'enter'|'exit', changed_at, business_date): "who joined today" is
  `where change = 'enter' and business_date = D`.
- segments.static_snapshots: the members of a static segment, kept per (segment_id,
  segment_version, snapshot_date). A static segment is evaluated once per version, on the first
  business date it runs for; later runs reuse that snapshot, a new version takes a new one.

Members come from the compiled SQL on the warehouse engine; only the comparison of today's member
set with yesterday's (entries and exits, a set difference) runs here, in an in-memory DuckDB over
Arrow. Re-running a business date replaces that date's history rows (keeping the timestamps of
changes that happen again), so it adds nothing twice.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from fincdp.segments.compiler import Compiled, compile_segment
from fincdp.segments.language import Segment

MEMBERSHIP = "segments.membership"
HISTORY = "segments.membership_history"
SNAPSHOTS = "segments.static_snapshots"

_TS = pa.timestamp("us", tz="UTC")
MEMBERSHIP_SCHEMA = pa.schema([("segment_id", pa.string()), ("segment_version", pa.int32()),
                               ("one_id", pa.string()), ("entered_at", _TS), ("as_of_date", pa.date32())])
HISTORY_SCHEMA = pa.schema([("segment_id", pa.string()), ("segment_version", pa.int32()), ("one_id", pa.string()),
                            ("change", pa.string()), ("changed_at", _TS), ("business_date", pa.date32())])
SNAPSHOT_SCHEMA = pa.schema([("segment_id", pa.string()), ("segment_version", pa.int32()),
                             ("snapshot_date", pa.date32()), ("one_id", pa.string()), ("taken_at", _TS)])


class SegmentEvaluationError(RuntimeError):
    pass


@dataclass
class SegmentResult:
    segment: Segment
    compiled: Compiled
    size: int = 0
    entries: int = 0
    exits: int = 0
    seconds: float = 0.0
    snapshot_date: dt.date | None = None   # static segments: the snapshot in use
    evaluated: bool = True                 # False when a static segment reused its snapshot

    def metadata(self) -> dict:
        meta = {"segment_id": self.segment.id, "segment_version": self.segment.version, "kind": self.segment.kind,
                "size": self.size, "entries": self.entries, "exits": self.exits,
                "evaluated": self.evaluated, "evaluation_seconds": round(self.seconds, 3),
                "tables_read": ", ".join(self.compiled.tables), "definition": self.segment.source}
        if self.snapshot_date is not None:
            meta["snapshot_date"] = self.snapshot_date.isoformat()
        return meta


def evaluate_members(session, compiled: Compiled) -> pa.Array:
    """The segment's one_ids on the session's engine (the compiled SQL runs there, set-based)."""
    try:
        table = session.arrow(compiled.sql)
    except Exception as exc:
        tenant = getattr(getattr(session, "tenant", None), "id", "?")
        raise SegmentEvaluationError(
            f"tenant {tenant!r}, segment {compiled.segment.id!r} v{compiled.segment.version} "
            f"({compiled.segment.source}): the query failed: {exc}") from exc
    return table.column(0).combine_chunks().cast(pa.string())


def _read(session, table: str, schema: pa.Schema) -> pa.Table:
    """A state table as Arrow with our schema (engines hand back their own int/timestamp types)."""
    if not session.table_exists(table):
        return schema.empty_table()
    data = session.arrow(f"select {', '.join(schema.names)} from {table}")
    columns = []
    for f in schema:
        col = data.column(f.name).combine_chunks()
        if pa.types.is_timestamp(f.type) and pa.types.is_timestamp(col.type) and col.type.tz is None:
            col = col.cast(pa.timestamp(col.type.unit, tz="UTC"))  # naive values are UTC (MySQL DATETIME)
        columns.append(col.cast(f.type))
    return pa.table(columns, schema=schema)


def update_segments(session, segments: list[Segment], business_date: dt.date,
                    now: dt.datetime | None = None) -> list[SegmentResult]:
    """Evaluate the tenant's segments for business_date and rewrite the three state tables.
    `session` is a Warehouse writer session of the tenant (DuckDB, MySQL or ClickHouse)."""
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    history = _read(session, HISTORY, HISTORY_SCHEMA)
    snapshots = _read(session, SNAPSHOTS, SNAPSHOT_SCHEMA)
    local = duckdb.connect()   # set arithmetic over Arrow, engine-independent
    local.register("history", history)
    local.register("snapshots", snapshots)
    results, new_snapshots, members_by_segment, retaken = [], [], [], []
    for segment in segments:
        compiled = compile_segment(segment, business_date)
        result = SegmentResult(segment, compiled)
        started = time.perf_counter()
        members = None
        if segment.static:
            kept = local.execute(
                "select max(snapshot_date) from snapshots where segment_id = ? and segment_version = ? "
                "and snapshot_date < ?", [segment.id, segment.version, business_date]).fetchall()[0][0]
            if kept is not None:  # this version's snapshot exists: keep it
                members = local.sql(
                    "select one_id from snapshots where segment_id = ? and segment_version = ? and snapshot_date = ?",
                    params=[segment.id, segment.version, kept]).to_arrow_table().column(0).combine_chunks()
                result.snapshot_date, result.evaluated = kept, False
        if members is None:
            members = evaluate_members(session, compiled)
            if segment.static:
                result.snapshot_date = business_date
                retaken.append((segment.id, segment.version))
                new_snapshots.append(_snapshot_rows(local, segment, business_date, members, now))
        result.seconds = time.perf_counter() - started
        members = pc.unique(members.drop_null())
        members_by_segment.append((segment, members))
        result.size = len(members)
        results.append(result)

    local.register("today", _members_table(members_by_segment))
    local.register("versions", pa.table({"segment_id": pa.array([s.id for s in segments], pa.string()),
                                         "segment_version": pa.array([s.version for s in segments], pa.int32())}))
    changes = _changes(local, business_date, now)
    counts = {(sid, change): n for sid, change, n in local.sql(
        "select segment_id, change, count(*) from changes group by all").fetchall()}
    for r in results:
        r.entries, r.exits = counts.get((r.segment.id, "enter"), 0), counts.get((r.segment.id, "exit"), 0)
    kept_history = local.sql(
        "select * from history where not (business_date = ? and segment_id in (select segment_id from versions))",
        params=[business_date]).to_arrow_table()
    history = pa.concat_tables([kept_history.cast(HISTORY_SCHEMA), changes])
    local.register("retaken", pa.table({"segment_id": pa.array([k[0] for k in retaken], pa.string()),
                                        "segment_version": pa.array([k[1] for k in retaken], pa.int32())}))
    kept_snapshots = local.sql(
        "select * from snapshots s where not (s.snapshot_date = ? and exists (select 1 from retaken r "
        "where r.segment_id = s.segment_id and r.segment_version = s.segment_version))",
        params=[business_date]).to_arrow_table()
    snapshots = pa.concat_tables([kept_snapshots.cast(SNAPSHOT_SCHEMA), *new_snapshots])
    membership = _membership(local, history, business_date)
    local.close()

    session.replace_table(SNAPSHOTS, snapshots, indexes=[("segment_id", "segment_version", "snapshot_date")])
    session.replace_table(HISTORY, history, indexes=[("segment_id", "business_date"), ("one_id",)])
    # Last: readers of the membership (the ES index) see it change when history already explains it.
    session.replace_table(MEMBERSHIP, membership, indexes=[("segment_id", "one_id"), ("one_id",)])
    return results


def _snapshot_rows(local, segment: Segment, day: dt.date, members: pa.Array, now: dt.datetime) -> pa.Table:
    # A re-run of the snapshot date keeps the time the snapshot was first taken.
    taken = local.execute("select min(taken_at) from snapshots where segment_id = ? and segment_version = ? "
                          "and snapshot_date = ?", [segment.id, segment.version, day]).fetchall()[0][0] or now
    n = len(members)
    return pa.table([pa.array([segment.id] * n, pa.string()), pa.array([segment.version] * n, pa.int32()),
                     pa.array([day] * n, pa.date32()), members, pa.array([taken] * n, _TS)],
                    schema=SNAPSHOT_SCHEMA)


def _members_table(members_by_segment) -> pa.Table:
    parts = [pa.table({"segment_id": pa.array([segment.id] * len(m), pa.string()), "one_id": m})
             for segment, m in members_by_segment]
    return pa.concat_tables(parts) if parts else pa.table({"segment_id": pa.array([], pa.string()),
                                                            "one_id": pa.array([], pa.string())})


def _changes(local, day: dt.date, now: dt.datetime) -> pa.Table:
    """Entries and exits of `day` of every evaluated segment (`today`: segment_id, one_id) against its
    members before the day (each person's last change before it), in one pass over the history; a
    change already recorded for `day` keeps its first timestamp. Registered as `changes` too."""
    table = local.sql("""
        with last_change as (
            select segment_id, one_id, arg_max(change, (business_date, changed_at)) as change
            from history where business_date < ? and segment_id in (select segment_id from versions)
            group by segment_id, one_id
        ),
        before as (select segment_id, one_id from last_change where change = 'enter'),
        changes as (
            select segment_id, one_id, 'enter' as change from today
            anti join before using (segment_id, one_id)
            union all
            select segment_id, one_id, 'exit' from before
            anti join today using (segment_id, one_id)
        ),
        recorded as (
            select segment_id, one_id, change, min(changed_at) as changed_at from history
            where business_date = ? group by segment_id, one_id, change
        )
        select c.segment_id, v.segment_version, c.one_id, c.change,
               coalesce(r.changed_at, ?) as changed_at, cast(? as date) as business_date
        from changes c
        join versions v using (segment_id)
        left join recorded r using (segment_id, one_id, change)
        order by c.segment_id, c.change, c.one_id
    """, params=[day, day, now, day]).to_arrow_table().cast(HISTORY_SCHEMA)
    local.register("changes", table)
    return table


def _membership(local, history: pa.Table, day: dt.date) -> pa.Table:
    """Current members (`today`) with the time of their latest entry (one pass over the history)."""
    local.register("all_history", history)
    table = local.sql("""
        select m.segment_id, v.segment_version, m.one_id, e.entered_at, cast(? as date) as as_of_date
        from today m
        join versions v using (segment_id)
        left join (select segment_id, one_id, max(changed_at) as entered_at from all_history
                   where change = 'enter' and business_date <= ? group by segment_id, one_id) e
            using (segment_id, one_id)
        order by m.segment_id, m.one_id
    """, params=[day, day]).to_arrow_table().cast(MEMBERSHIP_SCHEMA)
    local.unregister("all_history")
    return table
