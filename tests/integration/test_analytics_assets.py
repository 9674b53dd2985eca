"""The analytics assets on a hand-made tenant warehouse (DuckDB): the tables they write hold the
answers worked out by hand, and the Markdown metadata shows them."""
from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import pytest

from assets.analytics import PYTHON_ASSETS as ASSETS
from assets.partitions import partition_key
from fincdp.tenants import current_tenants
from resources.warehouse import Warehouse

DAY = date(2026, 11, 26)

SETUP = """
create schema dwd; create schema ads; create schema oneid;
create table oneid.identity_map as select * from (values
    ('crm_contact', 'c1', 'P1'), ('crm_contact', 'c2', 'P2'), ('crm_contact', 'c3', 'P3'),
    ('wecom_external_contact', 'wm1', 'P1'), ('sdk_event', 'e1', 'P1'), ('sdk_event', 'e2', 'P1'))
    as t(record_source, record_id, one_id);
create table dwd.dwd_crm__contacts as select contact_id, cast(created_at as timestamptz) as created_at from (values
    ('c1', '2025-01-01 00:00:00+00'), ('c2', '2026-11-20 00:00:00+00'), ('c3', '2025-01-01 00:00:00+00'))
    as t(contact_id, created_at);
create table dwd.dwd_crm__leads as select lead_id, contact_id, cast(updated_at as timestamptz) as updated_at from (values
    ('L1', 'c1', '2026-11-20 00:00:00+00'), ('L2', 'c2', '2026-11-20 00:00:00+00'),
    ('L3', 'c3', '2026-05-01 00:00:00+00')) as t(lead_id, contact_id, updated_at);
create table ads.ads_funnel_base as select lead_id, contact_id, lead_status,
        cast(lead_created_at as timestamptz) as lead_created_at, cast(first_opportunity_at as timestamptz) as
        first_opportunity_at, reached_win, cast(won_on as date) as won_on from (values
    ('L1', 'c1', 'converted', '2026-10-01 00:00:00+00', '2026-11-10 00:00:00+00', true, '2026-11-20'),
    ('L2', 'c2', 'new', '2026-11-20 00:00:00+00', null, false, null),
    ('L3', 'c3', 'converted', '2026-04-01 00:00:00+00', '2026-05-01 00:00:00+00', false, null))
    as t(lead_id, contact_id, lead_status, lead_created_at, first_opportunity_at, reached_win, won_on);
create table dwd.dwd_crm__opportunities as select opportunity_id, lead_id, enterprise_id, is_won,
        cast(close_date as date) as close_date, cast(amount as double) as amount from (values
    ('O1', 'L1', 'E1', true, '2026-11-20', 1000), ('O4', 'L1', 'E1', true, '2026-08-01', 300),
    ('O2', 'L3', 'E1', false, '2026-06-01', 500)) as t(opportunity_id, lead_id, enterprise_id, is_won, close_date, amount);
create table dwd.dwd_crm__calls as select call_id, contact_id, cast(started_at as timestamptz) as started_at from (values
    ('k1', 'c1', '2026-11-15 10:00:00+00'), ('k2', 'c1', '2026-01-01 10:00:00+00')) as t(call_id, contact_id, started_at);
create table dwd.dwd_wecom__external_contacts as select external_userid, follow_userid,
        cast(followed_at as timestamptz) as followed_at from (values ('wm1', 'u1', '2026-11-01 00:00:00+00'))
    as t(external_userid, follow_userid, followed_at);
create table dwd.dwd_sdk__events as select event_id, cast(occurred_at as timestamptz) as occurred_at, event_type,
        event_source, payload, cast('2026-11-25' as date) as business_date from (values
    ('e1', '2026-11-18 09:00:00+00', 'web.view.page', 'web', '{"device_id": "dA"}'),
    ('e2', '2026-11-18 09:30:00+00', 'web.submit.form', 'web', '{"device_id": "dA"}'),
    ('e3', '2026-11-25 08:00:00+00', 'web.view.page', 'web', '{"device_id": "d1"}'),
    ('e4', '2026-11-25 09:00:00+00', 'web.submit.form', 'web', '{"device_id": "d1"}'),
    ('e5', '2026-11-25 09:00:00+00', 'web.view.page', 'web', '{"device_id": "d2"}'))
    as t(event_id, occurred_at, event_type, event_source, payload);
create table ads.ads_person_360 as select contact_id, one_id, cast(last_active_on as date) as last_active_on from (values
    ('c1', 'P1', '2026-11-18'), ('c2', 'P2', null), ('c3', 'P3', '2026-09-15')) as t(contact_id, one_id, last_active_on);
"""

CONFIG = """
defaults:
  funnels: [{name: view_then_form, steps: [web.view.page, web.submit.form], window_days: 1}]
  paths: {anchors: [web.submit.form], steps: 2}
  attribution: {window_days: 90, half_life_days: 7}
"""


@pytest.fixture
def tenant_warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    (tmp_path / "analytics.yaml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("FINCDP_ANALYTICS", str(tmp_path / "analytics.yaml"))
    tenants = current_tenants()
    for tid in ("t001", "t002"):
        tenants.get(tid).duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(tenants.get(tid).duckdb_path)) as con:
            con.execute(SETUP if tid == "t001" else "create schema ads")
    return tenants


def rows(tenant, sql):
    with Warehouse().session(tenant, read_only=True) as s:
        return s.rows(sql)


