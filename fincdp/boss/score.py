"""boss_score = grade_weight x interaction_freq x decision_score, each factor kept beside the score.

grade_weight      weights.grade[level] of the person's title (`unknown` when no table knows it).
interaction_freq  floor + (1 - floor) * d / (d + saturation), where d sums each interaction's outcome
                  weight halved every half_life_days of age on the business date.
decision_score    min(1, base + bonuses): leads a department, top of the org, 1/(1 + depth), legal
                  representative, budget-holding function; without org data `no_org` replaces the org terms.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fincdp.boss.config import BossConfig


@dataclass(frozen=True)
class Interaction:
    at: datetime          # aware; naive values are taken as UTC
    outcome: str          # connected, no_answer, busy, voicemail, wecom_follow, lead


@dataclass(frozen=True)
class ScoreInputs:
    level: str | None
    function: str | None
    has_org: bool
    is_leader: bool
    depth: int | None
    is_legal_rep: bool
    decayed_interactions: float


@dataclass(frozen=True)
class Score:
    grade_weight: float
    interaction_freq: float
    decision_score: float
    boss_score: float


def decayed_interactions(interactions: list[Interaction], as_of: date, config: BossConfig) -> float:
    w = config["weights"]["interaction"]
    half_life, outcomes = float(w["half_life_days"]), w["outcomes"]
    total = 0.0
    for i in interactions:
        age = max(0.0, (as_of - i.at.date()).days)
        total += float(outcomes.get(i.outcome, 0.0)) * 0.5 ** (age / half_life)
    return total


def grade_weight(level: str | None, config: BossConfig) -> float:
    grade = config["weights"]["grade"]
    return float(grade.get(level, grade["unknown"])) if level else float(grade["unknown"])


def interaction_freq(decayed: float, config: BossConfig) -> float:
    w = config["weights"]["interaction"]
    floor, sat = float(w["floor"]), float(w["saturation"])
    return floor + (1 - floor) * decayed / (decayed + sat)


def decision_score(x: ScoreInputs, config: BossConfig) -> float:
    w = config["weights"]["decision"]
    s = float(w["base"])
    if x.has_org:
        s += w["leader"] * x.is_leader
        if x.depth is not None:
            s += w["root"] * (x.depth == 0) + w["depth"] / (1 + x.depth)
    else:
        s += w["no_org"]
    s += w["legal_representative"] * x.is_legal_rep
    s += w["budget_function"] * (x.function in w["budget_functions"])
    return min(1.0, s)


def score(x: ScoreInputs, config: BossConfig) -> Score:
    g = grade_weight(x.level, config)
    f = interaction_freq(x.decayed_interactions, config)
    d = decision_score(x, config)
    return Score(round(g, 6), round(f, 6), round(d, 6), round(g * f * d, 6))


@dataclass(frozen=True)
class ContactWindow:
    weekdays: tuple[int, ...]   # ISO weekdays 1..7
    hour_start: int             # local hours [start, end)
    hour_end: int
    successes: int              # interactions the window was learned from (0: the default window)
    source: str                 # learned | default

    def label(self) -> str:
        names = "一二三四五六日"
        days = "/".join("周" + names[d - 1] for d in self.weekdays)
        return f"{days} {self.hour_start:02d}:00-{self.hour_end:02d}:00"


def contact_window(interactions: list[Interaction], config: BossConfig) -> ContactWindow:
    """The hours and weekdays the person's past interactions succeeded, in the tenant's time zone:
    the `width_hours` block with the most successes, and the weekdays with at least half the successes
    of the best weekday. Without successes: the configured default, marked `default`."""
    cw = config["contact_window"]
    zone, width = ZoneInfo(cw["timezone"]), int(cw["width_hours"])
    ok = [i.at.astimezone(zone) if i.at.tzinfo else i.at.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
          for i in interactions if i.outcome in cw["success_outcomes"]]
    if not ok:
        d = cw["default"]
        return ContactWindow(tuple(d["weekdays"]), int(d["hour_start"]), int(d["hour_end"]), 0, "default")
    hours = [0] * 24
    for t in ok:
        hours[t.hour] += 1
    blocks = [sum(hours[h:h + width]) for h in range(0, 25 - width)]
    start = blocks.index(max(blocks))   # the earliest of the best blocks
    # weekdays over all successes (more evidence than the block alone): those at least half as good as the best
    days = Counter(t.isoweekday() for t in ok)
    top = max(days.values())
    weekdays = tuple(sorted(d for d, n in days.items() if 2 * n >= top))
    return ContactWindow(weekdays, start, start + width, len(ok), "learned")
