"""Multi-touch attribution: each conversion's credit split over the touchpoints before it.

Models (weights sum to 1 per conversion per model; touchpoints ordered by time, then id):
- first_touch / last_touch: all credit to the first / the last touchpoint;
- linear: 1/n each;
- time_decay: proportional to 2^(-age / half_life), age = conversion time - touch time;
- position_based: `first` and `last` shares to the ends and `middle` split evenly over the others
  (40/20/40 by default); two touchpoints split first:last, one takes all.
A conversion with no touchpoint in its window gives its whole credit to channel "(none)", so every
conversion is counted once in every model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fincdp.analytics.config import Attribution

MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
NO_TOUCH = "(none)"
CREDIT_COLUMNS = ["conversion_id", "conversion_type", "person_key", "converted_at", "amount", "model",
                  "touchpoint_id", "channel", "touched_at", "position", "touchpoints", "weight", "credited_amount"]


def _position_based(pos: np.ndarray, n: np.ndarray, settings: Attribution) -> np.ndarray:
    w = settings.position_weights
    ends = w.first + w.last
    two_first, two_last = (w.first / ends, w.last / ends) if ends else (0.5, 0.5)
    out = np.where(n == 1, 1.0, 0.0)
    out = np.where((n == 2) & (pos == 0), two_first, out)
    out = np.where((n == 2) & (pos == 1), two_last, out)
    many = n >= 3
    out = np.where(many & (pos == 0), w.first, out)
    out = np.where(many & (pos == n - 1), w.last, out)
    middle = many & (pos > 0) & (pos < n - 1)
    return np.where(middle, w.middle / np.maximum(n - 2, 1), out)


def attribute(conversions: pd.DataFrame, touchpoints: pd.DataFrame, settings: Attribution) -> pd.DataFrame:
    """conversions: conversion_id, conversion_type, person_key, converted_at, amount;
    touchpoints: touchpoint_id, person_key, channel, touched_at. One row per conversion, model and
    credited touchpoint."""
    conv = conversions.dropna(subset=["person_key", "converted_at"])
    touch = touchpoints.dropna(subset=["person_key", "touched_at"])
    touch = touch[touch["channel"].isin(settings.channels)]
    pairs = conv.merge(touch, on="person_key", how="inner")
    window = pd.Timedelta(days=settings.window_days)
    pairs = pairs[(pairs["touched_at"] < pairs["converted_at"])
                  & (pairs["touched_at"] >= pairs["converted_at"] - window)]
    pairs = pairs.sort_values(["conversion_id", "touched_at", "touchpoint_id"], kind="stable").reset_index(drop=True)
    pos = pairs.groupby("conversion_id").cumcount().to_numpy()
    n = pairs.groupby("conversion_id")["touchpoint_id"].transform("size").to_numpy()
    age_days = ((pairs["converted_at"] - pairs["touched_at"]) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    decay = np.power(0.5, age_days / settings.half_life_days)
    decay_sum = pd.Series(decay).groupby(pairs["conversion_id"].to_numpy()).transform("sum").to_numpy()
    weights = {
        "first_touch": (pos == 0).astype(float),
        "last_touch": (pos == n - 1).astype(float),
        "linear": 1.0 / np.maximum(n, 1),
        "time_decay": decay / np.where(decay_sum > 0, decay_sum, 1.0),
        "position_based": _position_based(pos, n, settings),
    }
    pairs = pairs.assign(position=pos + 1, touchpoints=n)
    frames = [pairs.assign(model=m, weight=w) for m, w in weights.items()]
    untouched = conv[~conv["conversion_id"].isin(pairs["conversion_id"])]
    frames += [untouched.assign(model=m, touchpoint_id=None, channel=NO_TOUCH, touched_at=pd.NaT, position=0,
                                touchpoints=0, weight=1.0) for m in MODELS]
    credits = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame(columns=CREDIT_COLUMNS)
    credits = credits[credits["weight"] > 0] if len(credits) else credits
    credits = credits.assign(credited_amount=credits["weight"] * credits["amount"].astype(float))
    return credits[CREDIT_COLUMNS].reset_index(drop=True)


def by_channel(credits: pd.DataFrame) -> pd.DataFrame:
    """Per model and channel: conversions credited (sum of weights) and amount credited."""
    if not len(credits):
        return pd.DataFrame(columns=["model", "channel", "conversions", "amount"])
    out = credits.groupby(["model", "channel"], as_index=False).agg(
        conversions=("weight", "sum"), amount=("credited_amount", "sum"))
    return out.sort_values(["model", "conversions", "channel"], ascending=[True, False, True]).reset_index(drop=True)
