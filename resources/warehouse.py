"""The warehouse as Python assets see it: one session per tenant, isolated by storage.

Every tenant has its own DuckDB file, which is both the isolation boundary and the unit of DuckDB's
single-writer lock. It is the landing store of ODS on every engine (rows, ledger, dead letters and
cursors in one transaction) and, on the embedded default, the whole warehouse. With
FINCDP_WAREHOUSE=mysql|clickhouse, ODS partitions are published from it to the engine, where dbt
builds the layers (resources/warehouse_engines.py). Sessions are short: they open the tenant's file,
do one unit of work and close it, waiting (bounded) while another process writes.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from fincdp.tenants import Tenant
from resources.warehouse_engines import EngineSession, column_type, engine_session

LAYERS = ("ods", "dwd", "oneid", "dwm", "dws", "ads", "segments")


class WarehouseLockTimeout(RuntimeError):
    pass


def _id_table(ids: "list[str] | pa.Array | pa.ChunkedArray") -> pa.Table:
    if not isinstance(ids, (pa.Array, pa.ChunkedArray)):
        ids = pa.array(ids, pa.string())
    return pa.table({"_source_id": ids})


class WarehouseSession:
    """One tenant's warehouse for one unit of work. Table names are `layer.table`."""

    def __init__(self, tenant: Tenant, con: duckdb.DuckDBPyConnection):
        self.tenant = tenant
        self.con = con
        self._columns: dict[str, set[str]] = {}  # tables known to have at least these columns

    @contextmanager
    def transaction(self) -> Iterator["WarehouseSession"]:
        self.begin()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        try:
            self.con.execute("COMMIT")
        except BaseException:
            self._columns.clear()
            raise

    def threads(self, count: int | None) -> None:
        """DuckDB's threads for this connection (None: its default, one a core)."""
        self.con.execute("reset threads" if count is None else f"set threads = {int(count)}")

    def rollback(self) -> None:
        self._columns.clear()  # tables created or altered in the transaction are gone again
        self.con.execute("ROLLBACK")

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params or [])

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self.con.execute(sql, params or []).fetchall()
        return row[0][0] if row else None

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self.con.sql(sql, params=params or None).to_arrow_table()

    def table_exists(self, table: str) -> bool:
        schema, name = table.split(".")
        return bool(self.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name]))

    def columns(self, table: str) -> dict[str, str]:
        schema, name = table.split(".")
        return dict(self.rows(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position", [schema, name]))

    def ensure_table(self, table: str, schema: pa.Schema) -> None:
        """Create the table, or add columns the schema has and the table lacks (never drops)."""
        known = self._columns.get(table)
        if known is not None and known.issuperset(schema.names):
            return
        existing = self.columns(table)
        if not existing:
            cols = ", ".join(f'"{f.name}" ' + column_type(f.type, "duckdb") for f in schema)
            self.con.execute(f"create table if not exists {table} ({cols})")
        else:
            for f in schema:
                if f.name not in existing:
                    self.con.execute(f'alter table {table} add column "{f.name}" ' + column_type(f.type, "duckdb"))
        self._columns[table] = set(existing) | set(schema.names)

    def delete_ids(self, table: str, business_date, ids: "list[str] | pa.Array | pa.ChunkedArray") -> None:
        """Delete the partition's rows whose _source_id is in ids (an upsert's first half)."""
        self.con.register("_fincdp_ids", _id_table(ids))
        try:
            self.con.execute(f"delete from {table} where _business_date = ? and _source_id in "
                             "(select _source_id from _fincdp_ids)", [business_date])
        finally:
            self.con.unregister("_fincdp_ids")

    def existing_ids(self, table: str, ids: "list[str] | pa.Array | pa.ChunkedArray") -> set[str]:
        """Which of ids already have rows in the table, in any partition."""
        self.con.register("_fincdp_ids", _id_table(ids))
        try:
            return {r[0] for r in self.con.execute(
                f"select distinct t._source_id from {table} t join _fincdp_ids i using (_source_id)").fetchall()}
        finally:
            self.con.unregister("_fincdp_ids")

    def replace_table(self, table: str, data: pa.Table, indexes: Sequence[Sequence[str]] = ()) -> int:
        """Make `table` hold exactly `data` (one transaction: readers see the old rows or the new).
        DuckDB needs no `indexes` for joins."""
        self.con.register("_fincdp_replace", data)
        try:
            self.con.execute("begin transaction")
            self.con.execute(f"create or replace table {table} as select * from _fincdp_replace")
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise
        finally:
            self.con.unregister("_fincdp_replace")
        self._columns.pop(table, None)
        return data.num_rows

    def insert(self, table: str, data: pa.Table, *, keep: pa.Array | None = None) -> int:
        """Append the rows of data (those `keep` marks, if given: DuckDB skips the others as it reads)."""
        if data.num_rows == 0:
            return 0
        self.ensure_table(table, data.schema)
        query = f"insert into {table} by name select * from _fincdp_insert"
        if keep is not None:
            data = data.append_column("_fincdp_keep", keep)
            query = f"insert into {table} by name select * exclude (_fincdp_keep) from _fincdp_insert where _fincdp_keep"
        self.con.register("_fincdp_insert", data)
        try:
            self.con.execute(query)
        finally:
            self.con.unregister("_fincdp_insert")
        return data.num_rows if keep is None else pc.sum(keep).as_py() or 0


def ods_tables(landing: WarehouseSession) -> list[str]:
    """The landing store's ODS tables: those partitioned by business date (not its ledger tables)."""
    return [f"ods.{name}" for (name,) in landing.rows(
        "select table_name from information_schema.columns where table_schema = 'ods' "
        "and column_name = '_business_date' order by table_name")]


def publish_ods(landing: WarehouseSession, target: EngineSession, *, tables: list[str] | None = None,
                business_date=None) -> dict[str, int]:
    """Publish ODS partitions from a tenant's landing store to an engine: one business date, or all
    the store holds (e.g. when a tenant moves to MySQL). Empty tables are created, for dbt's sources.
    Returns the rows published per table."""
    published = {}
    for table in tables or ods_tables(landing):
        dates = [business_date] if business_date is not None else [
            d for (d,) in landing.rows(f"select distinct _business_date from {table} order by 1")]
        if not dates:  # publish() creates the table otherwise
            target.ensure_table(table, landing.arrow(f"select * from {table} limit 0").schema)
        published[table] = sum(target.publish(table, d, landing.arrow(
            f"select * from {table} where _business_date = ?", [d])) for d in dates)
    return published


def read_table(session, table: str, schema: pa.Schema) -> pa.Table:
    """A table a Python asset wrote earlier, in the schema it wrote (engines read back their own types:
    MySQL booleans as integers), or an empty one if it does not exist yet."""
    return session.arrow(f"select * from {table}").select(schema.names).cast(schema) \
        if session.table_exists(table) else schema.empty_table()


# What read-only code (quality checks, row counts) gets: the same read methods on every engine.
ReadSession = WarehouseSession | EngineSession


class Warehouse(dg.ConfigurableResource):
    """Opens tenant sessions on the configured engine."""

    engine: str = "duckdb"
    lock_timeout_s: float = 600.0

    @contextmanager
    def session(self, tenant: Tenant, *, read_only: bool = False) -> Iterator[WarehouseSession]:
        """The tenant's DuckDB file: ODS landing store on every engine, the warehouse on DuckDB."""
        path = tenant.duckdb_path
        if read_only and not path.exists():
            raise FileNotFoundError(f"tenant {tenant.id!r} has no warehouse yet at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect(str(path), read_only, tenant.id)
        try:
            if not read_only:
                for layer in LAYERS:
                    con.execute(f"create schema if not exists {layer}")
            yield WarehouseSession(tenant, con)
        finally:
            con.close()

    @contextmanager
    def query(self, tenant: Tenant) -> Iterator[ReadSession]:
        """Read access to the tenant's warehouse tables (`layer.table`) on the configured engine."""
        if self.engine == "duckdb":
            with self.session(tenant, read_only=True) as session:
                yield session
        else:
            with engine_session(self.engine, tenant) as session:
                yield session

    @contextmanager
    def writer(self, tenant: Tenant) -> Iterator["WarehouseSession | EngineSession"]:
        """Read and replace whole tables of the tenant's warehouse (`layer.table`) on the configured
        engine: what Python assets between dbt layers (OneID) write."""
        if self.engine == "duckdb":
            with self.session(tenant) as session:
                yield session
        else:
            with engine_session(self.engine, tenant) as session:
                yield session

    def publish(self, landing: WarehouseSession, table: str, business_date) -> dict:
        """Publish one landed ODS partition to the engine, replacing what it held (DuckDB: nothing to
        do, the landing store is the warehouse). Returns metadata for the materialization."""
        if self.engine == "duckdb" or not landing.table_exists(table):
            return {}
        with engine_session(self.engine, landing.tenant) as target:
            rows = publish_ods(landing, target, tables=[table], business_date=business_date)
            return {"published_to": f"{self.engine}:{target.prefix}{table}", "published_rows": rows[table]}

    def _connect(self, path: str, read_only: bool, tenant_id: str) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                return duckdb.connect(path, read_only=read_only)
            except duckdb.IOException as exc:
                # Another process holds the tenant's single-writer lock: wait for it, bounded.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    if "lock" in str(exc).lower():
                        raise WarehouseLockTimeout(
                            f"tenant {tenant_id!r}: warehouse file {path} stayed locked by another "
                            f"process for {self.lock_timeout_s:.0f}s") from exc
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
