"""The segment language on DuckDB, MariaDB and ClickHouse (chdb): the same compiled rules over the
same hand-made tables give the same, known members on every engine, and the membership tables are
written and read back through each engine's writer session."""
from __future__ import annotations

import datetime as dt

import clickhouse_connect
import pytest

from fincdp.segments.compiler import compile_segment
from fincdp.segments.language import parse_segment
from fincdp.segments.membership import HISTORY, MEMBERSHIP, evaluate_members, update_segments
from fincdp.tenants import current_tenants
from resources.warehouse import Warehouse
from resources.warehouse_engines import ClickHouseSession, MySqlSession
from tests.support.segment_tables import CASES, D, load, tables

ENGINES = ["duckdb", "mariadb", "clickhouse"]


def segment(rule: dict, i: int = 0, kind: str = "dynamic"):
    return parse_segment({"id": f"case_{i}", "version": 1, "kind": kind, "description": "test", "rule": rule},
                         f"case_{i}.yaml")


@pytest.fixture
def writer(request, tmp_path, monkeypatch):
    """A writer session of tenant t001 on the engine, over a database prefix of this test's own."""
    engine = request.param
    tenant = current_tenants().get("t001")
    if engine == "duckdb":
        monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
        with Warehouse().writer(tenant) as session:
            yield session
    elif engine == "mariadb":
        server = request.getfixturevalue("mariadb")
        connection = server.connect(init_command="set time_zone = '+00:00'")
        try:
            yield MySqlSession(tenant, connection, prefix=f"seg{abs(hash(request.node.name)) % 10**6}_")
        finally:
            connection.close()
    else:
        server = request.getfixturevalue("clickhouse")
        client = clickhouse_connect.get_client(host="127.0.0.1", port=server.port)
        try:
            yield ClickHouseSession(tenant, client, prefix=f"seg{abs(hash(request.node.name)) % 10**6}_")
        finally:
            client.close()


@pytest.mark.parametrize("writer", ENGINES, indirect=True)
def test_rules_give_the_known_members_on_every_engine(writer):
    load(writer, tables())
    got = {}
    for i, (rule, _) in enumerate(CASES):
        got[i] = set(evaluate_members(writer, compile_segment(segment(rule, i), D)).to_pylist())
    assert got == {i: expected for i, (_, expected) in enumerate(CASES)}


@pytest.mark.parametrize("writer", ENGINES, indirect=True)
def test_membership_entries_and_exits_on_every_engine(writer):
    a_class = segment({"tag": {"group": "客户等级", "name": "A类"}}, 1)
    titled = segment({"field": "person.title", "op": "not_null"}, 2)
    day2 = D + dt.timedelta(days=1)
    load(writer, tables())
    update_segments(writer, [a_class, titled], D)
    load(writer, tables(day2, p6_title="董事", a_class_moves=True))   # tag A moves from P1 to P2; P6 gets a title
    update_segments(writer, [a_class, titled], day2)
    update_segments(writer, [a_class, titled], day2)            # a re-run adds nothing
    changes = {(s, o, c, str(b)[:10]) for s, o, c, b in writer.rows(
        f"select segment_id, one_id, change, business_date from {HISTORY}")}
    assert changes == {("case_1", "P1", "enter", "2026-11-25"), ("case_1", "P1", "exit", "2026-11-26"),
                       ("case_1", "P2", "enter", "2026-11-26"),
                       *{("case_2", p, "enter", "2026-11-25") for p in ("P1", "P2", "P3", "P5")},
                       ("case_2", "P6", "enter", "2026-11-26")}
    members = {(s, o) for s, o in writer.rows(f"select segment_id, one_id from {MEMBERSHIP}")}
    assert members == {("case_1", "P2"),
                       *{("case_2", p) for p in ("P1", "P2", "P3", "P5", "P6")}}
    assert writer.scalar(f"select count(*) from {MEMBERSHIP} where entered_at is null") == 0
