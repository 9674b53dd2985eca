"""Analytics on small hand-made data whose answers are worked out by hand: funnels, paths,
attribution weights, RFM scores, lifecycle rules, and analytics.yaml validation."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from fincdp.analytics import attribution as attr
from fincdp.analytics.config import (AnalyticsConfigError, Attribution, EventFunnel, Lifecycle, Paths,
                                     parse_analytics)
from fincdp.analytics.events import event_funnel, top_paths
from fincdp.analytics.lifecycle import stages
from fincdp.analytics.value import clv_inputs, historical, quintile, rfm
from fincdp.analytics.config import DEFAULT_RFM_SEGMENTS

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def events(rows) -> pd.DataFrame:
    """rows: (actor, hours after T0, event_type)."""
    return pd.DataFrame([{"event_id": f"e{i:03d}", "actor": a, "occurred_at": T0 + pd.Timedelta(hours=h),
                          "event_type": t} for i, (a, h, t) in enumerate(rows)])


# ---- funnels -------------------------------------------------------------------------------------

def test_event_funnel_counts_rates_and_median_step_times():
    ev = events([
        ("u1", 0, "a"), ("u1", 1, "b"), ("u1", 5, "c"),                  # all three: gaps 1 h, 4 h
        ("u2", 0, "a"), ("u2", 1, "c"), ("u2", 2, "b"),                  # c before b: stops at b (2 h)
        ("u3", 0, "a"), ("u3", 72, "b"),                                 # b outside the 2-day window...
        ("u3", 100, "a"), ("u3", 103, "b"), ("u3", 110, "c"),            # ...a later start makes it: 3 h, 7 h
        ("u4", 0, "b"), ("u4", 1, "c"),                                  # never did step 1
        ("u5", 0, "a"), ("u5", 0, "x"),                                  # step 1 only
    ])
    out = event_funnel(ev, EventFunnel(name="f", steps=["a", "b", "c"], window_days=2))
    assert out["actors"].tolist() == [4, 3, 2]
    assert out["rate_from_previous"].tolist() == pytest.approx([1.0, 0.75, 2 / 3])
    assert out["rate_from_first"].tolist() == pytest.approx([1.0, 0.75, 0.5])
    assert out["median_hours_from_previous"].iloc[0] is None or np.isnan(out["median_hours_from_previous"].iloc[0])
    assert out["median_hours_from_previous"].iloc[1:].tolist() == pytest.approx([2.0, 5.5])


def test_event_funnel_needs_each_step_strictly_after_the_previous():
    ev = events([("u1", 0, "a"), ("u1", 0, "b"), ("u2", 0, "a"), ("u2", 1, "a")])
    out = event_funnel(ev, EventFunnel(name="f", steps=["a", "b"]))
    assert out["actors"].tolist() == [2, 0]
    out = event_funnel(ev, EventFunnel(name="twice", steps=["a", "a"]))  # the same event cannot be both steps
    assert out["actors"].tolist() == [2, 1]


def test_event_funnel_on_no_events_gives_zero_rows_not_errors():
    out = event_funnel(events([("u1", 0, "z")]), EventFunnel(name="f", steps=["a", "b"]))
    assert out["actors"].tolist() == [0, 0] and out["rate_from_first"].isna().all()


# ---- paths ---------------------------------------------------------------------------------------

def test_top_paths_before_and_after_an_anchor():
    ev = events([
        ("x", 0, "p"), ("x", 1, "q"), ("x", 2, "q"), ("x", 3, "A"), ("x", 4, "r"), ("x", 5, "s"), ("x", 6, "t"),
        ("y", 0, "A"), ("y", 1, "r"),
        ("z", 0, "p"), ("z", 48, "A"),                                   # p is outside the 24 h window
    ])
    out = top_paths(ev, "A", Paths(anchors=["A"], steps=2, top_n=10, window_hours=24))
    before = out[out["direction"] == "before"]
    after = out[out["direction"] == "after"]
    assert list(zip(before["path"], before["occurrences"])) == [("A", 2), ("p > q > A", 1)]
    assert list(zip(after["path"], after["occurrences"])) == [("A", 1), ("A > r", 1), ("A > r > s", 1)]
    assert before["share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    kept = top_paths(ev, "A", Paths(anchors=["A"], steps=2, top_n=1, collapse_repeats=False))
    assert kept[kept["direction"] == "before"]["path"].tolist() == ["A"]
    uncollapsed = top_paths(ev, "A", Paths(anchors=["A"], steps=2, collapse_repeats=False))
    assert "q > q > A" in uncollapsed["path"].tolist()


# ---- attribution ---------------------------------------------------------------------------------

def conversions_and_touches():
    at = lambda d: T0 + pd.Timedelta(days=d)  # noqa: E731
    conv = pd.DataFrame([
        {"conversion_id": "c1", "conversion_type": "won_opportunity", "person_key": "P1", "converted_at": at(10),
         "amount": 100.0},
        {"conversion_id": "c2", "conversion_type": "won_opportunity", "person_key": "P2", "converted_at": at(10),
         "amount": 50.0},
        {"conversion_id": "c3", "conversion_type": "won_opportunity", "person_key": "P3", "converted_at": at(10),
         "amount": 10.0},
    ])
    touch = pd.DataFrame([
        {"touchpoint_id": "t0", "person_key": "P1", "channel": "call", "touched_at": at(-200)},   # outside window
        {"touchpoint_id": "t1", "person_key": "P1", "channel": "call", "touched_at": at(0)},
        {"touchpoint_id": "t2", "person_key": "P1", "channel": "web", "touched_at": at(5)},
        {"touchpoint_id": "t3", "person_key": "P1", "channel": "wecom_follow", "touched_at": at(8)},
        {"touchpoint_id": "t4", "person_key": "P1", "channel": "app", "touched_at": at(9)},
        {"touchpoint_id": "t5", "person_key": "P1", "channel": "web", "touched_at": at(12)},      # after
        {"touchpoint_id": "u1", "person_key": "P3", "channel": "call", "touched_at": at(1)},
        {"touchpoint_id": "u2", "person_key": "P3", "channel": "web", "touched_at": at(2)},
        {"touchpoint_id": "v1", "person_key": "P9", "channel": "web", "touched_at": at(2)},       # nobody converted
    ])
    return conv, touch


def weights(credits, conversion, model) -> dict:
    rows = credits[(credits["conversion_id"] == conversion) & (credits["model"] == model)]
    return dict(zip(rows["touchpoint_id"].fillna(attr.NO_TOUCH), rows["weight"]))


def test_attribution_weights_match_hand_computed_ones():
    conv, touch = conversions_and_touches()
    credits = attr.attribute(conv, touch, Attribution(window_days=90, half_life_days=7))
    assert weights(credits, "c1", "first_touch") == {"t1": 1.0}
    assert weights(credits, "c1", "last_touch") == {"t4": 1.0}
    assert weights(credits, "c1", "linear") == pytest.approx({"t1": .25, "t2": .25, "t3": .25, "t4": .25})
    assert weights(credits, "c1", "position_based") == pytest.approx({"t1": .4, "t2": .1, "t3": .1, "t4": .4})
    # ages 10, 5, 2, 1 days: 2^(-age/7) = .37150, .60951, .82034, .90572 (sum 2.70707)
    assert weights(credits, "c1", "time_decay") == pytest.approx(
        {"t1": .13723, "t2": .22516, "t3": .30304, "t4": .33458}, abs=5e-5)
    # two touches: position-based splits first:last (40:40 -> 50/50)
    assert weights(credits, "c3", "position_based") == pytest.approx({"u1": .5, "u2": .5})
    # no touch in the window: the whole credit to "(none)" in every model
    for model in attr.MODELS:
        assert weights(credits, "c2", model) == {attr.NO_TOUCH: 1.0}
    assert set(credits["touchpoint_id"].dropna()) <= {"t1", "t2", "t3", "t4", "u1", "u2"}


def test_attribution_weights_sum_to_one_per_conversion_and_model():
    rng = np.random.default_rng(3)
    conv = pd.DataFrame({"conversion_id": [f"c{i}" for i in range(200)], "conversion_type": "won_opportunity",
                         "person_key": [f"P{i % 60}" for i in range(200)],
                         "converted_at": T0 + pd.to_timedelta(rng.uniform(0, 200, 200), unit="D"),
                         "amount": rng.uniform(1, 1000, 200)})
    touch = pd.DataFrame({"touchpoint_id": [f"t{i}" for i in range(3000)], "person_key": [f"P{i % 80}" for i in range(3000)],
                          "channel": rng.choice(["call", "web", "app", "wecom_follow"], 3000),
                          "touched_at": T0 + pd.to_timedelta(rng.uniform(-100, 200, 3000), unit="D")})
    for settings in (Attribution(), Attribution(window_days=3, half_life_days=0.5,
                                                position_weights={"first": .3, "middle": .5, "last": .2})):
        credits = attr.attribute(conv, touch, settings)
        sums = credits.groupby(["conversion_id", "model"])["weight"].sum()
        assert len(sums) == 200 * len(attr.MODELS)
        assert np.allclose(sums.to_numpy(), 1.0)
        amounts = credits.groupby("model")["credited_amount"].sum()
        assert np.allclose(amounts.to_numpy(), conv["amount"].sum())
        by = attr.by_channel(credits)
        assert np.allclose(by.groupby("model")["conversions"].sum().to_numpy(), 200)


def test_attribution_channels_setting_drops_other_touchpoints():
    conv, touch = conversions_and_touches()
    credits = attr.attribute(conv, touch, Attribution(channels=["web"]))
    assert weights(credits, "c1", "linear") == {"t2": 1.0}


# ---- RFM, historical value, CLV inputs -----------------------------------------------------------

def test_quintiles_on_a_tiny_set():
    assert quintile(pd.Series(range(10))).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile(pd.Series([5, 1, 5, 5])).tolist() == [2, 1, 2, 2]  # ties share their lowest score
    assert quintile(pd.Series([3, 1, 2, 4, 5])).tolist() == [3, 1, 2, 4, 5]


def test_rfm_scores_and_segments():
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c", "c", "d", "e"],
                       "purchased_on": pd.to_datetime(["2026-02-20", "2026-02-25", "2026-02-27", "2026-02-26",
                                                       "2025-06-01", "2025-07-01", "2025-01-01", "2026-01-01"]),
                       "amount": [10.0, 10.0, 10.0, 500.0, 40.0, 40.0, 5.0, 20.0]})
    hist = historical(tx, date(2026, 3, 1))
    out = rfm(hist, DEFAULT_RFM_SEGMENTS).set_index("customer_id")
    assert out.loc["a", ["purchases", "total_amount", "recency_days"]].tolist() == [3, 30.0, 2]
    # recency days a 2, b 3, e 59, c 243, d 424 -> R 5, 4, 3, 2, 1; purchases a 3, c 2, others 1 -> F 5, 4, 1
    assert out["r_score"].to_dict() == {"a": 5, "b": 4, "c": 2, "d": 1, "e": 3}
    assert out["f_score"].to_dict() == {"a": 5, "b": 1, "c": 4, "d": 1, "e": 1}
    assert out["m_score"].to_dict() == {"a": 3, "b": 5, "c": 4, "d": 1, "e": 2}
    assert out["rfm_segment"].to_dict() == {"a": "champions", "b": "promising", "c": "at_risk", "d": "hibernating",
                                            "e": "needs_attention"}
    assert out.loc["a", "rfm_code"] == "553"


def test_clv_inputs_from_transactions():
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b"],
                       "purchased_on": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-11", "2026-01-31",
                                                       "2026-01-21"]),
                       "amount": [10.0, 5.0, 30.0, 50.0, 99.0]})
    out = clv_inputs(tx, date(2026, 3, 2)).set_index("customer_id")
    # a: purchase days 01-01 (15), 01-11 (30), 01-31 (50): x=2, t_x=30, T=60, m=mean(30, 50)
    assert out.loc["a", ["frequency", "recency", "T", "monetary_value"]].tolist() == [2, 30, 60, 40.0]
    assert out.loc["b", ["frequency", "recency", "T", "monetary_value"]].tolist() == [0, 0, 40, 0.0]
    weekly = clv_inputs(tx, date(2026, 3, 2), period_days=7).set_index("customer_id")
    assert weekly.loc["a", "frequency"] == 2


# ---- lifecycle -----------------------------------------------------------------------------------

def test_lifecycle_stages_first_rule_that_matches():
    people = pd.DataFrame({
        "first_seen_on": pd.to_datetime(["2026-02-20", "2025-01-01", "2025-01-01", "2025-01-01", "2025-01-01"]),
        "last_active_on": pd.to_datetime([None, "2026-02-15", "2025-12-15", None, "2025-10-01"]),
        "won_deals": [0, 0, 3, 0, 5]}, index=list("ABCDE"))
    out = stages(people, Lifecycle(), date(2026, 3, 1))
    assert out.to_dict() == {"A": "new", "B": "active", "C": "at_risk", "D": "churned", "E": "churned"}
    custom = Lifecycle(rules=[{"stage": "vip", "min_won_deals": 2, "last_active_within_days": 90},
                              {"stage": "other"}])
    assert stages(people, custom, date(2026, 3, 1)).tolist() == ["other", "other", "vip", "other", "other"]


# ---- configuration -------------------------------------------------------------------------------

def test_config_merges_tenant_overrides_over_defaults():
    cfg = parse_analytics("defaults:\n  attribution: {window_days: 30, half_life_days: 3}\n"
                          "tenants:\n  t002: {attribution: {window_days: 60}}\n", "a.yaml", ["t001", "t002"])
    assert (cfg.for_tenant("t001").attribution.window_days, cfg.for_tenant("t001").attribution.half_life_days) == (30, 3)
    assert (cfg.for_tenant("t002").attribution.window_days, cfg.for_tenant("t002").attribution.half_life_days) == (60, 3)


@pytest.mark.parametrize("text, message", [
    ("defaults: {attribution: {half_life: 7}}", "a.yaml: defaults field 'attribution.half_life': Extra inputs"),
    ("tenants: {t001: {funnels: [{name: f, steps: [a]}]}}", "tenant 't001' field 'funnels.0.steps'"),
    ("defaults: {funnels: [{name: f, steps: [a, b]}, {name: f, steps: [c, d]}]}", "funnel names must be unique: f"),
    ("defaults: {lifecycle: {rules: [{stage: new, first_seen_within_days: 3}]}}", "must have no condition"),
    ("defaults: {lifecycle: {rules: [{stage: all}, {stage: new, first_seen_within_days: 3}]}}",
     "has no condition but is not last"),
    ("defaults: {attribution: {position_weights: {first: .5, middle: .2, last: .4}}}", "must be 1, not 1.1"),
    ("defaults: {attribution: {conversions: [signup]}}", "field 'attribution.conversions.0'"),
    ("defaults: {rfm: {segments: [{name: x, r: '[4-'}]}}", "not a regular expression"),
    ("tenants: {t404: {}}", "tenant(s) 't404' are not in the tenants configuration"),
    ("funnels: []", "unknown top-level key(s) funnels"),
    ("defaults: [1", "not valid YAML"),
])
def test_config_errors_name_the_tenant_and_field(text, message):
    with pytest.raises(AnalyticsConfigError) as err:
        parse_analytics(text, "a.yaml", ["t001", "t002"])
    assert message in str(err.value)


def test_repository_analytics_yaml_is_valid():
    from fincdp.analytics.config import load_analytics
    from fincdp.settings import REPO_ROOT

    cfg = load_analytics(REPO_ROOT / "analytics.yaml", tenant_ids=["t001", "t002"])
    assert cfg.for_tenant("t001").funnels and cfg.for_tenant("t001").paths.anchors


def test_cli_check_reports_errors_and_exits_non_zero(tmp_path, capsys):
    from fincdp.cli import main

    bad = tmp_path / "analytics.yaml"
    bad.write_text("defaults: {paths: {top_n: 0}}", encoding="utf-8")
    assert main(["analytics", "check", str(bad)]) == 1
    assert "defaults field 'paths.top_n'" in capsys.readouterr().out
    bad.write_text("tenants: {t002: {paths: {anchors: [web.submit.form]}}}", encoding="utf-8")
    assert main(["analytics", "check", str(bad)]) == 0
    assert "t002: 0 funnels, 1 path anchors" in capsys.readouterr().out
