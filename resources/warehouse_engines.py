"""MySQL/MariaDB and ClickHouse as the warehouse that dbt builds on.

Ingestion lands every tenant's ODS in its DuckDB landing store first, for all engines: that is where
the ledger, dead letters and resumable cursors live, in one transaction with the rows (ClickHouse has
no transactions to keep them consistent). An ODS asset then publishes the partition it landed to the
configured engine, replacing that tenant-day atomically (an InnoDB transaction on MySQL, a partition
swap on ClickHouse), so a re-run or a replay publishes again without duplicates.

Python assets read the engine through an `EngineSession` with the DuckDB session's read methods:
queries are written once, in DuckDB's dialect with `layer.table` names and `?` parameters, and sqlglot
translates them, pointing each layer at the tenant's own database (`<prefix>_<layer>`).
"""
from __future__ import annotations

import datetime
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

from fincdp.tenants import Tenant

LAYERS = ("ods", "dwd", "oneid", "dwm", "dws", "ads", "snapshots", "segments")
PARTITION_COLUMN = "_business_date"   # every ODS table's tenant-day partition
INSERT_ROWS = 2_000                   # rows per MySQL INSERT statement
VARCHAR_TIERS = (64, 255)             # MySQL string columns as VARCHAR of the first tier that fits, else TEXT


@dataclass(frozen=True)
class EngineSettings:
    """Where the engine is. The same environment variables configure dbt's profile (profiles.yml)."""
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def from_env(cls, engine: str) -> "EngineSettings":
        name = {"mysql": "MYSQL", "clickhouse": "CLICKHOUSE"}[engine]
        default_port, default_user = {"mysql": (3306, "fincdp"), "clickhouse": (8123, "default")}[engine]
        return cls(os.environ.get(f"FINCDP_{name}_HOST", "127.0.0.1"),
                   int(os.environ.get(f"FINCDP_{name}_PORT", default_port)),
                   os.environ.get(f"FINCDP_{name}_USER", default_user),
                   os.environ.get(f"FINCDP_{name}_PASSWORD", ""))


def translate(sql: str, params: Sequence[Any] | None, prefix: str, dialect: str) -> str:
    """DuckDB SQL with `?` parameters -> the engine's SQL, with values inlined as escaped literals and
    layer schemas mapped to the tenant's databases."""
    values = iter(params or ())

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder):
            value = next(values, _NO_VALUE)
            if value is _NO_VALUE:
                raise ValueError(f"fewer parameters than placeholders in: {sql}")
            return exp.convert(value)
        if isinstance(node, exp.Table) and node.db in LAYERS:
            node.set("db", exp.to_identifier(prefix + node.db))
        return node

    tree = sqlglot.parse_one(sql, read="duckdb").transform(rewrite)
    if next(values, _NO_VALUE) is not _NO_VALUE:
        raise ValueError(f"more parameters than placeholders in: {sql}")
    return tree.sql(dialect=dialect)


_NO_VALUE = object()


class EngineSession:
    """One tenant's warehouse on a server engine, for one unit of work."""
    dialect: str

    def __init__(self, tenant: Tenant, prefix: str | None = None):
        self.tenant = tenant
        self.prefix = prefix if prefix is not None else f"{tenant.database_prefix}_"

    def database(self, layer: str) -> str:
        return self.prefix + layer

    def _split(self, table: str) -> tuple[str, str]:
        layer, name = table.split(".")
        return self.database(layer), name

    # Read methods, as on the DuckDB session.
    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        raise NotImplementedError

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        raise NotImplementedError

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def columns(self, table: str) -> dict[str, str]:
        database, name = self._split(table)
        return {str(n): str(t) for n, t in self._native_rows(
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = {_literal(database)} and table_name = {_literal(name)} "
            "order by ordinal_position")}

    def table_exists(self, table: str) -> bool:
        return bool(self.columns(table))

    def ensure_table(self, table: str, schema: pa.Schema) -> None:
        """Create the table (partitioned by business date), or add the columns it lacks."""
        raise NotImplementedError

    def publish(self, table: str, business_date: datetime.date, data: pa.Table) -> int:
        """Make the engine's partition of `table` for business_date hold exactly `data`."""
        raise NotImplementedError

    def replace_table(self, table: str, data: pa.Table, indexes: Sequence[Sequence[str]] = ()) -> int:
        """Make `table` hold exactly `data`, swapped in whole (readers never see it half written).
        `indexes`: column lists that joins use, where the engine needs an index for them (MySQL)."""
        raise NotImplementedError

    def _native_rows(self, sql: str) -> list[tuple]:
        raise NotImplementedError


