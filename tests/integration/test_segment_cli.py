"""`fincdp segment validate` and `preview` on a tenant's DuckDB warehouse: the SQL, the count, a
masked sample, never a raw name; bad files exit non-zero with the file, rule path and problem."""
from __future__ import annotations

from fincdp.cli import main
from fincdp.tenants import current_tenants
from resources.warehouse import Warehouse
from tests.support.segment_tables import load, tables

CHAIRMEN = """id: chairmen
version: 2
kind: dynamic
description: Chairmen with a mobile on file
rule:
  all:
    - {field: person.title, op: eq, value: 董事长}
    - {field: person.has_mobile, op: eq, value: true}
"""


def test_preview_prints_sql_count_and_masked_sample(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    with Warehouse().writer(current_tenants().get("t001")) as s:
        load(s, tables())
    path = tmp_path / "chairmen.yaml"
    path.write_text(CHAIRMEN, encoding="utf-8")
    assert main(["segment", "preview", str(path), "--tenant", "t001"]) == 0
    out = capsys.readouterr().out
    assert "chairmen v2 (dynamic) for tenant t001, business date 2026-11-25, on duckdb" in out
    assert "FROM dwm.dwm_person_golden AS p" in out and "title = '董事长'" in out
    assert "members: 2" in out
    assert "张**" in out and "王*" in out and "P1" in out and "P3" in out
    assert "张三丰" not in out and "王五" not in out  # names only masked


def test_validate_reports_each_bad_file(tmp_path, capsys):
    good, bad = tmp_path / "chairmen.yaml", tmp_path / "vip.yaml"
    good.write_text(CHAIRMEN, encoding="utf-8")
    bad.write_text(CHAIRMEN.replace("id: chairmen", "id: vip").replace("person.title", "person.job"),
                   encoding="utf-8")
    assert main(["segment", "validate", str(good)]) == 0
    assert "ok: " in capsys.readouterr().out
    assert main(["segment", "validate", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: rule.all[0].field: unknown field 'person.job'" in err


def test_validate_rejects_a_folder_that_is_no_tenant(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FINCDP_SEGMENTS_DIR", str(tmp_path))
    (tmp_path / "t999").mkdir()
    path = tmp_path / "t999" / "chairmen.yaml"
    path.write_text(CHAIRMEN, encoding="utf-8")
    assert main(["segment", "validate", str(path)]) == 1
    assert "folder 't999' is not a tenant of tenants.yaml" in capsys.readouterr().err


def test_preview_rejects_an_unknown_tenant(tmp_path, capsys):
    path = tmp_path / "chairmen.yaml"
    path.write_text(CHAIRMEN, encoding="utf-8")
    assert main(["segment", "preview", str(path), "--tenant", "t999"]) == 2
    assert "unknown tenant 't999'" in capsys.readouterr().err


def test_preview_on_clickhouse_prints_the_engine_sql(clickhouse, monkeypatch, capsys, tmp_path):
    import clickhouse_connect

    from resources.warehouse_engines import ClickHouseSession

    tenant = current_tenants().get("t002")
    client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port)
    session = ClickHouseSession(tenant, client)   # the tenant's own t002_* databases, as preview reads them
    try:
        load(session, tables())
        monkeypatch.setenv("FINCDP_CLICKHOUSE_PORT", str(clickhouse.port))
        path = tmp_path / "chairmen.yaml"
        path.write_text(CHAIRMEN, encoding="utf-8")
        assert main(["segment", "preview", str(path), "--tenant", "t002", "--warehouse", "clickhouse"]) == 0
        out = capsys.readouterr().out
        assert "on clickhouse" in out and "FROM t002_dwm.dwm_person_golden AS p" in out
        assert "members: 2" in out and "张**" in out and "张三丰" not in out
    finally:
        for layer in ("dwm", "ads", "dwd", "oneid"):
            client.command(f"drop database if exists `{session.database(layer)}`")
        client.close()
