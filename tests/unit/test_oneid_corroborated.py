"""An employee-typed mobile joins the identity holding it as a strong key only when a name agrees."""
import numpy as np
import pytest

from fincdp.oneid.corroborated import agreement, link_corroborated, name_tokens
from fincdp.oneid.rules import MergeRules

RULES = MergeRules()


def test_names_are_read_without_address_forms_and_compared_by_surname():
    assert name_tokens("蔡经理") == {"蔡"} and name_tokens("老王") == {"王"}
    assert name_tokens("袁玉兰-赛凯") == {"袁玉兰", "赛凯"} and name_tokens("Sunny") == set()
    assert agreement({"袁玉兰", "赛凯"}, {"袁玉兰"}) == "name"
    assert agreement({"蔡"}, {"蔡荣"}) == "surname"
    assert agreement({"王伟"}, {"王芳"}) == "different name"   # same surname, another person
    assert agreement({"阳光"}, {"王芳"}) == "none"              # a nickname says nothing


def resolve(names, remarks, weak, strong, root=None, **kwargs):
    n = len(names)
    root = np.arange(n) if root is None else np.array(root)
    return link_corroborated(root, np.ones(n), np.full(n, None, dtype=object), weak, strong,
                             dict(enumerate(names)), remarks, kwargs.pop("rules", RULES), **kwargs)


def test_a_typed_mobile_joins_its_owner_when_the_remark_names_them():
    # 0: CRM contact 蔡荣 with mobile m1; 1: a WeCom account 'Sunny' the rep noted as 蔡经理 with m1;
    # 2: a WeCom account '阳光' noted as 王总 with m1 too (the rep mistyped, or it is someone else)
    names = ["蔡荣", "Sunny", "阳光"]
    remarks = {1: ["蔡经理"], 2: ["王总"]}
    weak = [(1, "phone", "m1"), (2, "phone", "m1")]
    strong = [(0, "phone", "m1")]
    result = resolve(names, remarks, weak, strong)
    assert result.root.tolist() == [0, 0, 2]
    assert result.confidence.tolist() == [1.0, 0.9, 1.0]
    assert result.evidence[1] == "phone typed by an employee, surname agrees"
    assert [(r.record, r.holder, r.reason) for r in result.refused] == [(2, 0, "no name agrees")]


def test_a_typed_mobile_never_joins_a_namesake_an_id_number_apart_or_a_rejected_pair():
    strong = [(0, "phone", "m1")]
    other_person = resolve(["王芳", "王伟"], {1: ["王总"]}, [(1, "phone", "m1")], strong)
    assert other_person.root.tolist() == [0, 1] and other_person.refused[0].reason == "different name"
    two_ids = resolve(["王芳", "王芳"], {}, [(1, "phone", "m1")],
                      strong + [(0, "id_number", "A"), (1, "id_number", "B")])
    assert two_ids.root.tolist() == [0, 1] and two_ids.refused[0].reason == "different id_number"
    rejected = resolve(["王芳", "王芳"], {}, [(1, "phone", "m1")], strong, rejected=[(0, 1)])
    assert rejected.root.tolist() == [0, 1] and rejected.refused[0].reason == "review:rejected"
    # held strongly by two identities: ambiguous, nothing joins and nothing is asked
    ambiguous = resolve(["王芳", "王芳", "王芳"], {}, [(2, "phone", "m1")], strong + [(1, "phone", "m1")])
    assert ambiguous.root.tolist() == [0, 1, 2] and ambiguous.refused == []


def test_a_tenant_can_switch_it_off_or_send_it_to_review():
    args = (["王芳", "老王"], {}, [(1, "phone", "m1")], [(0, "phone", "m1")])
    assert resolve(*args).root.tolist() == [0, 0]
    off = MergeRules.with_overrides({"phone": {"corroborated": None}})
    assert resolve(*args, rules=off).root.tolist() == [0, 1]
    strict = MergeRules.with_overrides({"phone": {"corroborated": 0.7}}, threshold=0.8)
    result = resolve(*args, rules=strict)
    assert result.root.tolist() == [0, 1] and "under the merge threshold 0.8" in result.refused[0].reason
    with pytest.raises(ValueError, match="corroborated applies to strong"):
        MergeRules.with_overrides({"device_id": {"corroborated": 0.9}})


def test_identities_join_whole_and_name_the_oldest():
    # records 0-1 are one identity (root 0) holding m1; records 2-3 (root 2) a WeCom account and its events
    result = resolve(["李娜", None, "Lina", None], {2: ["李娜-远航"]}, [(2, "phone", "m1")], [(1, "phone", "m1")],
                     root=[0, 0, 2, 2])
    assert result.root.tolist() == [0, 0, 0, 0] and result.confidence.tolist() == [1.0, 1.0, 0.9, 0.9]
    assert result.evidence[2] == "phone typed by an employee, name agrees"
