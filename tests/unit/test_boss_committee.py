"""Boss score, buying roles, gaps and contact windows on hand-made accounts."""
from datetime import date, datetime, timezone

import pytest

from fincdp.boss.committee import Opportunity, Person, assess_account
from fincdp.boss.config import BossConfig
from fincdp.boss.org import build_org
from fincdp.boss.score import Interaction, ScoreInputs, contact_window, decayed_interactions, score
from fincdp.boss.titles import TitleMapper

AS_OF = date(2026, 11, 25)
UTC = timezone.utc


def calls(n, day=20, hour_utc=2, outcome="connected", month=11):
    # 02:00 UTC is 10:00 in Shanghai; 2026-11-17 is a Tuesday
    return [Interaction(datetime(2026, month, day - 7 * (i % 2), hour_utc, 15, tzinfo=UTC), outcome) for i in range(n)]


def run(people, opps=(), config=None, org=None):
    config = config or BossConfig.load()
    return assess_account("E1", list(people), list(opps), mapper=TitleMapper(config), config=config, as_of=AS_OF,
                          org=org)


def test_factors_are_reproducible_from_stored_inputs():
    config = BossConfig.load()
    r = run([Person("p1", "财务总监", interactions=calls(4))]).people["p1"]
    # the stored inputs alone give the stored factors and the product
    again = score(ScoreInputs(r.level, r.function, False, r.is_leader, None, r.is_legal_rep, r.decayed_interactions), config)
    assert again == r.score
    assert r.score.boss_score == pytest.approx(r.score.grade_weight * r.score.interaction_freq * r.score.decision_score,
                                               abs=1e-6)
    assert r.score.grade_weight == 0.9                     # cxo
    assert r.score.decision_score == pytest.approx(0.3 + 0.1 + 0.1)   # base + no_org + finance


def test_interactions_decay_with_a_half_life():
    config = BossConfig.load()
    fresh = [Interaction(datetime(2026, 11, 25, 3, tzinfo=UTC), "connected")]
    old = [Interaction(datetime(2026, 10, 26, 3, tzinfo=UTC), "connected")]     # 30 days: one half-life
    assert decayed_interactions(fresh, AS_OF, config) == pytest.approx(1.0)
    assert decayed_interactions(old, AS_OF, config) == pytest.approx(0.5)
    assert decayed_interactions(calls(1, outcome="no_answer"), AS_OF, config) < 0.1


def test_economic_buyer_signer_technical_users_and_influencer():
    people = [Person("gm", "总经理", is_legal_rep=True, interactions=calls(1)),
              Person("cfo", "财务总监", interactions=calls(6)),
              Person("it", "信息部部长", interactions=calls(2)),
              Person("acct", "会计"), Person("buyer", "采购专员", interactions=calls(1)),
              Person("asst", "总经理助理"), Person("pm", "项目经理", interactions=calls(3))]
    res = run(people, [Opportunity("o1", "proposal", lead_person="buyer")])
    roles = {(r.person, r.role) for r in res.roles}
    assert ("cfo", "economic_buyer") in roles       # engaged CFO outranks the barely-called GM
    assert ("gm", "signer") in roles                # the legal representative signs
    assert ("it", "technical_decision_maker") in roles
    assert {("acct", "user"), ("buyer", "user")} <= roles
    assert {("asst", "influencer"), ("pm", "influencer")} <= roles
    assert res.gaps == []
    eb = next(r for r in res.roles if r.role == "economic_buyer")
    assert 0.5 <= eb.confidence <= 0.95 and "财务总监" in eb.evidence and "boss_score" in eb.evidence


def test_weights_change_the_ranking_as_expected():
    people = [Person("gm", "总经理", interactions=calls(1)), Person("cfo", "财务总监", interactions=calls(6))]
    base = run(people)
    eb = lambda res: next(r.person for r in res.roles if r.role == "economic_buyer")  # noqa: E731
    assert eb(base) == "cfo"
    # interactions matter less: the GM's grade wins
    flat = BossConfig.load({"weights": {"interaction": {"floor": 0.9}, "decision": {"budget_function": 0.0},
                                        "grade": {"cxo": 0.9, "owner": 1.0}}})
    people[0].title = "董事长"
    assert eb(run(people, config=flat)) == "gm"
    assert eb(run(people)) == "cfo"


