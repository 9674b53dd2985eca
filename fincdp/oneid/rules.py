"""OneID merge rules: which identifiers merge records, in what order, and what stops a bad merge.

A tenant's `oneid_merge_rules` (tenants.yaml) overrides the defaults per identifier type;
`oneid_confidence_threshold` is the match probability at which a probabilistic pair merges.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fincdp.oneid.identifiers import IDENTIFIER_TYPES


class TypeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strength: Literal["strong", "weak"]
    # Strong identifiers merge in priority order, 1 first: a conflict found at a level cuts that
    # level's link, never an earlier (stronger) one.
    priority: int = Field(ge=1, le=99)
    # Hub limit: a value shared by more records than this (a switchboard, info@) merges nothing.
    max_records: int | None = Field(default=None, ge=2)
    # At most one value per identity: two different values in one cluster are a conflict.
    exclusive: bool = False
    # Evidence weight of a weak identifier in the probabilistic stage (0 ignores it).
    weight: float = Field(default=1.0, ge=0, le=10)
    # Weak identifiers only: a value seen with at most this many identities that do not contradict
    # each other joins them (fincdp.oneid.weak); more, and it is shared. None: it never joins anything.
    max_identities: int | None = Field(default=None, ge=2)
    # Strong types only: a value of this type on a people record where it is weak (a mobile an employee
    # typed) that is another identity's strong key joins the two when a name corroborates it, with this
    # confidence (fincdp.oneid.corroborated). None: such a value never joins anything.
    corroborated: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _attaching_is_weak(self) -> "TypeRule":
        if self.max_identities is not None and self.strength != "weak":
            raise ValueError("max_identities applies to weak identifiers only (strong ones merge by priority)")
        if self.corroborated is not None and self.strength != "strong":
            raise ValueError("corroborated applies to strong identifier types (a weak use of a strong key)")
        return self


def _rule(strength, priority, max_records=None, exclusive=False, weight=1.0, max_identities=None,
          corroborated=None) -> TypeRule:
    return TypeRule(strength=strength, priority=priority, max_records=max_records, exclusive=exclusive,
                    weight=weight, max_identities=max_identities, corroborated=corroborated)


# credit code > phone > email / WeCom ids > CRM key; ID numbers are exclusive like credit codes.
DEFAULT_RULES: dict[str, TypeRule] = {
    "credit_code": _rule("strong", 1, exclusive=True),
    "id_number": _rule("strong", 1, max_records=20, exclusive=True),
    # an employee-typed mobile joins the person holding it when a name agrees ('蔡经理' for 蔡荣)
    "phone": _rule("strong", 2, max_records=5, corroborated=0.9),
    "email": _rule("strong", 3, max_records=5),
    "wecom_userid": _rule("strong", 3, max_records=5),
    "wecom_external_userid": _rule("strong", 3, max_records=5),
    "wechat_unionid": _rule("strong", 3, max_records=5),
    "crm_id": _rule("strong", 4, max_records=5),
    "company_name": _rule("weak", 9),
    "cookie": _rule("weak", 9, max_records=20),
    # one person's own phone: a login by mobile and one by e-mail on it are one person (fincdp.oneid.weak)
    "device_id": _rule("weak", 9, max_records=20, max_identities=2),
    "ad_id": _rule("weak", 9, max_records=20),
    "session_id": _rule("weak", 9, max_records=20),
    "ip": _rule("weak", 9, max_records=50, weight=0.3),
}


class MergeRules(BaseModel):
    """The rules a resolution runs with: the defaults, overridden per type by a tenant or a mapping."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    identifiers: dict[str, TypeRule] = Field(default_factory=lambda: dict(DEFAULT_RULES))
    threshold: float = Field(default=0.8, gt=0, le=1)
    # Probabilistic pairs at or above review_floor but under the threshold go to human review.
    review_floor: float = Field(default=0.5, gt=0, le=1)

    @field_validator("identifiers")
    @classmethod
    def _known_types(cls, value: dict[str, TypeRule]) -> dict[str, TypeRule]:
        unknown = sorted(set(value) - set(IDENTIFIER_TYPES))
        if unknown:
            raise ValueError(f"unknown identifier type(s) {', '.join(unknown)}; known: {', '.join(IDENTIFIER_TYPES)}")
        return value

    @model_validator(mode="after")
    def _floor_below_threshold(self) -> "MergeRules":
        if self.review_floor > self.threshold:
            raise ValueError(f"review_floor {self.review_floor} is above the threshold {self.threshold}")
        return self

    def rule(self, identifier_type: str) -> TypeRule:
        return self.identifiers.get(identifier_type) or DEFAULT_RULES[identifier_type]

    @classmethod
    def with_overrides(cls, overrides: dict | None = None, *, threshold: float | None = None) -> "MergeRules":
        """Defaults with per-type overrides ({type: {field: value}}), validated."""
        unknown = sorted(set(overrides or {}) - set(IDENTIFIER_TYPES))
        if unknown:
            raise ValueError(f"unknown identifier type(s) {', '.join(unknown)}; known: {', '.join(IDENTIFIER_TYPES)}")
        merged = {name: rule.model_dump() for name, rule in DEFAULT_RULES.items()}
        for name, fields in (overrides or {}).items():
            merged[name] = {**merged.get(name, {}), **(fields or {})}
        return cls(identifiers=merged, **({"threshold": threshold} if threshold is not None else {}))
