"""The profile and segment documents are the same whichever warehouse engine they are read from: the ADS,
golden and membership tables written to DuckDB, MariaDB and ClickHouse (chdb) through the Warehouse
writer, read back through `Warehouse.query()`, built into documents, compared."""
from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pytest

from assets.search import membership_rows, profile_documents, profile_rows, segment_documents
from fincdp.tenants import WarehouseNames, current_tenants
from resources.warehouse import Warehouse
from tests.integration.test_search_index import NAMES, write_profiles

MEMBERSHIP = pa.table({
    "segment_id": ["vip", "vip", "vip", "dormant"], "segment_version": pa.array([2, 2, 2, 1], pa.int32()),
    "one_id": ["t001-P0000", "t001-P0001", "t001-P0002", "t001-P0003"],
    "entered_at": pa.array([datetime(2026, 11, 20, 8, 30)] * 4, pa.timestamp("us")),
    "as_of_date": pa.array([date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 25), date(2026, 11, 24)],
                           pa.date32())})


def _documents(engine: str, tenant) -> tuple[list[dict], list[dict]]:
    warehouse = Warehouse(engine=engine)
    write_profiles(tenant.id, NAMES["t001"], calls=3, warehouse=warehouse, tenant_obj=tenant)
    with warehouse.writer(tenant) as w:
        w.replace_table("segments.membership", MEMBERSHIP)
    with warehouse.query(tenant) as session:
        return (list(profile_documents(profile_rows(session))),
                list(segment_documents(membership_rows(session, date(2026, 11, 25)))))


@pytest.fixture
def tenant(tmp_path, monkeypatch):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    # Databases of this test's own on the shared servers.
    return current_tenants().get("t001").model_copy(
        update={"warehouse": WarehouseNames(database_prefix="search_docs_t001")})


def test_documents_equal_on_every_engine(tenant, mariadb, clickhouse, monkeypatch):
    expected = _documents("duckdb", tenant)
    assert len(expected[0]) == 4 and expected[0][0]["contact_ids"] == ["C0a", "C0b"]
    assert [d["_id"] for d in expected[1]] == ["dormant:t001-P0003", "vip:t001-P0001", "vip:t001-P0002"]
    assert expected[1][0]["entered_at"] == "2026-11-20T08:30:00+00:00"
    monkeypatch.setenv("FINCDP_MYSQL_PORT", str(mariadb.port))
    monkeypatch.setenv("FINCDP_MYSQL_USER", mariadb.user)
    monkeypatch.setenv("FINCDP_MYSQL_PASSWORD", mariadb.password)
    assert _documents("mysql", tenant) == expected
    monkeypatch.setenv("FINCDP_CLICKHOUSE_PORT", str(clickhouse.port))
    assert _documents("clickhouse", tenant) == expected
