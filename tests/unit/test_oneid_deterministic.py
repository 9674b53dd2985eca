"""The deterministic OneID stage and identity history, on small graphs with known answers."""
import numpy as np

from fincdp.oneid.deterministic import resolve_strong
from fincdp.oneid.identity import changes, mint
from fincdp.oneid.rules import MergeRules

RULES = MergeRules()


def resolve(n, links, **kwargs):
    rec, typ, val = zip(*links) if links else ((), (), ())
    return resolve_strong(n, np.array(rec, dtype=np.int64), list(typ), list(val), RULES, **kwargs)


def test_a_long_chain_is_one_identity_named_by_its_oldest_record():
    n = 2000  # record i shares a phone with record i + 1
    links = [(i, "phone", f"p{i}") for i in range(n)] + [(i + 1, "phone", f"p{i}") for i in range(n - 1)]
    result = resolve(n, links)
    assert set(result.root.tolist()) == {0}
    assert result.joined_by[0] is None and set(result.joined_by[1:]) == {"phone"}


def test_a_weaker_link_between_two_credit_codes_is_cut_and_the_rest_still_merge():
    links = [(0, "credit_code", "A"), (1, "credit_code", "B"), (2, "credit_code", "A"),
             (0, "phone", "x"), (1, "phone", "x"),      # would join A and B: cut
             (1, "email", "m"), (3, "email", "m")]      # joins record 3 to B's identity
    result = resolve(4, links)
    assert result.root.tolist() == [0, 1, 0, 1]
    assert [(c.identifier_type, c.value, c.reason) for c in result.conflicts] == [("phone", "x", "different credit_code")]


def test_hubs_link_nothing_and_reviewers_decisions_hold():
    links = [(i, "email", "info@corp") for i in range(6)]
    result = resolve(6, links)
    assert len(set(result.root.tolist())) == 6 and result.hubs == [("email", "info@corp", 6)]
    kept_apart = resolve(3, [(0, "phone", "x"), (1, "phone", "x"), (2, "phone", "x")], rejected=[(0, 2)])
    assert kept_apart.root[0] != kept_apart.root[2]
    joined = resolve(2, [], approved=[(0, 1)])
    assert joined.root.tolist() == [0, 0] and joined.joined_by[1] == "review:approved"


def test_a_visitors_events_do_not_make_their_phone_a_hub():
    # record 0 is a CRM contact; records 1..20 are that visitor's web events carrying the same phone
    links = [(i, "phone", "p") for i in range(21)]
    events_count = resolve(21, links)
    assert len(set(events_count.root.tolist())) == 21 and events_count.hubs  # as records, they are a hub
    people_only = np.zeros(21, dtype=bool)
    people_only[0] = True
    result = resolve(21, links, counts_toward_hubs=people_only)
    assert set(result.root.tolist()) == {0} and result.hubs == []
    # a switchboard shared by six people is still a hub, whatever the events say
    shared = [(i, "phone", "switchboard") for i in range(6)] + [(6, "phone", "switchboard")]
    result = resolve(7, shared, counts_toward_hubs=np.array([True] * 6 + [False]))
    assert len(set(result.root.tolist())) == 7 and result.hubs == [("phone", "switchboard", 6)]


def test_history_tells_merges_from_splits():
    assert mint("t001", "person", "crm_contact:C1") != mint("t002", "person", "crm_contact:C1")
    previous = {"a": "P1", "b": "P1", "c": "P2", "d": "P2"}
    current = {"a": "P1", "b": "P1", "c": "P1", "d": "P9"}  # P2 absorbed via c; d split off to a new id
    found = changes(previous, current, {"c": "email", "d": None})
    assert [(c.action, c.one_id, c.other_one_id, c.rule) for c in found] == [
        ("merge", "P1", "P2", "email"), ("split", "P9", "P2", "links removed or cut")]
