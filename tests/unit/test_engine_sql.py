"""Queries written once in DuckDB's dialect reach MySQL and ClickHouse pointed at the tenant's own
databases, with parameter values inlined as escaped literals."""
from datetime import date

import pytest

from resources.warehouse_engines import translate

SQL = 'select "name", count(*) from ods.crm_contacts c join dwd.dwd_crm__contacts d on c._source_id = d.contact_id ' \
      'where "_business_date" = ? and c.name = ? group by 1'


def test_layers_map_to_the_tenants_databases_and_values_are_escaped():
    mysql = translate(SQL, [date(2026, 11, 25), "O'Brien"], "t001_", "mysql")
    assert "t001_ods.crm_contacts" in mysql and "t001_dwd.dwd_crm__contacts" in mysql
    assert "`_business_date` = CAST('2026-11-25' AS DATE)" in mysql
    assert "'O''Brien'" in mysql and "?" not in mysql
    clickhouse = translate(SQL, [date(2026, 11, 25), "O'Brien"], "t002_", "clickhouse")
    assert "t002_ods.crm_contacts" in clickhouse and "t001_" not in clickhouse
    assert "toDate('2026-11-25')" in clickhouse


def test_a_value_cannot_break_out_of_its_literal():
    sql = translate("select * from ods.crm_contacts where name = ?", ["x' or '1'='1"], "t001_", "mysql")
    assert sql == "SELECT * FROM t001_ods.crm_contacts WHERE name = 'x'' or ''1''=''1'"


def test_parameters_and_placeholders_must_match():
    with pytest.raises(ValueError, match="more parameters"):
        translate("select 1 from ods.t where a = ?", [1, 2], "t001_", "mysql")
    with pytest.raises(ValueError, match="fewer parameters"):
        translate("select 1 from ods.t where a = ? and b = ?", [1], "t001_", "mysql")
