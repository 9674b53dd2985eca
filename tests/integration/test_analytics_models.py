"""ads_lead_funnel (dbt) on DuckDB, MariaDB and ClickHouse over the same hand-made funnel base: counts,
rates and median stage times equal the ones worked out by hand, on every engine."""
from __future__ import annotations

import json
import os
import subprocess
from datetime import date, datetime, timezone

import clickhouse_connect
import pyarrow as pa
import pytest

from assets.analytics import lead_funnel_result
from fincdp.tenants import current_tenants
from resources.warehouse import Warehouse
from resources.warehouse_engines import ClickHouseSession, MySqlSession
from tests.support.engines import DBT, DBT_PROJECT
from tests.support.fixtures import require_dbt_mysql


def ts(day: str, hour: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc)


# lead, created, channel, owner, first opportunity, won on, won amount
LEADS = [
    ("L1", ts("2026-01-05"), "web", "u1", ts("2026-01-07"), date(2026, 1, 17), 100.0),   # 2 d, then 10 d
    ("L2", ts("2026-01-10"), "web", "u1", ts("2026-01-14"), date(2026, 1, 20), 50.0),    # 4 d, then 6 d
    ("L3", ts("2026-01-12"), "web", "u1", ts("2026-01-21"), None, 0.0),                  # 9 d
    ("L4", ts("2026-01-15"), "web", "u1", None, None, 0.0),
    ("L5", ts("2026-01-20", 12), "wecom", "u2", ts("2026-01-21", 12), None, 0.0),         # 1 d
    ("L6", ts("2026-02-01"), "web", "u9", None, None, 0.0),                              # owner not in WeCom
]
_TS = pa.timestamp("us", tz="UTC")


def upstream() -> dict[str, pa.Table]:
    funnel = pa.table({
        "lead_id": [r[0] for r in LEADS], "contact_id": [f"c{r[0]}" for r in LEADS],
        "enterprise_id": ["e1"] * len(LEADS), "channel": [r[2] for r in LEADS],
        "lead_status": ["converted" if r[4] else "new" for r in LEADS], "owner_userid": [r[3] for r in LEADS],
        "lead_created_at": pa.array([r[1] for r in LEADS], _TS),
        "reached_opportunity": [r[4] is not None for r in LEADS], "reached_win": [r[5] is not None for r in LEADS],
        "was_lost": [False] * len(LEADS), "won_amount": [r[6] for r in LEADS],
        "first_opportunity_at": pa.array([r[4] for r in LEADS], _TS),
        "won_on": pa.array([r[5] for r in LEADS], pa.date32())})
    members = pa.table({"userid": ["u1", "u2"], "main_department_id": pa.array([1, 2], pa.int64())})
    departments = pa.table({"department_id": pa.array([1, 2], pa.int64()), "department_name": ["华东区", "华南区"]})
    return {"ads.ads_funnel_base": funnel, "dwd.dwd_wecom__members": members,
            "dwd.dwd_wecom__departments": departments}


# period, org_unit, channel -> leads, opportunities, wins, won_amount, lead->opp, opp->win, lead->win,
# median days to opportunity, median days to win
EXPECTED = {
    ("2026-01", "华东区", "web"): (4, 3, 2, 150.0, 0.75, 0.6667, 0.5, 4.0, 8.0),      # medians of 2,4,9 and 10,6
    ("2026-01", "华南区", "wecom"): (1, 1, 0, 0.0, 1.0, 0.0, 0.0, 1.0, None),
    ("2026-01", "(all)", "(all)"): (5, 4, 2, 150.0, 0.8, 0.5, 0.4, 3.0, 8.0),         # median of 1,2,4,9
    ("2026-02", "(unassigned)", "web"): (1, 0, 0, 0.0, 0.0, None, 0.0, None, None),
    ("2026-02", "(all)", "(all)"): (1, 0, 0, 0.0, 0.0, None, 0.0, None, None),
}
QUERY = ("select period, org_unit, channel, leads, opportunities, wins, won_amount, lead_to_opportunity_rate, "
         "opportunity_to_win_rate, lead_to_win_rate, median_days_to_opportunity, median_days_to_win "
         "from {p}ads.ads_lead_funnel")


def normalise(rows) -> dict:
    def num(v):
        return None if v is None else round(float(v), 4)
    return {tuple(r[:3]): (int(r[3]), int(r[4]), int(r[5]), *map(num, r[6:])) for r in rows}


def build(engine: str, prefix: str, env: dict, duckdb_path=None) -> None:
    variables = {"tenant": "t001", "business_date": "2026-02-02", "schema_prefix": prefix}
    if duckdb_path:
        variables["duckdb_path"] = str(duckdb_path)
    result = subprocess.run(
        [str(DBT[engine]), "build", "--select", "ads_lead_funnel", "--profiles-dir", ".", "--target", engine,
         "--target-path", str(env.pop("target")), "--vars", json.dumps(variables)],
        cwd=DBT_PROJECT, env={**os.environ, **env, "FINCDP_DBT_TARGET": engine}, capture_output=True, text=True)
    assert result.returncode == 0, f"dbt on {engine}:\n{result.stdout[-5000:]}\n{result.stderr[-2000:]}"


def tenant():
    return current_tenants().get("t001")


def test_lead_funnel_on_duckdb(tmp_path, monkeypatch):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    with Warehouse().session(tenant()) as s:
        for table, data in upstream().items():
            s.replace_table(table, data)
    build("duckdb", "", {"target": tmp_path / "target"}, tenant().duckdb_path)
    with Warehouse().session(tenant(), read_only=True) as s:
        assert normalise(s.rows(QUERY.format(p=""))) == EXPECTED
        rows = s.arrow("select * from ads.ads_lead_funnel").to_pandas()
    # the asset check over it: consistent, and its table shows the month totals
    check = lead_funnel_result(rows)
    assert check.passed and check.metadata["negative_stage_times"].value == 0
    assert "| 2026-01 | 5 | 4 | 2 | 80.0 | 50.0 | 3 | 8 |" in check.metadata["months"].value
    broken = rows.assign(wins=rows["opportunities"] + 1)
    assert not lead_funnel_result(broken).passed


def test_lead_funnel_on_mariadb(mariadb, tmp_path):
    require_dbt_mysql()
    connection = mariadb.connect()
    target = MySqlSession(tenant(), connection, "lfm_")
    for table, data in upstream().items():
        target.replace_table(table, data)
    build("mysql", "lfm_", {"target": tmp_path / "target", "FINCDP_MYSQL_PORT": str(mariadb.port),
                            "FINCDP_MYSQL_USER": mariadb.user, "FINCDP_MYSQL_PASSWORD": mariadb.password})
    with connection.cursor() as cursor:
        cursor.execute(QUERY.format(p="lfm_"))
        assert normalise(cursor.fetchall()) == EXPECTED


def test_lead_funnel_on_clickhouse(clickhouse, tmp_path):
    client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port)
    target = ClickHouseSession(tenant(), client, "lfc_")
    for table, data in upstream().items():
        target.replace_table(table, data)
    build("clickhouse", "lfc_", {"target": tmp_path / "target", "FINCDP_CLICKHOUSE_PORT": str(clickhouse.port)})
    assert normalise(client.query(QUERY.format(p="lfc_")).result_rows) == EXPECTED