def test_gaps_on_open_opportunities_only():
    people = [Person("m", "财务经理"), Person("e", "出纳")]
    res = run(people, [Opportunity("open1", "negotiation"), Opportunity("won1", "won")])
    kinds = {(g.opportunity_id, g.kind) for g in res.gaps}
    assert kinds == {("open1", "no_economic_buyer"), ("open1", "no_signer"), ("open1", "no_technical_decision_maker")}
    msg = next(g.message for g in res.gaps if g.kind == "no_economic_buyer")
    assert "open1" in msg and "E1" in msg and "highest-ranked contact is m" in msg


def test_no_legal_rep_the_top_executive_signs_with_low_confidence():
    res = run([Person("ceo", "CEO"), Person("m", "采购经理")], [Opportunity("o", "proposal")])
    signer = [r for r in res.roles if r.role == "signer"]
    assert [(s.person, s.confidence) for s in signer] == [("ceo", 0.5)]


def test_unknown_title_costs_confidence_and_uses_the_unknown_grade():
    res = run([Person("x", "首席吹哨人", level_override=None), Person("v", "副总")])
    assert res.people["x"].level is None and res.people["x"].score.grade_weight == 0.15
    res = run([Person("x", "首席吹哨人", level_override="cxo")])
    assert res.people["x"].level == "cxo" and res.people["x"].level_source == "person_override"


def test_connected_org_feeds_decision_score_and_reports_to():
    depts = [{"id": 1, "parentid": 0, "department_leader": ["u_gm"]},
             {"id": 2, "parentid": 1, "department_leader": ["u_cfo"]}]
    members = [{"userid": "u_gm", "department": [1], "is_leader_in_dept": [1], "main_department": 1, "status": 1},
               {"userid": "u_cfo", "department": [2], "is_leader_in_dept": [1], "main_department": 2, "status": 1},
               {"userid": "u_mid", "department": [2], "main_department": 2, "status": 1},
               {"userid": "u_acct", "department": [2], "direct_leader": ["u_mid"], "main_department": 2, "status": 1}]
    org = build_org(depts, members)
    people = [Person("gm", "总经理", org_userid="u_gm"), Person("cfo", "财务总监", org_userid="u_cfo"),
              Person("acct", "会计", org_userid="u_acct"), Person("new", "采购经理")]
    res = run(people, org=org)
    p = res.people
    assert (p["cfo"].reports_to, p["gm"].reports_to) == ("gm", None)
    assert p["acct"].reports_to == "cfo"   # u_mid is not a known contact: the next one up
    assert (p["gm"].depth, p["cfo"].depth, p["acct"].depth) == (0, 1, 3)
    assert p["gm"].org_source == "wecom" and p["new"].org_source == "inferred" and p["new"].reports_to == "gm"
    # root and leader bonuses: base .3 + leader .15 + root .2 + depth .15 + general .1 = .9
    assert p["gm"].score.decision_score == pytest.approx(0.9)


def test_inferred_org_without_connection():
    res = run([Person("gm", "总经理"), Person("cfo", "财务总监"), Person("fm", "财务经理"), Person("it", "IT经理")])
    p = res.people
    assert p["gm"].reports_to is None and p["cfo"].reports_to == "gm"
    assert p["fm"].reports_to == "cfo" and p["it"].reports_to == "gm"
    assert p["fm"].depth == 2 and p["fm"].org_source == "inferred"


def test_contact_window_from_successful_interactions():
    config = BossConfig.load()
    # Tuesdays 10:xx and 11:xx Shanghai connect; a 20:00 no-answer does not count
    ints = calls(3, day=24, hour_utc=2) + calls(2, day=24, hour_utc=3) + calls(4, day=24, hour_utc=12, outcome="no_answer")
    w = contact_window(ints, config)
    assert (w.weekdays, w.hour_start, w.hour_end, w.successes, w.source) == ((2,), 10, 12, 5, "learned")
    assert w.label() == "周二 10:00-12:00"
    d = contact_window(calls(2, outcome="busy"), config)
    assert d.source == "default" and (d.hour_start, d.hour_end) == (10, 12)
