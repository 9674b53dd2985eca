"""The planted committees (generator, opt-in) and the bench that scores the model against them."""
from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date

import pytest

from fincdp.boss.bench import evaluate, load, report, sparse_inputs
from fincdp.boss.config import BossConfig
from fincdp.boss.tenant import assess_tenant
from fincdp.demo.generate import generate_tenant

DAY = date(2026, 11, 25)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("boss")
    kw = dict(org_ids=["o1"], corpid="ww1", corpsecret="s", scale=400, business_date=DAY, days=2)
    plain = generate_tenant(root / "plain", "acme", **kw)
    planted = generate_tenant(root / "planted", "acme", committees=True, **kw)
    return root, plain, planted


def rows(path):
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_planting_leaves_the_default_output_alone(generated):
    root, plain, planted = generated
    for rel, n in plain["counts"].items():
        a, b = root / "plain/acme" / rel, root / "planted/acme" / rel
        if rel == "crm/calls.jsonl":   # the committee's calls are appended after the default ones
            assert b.read_bytes().startswith(a.read_bytes()) and planted["counts"][rel] > n
        else:
            assert a.read_bytes() == b.read_bytes(), rel
    assert "truth/committees.csv" not in plain["counts"] and not (root / "plain/acme/customers").exists()


def test_every_account_with_opportunities_has_one_planted_buyer_and_signer(generated):
    root, _, _ = generated
    acme = root / "planted/acme"
    people = {r["person_id"]: r for r in rows(acme / "truth/people.csv")}
    committees = rows(acme / "truth/committees.csv")
    by_role = Counter((r["enterprise_id"], r["role"]) for r in committees)
    accounts = {r["enterprise_id"] for r in committees}
    assert accounts and all(by_role[(a, "economic_buyer")] == 1 and by_role[(a, "signer")] == 1 for a in accounts)
    assert all(people[r["person_id"]]["enterprise_id"] == r["enterprise_id"] for r in committees)
    # not always the top executive: the finance head or a vice president holds the budget in some accounts
    eb_levels = Counter(people[r["person_id"]]["seniority"] for r in committees if r["role"] == "economic_buyer")
    assert len(eb_levels) >= 2
    # each account's own WeCom corp, in the API's shapes, one member per person of the enterprise
    members = rows(acme / "truth/customer_members.csv")
    for eid in accounts:
        folder = acme / "customers" / eid / "wecom"
        depts = json.loads((folder / "departments.json").read_text(encoding="utf-8"))
        users = [json.loads(x) for x in (folder / "users.jsonl").read_text(encoding="utf-8").splitlines()]
        assert {d["id"] for d in depts} >= {u["main_department"] for u in users}
        assert {u["userid"] for u in users} == {m["userid"] for m in members if m["enterprise_id"] == eid}


def test_bench_metrics_fall_with_sparser_org_data_and_weights_move_the_ranking(generated):
    root, _, _ = generated
    data = load(root / "planted/acme")
    config = BossConfig.load()
    full = evaluate(data, sparse_inputs(data, 1.0), config, DAY)
    sparse = evaluate(data, sparse_inputs(data, 0.3), config, DAY)
    assert full["accounts"] > 5 and 0.5 < full["top1"] <= 1
    assert sparse["top1"] < full["top1"]
    assert full["roles"]["signer"][1] > 0.8       # the legal representative is found by name
    assert evaluate(data, sparse_inputs(data, 1.0), config, DAY)["top1"] == full["top1"]   # reproducible
    # interactions weigh more: some accounts' top becomes a more engaged person, never a less engaged one
    engaged = BossConfig.load({"weights": {"interaction": {"floor": 0.0, "saturation": 0.5}}})
    tops = evaluate(data, sparse_inputs(data, 1.0), engaged, DAY)["tops"]
    moved = [a for a in tops if tops[a] != full["tops"][a]]
    assert moved
    result = assess_tenant(sparse_inputs(data, 1.0), config, DAY)
    for a in moved:
        people = result.accounts[a].people
        assert people[tops[a]].decayed_interactions > people[full["tops"][a]].decayed_interactions
    block = report(400, {1.0: full, 0.3: sparse}, {"defaults": full}, 1.0)
    assert block.startswith("<!-- bench:boss -->") and block.endswith("<!-- /bench:boss -->")
    assert f"{full['top1']:.3f}" in block
