from datetime import date

from fincdp.boss.history import update_history

D1, D2, D3 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


def cur(member, dept=1, position="经理", boss="ceo", active=True, org="staff"):
    return {"org": org, "member": member, "department_id": dept, "position": position, "reports_to": boss,
            "is_active": active}


def test_versions_open_close_and_rerun_adds_nothing():
    h1 = update_history([], [cur("a"), cur("b")], D1)
    assert [(r["member"], r["valid_from"], r["valid_to"]) for r in h1] == [("a", D1, None), ("b", D1, None)]
    assert update_history(h1, [cur("a"), cur("b")], D1) == h1
    h2 = update_history(h1, [cur("a", dept=2, boss="cfo"), cur("b")], D2)   # a moved; b unchanged
    a = [r for r in h2 if r["member"] == "a"]
    assert [(r["department_id"], r["reports_to"], r["valid_from"], r["valid_to"]) for r in a] == \
        [(1, "ceo", D1, D2), (2, "cfo", D2, None)]
    h3 = update_history(h2, [cur("a", dept=2, boss="cfo")], D3)              # b left the org
    b = [r for r in h3 if r["member"] == "b"]
    assert [(r["valid_from"], r["valid_to"]) for r in b] == [(D1, D3)]
    assert update_history(h3, [cur("a")], D2) == h3                           # an older date never rewrites
    # what a looked like on D1 and on D3
    on = lambda d: {r["member"]: r["department_id"] for r in h3  # noqa: E731
                    if r["valid_from"] <= d and (r["valid_to"] is None or r["valid_to"] > d)}
    assert on(D1) == {"a": 1, "b": 1} and on(D3) == {"a": 2}


def test_orgs_are_kept_apart():
    h = update_history([], [cur("x", org="staff"), cur("x", org="E1", boss=None)], D1)
    assert {(r["org"], r["reports_to"]) for r in h} == {("staff", "ceo"), ("E1", None)}
