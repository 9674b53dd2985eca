"""Writing landed batches: ODS rows, dead letters, the batch ledger and resumable cursors.

Pages of a pull commit in transactions together with the cursor after their last page and the ledger
counts, so a run that fails mid-way resumes after the last committed page, and received = landed +
dead-lettered holds for every batch at every commit.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from fincdp.pii import TenantCipher
from assets.ingestion.landing import LandingContext, Processed, ods_schema, utf8_json
from assets.ingestion.specs import EntitySpec
from resources.warehouse import WarehouseSession
from resources.warehouse_engines import column_type

BATCHES = "ods.ingest_batches"
DEAD_LETTERS = "ods.dead_letters"
LOADED_FILES = "ods.loaded_files"

_DDL = [
    f"""create table if not exists {BATCHES} (
        batch_id varchar primary key, source varchar, entity varchar, business_date date,
        kind varchar, detail varchar, status varchar, cursor varchar,
        received bigint, landed bigint, dead_lettered bigint, duplicates bigint,
        started_at timestamptz, finished_at timestamptz, error varchar)""",
    f"""create table if not exists {DEAD_LETTERS} (
        dead_letter_id varchar primary key, source varchar, entity varchar, business_date date,
        batch_id varchar, record_ref varchar, field varchar, error_type varchar, reason varchar,
        payload_enc blob, received_at timestamptz, status varchar, attempts integer,
        resolved_at timestamptz, resolved_by_batch varchar)""",
    f"""create table if not exists {LOADED_FILES} (
        sha256 varchar primary key, path varchar, entity varchar, business_date date,
        size_bytes bigint, batch_id varchar, status varchar, loaded_at timestamptz)""",
]

DEAD_LETTER_AAD = "dead_letters.payload"
_TS = pa.timestamp("us", tz="UTC")
DEAD_LETTER_SCHEMA = pa.schema([
    ("dead_letter_id", pa.string()), ("source", pa.string()), ("entity", pa.string()),
    ("business_date", pa.date32()), ("batch_id", pa.string()), ("record_ref", pa.string()),
    ("field", pa.string()), ("error_type", pa.string()), ("reason", pa.string()),
    ("payload_enc", pa.binary()), ("received_at", _TS), ("status", pa.string()), ("attempts", pa.int32()),
    ("resolved_at", _TS), ("resolved_by_batch", pa.string()),
])


def ensure_meta(session: WarehouseSession) -> None:
    for ddl in _DDL:
        session.execute(ddl)


def zstd_columns(spec: EntitySpec) -> list[str]:
    """The spec's JSON text columns: the raw record and the JSON fields. DuckDB's default string
    compression (FSST) spends more time on long JSON text and keeps about twice the bytes that zstd
    keeps: on 1M events the ODS file took 270 MB instead of 539 MB and its writes ~20% less time
    (docs/ingest-throughput.md). Short, repetitive text (user agents, names) stays with the default."""
    return ["_raw"] + [f.name for f in spec.fields if f.type == "json" and not f.pii]


def ciphertext_columns(spec: EntitySpec) -> list[str]:
    """The spec's AES-GCM ciphertext columns (its only binary ones). Their bytes are random: DuckDB's
    compression only analyses them to keep them as they are (100,000 contacts committed in 0.46 s
    instead of 0.54, the file 1.5 % larger; docs/ingest-throughput.md)."""
    return [f.name for f in ods_schema(spec) if pa.types.is_binary(f.type)]


def ensure_ods_table(session: WarehouseSession, spec: EntitySpec) -> None:
    """The ODS table exists even before its first record, so downstream models always build."""
    schema = ods_schema(spec)
    if not session.table_exists(spec.table):  # the landing store is DuckDB on every engine
        compression = {**{name: "zstd" for name in zstd_columns(spec)},
                       **{name: "uncompressed" for name in ciphertext_columns(spec)}}
        columns = ", ".join(f'"{f.name}" {column_type(f.type, "duckdb")}'
                            + (f" using compression {compression[f.name]}" if f.name in compression else "")
                            for f in schema)
        session.execute(f"create table if not exists {spec.table} ({columns})")
    session.ensure_table(spec.table, schema)


@dataclass
class Batch:
    batch_id: str
    spec: EntitySpec
    business_date: date
    cursor: str | None
    resumed: bool
    received: int = 0
    landed: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    # Every source id the partition holds, while that is known (it was empty when the batch began):
    # an upsert then deletes only ids it has seen, instead of searching the partition for each page.
    partition_ids: set[str] | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start_batch(session: WarehouseSession, spec: EntitySpec, business_date: date, *, kind: str,
                detail: str = "", replace_partition: bool) -> Batch:
    """Resume the partition's unfinished pull if there is one, else start afresh.

    A fresh pull of a windowed/snapshot source replaces the partition: its rows and its open dead
    letters are re-received from the source, so nothing is lost and nothing doubles.
    """
    ensure_meta(session)
    ensure_ods_table(session, spec)
    unfinished = session.rows(
        f"select batch_id, cursor, received, landed, dead_lettered, duplicates from {BATCHES} "
        "where source = ? and entity = ? and business_date = ? and kind = ? and status in ('running', 'failed') "
        "and coalesce(detail, '') = ? order by started_at desc limit 1",
        [spec.source, spec.entity, business_date, kind, detail])
    if unfinished and unfinished[0][1] is not None:
        batch_id, cursor, received, landed, dead, dups = unfinished[0]
        session.execute(f"update {BATCHES} set status = 'running', error = null where batch_id = ?", [batch_id])
        return Batch(batch_id, spec, business_date, cursor, True, received, landed, dead, dups)
    batch_id = f"{spec.source}.{spec.entity}.{business_date:%Y%m%d}.{uuid.uuid4().hex[:12]}"
    with session.transaction():
        # Any older unfinished batch of this partition is superseded by the fresh pull.
        session.execute(f"update {BATCHES} set status = 'superseded' where source = ? and entity = ? "
                        "and business_date = ? and kind = ? and status in ('running', 'failed') "
                        "and coalesce(detail, '') = ?",
                        [spec.source, spec.entity, business_date, kind, detail])
        if replace_partition:
            if session.table_exists(spec.table):
                session.execute(f"delete from {spec.table} where _business_date = ?", [business_date])
            session.execute(f"update {DEAD_LETTERS} set status = 'superseded', resolved_at = ?, "
                            "resolved_by_batch = ? where source = ? and entity = ? and business_date = ? "
                            "and status = 'open'",
                            [_now(), batch_id, spec.source, spec.entity, business_date])
        session.execute(f"insert into {BATCHES} values (?, ?, ?, ?, ?, ?, 'running', null, 0, 0, 0, 0, ?, null, null)",
                        [batch_id, spec.source, spec.entity, business_date, kind, detail, _now()])
        empty = replace_partition or not session.scalar(
            f"select count(*) from (select 1 from {spec.table} where _business_date = ? limit 1)", [business_date])
    return Batch(batch_id, spec, business_date, None, False, partition_ids=set() if empty else None)


# Upserts keep the partition's ids in memory up to this many; past it they search the table again.
PARTITION_IDS_MAX = 2_000_000


def _upsert_rows(session: WarehouseSession, spec: EntitySpec, batch: Batch, table: pa.Table,
                 keep: pa.Array | None = None) -> int:
    """Insert the rows (those `keep` marks, if given), replacing same-id rows of the partition. Events
    dedupe across dates: an id already landed on another date is not inserted again. Returns how many
    rows were skipped that way."""
    session.ensure_table(spec.table, table.schema)
    if table.num_rows == 0:
        return 0
    id_column = table.column("_source_id")  # rows left out by keep repeat a kept row's id
    ids = id_column.to_pylist()
    known = batch.partition_ids
    if known is None:
        session.delete_ids(spec.table, batch.business_date, id_column)
    elif not known.isdisjoint(ids):
        session.delete_ids(spec.table, batch.business_date, [i for i in ids if i in known])
    skipped = 0
    if spec.dedupe_across_dates:
        seen = session.existing_ids(spec.table, id_column)
        if seen:
            new = pa.array([i not in seen for i in ids])
            before = table.num_rows if keep is None else pc.sum(keep).as_py()
            keep = new if keep is None else pc.and_(keep, new)
            skipped = before - (pc.sum(keep).as_py() or 0)
            ids = [i for i in ids if i not in seen]
    session.insert(spec.table, table, keep=keep)
    if known is not None:
        known.update(ids)
        if len(known) > PARTITION_IDS_MAX:
            batch.partition_ids = None
    return skipped


# DuckDB compresses rows as a transaction commits them, and a commit that leaves the table's last row
# group part-filled has that group compressed again by the next: committing page by page compresses a
# large load many times over. Pages are committed together, about four row groups (122,880 rows each)
# or a minute's worth at a time, and small pages are inserted together. (A larger group is a little
# faster still, but DuckDB holds an open transaction's rows in memory.)
COMMIT_ROWS = 4 * 122_880
COMMIT_SECONDS = 60.0
INSERT_ROWS = 20_000


class PageWriter:
    """Writes one batch's pages, committing them in groups, each commit with the ledger counts and the
    cursor after its last page. When the source fails, the pages already written are committed; when
    writing fails, the open group rolls back. Either way a new run resumes after the last commit."""

    def __init__(self, session: WarehouseSession, batch: Batch, cipher: TenantCipher, *,
                 commit_rows: int = COMMIT_ROWS, commit_seconds: float = COMMIT_SECONDS):
        self.session, self.batch, self.cipher = session, batch, cipher
        self.commit_rows, self.commit_seconds = commit_rows, commit_seconds
        self._open = False
        self._writing = False
        self._rows = 0
        self._since = 0.0
        self._committed: tuple = ()
        self._pending: list[Processed] = []  # small pages, inserted together
        self._pending_ids: set[str] = set()

    def __enter__(self) -> "PageWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._open:
            if exc_type is not None and self._writing:
                self._rollback()
            else:
                self.commit()
        return False

    def write(self, processed: Processed, *, next_cursor: str | None) -> None:
        """Write one page (rows, dead letters, counts); the cursor is where the next page starts."""
        batch = self.batch
        if not self._open:
            self.session.begin()
            self._open, self._rows, self._since = True, 0, time.monotonic()
            self._committed = (batch.received, batch.landed, batch.dead_lettered, batch.duplicates, batch.cursor)
        self._writing = True
        ids = processed.rows.column("_source_id").to_pylist()
        if not self._pending_ids.isdisjoint(ids):
            self._insert()  # a later version of a row replaces the earlier one, as page by page
        self._pending.append(processed)
        self._pending_ids.update(ids)
        if sum(p.rows.num_rows for p in self._pending) >= INSERT_ROWS:
            self._insert()
        _write_dead_letters(self.session, batch, processed, self.cipher)
        batch.received += processed.received
        batch.landed += processed.landed
        batch.dead_lettered += len(processed.dead)
        batch.duplicates += processed.duplicates
        batch.cursor = next_cursor
        self._writing = False
        self._rows += processed.received
        if self._rows >= self.commit_rows or time.monotonic() - self._since >= self.commit_seconds:
            self.commit()

    def commit(self) -> None:
        if not self._open:
            return
        batch = self.batch
        try:
            self._insert()
            self.session.execute(f"update {BATCHES} set cursor = ?, received = ?, landed = ?, dead_lettered = ?, "
                                 "duplicates = ? where batch_id = ?",
                                 [batch.cursor, batch.received, batch.landed, batch.dead_lettered,
                                  batch.duplicates, batch.batch_id])
            self.session.commit()
        except BaseException:
            self._rollback()
            raise
        self._open = self._writing = False

    def _insert(self) -> None:
        if self._pending:
            pending = self._pending
            table = pending[0].rows if len(pending) == 1 else pa.concat_tables([p.rows for p in pending])
            keep = None
            if any(p.keep is not None for p in pending):
                keep = pa.concat_arrays([pa.repeat(pa.scalar(True), p.rows.num_rows) if p.keep is None else p.keep
                                         for p in pending])
            self.batch.duplicates += _upsert_rows(self.session, self.batch.spec, self.batch, table, keep)
            self._pending, self._pending_ids = [], set()

    def _rollback(self) -> None:
        self._open = self._writing = False
        self._pending, self._pending_ids = [], set()
        batch = self.batch
        # partition_ids may keep ids that are rolled back: a superset only costs a needless delete.
        batch.received, batch.landed, batch.dead_lettered, batch.duplicates, batch.cursor = self._committed
        try:
            self.session.rollback()
        except Exception:  # a failed COMMIT has ended the transaction already; its error is the one to see
            pass


class ReadAhead:
    """The items of a source (an API's pages), read in a thread up to `depth` items ahead of the loop
    that lands and writes them: the source is read while that loop waits on landing workers or on
    DuckDB (both release the GIL), so a pull waits less on its own writing.

    Items come out in order; when reading fails, the items read before the failure come out first,
    then its exception is raised. Use it as a context manager: leaving stops the reader (a read in
    progress, e.g. one HTTP request, finishes in the background; nothing more is read)."""

    _DONE = object()

    def __init__(self, items: Iterable, depth: int = 4):
        self._items = items
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="fincdp-read-ahead", daemon=True)
        self._finished = False

    def __enter__(self) -> "ReadAhead":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> bool:
        self._stop.set()  # a reader waiting for room sees it within 0.1 s
        self._thread.join(0.5)
        return False

    def _put(self, entry: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        items = iter(self._items)
        try:
            for item in items:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, which raises it
            self._put((self._DONE, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator stopped early runs its cleanup here, in its own thread
                try:
                    close()
                except Exception:  # noqa: BLE001 - nobody reads on after a stop; the reader must end
                    pass
        self._put((self._DONE, None))

    def __iter__(self) -> Iterator:
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        item, error = self._queue.get()
        if item is self._DONE:
            self._finished = True
            if error is not None:
                raise error
            raise StopIteration
        return item


def _write_dead_letters(session: WarehouseSession, batch: Batch, processed: Processed, cipher: TenantCipher
                        ) -> None:
    if not processed.dead:
        return
    spec = batch.spec
    received_at = _now()
    session.insert(DEAD_LETTERS, pa.Table.from_pylist([{
        "dead_letter_id": uuid.uuid4().hex, "source": spec.source, "entity": spec.entity,
        "business_date": batch.business_date, "batch_id": batch.batch_id,
        "record_ref": d.record_ref, "field": d.field, "error_type": d.error_type,
        "reason": d.reason,
        "payload_enc": cipher.encrypt(DEAD_LETTER_AAD, utf8_json(d.payload).decode()),  # as received
        "received_at": received_at, "status": "open", "attempts": 1,
        "resolved_at": None, "resolved_by_batch": None} for d in processed.dead],
        schema=DEAD_LETTER_SCHEMA))


def write_page(session: WarehouseSession, batch: Batch, processed: Processed, cipher: TenantCipher,
               *, next_cursor: str | None) -> None:
    """Commit one processed page with its dead letters, counts and the cursor to resume from."""
    with PageWriter(session, batch, cipher) as writer:
        writer.write(processed, next_cursor=next_cursor)


def supersede_file_loads(session: WarehouseSession, digest: str) -> None:
    with session.transaction():
        session.execute(f"update {DEAD_LETTERS} set status = 'superseded', resolved_at = ? where status = 'open' "
                        f"and batch_id in (select batch_id from {BATCHES} where kind = 'file' and detail = ?)",
                        [_now(), digest])
        session.execute(f"update {BATCHES} set status = 'superseded' where kind = 'file' and detail = ?", [digest])


def finish_batch(session: WarehouseSession, batch: Batch, *, error: str | None = None) -> None:
    session.execute(f"update {BATCHES} set status = ?, finished_at = ?, error = ? where batch_id = ?",
                    ["failed" if error else "succeeded", _now(), error, batch.batch_id])


def partition_counts(session: WarehouseSession, spec: EntitySpec, business_date: date) -> dict[str, Any]:
    """Ledger totals and rows present for one partition, for materialization metadata."""
    if not session.table_exists(BATCHES):
        return dict.fromkeys(("received", "landed", "dead_lettered", "duplicates", "rows", "open_dead_letters"), 0)
    received, landed, dead, dups = session.rows(
        f"select coalesce(sum(received), 0), coalesce(sum(landed), 0), coalesce(sum(dead_lettered), 0), "
        f"coalesce(sum(duplicates), 0) from {BATCHES} where source = ? and entity = ? and business_date = ? "
        "and status = 'succeeded' and kind <> 'replay'", [spec.source, spec.entity, business_date])[0]
    rows = session.scalar(f"select count(*) from {spec.table} where _business_date = ?", [business_date]) \
        if session.table_exists(spec.table) else 0
    open_dead = session.scalar(f"select count(*) from {DEAD_LETTERS} where source = ? and entity = ? "
                               "and business_date = ? and status = 'open'",
                               [spec.source, spec.entity, business_date])
    return {"received": int(received), "landed": int(landed), "dead_lettered": int(dead),
            "duplicates": int(dups), "rows": int(rows), "open_dead_letters": int(open_dead)}


def landing_context(session: WarehouseSession, cipher: TenantCipher, batch: Batch) -> LandingContext:
    tenant = session.tenant
    return LandingContext(tenant.id, tenant.org_ids, tenant.timezone, cipher, batch.business_date,
                          batch.batch_id, _now())
