"""`fincdp bench analytics`: speed of the analytics computations on synthetic data of a given size.

Measures the pure functions the assets call (the warehouse read and write around them are measured by
the warehouse benchmark): a 3-step funnel and top paths over events, attribution over conversions and
touchpoints, and the BG/NBD + Gamma-Gamma fit. Figures go to docs/benchmarks.md between the
bench:analytics markers.
"""
from __future__ import annotations

import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from fincdp.analytics import attribution as attr
from fincdp.analytics.config import Attribution, EventFunnel, Paths
from fincdp.analytics.events import event_funnel, top_paths
from fincdp.analytics.value import fit_bgnbd, fit_gamma_gamma

BEGIN, END = "<!-- bench:analytics -->", "<!-- /bench:analytics -->"
TYPES = np.array(["web.view.page", "web.view.product", "web.submit.form", "app.login.account", "app.view.screen"])
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(*, events: int, actors: int, conversions: int, touchpoints: int, customers: int,
        report: Path | None = None, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    ev = pd.DataFrame({"event_id": np.arange(events).astype(str), "actor": rng.integers(0, actors, events).astype(str),
                       "occurred_at": T0 + pd.to_timedelta(rng.uniform(0, 90 * 86400, events), unit="s"),
                       "event_type": rng.choice(TYPES, events, p=[.4, .2, .1, .15, .15])})
    funnel, t_funnel = _timed(lambda: event_funnel(ev, EventFunnel(name="f", steps=list(TYPES[:3]), window_days=7)))
    paths, t_paths = _timed(lambda: top_paths(ev, "web.submit.form", Paths(anchors=["web.submit.form"])))
    people = max(actors, 1)
    conv = pd.DataFrame({"conversion_id": np.arange(conversions).astype(str), "conversion_type": "won_opportunity",
                         "person_key": rng.integers(0, people, conversions).astype(str),
                         "converted_at": T0 + pd.to_timedelta(rng.uniform(0, 365, conversions), unit="D"),
                         "amount": rng.uniform(1e4, 1e7, conversions)})
    touch = pd.DataFrame({"touchpoint_id": np.arange(touchpoints).astype(str),
                          "person_key": rng.integers(0, people, touchpoints).astype(str),
                          "channel": rng.choice(["call", "web", "app", "wecom_follow"], touchpoints),
                          "touched_at": T0 + pd.to_timedelta(rng.uniform(-90, 365, touchpoints), unit="D")})
    credits, t_attr = _timed(lambda: attr.attribute(conv, touch, Attribution()))
    # customers from BG/NBD's own generative story (r=0.5, alpha=10, a=0.8, b=2.5), vectorised by purchase round
    rate, drop, T = rng.gamma(0.5, 1 / 10, customers), rng.beta(0.8, 2.5, customers), rng.uniform(200, 400, customers)
    x, t_x, t, alive = np.zeros(customers), np.zeros(customers), np.zeros(customers), np.ones(customers, bool)
    while alive.any():
        t = np.where(alive, t + rng.exponential(1 / rate), t)
        bought = alive & (t <= T)
        x[bought] += 1
        t_x[bought] = t[bought]
        alive = bought & (rng.random(customers) >= drop)
    bg, t_bg = _timed(lambda: fit_bgnbd(x, t_x, T))
    spend = np.where(x > 0, rng.gamma(6, 5, customers), 0.0)
    _, t_gg = _timed(lambda: fit_gamma_gamma(x, spend))
    rows = [
        ("custom funnel, 3 steps, 7-day window", f"{events:,} events, {actors:,} actors", t_funnel,
         f"{events / t_funnel:,.0f} events/s"),
        ("top paths around one anchor (3 steps each side)", f"{events:,} events, {actors:,} actors", t_paths,
         f"{events / t_paths:,.0f} events/s"),
        ("attribution, 5 models, 90-day window", f"{conversions:,} conversions, {touchpoints:,} touchpoints",
         t_attr, f"{len(credits):,} credit rows"),
        ("BG/NBD fit (MLE, scipy)", f"{customers:,} customers", t_bg,
         f"r={bg.r:.3f} alpha={bg.alpha:.2f} a={bg.a:.3f} b={bg.b:.3f} (simulated from 0.5, 10, 0.8, 2.5)"),
        ("Gamma-Gamma fit", f"{int((x > 0).sum()):,} repeat buyers", t_gg,
         "speed only (spend not drawn from the model)"),
    ]
    lines = [BEGIN, "", "## Analytics computations (docs/analytics.md)", "",
             f"Measured {date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores (shared), "
             f"Python {platform.python_version()}, pandas {pd.__version__}; synthetic data, seed {seed}; one run; "
             "the pure functions the analytics assets call (warehouse reads and writes not included).", "",
             "| computation | input | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {name} | {size} | {secs:.1f} | {note} |" for name, size, secs, note in rows]
    lines += ["", f"Funnel reached {funnel['actors'].tolist()}; {int(paths['occurrences'].sum()):,} path counts kept.",
              "Reproduce: `fincdp bench analytics --events {0} --actors {1} --conversions {2} --touchpoints {3} "
              "--customers {4} --report docs/benchmarks.md`".format(events, actors, conversions, touchpoints,
                                                                    customers), "", END]
    block = "\n".join(lines)
    print(block)
    if report:
        from fincdp.bench_report import replace_block

        replace_block(report, BEGIN, END, block.removeprefix(BEGIN).removesuffix(END))
    return block