def _literal(value: Any) -> str:
    return exp.convert(value).sql()


def _width(mysql_type: str) -> float:
    return float(mysql_type[8:-1]) if mysql_type.startswith("VARCHAR(") else float("inf")


# Column types by engine for each kind of Arrow type ({p}, {s}: decimal precision and scale).
_COLUMN_TYPES = {
    "string": {"duckdb": "VARCHAR", "mysql": "TEXT", "clickhouse": "String"},
    "binary": {"duckdb": "BLOB", "mysql": "LONGBLOB", "clickhouse": "String"},
    "integer": {"duckdb": "BIGINT", "mysql": "BIGINT", "clickhouse": "Int64"},
    "floating": {"duckdb": "DOUBLE", "mysql": "DOUBLE", "clickhouse": "Float64"},
    "boolean": {"duckdb": "BOOLEAN", "mysql": "BOOLEAN", "clickhouse": "Bool"},
    "decimal": {"duckdb": "DECIMAL({p},{s})", "mysql": "DECIMAL({p},{s})", "clickhouse": "Decimal({p}, {s})"},
    # MySQL DATETIME holds UTC (sessions run in UTC); DuckDB keeps the zone when Arrow has one.
    "timestamp": {"duckdb": "TIMESTAMP", "mysql": "DATETIME(6)", "clickhouse": "DateTime64(6, 'UTC')"},
    "timestamptz": {"duckdb": "TIMESTAMPTZ", "mysql": "DATETIME(6)", "clickhouse": "DateTime64(6, 'UTC')"},
    "date": {"duckdb": "DATE", "mysql": "DATE", "clickhouse": "Date32"},
}