def check_tables(rows) -> None:
    """The hand-worked answers; `rows(sql)` queries the tenant's warehouse on any engine."""
    # funnel: P1 (30 min) and device d1 (60 min) go on to the form, device d2 does not
    assert [tuple(r) for r in rows("select step_no, actors, round(rate_from_previous, 4), median_hours_from_previous "
                                   "from ads.ads_event_funnels order by step_no")] == [(1, 3, 1.0, None), (2, 2, 0.6667, 0.75)]
    assert [tuple(r) for r in rows("select path, occurrences from ads.ads_event_paths where direction = 'before' "
                                   "order by rank")] == [("web.view.page > web.submit.form", 2)]

    # attribution: every conversion's weights sum to 1 in every model
    sums = rows("select conversion_id, model, sum(weight) from ads.ads_attribution group by conversion_id, model")
    assert len(sums) == 4 * 5 and all(abs(float(w) - 1) < 1e-9 for _, _, w in sums)
    # won O1 (end of 2026-11-20): WeCom follow 11-01, call 11-15, two web events 11-18 (the January call is
    # outside the 90-day window); the events reach P1 through OneID
    o1 = {(m, c): float(w) for m, c, w in rows(
        "select model, channel, sum(weight) from ads.ads_attribution where conversion_id = 'O1' group by model, channel")}
    assert o1[("first_touch", "wecom_follow")] == 1.0 and o1[("last_touch", "web")] == 1.0
    assert o1[("linear", "web")] == pytest.approx(0.5) and o1[("position_based", "call")] == pytest.approx(0.1)
    assert [tuple(r) for r in rows("select distinct channel from ads.ads_attribution "
                                   "where conversion_id in ('O4', 'L3')")] == [("(none)",)]
    assert [tuple(r) for r in rows("select touchpoint_id, weight from ads.ads_attribution where conversion_id = 'L1' "
                                   "and model = 'linear'")] == [("wecom:wm1:u1", 1.0)]
    assert [float(v) for (v,) in rows("select round(sum(amount), 2) from ads.ads_attribution_by_channel "
                                      "where conversion_type = 'won_opportunity' and model = 'time_decay'")] == [1300.0]

    # customer value: E1 and P1 each won 300 + 1000, on two days; too few customers to fit CLV
    assert sorted(tuple(r) for r in rows("select entity_type, customer_id, purchases, total_amount, frequency, recency, "
                                         "T, predicted_clv from ads.ads_customer_value")) == [
        ("enterprise", "E1", 2, 1300.0, 1, 111.0, 117.0, None), ("person", "P1", 2, 1300.0, 1, 111.0, 117.0, None)]

    # lifecycle: c1 won 6 days ago (active), c2 created 6 days ago (new), c3 last active 72 days ago
    assert dict(rows("select contact_id, stage from ads.ads_lifecycle")) == {"c1": "active", "c2": "new", "c3": "at_risk"}


def test_analytics_assets_on_a_hand_made_tenant(tenant_warehouse):
    result = dg.materialize(ASSETS, resources={"warehouse": Warehouse()}, partition_key=partition_key("t001", DAY))
    assert result.success
    t001, t002 = tenant_warehouse.get("t001"), tenant_warehouse.get("t002")
    check_tables(lambda sql: rows(t001, sql))

    metadata = {m.materialization.asset_key.path[-1]: m.materialization.metadata
                for m in result.get_asset_materialization_events()}
    assert "| 2 | web.submit.form | 2 | 66.7 |" in metadata["ads_event_funnels"]["funnel_table"].value
    assert "| wecom_follow |" in metadata["ads_attribution_by_channel"]["attribution"].value
    assert "need at least 20 customers" in metadata["ads_customer_value"]["person_clv_not_fitted"].value
    # the other tenant's warehouse was not touched
    assert rows(t002, "select count(*) from information_schema.tables where table_schema = 'ads'") == [(0,)]


@pytest.mark.parametrize("engine", ["mysql", "clickhouse"])
def test_analytics_assets_give_the_same_answers_on_the_engines(engine, tenant_warehouse, request, monkeypatch):
    from tests.e2e.test_pipeline_on_engines import drop_databases

    server = request.getfixturevalue("mariadb" if engine == "mysql" else "clickhouse")
    env = {"FINCDP_MYSQL_PORT": str(server.port), "FINCDP_MYSQL_USER": server.user,
           "FINCDP_MYSQL_PASSWORD": server.password} if engine == "mysql" else {"FINCDP_CLICKHOUSE_PORT": str(server.port)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    drop_databases(engine, server)
    t001 = tenant_warehouse.get("t001")
    warehouse = Warehouse(engine=engine)
    with Warehouse().session(t001, read_only=True) as source, warehouse.writer(t001) as target:
        for schema, table in source.rows("select table_schema, table_name from information_schema.tables "
                                         "where table_schema in ('dwd', 'ads', 'oneid')"):
            target.replace_table(f"{schema}.{table}", source.arrow(f"select * from {schema}.{table}"))
    assert dg.materialize(ASSETS, resources={"warehouse": warehouse}, partition_key=partition_key("t001", DAY)).success

    def engine_rows(sql):
        with warehouse.query(t001) as q:
            return [tuple(int(v) if isinstance(v, bool) else float(v) if type(v).__name__ == "Decimal" else v
                          for v in r) for r in q.rows(sql)]
    check_tables(engine_rows)
    drop_databases(engine, server)


def test_a_bad_analytics_yaml_fails_the_run_naming_the_tenant_and_field(tenant_warehouse, tmp_path):
    (tmp_path / "analytics.yaml").write_text("tenants: {t001: {attribution: {half_life_days: 0}}}", encoding="utf-8")
    result = dg.materialize([ASSETS[0]], resources={"warehouse": Warehouse()},
                            partition_key=partition_key("t001", DAY), raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "tenant 't001' field 'attribution.half_life_days'" in failure.step_failure_data.error.to_string()
