"""ODS assets: one per source entity, partitioned by tenant x business date.

API pulls (CRM windows, WeCom snapshots) replace their partition on a fresh pull and resume from
the last committed page after a failure. File loads add each dropped file once (by checksum).
Large pulls and files are landed by worker processes while this process reads and writes.
"""

import collections
import concurrent.futures
import contextlib
import functools
import glob
import itertools
import multiprocessing
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

import dagster as dg

from assets.ingestion import store
from assets.ingestion.files import DroppedFile, UnreadableFile, parse_file_name, read_chunks, sha256_of
from assets.ingestion.landing import DeadLetter, merge, process, with_rejections
from assets.ingestion.parts import land_page, land_part
from assets.ingestion.specs import (CRM_SPECS, EVENTS, FILE_CONTACTS, WECOM_CORP_TAGS, WECOM_DEPARTMENTS,
                                    WECOM_EXTERNAL_CONTACTS, WECOM_USERS, EntitySpec, flatten_corp_tags)
from assets.partitions import TenantDay, tenant_day, tenant_day_of
from fincdp.pii import TenantCipher
from resources.crm import CrmApi
from resources.pii import PiiVault
from resources.warehouse import Warehouse, WarehouseSession
from resources.wecom import WeComApi

FILE_CHUNK = 50_000           # records of a file deduplicated together and committed as one page
# A chunk lands in parts of this many records, in worker processes, and merges where it is written:
# parts keep both workers busy from early on (a file of two chunks used to land on one core) while
# the chunk stays the unit that merges repeated ids and that the ledger counts (docs/ingest-throughput.md).
FILE_PART = 10_000
# A file's last parts leave a worker idle while the other lands its last one; in a small file that
# is a large share of the load, and halving the parts halves it (100,000 contacts, 10.6 MB, six pairs:
# 2.06 s against 2.17). A large file's parts stay whole: more of them cost more than the end saves
# (1,005,000 events: 18.6-19.3 s against 17.8-18.9).
SMALL_FILE_BYTES, SMALL_FILE_PART = 64 << 20, 5_000
FILE_PARTS_HERE = 2  # parts a small file's load lands in its own process before it starts workers
SPOOL_ROOT = "/dev/shm"  # where workers hand landed parts over: shared memory, if the system has it
PULL_PARALLEL_AFTER = 10_000  # records a pull lands in this process before it uses worker processes
PULL_WORKERS = 2
LARGE_FILE_BYTES = 4 << 20    # a file this large likely holds several chunks: worker processes warm up
# Source pages: (records, refs, next_cursor); the cursor resumes a pull after its page committed.
Page = tuple[list, list[str], str | None]


def _metadata(session: WarehouseSession, spec: EntitySpec, day: TenantDay, extra: dict | None = None) -> dict:
    counts = store.partition_counts(session, spec, day.business_date)
    return {
        "dagster/row_count": counts["rows"],
        "received": counts["received"], "landed": counts["landed"],
        "dead_lettered": counts["dead_lettered"], "duplicates_merged": counts["duplicates"],
        "open_dead_letters": counts["open_dead_letters"],
        "table": f"{day.tenant.duckdb_path.name}:{spec.table}",
        **(extra or {}),
    }


