"""OneID in the daily job on DuckDB: identities from dwd_identifiers, stable across runs, merges and
splits in the history, conflicts to the review queue, reviewers' decisions respected, hubs held."""
from __future__ import annotations

from datetime import date

import dagster as dg
from stdnum.cn import ric

from assets.partitions import partition_key
from tests.integration.test_ods_assets import write_tenant_data

DAY1, DAY2 = date(2026, 11, 24), date(2026, 11, 25)


def id_number(serial: int) -> str:
    body = f"11010519800101{serial:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum reads the first 17 characters


def contact(i: int, day: date, **fields) -> dict:
    return {"id": f"C{i}", "name": f"联系人{i}", "updated_at": f"{day}T10:00:00+08:00", **fields}


def run(defs, instance, day: date, run_config=None):
    from tests.support.jobs import WAREHOUSE_KEYS, job_upstream_of

    result = job_upstream_of(defs, *WAREHOUSE_KEYS).execute_in_process(
        partition_key=partition_key("t001", day), instance=instance, run_config=run_config)
    assert result.success
    return result


def identities(p) -> dict[str, str]:
    with p.session("t001") as s:
        return dict(s.rows("select record_id, one_id from oneid.identity_map where record_source = 'crm_contact'"))


def test_identities_are_stable_explained_and_reviewed(platform, capsys):
    from orchestration.definitions import build_definitions

    p = platform
    hub = "13900000000"  # an agent's mobile typed into six contacts, more than phone's limit of five
    switchboard = "021-5888 1234"  # two colleagues' desk line: under the limit, but a fixed line is no key
    write_tenant_data(p.data_dir, "t001", contacts=[
        contact(1, DAY1, mobile="13812340001"),
        contact(2, DAY1, mobile="+86 138 1234 0001"),                     # the same phone, written otherwise
        contact(3, DAY1, mobile="13812340003", email="Wang@Corp-Example.com"),
        contact(4, DAY1, email="wang@corp-example.com"),                  # the same email, other case
        contact(5, DAY1, mobile="13812340005", id_number=id_number(1)),
        contact(6, DAY1, mobile="13812340005", id_number=id_number(2)),   # shared phone, different ID numbers
        *[contact(10 + i, DAY1, mobile=hub) for i in range(6)],
        contact(20, DAY1, mobile=switchboard), contact(21, DAY1, mobile=switchboard),
    ])
    p.start_sources()
    crm = p.sources.crm
    defs = build_definitions()
    with dg.instance_for_test() as instance:
        run(defs, instance, DAY1)
        day1 = identities(p)
        assert day1["C1"] == day1["C2"] and day1["C3"] == day1["C4"] and day1["C1"] != day1["C3"]
        assert day1["C5"] != day1["C6"]                        # the phone link was cut
        assert len({day1[f"C{10 + i}"] for i in range(6)}) == 6  # the hub glued nothing
        assert day1["C20"] != day1["C21"]
        with p.session("t001") as s:
            [(review, reason, status)] = s.rows("select review_id, reason, status from oneid.review_queue")
            assert reason == "different id_number" and status == "open"
            assert s.scalar("select count(*) from oneid.identifier_hubs where identifier_type = 'phone'") == 1
            assert s.rows("select evidence from oneid.identity_map where record_id = 'C2'") == [("phone",)]
            assert s.scalar("select count(distinct one_id) from ads.ads_person_360") == len(set(day1.values()))

        run(defs, instance, DAY1)  # the same day again: the same identities, no history
        assert identities(p) == day1

        # Day 2: C4's email changes (a split), C7 links C1's phone and C3's email (a merge), and a
        # reviewer approves the ID-number conflict.
        crm.upsert("hx-crm", "contacts", contact(4, DAY2, email="li@corp-example.com"))
        crm.upsert("hx-crm", "contacts", contact(7, DAY2, mobile="13812340001", email="wang@corp-example.com"))
        run(defs, instance, DAY2, {"ops": {"oneid__identities": {"config": {
            "approve": [review], "reviewer": "auditor.zhang"}}}})
        day2 = identities(p)
        assert day2["C1"] == day2["C2"] == day2["C3"] == day2["C7"] == day1["C1"]  # the oldest id survives
        assert day2["C4"] not in set(day1.values())                               # split off: a new id
        assert day2["C5"] == day2["C6"] == day1["C5"]                             # approved by review
        with p.session("t001") as s:
            history = s.rows("select action, one_id, other_one_id, rule from oneid.identity_history "
                             "where business_date = ? order by action", [DAY2])
            # C7 joined C1 by phone; C3's identity then joined them by C7's email.
            assert ("merge", day1["C1"], day1["C3"], "email") in history
            assert ("merge", day1["C5"], day1["C6"], "review:approved") in history
            assert [h[0] for h in history].count("split") == 1
            assert s.rows("select status, decided_by from oneid.review_queue") == [("approved", "auditor.zhang")]
            # Golden record: one row per person, each attribute from the most recent CRM record having it.
            assert s.rows("select person_name, person_name_source, source_records, mobile_token is not null "
                          "from dwm.dwm_person_golden where one_id = ?", [day1["C1"]]) == [("联系人7", "crm_contact", 4, True)]
            assert s.scalar("select count(*) from dwm.dwm_person_golden") == len(set(day2.values()))

        # The same queue from the command line: decided items listed with who decided; a wrong id or a
        # missing reviewer name is refused and changes nothing.
        from fincdp.cli import main

        assert main(["oneid", "review", "list", "--tenant", "t001"]) == 0
        assert "no review items" in capsys.readouterr().out
        assert main(["oneid", "review", "list", "--tenant", "t001", "--all"]) == 0
        assert review in (listing := capsys.readouterr().out) and "auditor.zhang" in listing
        assert main(["oneid", "review", "reject", "Rnot-a-review", "--tenant", "t001", "--by", "li"]) == 2
        assert "no review item Rnot-a-review" in capsys.readouterr().err
        with p.session("t001") as s:
            assert s.rows("select status, decided_by from oneid.review_queue") == [("approved", "auditor.zhang")]
