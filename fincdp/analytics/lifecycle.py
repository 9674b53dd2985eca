"""Lifecycle stages by ordered rules (analytics.yaml `lifecycle.rules`, first match wins).

A rule's conditions all have to hold: first_seen_within_days (days since first seen <= N),
last_active_within_days (last activity known and days since <= N), min_won_deals (>= N).
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from fincdp.analytics.config import Lifecycle


def stages(people: pd.DataFrame, rules: Lifecycle, as_of: date) -> pd.Series:
    """people: first_seen_on, last_active_on (dates, may be null), won_deals. Returns the stage per row."""
    as_of = pd.Timestamp(as_of)
    since_first = (as_of - pd.to_datetime(people["first_seen_on"])).dt.days.to_numpy(dtype=float)
    since_active = (as_of - pd.to_datetime(people["last_active_on"])).dt.days.to_numpy(dtype=float)
    won = people["won_deals"].fillna(0).to_numpy()
    stage = np.full(len(people), None, dtype=object)
    for rule in rules.rules:
        match = np.ones(len(people), dtype=bool)
        c = rule.conditions()
        if "first_seen_within_days" in c:
            match &= np.nan_to_num(since_first, nan=np.inf) <= c["first_seen_within_days"]
        if "last_active_within_days" in c:
            match &= np.nan_to_num(since_active, nan=np.inf) <= c["last_active_within_days"]
        if "min_won_deals" in c:
            match &= won >= c["min_won_deals"]
        stage = np.where((stage == None) & match, rule.stage, stage)  # noqa: E711 (element-wise)
    return pd.Series(stage, index=people.index, name="stage")