def column_type(t: pa.DataType, engine: str, *, nullable: bool = True) -> str:
    """The engine's column type for an Arrow type (ClickHouse: Nullable unless told otherwise)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = column_type(t.value_type, engine)
        return {"duckdb": inner + "[]", "mysql": "JSON", "clickhouse": f"Array({inner})"}[engine]
    kind = ("string" if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) else
            "binary" if pa.types.is_binary(t) or pa.types.is_large_binary(t) else
            "integer" if pa.types.is_integer(t) else "floating" if pa.types.is_floating(t) else
            "boolean" if pa.types.is_boolean(t) else "decimal" if pa.types.is_decimal(t) else
            ("timestamptz" if t.tz else "timestamp") if pa.types.is_timestamp(t) else
            "date" if pa.types.is_date(t) else None)
    if kind is None:
        raise TypeError(f"no {engine} column type for arrow type {t}")
    name = _COLUMN_TYPES[kind][engine].format(p=getattr(t, "precision", 0), s=getattr(t, "scale", 0))
    return f"Nullable({name})" if engine == "clickhouse" and nullable else name


# --- MySQL / MariaDB ----------------------------------------------------------------------------

def _mysql_value(value: Any) -> Any:
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        # Sessions run in UTC (see connect), so DATETIME columns hold UTC.
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


class MySqlSession(EngineSession):
    dialect = "mysql"

    def __init__(self, tenant: Tenant, connection, prefix: str | None = None):
        super().__init__(tenant, prefix)
        self.connection = connection

    def _native_rows(self, sql: str) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self._native_rows(translate(sql, params, self.prefix, self.dialect))

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self.connection.cursor() as cursor:
            cursor.execute(translate(sql, params, self.prefix, self.dialect))
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        columns = [pa.array([row[i] for row in rows]) for i in range(len(names))]
        # DATETIME columns hold UTC (see connect): say so, as DuckDB's TIMESTAMPTZ does.
        columns = [c.cast(pa.timestamp(c.type.unit, tz="UTC")) if pa.types.is_timestamp(c.type) and c.type.tz is None
                   else c for c in columns]
        return pa.table(columns, names=names)

    def ensure_table(self, table: str, schema: pa.Schema, data: pa.Table | None = None) -> None:
        database, name = self._split(table)
        target = f"`{database}`.`{name}`"
        existing = self.columns(table)
        with self.connection.cursor() as cursor:
            if not existing:
                cursor.execute(f"create database if not exists `{database}` character set utf8mb4")
                columns = ", ".join(f"`{f.name}` {self._type(f, data)}" for f in schema)
                cursor.execute(f"create table if not exists {target} ({columns}, key ({PARTITION_COLUMN})) "
                               "engine = InnoDB default charset = utf8mb4")
                return
            widths = dict(self._native_rows(
                "select column_name, character_maximum_length from information_schema.columns "
                f"where table_schema = {_literal(database)} and table_name = {_literal(name)} "
                "and data_type = 'varchar'"))
            for f in schema:
                wanted = self._type(f, data)
                if f.name not in existing:
                    cursor.execute(f"alter table {target} add column `{f.name}` {wanted}")
                elif f.name in widths and _width(wanted) > widths[f.name]:  # longer values came
                    cursor.execute(f"alter table {target} modify column `{f.name}` {wanted}")

    @staticmethod
    def _type(field: pa.Field, data: pa.Table | None) -> str:
        """VARCHAR for strings that fit (MariaDB hashes and indexes VARCHAR join keys, not TEXT: a
        join on TEXT keys compares every pair), TEXT for longer ones; other types as column_type."""
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            return column_type(field.type, "mysql")
        longest = (pc.max(pc.utf8_length(data[field.name])).as_py() or 0) if data is not None and data.num_rows else 0
        # Tiers keep a wide table under InnoDB's 65,535-byte row limit (utf8mb4: 4 bytes a character).
        return next((f"VARCHAR({n})" for n in VARCHAR_TIERS if longest <= n), "TEXT")

    def publish(self, table: str, business_date: datetime.date, data: pa.Table) -> int:
        self.ensure_table(table, data.schema, data)
        database, name = self._split(table)
        target = f"`{database}`.`{name}`"
        # DDL commits implicitly in MySQL; the partition's swap below is one transaction.
        self.connection.begin()
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(f"delete from {target} where `{PARTITION_COLUMN}` = %s", [business_date])
                self._insert(cursor, target, data)
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise
        return data.num_rows

    def replace_table(self, table: str, data: pa.Table, indexes: Sequence[Sequence[str]] = ()) -> int:
        database, name = self._split(table)
        target, fresh, old = (f"`{database}`.`{n}`" for n in (name, f"{name}__new", f"{name}__old"))
        columns = ", ".join([*(f"`{f.name}` {self._type(f, data)}" for f in data.schema),
                             *(f"key ({', '.join(f'`{c}`' for c in cols)})" for cols in indexes)])
        with self.connection.cursor() as cursor:
            cursor.execute(f"create database if not exists `{database}` character set utf8mb4")
            cursor.execute(f"drop table if exists {fresh}, {old}")
            cursor.execute(f"create table {fresh} ({columns}) engine = InnoDB default charset = utf8mb4")
            self.connection.begin()
            self._insert(cursor, fresh, data)
            self.connection.commit()
            if self.table_exists(table):  # one RENAME is atomic: readers see the old table or the new
                cursor.execute(f"rename table {target} to {old}, {fresh} to {target}")
                cursor.execute(f"drop table {old}")
            else:
                cursor.execute(f"rename table {fresh} to {target}")
        return data.num_rows

    @staticmethod
    def _insert(cursor, target: str, data: pa.Table) -> None:
        names = ", ".join(f"`{n}`" for n in data.column_names)
        insert = f"insert into {target} ({names}) values ({', '.join(['%s'] * data.num_columns)})"
        for batch in data.to_batches(INSERT_ROWS):
            cursor.executemany(insert, [[_mysql_value(v) for v in row.values()] for row in batch.to_pylist()])


# --- ClickHouse ---------------------------------------------------------------------------------

class ClickHouseSession(EngineSession):
    dialect = "clickhouse"

    def __init__(self, tenant: Tenant, client, prefix: str | None = None):
        super().__init__(tenant, prefix)
        self.client = client

    def _native_rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self.client.query(sql).result_rows]

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self._native_rows(translate(sql, params, self.prefix, self.dialect))

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self.client.query_arrow(translate(sql, params, self.prefix, self.dialect), use_strings=True)

    def ensure_table(self, table: str, schema: pa.Schema) -> None:
        database, name = self._split(table)
        target = f"`{database}`.`{name}`"
        existing = set(self.columns(table))
        if not existing:
            self.client.command(f"create database if not exists `{database}`")
            columns = ", ".join(f"`{f.name}` {column_type(f.type, 'clickhouse', nullable=f.name != PARTITION_COLUMN)}"
                                for f in schema)
            self.client.command(f"create table if not exists {target} ({columns}) engine = MergeTree "
                                f"partition by `{PARTITION_COLUMN}` order by tuple()")
        for f in schema:
            if existing and f.name not in existing:
                self.client.command(f"alter table {target} add column if not exists `{f.name}` "
                                    f"{column_type(f.type, 'clickhouse')}")

    def publish(self, table: str, business_date: datetime.date, data: pa.Table) -> int:
        self.ensure_table(table, data.schema)
        database, name = self._split(table)
        target = f"`{database}`.`{name}`"
        partition = _literal(business_date.isoformat())
        if data.num_rows == 0:
            self.client.command(f"alter table {target} drop partition {partition}")
            return 0
        # Staged, then swapped in whole: readers see the old partition or the new one, never half.
        staging = f"`{database}`.`{name}__publish_{business_date:%Y%m%d}`"
        self.client.command(f"drop table if exists {staging}")
        self.client.command(f"create table {staging} as {target}")
        try:
            self.client.insert_arrow(staging.replace("`", ""), data)
            self.client.command(f"alter table {target} replace partition {partition} from {staging}")
        finally:
            self.client.command(f"drop table if exists {staging}")
        return data.num_rows


    def replace_table(self, table: str, data: pa.Table, indexes: Sequence[Sequence[str]] = ()) -> int:
        database, name = self._split(table)  # ClickHouse joins need no index
        target, fresh = f"`{database}`.`{name}`", f"`{database}`.`{name}__new`"
        columns = ", ".join(f"`{f.name}` {column_type(f.type, 'clickhouse')}" for f in data.schema)
        self.client.command(f"create database if not exists `{database}`")
        self.client.command(f"drop table if exists {fresh}")
        self.client.command(f"create table {fresh} ({columns}) engine = MergeTree order by tuple()")
        if data.num_rows:
            self.client.insert_arrow(fresh.replace("`", ""), data)
        if self.table_exists(table):  # EXCHANGE is atomic: readers see the old table or the new
            self.client.command(f"exchange tables {target} and {fresh}")
            self.client.command(f"drop table {fresh}")
        else:
            self.client.command(f"rename table {fresh} to {target}")
        return data.num_rows


@contextmanager
def engine_session(engine: str, tenant: Tenant) -> Iterator[EngineSession]:
    settings = EngineSettings.from_env(engine)
    if engine == "mysql":
        import pymysql

        connection = pymysql.connect(host=settings.host, port=settings.port, user=settings.user,
                                     password=settings.password, charset="utf8mb4", autocommit=True,
                                     init_command="set time_zone = '+00:00'")
        try:
            yield MySqlSession(tenant, connection)
        finally:
            connection.close()
    elif engine == "clickhouse":
        import clickhouse_connect

        client = clickhouse_connect.get_client(host=settings.host, port=settings.port, username=settings.user,
                                               password=settings.password)
        try:
            yield ClickHouseSession(tenant, client)
        finally:
            client.close()
    else:
        raise ValueError(f"unknown warehouse engine {engine!r}: expected duckdb, mysql or clickhouse")
