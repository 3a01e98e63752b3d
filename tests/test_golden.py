"""Golden comparisons against independent implementations (statsmodels) and NIST certified values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import mlefit

from conftest import NIST, SAMPLES

RTOL = 1e-6


def design(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    return sm.add_constant(frame[features].to_numpy(dtype=float), has_constant="add")


def assert_close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=0)


def bernoulli_cases():
    frame = pd.read_csv(SAMPLES / "admissions.csv")
    yield "admissions.csv", frame, ["gpa", "test_score", "essay_rating"], "admitted"
    sim = mlefit.simulate("bernoulli", [1.0, -2.0, 0.5], n=3000, intercept=0.3, seed=11)
    yield "simulated", sim, ["x1", "x2", "x3"], "y"


@pytest.mark.parametrize("case", list(bernoulli_cases()), ids=lambda c: c[0])
def test_bernoulli_matches_statsmodels_logit(case):
    _, frame, features, target = case
    res = mlefit.fit(frame, "bernoulli", target=target, features=features)
    y = (frame[target] == sorted(frame[target].unique())[-1]).astype(float)
    ref = sm.Logit(y, design(frame, features)).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    assert res.converged
    assert_close(res.params, ref.params)
    assert_close(res.se, ref.bse)
    assert_close(res.z, ref.tvalues)
    assert_close(res.p_values, ref.pvalues, rtol=1e-5)
    assert_close(res.cov, ref.cov_params())
    assert res.loglik == pytest.approx(ref.llf, rel=1e-10)
    assert res.aic == pytest.approx(ref.aic, rel=1e-10)
    assert res.bic == pytest.approx(ref.bic, rel=1e-10)
    ci = np.asarray(ref.conf_int())
    assert_close(res.ci_low, ci[:, 0])
    assert_close(res.ci_high, ci[:, 1])
    assert res.mean_nll == pytest.approx(-ref.llf / len(frame), rel=1e-10)


def categorical_cases():
    frame = pd.read_csv(SAMPLES / "commute.csv")
    yield "commute.csv", frame, ["distance_km", "income_k", "age"], "mode"
    coef = [[1.0, -1.0], [0.5, 0.5], [-0.7, 1.2]]
    sim = mlefit.simulate("categorical", coef, n=4000, intercept=[0.2, -0.1, 0.3], seed=5)
    yield "simulated", sim, ["x1", "x2"], "y"


@pytest.mark.parametrize("case", list(categorical_cases()), ids=lambda c: c[0])
def test_categorical_matches_statsmodels_mnlogit(case):
    _, frame, features, target = case
    res = mlefit.fit(frame, "categorical", target=target, features=features)
    levels = sorted(frame[target].unique())
    codes = frame[target].map({v: i for i, v in enumerate(levels)})
    ref = sm.MNLogit(codes, design(frame, features)).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    # statsmodels' params are (n_features, K-1); mlefit's are class-major
    assert res.converged
    assert_close(res.params, np.asarray(ref.params).T.ravel())
    assert_close(res.se, np.asarray(ref.bse).T.ravel())
    assert_close(res.cov, ref.cov_params())
    assert res.loglik == pytest.approx(ref.llf, rel=1e-10)
    assert res.aic == pytest.approx(ref.aic, rel=1e-10)
    assert list(res.classes) == [str(c) for c in levels[1:] for _ in range(len(features) + 1)]


def gaussian_cases():
    frame = pd.read_csv(SAMPLES / "house_prices.csv")
    yield "house_prices.csv", frame, ["area_m2", "bedrooms", "age_years"], "price_k"
    sim = mlefit.simulate("gaussian", [2.0, -1.0, 0.25], n=2000, intercept=1.5, sigma=0.8, seed=3)
    yield "simulated", sim, ["x1", "x2", "x3"], "y"


@pytest.mark.parametrize("case", list(gaussian_cases()), ids=lambda c: c[0])
def test_gaussian_matches_statsmodels_ols_at_ml_sigma(case):
    _, frame, features, target = case
    res = mlefit.fit(frame, "gaussian", target=target, features=features)
    X = design(frame, features)
    ols = sm.OLS(frame[target].to_numpy(float), X).fit()
    n, k = X.shape
    sigma_ml = np.sqrt(ols.ssr / n)
    assert res.converged
    assert_close(res.params[:-1], ols.params)
    assert res.params[-1] == pytest.approx(sigma_ml, rel=RTOL)
    # statsmodels' bse use sigma^2 = RSS/(n-k); the ML scale is RSS/n
    assert_close(res.se[:-1], ols.bse * np.sqrt((n - k) / n))
    assert res.se[-1] == pytest.approx(sigma_ml / np.sqrt(2 * n), rel=RTOL)
    assert res.loglik == pytest.approx(ols.llf, rel=1e-10)
    # statsmodels' OLS AIC does not count sigma; mlefit's does (as R's AIC(lm))
    assert res.aic == pytest.approx(ols.aic + 2, rel=1e-10)
    assert res.residual_std_error == pytest.approx(np.sqrt(ols.scale), rel=1e-10)
    assert res.mse == pytest.approx(ols.ssr / n, rel=1e-10)


def lre(estimate: float, certified: float) -> float:
    """Log relative error: the number of correct significant digits."""
    if estimate == certified:
        return 16.0
    return -np.log10(abs(estimate - certified) / abs(certified))


@pytest.mark.parametrize("problem", ["longley", "norris"])
def test_nist_certified_coefficients_to_nine_digits(problem):
    cert = json.loads((NIST / f"{problem}.json").read_text())
    frame = pd.read_csv(NIST / f"{problem}.csv")
    target = next(c for c in frame.columns if c.lower() == "y")
    res = mlefit.fit(frame, "gaussian", target=target)
    est = dict(zip(res.names, res.params))
    for name, value in cert["certified"]["params"].items():
        ours = est["intercept" if name == "const" else name]
        assert lre(ours, value) >= 9, (problem, name, ours, value)
    assert res.params[-1] == pytest.approx(cert["derived"]["sigma_ml"], rel=1e-9)
    assert res.loglik == pytest.approx(cert["derived"]["llf"], rel=1e-9)
