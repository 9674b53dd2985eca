"""The segments multi-asset on DuckDB over two business dates: sizes and changes in the metadata,
entries and exits in the history ("who joined today" is one query), a static segment kept as its
snapshot, a re-run that adds nothing, and a tenant that defines fewer segments."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from assets.partitions import partition_key
from assets.segments import build_segments_asset
from fincdp.segments.language import SegmentError
from fincdp.tenants import current_tenants
from resources.warehouse import Warehouse
from tests.support.segment_tables import D, load, tables

DAY2 = D + dt.timedelta(days=1)

A_CLASS = """id: a_class
version: 1
kind: dynamic
description: A-class customers
rule: {tag: {group: 客户等级, name: A类}}
"""
TITLED = """id: titled
version: 1
kind: dynamic
description: Has a title
rule: {field: person.title, op: not_null}
"""
TITLED_LIST = """id: titled_list
version: 1
kind: static
description: Had a title when the list was drawn
rule: {field: person.title, op: not_null}
"""


def write(root: Path, tenant: str, text: str) -> None:
    seg_id = text.split("\n", 1)[0].split(": ")[1]
    (root / tenant).mkdir(parents=True, exist_ok=True)
    (root / tenant / f"{seg_id}.yaml").write_text(text, encoding="utf-8")


def materialize(asset, tenant: str, day: dt.date, instance) -> dict[str, dict]:
    result = dg.materialize([asset], partition_key=partition_key(tenant, day), instance=instance,
                            resources={"warehouse": Warehouse(lock_timeout_s=30)})
    assert result.success
    return {e.asset_key.path[-1]: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def test_segments_over_two_days(tmp_path, monkeypatch):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    root = tmp_path / "segments"
    for text in (A_CLASS, TITLED, TITLED_LIST):
        write(root, "t001", text)
    write(root, "t002", A_CLASS)          # t002 defines one of the three
    asset = build_segments_asset(root)
    assert {k.path[-1] for k in asset.keys} == {"a_class", "titled", "titled_list", "membership"}
    t001, t002 = current_tenants().get("t001"), current_tenants().get("t002")
    with Warehouse().writer(t001) as s:
        load(s, tables())
    with Warehouse().writer(t002) as s:
        load(s, tables())

    with dg.instance_for_test() as instance:
        day1 = materialize(asset, "t001", D, instance)
        assert {k: (m["size"], m["entries"], m["exits"]) for k, m in day1.items() if k != "membership"} == {
            "a_class": (1, 1, 0), "titled": (4, 4, 0), "titled_list": (4, 4, 0)}
        assert day1["membership"]["dagster/row_count"] == 9
        assert "dwm.dwm_person_tags" in day1["a_class"]["compiled_sql"]
        assert day1["titled_list"]["snapshot_date"] == D.isoformat()

        with Warehouse().writer(t001) as s:
            load(s, tables(DAY2, p6_title="董事", a_class_moves=True))
        day2 = materialize(asset, "t001", DAY2, instance)
        again = materialize(asset, "t001", DAY2, instance)      # a re-run of the same partition
        for result in (day2, again):
            assert {k: (m["size"], m["entries"], m["exits"]) for k, m in result.items() if k != "membership"} == {
                "a_class": (1, 1, 1), "titled": (5, 1, 0), "titled_list": (4, 0, 0)}
            assert result["titled_list"]["snapshot_date"] == D.isoformat()   # the kept snapshot
            assert result["titled_list"]["evaluated"] is False

        other = materialize(asset, "t002", D, instance)
        assert set(other) == {"a_class", "membership"}

    with Warehouse().session(t001, read_only=True) as s:
        joined_today = s.rows("select segment_id, one_id from segments.membership_history "
                              "where change = 'enter' and business_date = ? order by all", [DAY2])
        assert joined_today == [("a_class", "P2"), ("titled", "P6")]
        assert s.rows("select segment_id, one_id from segments.membership_history "
                      "where change = 'exit' order by all") == [("a_class", "P1")]
        assert s.scalar("select count(*) from (select segment_id, one_id, business_date, change "
                        "from segments.membership_history group by all having count(*) > 1)") == 0
        members = s.rows("select segment_id, segment_version, one_id, as_of_date from segments.membership order by all")
        assert members == [("a_class", 1, "P2", DAY2), *[("titled", 1, p, DAY2) for p in ("P1", "P2", "P3", "P5", "P6")],
                           *[("titled_list", 1, p, DAY2) for p in ("P1", "P2", "P3", "P5")]]
        # P6 entered on day 2, the others on day 1 (the re-run kept the first timestamps)
        entered = dict(s.rows("select one_id, entered_at from segments.membership where segment_id = 'titled'"))
        assert entered["P6"] > entered["P1"] == entered["P2"]
        assert s.scalar("select count(distinct snapshot_date) from segments.static_snapshots") == 1
    with Warehouse().session(t002, read_only=True) as s:
        assert s.rows("select distinct segment_id from segments.membership") == [("a_class",)]


def test_a_bad_definition_fails_the_tenant_run_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    root = tmp_path / "segments"
    write(root, "t001", A_CLASS.replace("person.title", "x").replace("{tag: {group: 客户等级, name: A类}}",
                                                                    "{field: person.titel, op: not_null}"))
    asset = build_segments_asset(root)
    with Warehouse().writer(current_tenants().get("t001")) as s:
        load(s, tables())
    with dg.instance_for_test() as instance, pytest.raises(SegmentError) as failure:
        dg.materialize([asset], partition_key=partition_key("t001", D), instance=instance,
                       resources={"warehouse": Warehouse(lock_timeout_s=30)})
    assert "a_class.yaml" in str(failure.value) and "did you mean 'person.title'" in str(failure.value)


def test_the_membership_table_id_is_reserved(tmp_path, monkeypatch):
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path / "home"))
    root = tmp_path / "segments"
    write(root, "t001", A_CLASS.replace("id: a_class", "id: membership"))
    asset = build_segments_asset(root)
    assert {k.path[-1] for k in asset.keys} == {"membership"}   # the table's key only, not a segment's
    with Warehouse().writer(current_tenants().get("t001")) as s:
        load(s, tables())
    with dg.instance_for_test() as instance, pytest.raises(SegmentError, match="membership.yaml: segment id "
                                                                              "'membership' is reserved"):
        dg.materialize([asset], partition_key=partition_key("t001", D), instance=instance,
                       resources={"warehouse": Warehouse(lock_timeout_s=30)})
