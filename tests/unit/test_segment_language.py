"""The segment language: bad definitions give errors that name the file, the rule path and the
problem; good ones compile to one query whose user values are literals; the shipped demo
definitions are valid."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from fincdp.segments.compiler import compile_segment
from fincdp.segments.language import SegmentError, load_segment, load_tenant_segments, parse_segment
from fincdp.settings import REPO_ROOT

D = dt.date(2026, 11, 25)


def doc(rule, **top) -> dict:
    return {"id": "s1", "version": 1, "kind": "dynamic", "description": "test", "rule": rule, **top}


def problems(document) -> list[str]:
    with pytest.raises(SegmentError) as failure:
        parse_segment(document, "segments/t001/s1.yaml")
    assert str(failure.value).startswith("segments/t001/s1.yaml: ")
    return failure.value.problems


@pytest.mark.parametrize("rule, expected", [
    ({"field": "person.titel", "op": "eq", "value": "x"},
     "rule.field: unknown field 'person.titel' (did you mean 'person.title'?)"),
    ({"all": [{"field": "person.title", "op": "eq", "value": "x"},
              {"field": "person.calls_7d", "op": "gte", "value": "three"}]},
     "rule.all[1].value: wrong type for person.calls_7d (integer) with gte: 'three' is not a whole number"),
    ({"field": "person.title", "op": "gt", "value": "x"},
     "rule.op: operator 'gt' does not apply to person.title (string)"),
    ({"field": "person.has_mobile", "op": "eq", "value": "yes"},
     "rule.value: wrong type for person.has_mobile (boolean) with eq: 'yes' is not true or false"),
    ({"event": {"type": "web.view.page", "within_days": 0}},
     "rule.event.within_days: bad window 0: expected a whole number of days from 1 to 3660"),
    ({"event": {"type": "web.view.page"}}, "rule.event: missing within_days"),
    ({"any": [{"not": {"event": {"type": "web.view", "within_days": 7}}}]},
     "rule.any[0].not.event.type: event type 'web.view' is not <domain>.<action>.<object>"),
    ({"event": {"type": "web.view.page", "within_day": 7}},
     "rule.event.within_day: unknown key 'within_day' (did you mean 'within_days'?)"),
    ({"any": [{"tags": "A类"}]}, "rule.any[0].tags: unknown condition 'tags' (did you mean 'tag'?)"),
    ({"linked": {"source": "wecom"}}, "rule.linked.source: unknown OneID record source 'wecom'"),
    ({"field": "person.last_active_on", "op": "within_last_days", "value": -3},
     "rule.value: bad window -3 for within_last_days on person.last_active_on"),
    ({"field": "person.last_active_on", "op": "gte", "value": "2026-13-01"},
     "rule.value: wrong type for person.last_active_on (date) with gte: '2026-13-01' is not a date YYYY-MM-DD"),
    ({"field": "person.calls_7d", "op": "between", "value": [5, 1]},
     "rule.value: between on person.calls_7d: low 5 is above high 1"),
    ({"field": "person.title", "op": "in", "value": []}, "rule.value: in on person.title needs a non-empty list"),
    ({"all": []}, "rule.all: expected a non-empty list of conditions"),
    ({"tag": {"group": "客户等级"}}, "rule.tag: a tag needs its name"),
    ({"event": {"within_days": 7}, "call": {"within_days": 7}}, "rule: one condition per item"),
])
def test_bad_rules_name_path_and_problem(rule, expected):
    found = problems(doc(rule))
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once():
    found = problems({"id": "S-1", "version": 0, "kind": "dynamc", "rule": {"all": [
        {"field": "enterprise.industri", "op": "eq", "value": "x"}, {"call": {"within_days": 99999}}]}})
    assert [p.split(":")[0] for p in found] == [
        "description", "id", "version", "kind", "rule.all[0].field", "rule.all[1].call.within_days"]
    assert "did you mean 'dynamic'" in found[3] and "did you mean 'enterprise.industry'" in found[4]


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "t001" / "vip.yaml"
    bad.parent.mkdir()
    bad.write_text("id: vip\nversion: 1\nkind: dynamic\ndescription: x\nrule: {tag: [A类\n", encoding="utf-8")
    with pytest.raises(SegmentError, match=r"vip\.yaml: line \d+, column \d+: not valid YAML"):
        load_segment(bad)
    bad.write_text("id: vip2\nversion: 1\nkind: dynamic\ndescription: x\nrule: {tag: A类}\n", encoding="utf-8")
    with pytest.raises(SegmentError, match=r"vip\.yaml: id: 'vip2' differs from the file name 'vip'"):
        load_segment(bad)
    with pytest.raises(SegmentError, match=r"tenant 't001' segments:[\s\S]*vip\.yaml"):
        load_tenant_segments("t001", tmp_path)


def test_values_are_literals_never_sql():
    evil = "x' or '1'='1"
    compiled = compile_segment(parse_segment(doc({"any": [
        {"field": "person.title", "op": "eq", "value": evil},
        {"tag": {"name": evil}}, {"event": {"type": "a.b.c'); drop table x; --", "within_days": 3}}]}), "s"), D)
    tree = sqlglot.parse_one(compiled.sql, read="duckdb")
    literals = {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}
    assert {evil, "a.b.c'); drop table x; --"} <= literals
    assert not list(tree.find_all(exp.Drop)) and len(list(tree.find_all(exp.Or))) == 2  # the rule's own `any`


def test_windows_are_relative_to_the_business_date():
    compiled = compile_segment(parse_segment(doc({"event": {"domain": "web", "within_days": 7}}), "s"), D)
    assert "ev.business_date > CAST('2026-11-18' AS DATE)" in compiled.sql
    assert "ev.business_date <= CAST('2026-11-25' AS DATE)" in compiled.sql
    assert compiled.tables == ["dwm.dwm_person_events", "dwm.dwm_person_golden"]


@pytest.mark.parametrize("engine", ["mysql", "clickhouse"])
def test_sql_for_an_engine_points_at_the_tenant_databases(engine):
    compiled = compile_segment(parse_segment(doc({"all": [{"tag": "A类"}, {"field": "enterprise.city", "op": "eq",
                                                                             "value": "上海"}]}), "s"), D)
    sql = compiled.sql_for(engine, "t001_")
    assert "t001_dwm.dwm_person_golden" in sql and "t001_dwm.dwm_person_tags" in sql
    assert "t001_ads.ads_enterprise_360" in sql and "'上海'" in sql


def test_shipped_definitions_are_valid():
    root = REPO_ROOT / "segments"
    tenants = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert tenants == ["t001", "t002"]
    for tenant in tenants:
        segments = load_tenant_segments(tenant, root)
        assert 3 <= len(segments) <= 5
        assert all(s.tenant_id == tenant and Path(s.source).stem == s.id for s in segments)
