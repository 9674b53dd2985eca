"""Hand-made org charts with known answers."""
from fincdp.boss.org import build_org


def dept(id_, parent, leaders=(), name=""):
    return {"id": id_, "parentid": parent, "department_leader": list(leaders), "name": name or f"d{id_}"}


def member(userid, departments, leader_flags=None, direct=(), main=None, status=1, position=""):
    return {"userid": userid, "department": list(departments),
            "is_leader_in_dept": list(leader_flags or [0] * len(departments)), "direct_leader": list(direct),
            "main_department": main if main is not None else departments[0], "status": status, "position": position}


DEPTS = [dept(1, 0, ["ceo"], "总部"), dept(2, 1, ["cfo"], "财务部"), dept(3, 1, ["cio"], "信息部"),
         dept(4, 2, ["cfo"], "资金部"), dept(5, 1, [], "运营部"), dept(6, 1, ["old_boss"], "采购部")]
MEMBERS = [
    member("ceo", [1], [1]),
    member("cfo", [2, 4], [1, 1], main=2),          # leads two departments
    member("acct", [4]),                             # in the second department the CFO leads
    member("analyst", [2]),
    member("cio", [3], [1]),
    member("dev", [3], direct=["cio_old"]),          # still names the CIO's userid before a rename
    member("ops", [5]),                              # department without a leader
    member("buyer", [6]),                            # department whose leader left
    member("old_boss", [6], [1], status=5),
    member("matrix", [3, 2], main=3),                # in two departments
]


def test_reporting_lines_across_departments():
    org = build_org(DEPTS, MEMBERS, renames={"cio_old": "cio"})
    want = {"ceo": None, "cfo": "ceo", "acct": "cfo", "analyst": "cfo", "cio": "ceo", "dev": "cio", "ops": "ceo",
            "buyer": "ceo", "matrix": "cio"}
    assert {u: org.reports_to(u) for u in want} == want
    assert org.positions["cfo"].via == "parent_department_leader"
    assert org.positions["acct"].via == "department_leader"
    assert org.positions["dev"].via == "direct_leader"
    assert {u: org.positions[u].depth for u in ("ceo", "cfo", "acct", "dev", "ops")} == \
        {"ceo": 0, "cfo": 1, "acct": 2, "dev": 2, "ops": 1}
    assert sorted(org.positions["cfo"].leads) == [2, 4]
    assert org.chain("acct") == ["acct", "cfo", "ceo"]
    assert org.direct_reports("cfo") == ["acct", "analyst"]


def test_bad_data_is_warned_by_name():
    org = build_org(DEPTS, MEMBERS, renames={"cio_old": "cio"})
    kinds = {(w.kind, w.subject) for w in org.warnings}
    assert ("no_leader", "department:5") in kinds
    assert ("leader_left", "department:6") in kinds
    assert ("several_departments", "matrix") in kinds
    assert ("several_departments", "cfo") in kinds
    assert not any(w.kind == "unknown_userid" for w in org.warnings)   # the rename was followed


def test_departed_member_reports_nowhere_and_nobody_reports_to_them():
    org = build_org(DEPTS, MEMBERS, renames={"cio_old": "cio"})
    gone = org.positions["old_boss"]
    assert not gone.active and gone.reports_to is None and gone.depth is None
    assert "old_boss" not in {p.reports_to for p in org.positions.values()}


def test_renamed_userid_without_the_rename_map_is_an_unknown_leader_not_a_crash():
    org = build_org(DEPTS, MEMBERS)
    assert org.reports_to("dev") == "cio"   # falls back to the department's leader
    assert any(w.kind == "unknown_userid" and w.subject == "dev" and "cio_old" in w.message for w in org.warnings)


def test_renamed_member_record_itself():
    members = [member("boss", [1], [1]), member("zhang_old", [1], direct=["boss"])]
    org = build_org([dept(1, 0, ["boss"])], members, renames={"zhang_old": "zhang3"})
    assert set(org.positions) == {"boss", "zhang3"} and org.reports_to("zhang3") == "boss"


def test_direct_leader_cycle_falls_back_to_departments():
    members = MEMBERS + [member("a", [5], direct=["b"]), member("b", [5], direct=["a"])]
    org = build_org(DEPTS, members, renames={"cio_old": "cio"})
    assert org.reports_to("a") == "ceo" and org.reports_to("b") == "ceo"
    cycle = [w for w in org.warnings if w.kind == "direct_leader_cycle"]
    assert len(cycle) == 1 and cycle[0].subject == "a,b"


def test_cycle_through_the_top_is_cut_with_a_warning():
    # the two tops name each other and sit in a department nobody leads: no department route exists
    members = [member("x", [1], direct=["y"]), member("y", [1], direct=["x"]), member("z", [1], direct=["x"])]
    org = build_org([dept(1, 0, [])], members)
    assert {org.reports_to("x"), org.reports_to("y")} == {None}
    assert org.reports_to("z") == "x" and org.positions["z"].depth == 1


def test_direct_leader_who_left_is_skipped_for_the_next_one():
    members = [member("ceo", [1], [1]), member("vp", [1], direct=["gone", "ceo2"]), member("gone", [1], status=5),
               member("ceo2", [1])]
    org = build_org([dept(1, 0, ["ceo"])], members)
    assert org.reports_to("vp") == "ceo2"
    assert any(w.kind == "leader_left" and w.subject == "vp" for w in org.warnings)


def test_leader_flag_without_department_leader_list():
    members = [member("top", [1], [1]), member("head", [2], [1]), member("staff", [2])]
    org = build_org([dept(1, 0), dept(2, 1)], members)
    assert org.reports_to("staff") == "head" and org.reports_to("head") == "top"


def test_empty_and_unknown_department():
    assert build_org([], []).positions == {}
    org = build_org([dept(1, 0, ["a"])], [member("a", [1], [1]), member("b", [9])])
    assert org.reports_to("b") is None and org.positions["b"].depth == 0
    assert any(w.kind == "unknown_department" and w.subject == "b" for w in org.warnings)