def ingest_pages(session: WarehouseSession, cipher: TenantCipher, spec: EntitySpec, day: TenantDay,
                 pages: Callable[[str | None], Iterable[Page]], *, workers: int = PULL_WORKERS) -> store.Batch:
    """Land every page of one pull; a previous unfinished pull of the partition resumes, a fresh one
    replaces the partition."""
    batch = store.start_batch(session, spec, day.business_date, kind="pull", replace_partition=True)
    ctx = store.landing_context(session, cipher, batch)
    try:
        with store.PageWriter(session, batch, cipher) as writer, store.ReadAhead(pages(batch.cursor)) as received:
            for processed, next_cursor in _landed_in_order(land_page, spec, ctx, received, workers,
                                                           size=lambda page: len(page[0]),
                                                           parallel_after=PULL_PARALLEL_AFTER):
                writer.write(processed, next_cursor=next_cursor)
    except BaseException as exc:
        store.finish_batch(session, batch, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    store.finish_batch(session, batch)
    return batch


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _land_pull(warehouse: Warehouse, pii: PiiVault, spec: EntitySpec, day: TenantDay,
               pages: Callable[[str | None], Iterable[Page]], extra: dict) -> dg.MaterializeResult:
    """One API pull of a partition into ODS, with the ledger's counts as metadata."""
    with warehouse.session(day.tenant) as session:
        batch = ingest_pages(session, pii.cipher(day.tenant.id), spec, day, pages)
        published = warehouse.publish(session, spec.table, day.business_date)
        return dg.MaterializeResult(metadata=_metadata(session, spec, day, {
            "batch_id": batch.batch_id, "resumed": batch.resumed, **extra, **published}))


# --- CRM ----------------------------------------------------------------------------------------

def _crm_asset(spec: EntitySpec) -> dg.AssetsDefinition:
    @dg.asset(name=spec.asset_name, key_prefix="ods", group_name="ingestion", partitions_def=tenant_day,
              description=spec.description, kinds={"python", "duckdb"},
              tags={"source": "crm"})
    def _asset(context: dg.AssetExecutionContext, crm: CrmApi, warehouse: Warehouse, pii: PiiVault
               ) -> dg.MaterializeResult:
        day = tenant_day_of(context)
        source = day.tenant.sources.crm
        if source is None:
            return dg.MaterializeResult(metadata={"skipped": "tenant has no CRM source"})
        client = crm.client(source.base_url, source.client_id, source.client_secret(), day.tenant.id)
        since, before = day.window()

        def pages(cursor: str | None) -> Iterator[Page]:
            if cursor:
                context.log.info(f"resuming {spec.entity} pull after its last committed page")
            for page in client.iter_pages(spec.entity, since, before, cursor=cursor):
                yield page.records, [f"id={r.get('id')}" if isinstance(r, dict) else "?" for r in page.records], \
                    page.next_cursor

        return _land_pull(warehouse, pii, spec, day, pages,
                          {"window": f"{since.isoformat()} .. {before.isoformat()}"})

    return _asset


# --- WeCom (daily snapshots of the firm's own corp) ---------------------------------------------

def _wecom_pages(spec: EntitySpec, client, cursor: str | None) -> Iterator[Page]:
    if spec is WECOM_DEPARTMENTS:
        departments = client.departments()
        yield departments, [f"department id={d.get('id')}" for d in departments], None
    elif spec is WECOM_USERS:
        for chunk in _chunks(client.users(), 1000):
            yield chunk, [f"userid={u.get('userid')}" for u in chunk], None
    elif spec is WECOM_CORP_TAGS:
        tags = [tag for group in client.corp_tags() for tag in flatten_corp_tags(group)]
        yield tags, [f"tag id={t.get('id')} group={t.get('group_id')}" for t in tags], None
    elif spec is WECOM_EXTERNAL_CONTACTS:
        # Sorted: a resume cursor is only valid for the same member list in the same order.
        for page in client.external_contacts_by_user(sorted(client.follow_users()), cursor=cursor):
            refs = [f"external_userid={(r.get('external_contact') or {}).get('external_userid')} "
                    f"follow_userid={(r.get('follow_info') or {}).get('userid')}" for r in page.records]
            yield page.records, refs, page.next_cursor
    else:
        raise KeyError(spec.entity)


def _wecom_asset(spec: EntitySpec) -> dg.AssetsDefinition:
    @dg.asset(name=spec.asset_name, key_prefix="ods", group_name="ingestion", partitions_def=tenant_day,
              description=spec.description, kinds={"python", "duckdb"},
              tags={"source": "wecom"})
    def _asset(context: dg.AssetExecutionContext, wecom: WeComApi, warehouse: Warehouse, pii: PiiVault
               ) -> dg.MaterializeResult:
        day = tenant_day_of(context)
        source = day.tenant.sources.wecom
        if source is None:
            return dg.MaterializeResult(metadata={"skipped": "tenant has no WeCom source"})
        client = wecom.client(source.base_url, source.corpid, source.corpsecret(), day.tenant.id)
        # WeCom has no history API: a partition holds the snapshot taken when it ran.
        return _land_pull(warehouse, pii, spec, day, lambda cursor: _wecom_pages(spec, client, cursor),
                          {"snapshot": True})

    return _asset


# --- Files --------------------------------------------------------------------------------------

class FileLoadConfig(dg.Config):
    files: list[str] = []   # names in the tenant's drop folder; empty = every pending file of the date
    reload: bool = False    # load files again even if their checksum was loaded before
    workers: int = 2        # processes landing chunks of a large file in parallel


def pending_files(drop_dir, spec: EntitySpec, day: TenantDay, names: list[str]) -> list[DroppedFile]:
    candidates = [drop_dir / n for n in names] if names else sorted(drop_dir.glob("*")) if drop_dir.exists() else []
    found = []
    for path in candidates:
        if not path.is_file():
            raise FileNotFoundError(f"tenant {day.tenant.id}: dropped file {path.name} not found in {drop_dir}")
        dropped = parse_file_name(path)
        if dropped and dropped.spec is spec and dropped.business_date == day.business_date:
            found.append(dropped)
        elif names:
            raise ValueError(f"tenant {day.tenant.id}: {path.name} is not a {spec.entity} file for "
                             f"{day.business_date} (expected {spec.entity}_YYYY-MM-DD.csv|jsonl|parquet)")
    return found


# --- Worker processes ---------------------------------------------------------------------------
# One pool per process, kept between loads: forkserver children (the parent runs threads, Dagster's
# and DuckDB's, which fork does not copy safely) of a server that has imported the landing code, so
# the pool's start-up is paid once.

_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def _start_workers(workers: int) -> ProcessPoolExecutor:
    """The pool, its fork server starting in the background if it is not running yet."""
    global _pool, _pool_size
    if _pool is None or _pool_size != workers:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        context = multiprocessing.get_context("forkserver")
        # pandas: pyarrow imports it on its first conversion of Python objects
        context.set_forkserver_preload(["pandas", "assets.ingestion.parts"])
        from multiprocessing import forkserver

        forkserver.ensure_running()
        _pool, _pool_size = ProcessPoolExecutor(workers, mp_context=context), workers
        # A pool starts a worker at each submit that finds none idle, and the submit waits while the
        # fork server is still importing: the workers start here, in the background, so that they
        # are ready when the first parts are handed out.
        _ready.clear()
        threading.Thread(target=_warm_up, args=(_pool, workers), daemon=True).start()
    return _pool


_ready = threading.Event()  # the pool's workers have all started


def _warm_up(pool: ProcessPoolExecutor, workers: int) -> None:
    with contextlib.suppress(RuntimeError, BrokenProcessPool):  # shut down or broken meanwhile
        started = [pool.submit(os.getpid) for _ in range(workers)]
        concurrent.futures.wait(started)
        if pool is _pool:
            _ready.set()


def _submit(workers: int, fn: Callable, *args: Any) -> Future:
    global _pool
    try:
        return _start_workers(workers).submit(fn, *args)
    except BrokenProcessPool:  # a worker died during an earlier load: start afresh
        _pool = None
        return _start_workers(workers).submit(fn, *args)


def _landed_in_order(land: Callable, spec: EntitySpec, ctx, items: Iterator, workers: int, *,
                     size: Callable[[Any], int], parallel_after: int | None, remote: Callable | None = None,
                     depth: int | None = None) -> Iterator:
    """land(spec, item, ctx) for each item, in order. Items are landed in this process until those seen
    hold parallel_after records and another follows (None: however many, the pool being started), or
    the worker processes are up; then in them (by `remote`, if given, else `land`), at most `depth`
    (2 x workers) at a time, so that they keep busy while this process commits, as this process writes
    the results. If reading the items fails, the items already read are landed first, so that they can
    be committed before the failure is recorded. On leaving early, items not started are cancelled and
    those running are waited for, so nothing lands after this returns."""
    remote = remote or land
    depth = depth or 2 * workers
    source = iter(items)
    held, seen = None, 0
    while True:
        try:
            item = next(source)
        except StopIteration:
            if held is not None:
                yield land(spec, held, ctx)
            return
        except BaseException:
            if held is not None:
                yield land(spec, held, ctx)
            raise
        if workers > 1 and parallel_after and seen >= parallel_after // 2:
            _start_workers(workers)  # warm up while the next items are read
        if held is not None:
            if workers > 1 and (parallel_after is not None and seen >= parallel_after
                                or _pool_size == workers and _ready.is_set()):
                break
            yield land(spec, held, ctx)
        held = item
        seen += size(item)

    in_flight = collections.deque([_submit(workers, remote, spec, held, ctx),
                                   _submit(workers, remote, spec, item, ctx)])
    try:
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except BaseException:
                while in_flight:
                    yield in_flight.popleft().result()
                raise
            in_flight.append(_submit(workers, remote, spec, item, ctx))
            while len(in_flight) >= depth:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    finally:
        for future in in_flight:
            future.cancel()
        concurrent.futures.wait(in_flight)


SPOOL_MIN_FREE = 1 << 30  # a smaller shared memory (a container's default is 64 MB) is not used


def _spool_dir() -> str:
    """A new directory for one load's landed parts (landing.Landed.spool). Directories left by loads
    whose process died (a crash or kill skips their clean-up) are removed first: they hold memory."""
    root = tempfile.gettempdir()
    if os.path.isdir(SPOOL_ROOT) and os.access(SPOOL_ROOT, os.W_OK):
        stat = os.statvfs(SPOOL_ROOT)
        if stat.f_bavail * stat.f_frsize >= SPOOL_MIN_FREE:
            root = SPOOL_ROOT
    for path in glob.glob(os.path.join(root, "fincdp-landing-*-*")):
        pid = path.rsplit("fincdp-landing-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"fincdp-landing-{os.getpid()}-", dir=root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _then(items: Iterator, finish: Callable[[], None]) -> Iterator:
    """The items, then finish() once they run out."""
    yield from items
    finish()


def load_file(session: WarehouseSession, cipher: TenantCipher, dropped: DroppedFile, day: TenantDay,
              *, reload: bool = False, workers: int = 1) -> dict:
    """Load one dropped file once; returns what happened to it."""
    spec = dropped.spec
    large = workers > 1 and dropped.path.stat().st_size > LARGE_FILE_BYTES
    if large:
        _start_workers(workers)  # starts in the background while the file is hashed and read
    store.ensure_meta(session)
    digest = sha256_of(dropped.path)
    done = session.rows(f"select status, batch_id from {store.LOADED_FILES} where sha256 = ?", [digest])
    if done and not reload:
        return {"file": dropped.name, "status": f"already {done[0][0]}", "batch_id": done[0][1]}

    if done:  # a forced reload supersedes what the earlier loads of this file recorded
        store.supersede_file_loads(session, digest)
    batch = store.start_batch(session, spec, day.business_date, kind="file", detail=digest, replace_partition=False)
    ctx = store.landing_context(session, cipher, batch)
    offset = int(batch.cursor or 0)  # records of this file committed by an interrupted load
    status = "loaded"
    spool = None
    try:
        with store.PageWriter(session, batch, cipher) as writer:
            spool = _spool_dir()
            part_size = min(FILE_PART, FILE_CHUNK)
            if dropped.path.stat().st_size < SMALL_FILE_BYTES:
                part_size = min(part_size, SMALL_FILE_PART)
            parts = read_chunks(dropped, FILE_CHUNK, skip=offset, part=part_size)
            if workers > 1:
                # While workers land, DuckDB's commits on one thread: more would only contend with
                # them (~1.7 CPU-s more per 1M events, no less time). Once the file is read, the
                # workers finish, and the last commit has the cores to itself.
                session.threads(1)
                parts = _then(parts, lambda: session.threads(None))
            # Parts land here while the worker processes start (0.5-2 s, by machine load, which a load
            # would otherwise wait out): a large file's until they are up, a small file's first ones.
            landed: list = []  # the parts of the chunk being received
            # closing: on a failure the workers' parts in flight are cancelled or waited for here,
            # before the spool goes
            results = contextlib.closing(_landed_in_order(
                land_part, spec, ctx, parts, workers, size=lambda chunk: chunk.size,
                parallel_after=None if large else FILE_PARTS_HERE * part_size + 1,
                remote=functools.partial(land_part, spool=spool),
                # as many records in flight as 2 chunks a worker, so that a commit (seconds) stalls none
                depth=2 * workers * -(-FILE_CHUNK // part_size)))
            try:
                with results as landed_parts:
                    for part, size, ends_chunk in landed_parts:
                        landed.append(part)
                        offset += size
                        if ends_chunk:
                            chunk, landed = merge(spec, landed, ctx), []
                            writer.write(chunk, next_cursor=str(offset))
            except Exception:
                if landed:  # reading failed mid-chunk: what was read commits before the failure is recorded
                    chunk, landed = merge(spec, landed, ctx), []
                    writer.write(chunk, next_cursor=str(offset))
                raise
    except UnreadableFile as exc:
        status = "rejected"
        empty = process(spec, [], [], ctx)
        store.write_page(session, batch, with_rejections(empty, [DeadLetter(
            dropped.name, None, "file_unreadable", str(exc), {"file": dropped.name})]), cipher, next_cursor=None)
    except BaseException as exc:
        store.finish_batch(session, batch, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        if workers > 1:
            session.threads(None)
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)  # parts of a failed load that were never read
    with session.transaction():
        store.finish_batch(session, batch)
        session.execute(f"delete from {store.LOADED_FILES} where sha256 = ?", [digest])
        session.execute(f"insert into {store.LOADED_FILES} values (?, ?, ?, ?, ?, ?, ?, now())",
                        [digest, dropped.name, spec.entity, day.business_date, dropped.path.stat().st_size,
                         batch.batch_id, status])
    return {"file": dropped.name, "status": status, "batch_id": batch.batch_id, "received": batch.received,
            "landed": batch.landed, "dead_lettered": batch.dead_lettered}


def _file_asset(spec: EntitySpec) -> dg.AssetsDefinition:
    @dg.asset(name=spec.asset_name, key_prefix="ods", group_name="ingestion", partitions_def=tenant_day,
              description=spec.description + " Loaded from the tenant's drop folder.",
              kinds={"python", "duckdb"}, tags={"source": "files"})
    def _asset(context: dg.AssetExecutionContext, config: FileLoadConfig, warehouse: Warehouse, pii: PiiVault
               ) -> dg.MaterializeResult:
        day = tenant_day_of(context)
        source = day.tenant.sources.files
        if source is None:
            return dg.MaterializeResult(metadata={"skipped": "tenant has no file source"})
        files = pending_files(source.path(), spec, day, config.files)
        cipher = pii.cipher(day.tenant.id)
        with warehouse.session(day.tenant) as session:
            store.ensure_meta(session)
            store.ensure_ods_table(session, spec)
            results = []
            for dropped in files:
                result = load_file(session, cipher, dropped, day, reload=config.reload, workers=config.workers)
                context.log.info(f"{dropped.name}: {result['status']}")
                if result["status"] == "rejected":
                    context.log.error(f"tenant {day.tenant.id}: file {dropped.name} was rejected; see "
                                      f"{store.DEAD_LETTERS}")
                results.append(result)
            published = warehouse.publish(session, spec.table, day.business_date)
            return dg.MaterializeResult(metadata=_metadata(session, spec, day, {
                "files": dg.MetadataValue.json(results), **published}))

    return _asset


CRM_ASSETS = [_crm_asset(spec) for spec in CRM_SPECS]
WECOM_ASSETS = [_wecom_asset(spec) for spec in (WECOM_DEPARTMENTS, WECOM_USERS, WECOM_EXTERNAL_CONTACTS,
                                                WECOM_CORP_TAGS)]
FILE_ASSETS = [_file_asset(FILE_CONTACTS), _file_asset(EVENTS)]
ASSETS = [*CRM_ASSETS, *WECOM_ASSETS, *FILE_ASSETS]
