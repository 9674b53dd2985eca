"""BG/NBD and Gamma-Gamma: the published CDNOW fit as the oracle, and recovery of known parameters
from simulated customers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fincdp.analytics.value import fit_bgnbd, fit_gamma_gamma, predict_clv

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow" / "cdnow_customers_summary_with_transactions.csv"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW)


def test_bgnbd_on_cdnow_gives_the_published_parameters(cdnow):
    m = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert (m.r, m.alpha, m.a, m.b) == pytest.approx((0.243, 4.414, 0.793, 2.426), abs=1.5e-3)
    # Fader, Hardie & Lee (2005): customer x=2, t_x=30.43, T=38.86 is expected to buy 1.226 times in 39 weeks
    assert float(m.expected_purchases(39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=1e-3)
    assert float(m.p_alive(0, 0, 38.86)) == 1.0  # no repeat purchase: the model never says they left
    assert 0 < float(m.p_alive(2, 5.0, 38.86)) < float(m.p_alive(2, 30.43, 38.86)) < 1


def test_gamma_gamma_on_cdnow_gives_the_published_parameters(cdnow):
    repeaters = cdnow[cdnow["x"] > 0]
    m = fit_gamma_gamma(repeaters["x"], repeaters["zbar"])
    assert (m.p, m.q, m.v) == pytest.approx((6.249, 3.745, 15.448), abs=2e-3)
    # the conditional mean lies between the population mean and the customer's own mean
    population = m.p * m.v / (m.q - 1)
    assert population < float(m.expected_value(5, 80.0)) < 80.0


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, seed: int):
    """Purchases as a Poisson process (rate ~ Gamma(r, alpha)), dropping out after each with p ~ Beta(a, b)."""
    rng = np.random.default_rng(seed)
    rate, drop, T = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n), rng.uniform(200, 400, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rate[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < drop[i]:
                break
    return x, t_x, T


def test_bgnbd_recovers_parameters_it_was_simulated_from():
    x, t_x, T = simulate_bgnbd(5000, r=0.5, alpha=10.0, a=0.8, b=2.5, seed=1)
    m = fit_bgnbd(x, t_x, T)
    assert (m.r, m.alpha, m.a, m.b) == pytest.approx((0.5, 10.0, 0.8, 2.5), rel=0.12)


def test_gamma_gamma_recovers_the_spend_distribution():
    rng = np.random.default_rng(5)
    p, q, v, n = 6.0, 4.0, 15.0, 3000
    nu = rng.gamma(q, 1 / v, n)
    x = rng.integers(1, 8, n)
    m = np.array([rng.gamma(p, 1 / nu[i], x[i]).mean() for i in range(n)])
    fit = fit_gamma_gamma(x, m)
    # p and v trade off against each other; q and the mean spend p*v/(q-1) are what the data pin down
    assert fit.q == pytest.approx(q, rel=0.1)
    assert fit.p * fit.v / (fit.q - 1) == pytest.approx(p * v / (q - 1), rel=0.05)


def test_predict_clv_refuses_to_fit_too_little_data_and_says_why():
    inputs = pd.DataFrame({"customer_id": list("abcd"), "frequency": [0, 0, 1, 0], "recency": [0, 0, 5, 0],
                           "T": [30, 40, 50, 60], "monetary_value": [0, 0, 10.0, 0]})
    out, models, why = predict_clv(inputs, 365, min_customers=20)
    assert models is None and "4 customers, 1 with repeat purchases" in why
    assert out["predicted_clv"].isna().all()


def test_predict_clv_on_simulated_customers():
    x, t_x, T = simulate_bgnbd(2000, r=0.5, alpha=10.0, a=0.8, b=2.5, seed=2)
    rng = np.random.default_rng(9)
    inputs = pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(x))], "frequency": x, "recency": t_x, "T": T,
                           "monetary_value": np.where(x > 0, rng.gamma(6, 5, len(x)), 0.0)})
    out, (bg, gg), why = predict_clv(inputs, 365, min_customers=20)
    assert why is None and (out["predicted_clv"] >= 0).all() and out["predicted_clv"].notna().all()
    # more past purchases with the same recency and age -> more expected purchases
    assert float(bg.expected_purchases(365, 10, 300, 300)) > float(bg.expected_purchases(365, 1, 300, 300))


def test_a_fit_that_does_not_converge_gives_no_model_and_says_why(cdnow, monkeypatch):
    import fincdp.analytics.value as value

    # a likelihood that keeps improving as a parameter runs off: the evaluation budget runs out
    with pytest.raises(value.FitDidNotConverge):
        value._fit(lambda p: -np.log(p[0]), np.array([1.0]))
    fit = value._fit
    monkeypatch.setattr(value, "_fit", lambda negll, start: fit(lambda p: -np.log(p[0]), np.array([1.0])))
    inputs = pd.DataFrame({"frequency": cdnow["x"], "recency": cdnow["t_x"], "T": cdnow["T"],
                           "monetary_value": 30.0})
    out, models, why = predict_clv(inputs, 365, min_customers=20)
    assert models is None and "did not converge" in why and out["predicted_clv"].isna().all()
