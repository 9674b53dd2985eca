"""The boss model's configuration: fincdp/boss/boss.yaml, overridden per tenant by a YAML file."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("boss.yaml")


class BossConfigError(ValueError):
    pass


# mappings whose keys are data (titles, outcome names), not settings: a tenant may add keys to them
OPEN_MAPPINGS = ("overrides", "person_overrides", "outcomes")


def _merge(base: dict, override: dict, where: str = "", open_keys: bool = False) -> dict:
    """Override mappings key by key; any other value (lists included) replaces the default whole."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in base and not open_keys:
            raise BossConfigError(f"unknown boss config key {path!r}")
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(base[key], value, path, open_keys=key in OPEN_MAPPINGS)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class BossConfig:
    raw: dict

    @classmethod
    def load(cls, override: Path | str | dict | None = None) -> "BossConfig":
        """The defaults, with `override` (a YAML path or a dict) merged over them."""
        base = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
        if override is None:
            return cls.validated(base)
        if isinstance(override, (str, Path)):
            path = Path(override)
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise BossConfigError(f"boss config {path}: {exc}") from exc
            where = str(path)
        else:
            data, where = override, "override"
        if not isinstance(data, dict):
            raise BossConfigError(f"boss config {where}: expected a mapping at the top level")
        try:
            return cls.validated(_merge(base, data))
        except BossConfigError as exc:
            raise BossConfigError(f"boss config {where}: {exc}") from None

    @classmethod
    def validated(cls, raw: dict) -> "BossConfig":
        levels = raw["levels"]
        for table in ("corporate", "public"):
            bad = set(raw["titles"][table]) - set(levels)
            if bad:
                raise BossConfigError(f"titles.{table} names unknown levels {sorted(bad)}; levels are {levels}")
        for key in ("overrides", "person_overrides"):
            raw["titles"][key] = raw["titles"][key] or {}
            bad = {t: lv for t, lv in raw["titles"][key].items() if lv not in levels}
            if bad:
                raise BossConfigError(f"titles.{key} maps to unknown levels {bad}; levels are {levels}")
        grade = raw["weights"]["grade"]
        missing = set(levels) - set(grade)
        if missing:
            raise BossConfigError(f"weights.grade misses levels {sorted(missing)}")
        for key, value in {**grade, **raw["weights"]["interaction"]["outcomes"]}.items():
            if not isinstance(value, (int, float)) or value < 0:
                raise BossConfigError(f"weight {key!r} must be a number >= 0, not {value!r}")
        inter = raw["weights"]["interaction"]
        if inter["half_life_days"] <= 0 or inter["saturation"] <= 0 or not 0 <= inter["floor"] < 1:
            raise BossConfigError("weights.interaction needs half_life_days > 0, saturation > 0, 0 <= floor < 1")
        for key in ("economic_buyer_min_level", "technical_min_level", "user_max_level"):
            if raw["committee"][key] not in levels:
                raise BossConfigError(f"committee.{key} must be one of {levels}")
        for i, corp in enumerate(raw.get("customer_corps") or []):
            missing = {"corpid", "corpsecret_env", "credit_code"} - set(corp or {})
            if missing:
                raise BossConfigError(f"customer_corps[{i}] misses {sorted(missing)}")
            extra = set(corp) - {"corpid", "corpsecret_env", "credit_code", "base_url"}
            if extra:
                raise BossConfigError(f"customer_corps[{i}] ({corp['corpid']}): unknown keys {sorted(extra)}")
        return cls(raw)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def levels(self) -> list[str]:
        return list(self.raw["levels"])

    def rank(self, level: str | None) -> int:
        """0 for the top level; unknown levels rank below every known one."""
        return self.raw["levels"].index(level) if level in self.raw["levels"] else len(self.raw["levels"])
