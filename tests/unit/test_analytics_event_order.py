"""Funnels and paths read each actor's events in time order, simultaneous events by event id, whatever
order the warehouse returns the rows in (the grouping sorts on integer keys, not on the strings)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fincdp.analytics.config import EventFunnel, Paths
from fincdp.analytics.events import event_funnel, top_paths

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _frame(rows) -> pd.DataFrame:
    """rows: (event_id, actor, hours after T0, event_type)."""
    return pd.DataFrame([{"event_id": i, "actor": a, "occurred_at": T0 + pd.Timedelta(hours=h), "event_type": t}
                         for i, a, h, t in rows])


def test_simultaneous_events_are_ordered_by_event_id_not_by_row_order():
    rows = [("e3", "u", 1, "c"), ("e2", "u", 0, "b"), ("e1", "u", 0, "A"), ("e9", "v", 0, "A")]
    paths = Paths(anchors=["A"], steps=3, collapse_repeats=False)
    for ordered in (rows, rows[::-1]):
        out = top_paths(_frame(ordered), "A", paths)
        after = out[out["direction"] == "after"]
        assert dict(zip(after["path"], after["occurrences"])) == {"A > b > c": 1, "A": 1}
        before = out[out["direction"] == "before"]  # e1 (A) comes before e2 (b): b is no step before A
        assert dict(zip(before["path"], before["occurrences"])) == {"A": 2}


def test_results_do_not_depend_on_the_row_order():
    rng = np.random.default_rng(7)
    n = 3000
    frame = pd.DataFrame({
        "event_id": [f"evt_{i:05d}" for i in rng.permutation(n)],
        "actor": rng.choice([f"one_{k}" for k in range(150)] + [None], n),
        "occurred_at": T0 + pd.to_timedelta(rng.integers(0, 96, n), unit="h"),  # many simultaneous events
        "event_type": rng.choice(["a", "b", "c", "d", "A"], n)})
    frame["actor"] = frame["actor"].astype("string")
    funnel = EventFunnel(name="f", steps=["a", "b", "c"], window_days=1)
    paths = Paths(anchors=["A"], steps=3, top_n=50, window_hours=12, collapse_repeats=False)
    expected_funnel, expected_paths = event_funnel(frame, funnel), top_paths(frame, "A", paths)
    assert expected_funnel["actors"].iloc[0] > 0 and len(expected_paths) > 2
    for seed in (1, 2):
        shuffled = frame.sample(frac=1.0, random_state=seed)
        pd.testing.assert_frame_equal(event_funnel(shuffled, funnel), expected_funnel)
        pd.testing.assert_frame_equal(top_paths(shuffled, "A", paths), expected_paths)
    by_actor = frame.sort_values(["actor", "occurred_at", "event_id"])
    pd.testing.assert_frame_equal(top_paths(by_actor, "A", paths), expected_paths)


@pytest.mark.parametrize("anchor", ["never_seen"])
def test_an_anchor_no_event_has_gives_no_paths(anchor):
    out = top_paths(_frame([("e1", "u", 0, "a")]), anchor, Paths(anchors=[anchor]))
    assert out.empty
