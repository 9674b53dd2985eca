"""Weak-id attachment: a device joins identities that complement each other, never ones that contradict."""
import numpy as np
import pytest

from fincdp.oneid.rules import MergeRules
from fincdp.oneid.weak import WEAK_CONFIDENCE, attach_weak

RULES = MergeRules()


def attach(root, weak, facts=(), rules=RULES, **kwargs):
    n = len(root)
    return attach_weak(np.array(root), np.ones(n), np.array([None] * n, dtype=object), list(weak), list(facts),
                       rules, **kwargs)


def test_a_device_joins_a_mobile_login_and_an_email_login_to_the_oldest_identity():
    # records 0, 1: a CRM contact and her mobile login (one identity); record 2: her e-mail login
    result = attach([0, 0, 2], [(1, "device_id", "d1"), (2, "device_id", "d1")],
                    facts=[(0, "phone", "m1"), (1, "phone", "m1"), (2, "email", "e1"), (0, "name", "王芳")])
    assert result.root.tolist() == [0, 0, 0] and result.attached == 1
    assert result.confidence.tolist() == [1.0, 1.0, WEAK_CONFIDENCE]
    assert result.evidence.tolist() == [None, None, "device_id"]


def test_a_device_seen_with_identities_that_contradict_each_other_joins_nobody():
    for kind in ("phone", "email", "name", "id_number"):
        result = attach([0, 1], [(0, "device_id", "pc"), (1, "device_id", "pc")],
                        facts=[(0, kind, "a"), (1, kind, "b")])
        assert result.root.tolist() == [0, 1], kind
        assert [(r.value, r.reason) for r in result.refused] == [("pc", f"different {kind}")]
    # a shared value is no contradiction: the mobile both hold (one also has an e-mail)
    shared = attach([0, 1], [(0, "device_id", "d"), (1, "device_id", "d")],
                    facts=[(0, "phone", "m"), (1, "phone", "m"), (1, "email", "e")])
    assert shared.root.tolist() == [0, 0]


def test_a_device_seen_with_more_identities_than_its_limit_is_shared():
    weak = [(i, "device_id", "kiosk") for i in range(3)]
    result = attach([0, 1, 2], weak)
    assert result.root.tolist() == [0, 1, 2]
    assert [(r.identities, r.reason) for r in result.refused] == [(3, "shared by 3 identities (limit 2)")]
    # a tenant may allow more, or switch the type off
    assert attach([0, 1, 2], weak, rules=MergeRules.with_overrides({"device_id": {"max_identities": 3}})
                  ).root.tolist() == [0, 0, 0]
    off = MergeRules.with_overrides({"device_id": {"max_identities": None}})
    assert attach([0, 1], weak[:2], rules=off).root.tolist() == [0, 1]
    # types without a limit (an IP address, a session) never join anything
    assert attach([0, 1], [(0, "ip", "10.0.0.1"), (1, "ip", "10.0.0.1")]).root.tolist() == [0, 1]


def test_devices_in_a_chain_check_what_the_joined_identity_holds_and_reviewers_decisions():
    # d1 joins 0 (mobile m1) and 1 (e-mail); d2 would then join that identity to 2 (mobile m2): refused
    weak = [(0, "device_id", "d1"), (1, "device_id", "d1"), (1, "device_id", "d2"), (2, "device_id", "d2")]
    result = attach([0, 1, 2], weak, facts=[(0, "phone", "m1"), (1, "email", "e"), (2, "phone", "m2")])
    assert result.root.tolist() == [0, 0, 2] and [r.reason for r in result.refused] == ["different phone"]
    kept_apart = attach([0, 1], weak[:2], rejected=[(0, 1)])
    assert kept_apart.root.tolist() == [0, 1] and kept_apart.refused[0].reason == "review:rejected"


def test_a_device_limit_is_for_weak_identifiers_only():
    with pytest.raises(ValueError, match="max_identities applies to weak identifiers only"):
        MergeRules.with_overrides({"phone": {"max_identities": 2}})
