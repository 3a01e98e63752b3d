"""The fitting path through the Python API: methods, numeric gradients, convergence reporting."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlefit
from mlefit.errors import ConvergenceWarning, DataError, UsageError

from conftest import SAMPLES

CASES = {
    "bernoulli": (SAMPLES / "admissions.csv", "admitted"),
    "categorical": (SAMPLES / "commute.csv", "mode"),
    "gaussian": (SAMPLES / "house_prices.csv", "price_k"),
}


@pytest.fixture(scope="module")
def newton_fits():
    return {f: mlefit.fit(path, f, target=t) for f, (path, t) in CASES.items()}


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_lbfgs_reaches_the_newton_optimum_or_says_not(family, newton_fits):
    path, target = CASES[family]
    ref = newton_fits[family]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = mlefit.fit(path, family, target=target, method="lbfgs")
    if res.converged:
        # within tol standard errors of the optimum
        assert np.all(np.abs(res.params - ref.params) <= 1e-5 * ref.se)
        assert res.nll == pytest.approx(ref.nll, rel=1e-10)
    else:
        assert "standard errors from the optimum" in res.message


def test_gd_on_standardised_data_converges_to_newton_optimum(rng):
    X = rng.standard_normal((400, 2))
    y = (rng.random(400) < 1 / (1 + np.exp(-(0.3 + X @ [1.0, -0.5])))).astype(int)
    ref = mlefit.fit(X=X, y=y, family="bernoulli")
    res = mlefit.fit(X=X, y=y, family="bernoulli", method="gd")
    assert res.converged and res.method == "gd"
    assert res.n_iter > ref.n_iter
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-5)
    steps = [r.step for r in res.trace[1:]]
    assert all(s > 0 for s in steps)


@pytest.mark.parametrize("family", list(CASES))
def test_numeric_gradient_reaches_analytic_optimum(family, newton_fits):
    path, target = CASES[family]
    res = mlefit.fit(path, family, target=target, gradient="numeric")
    ref = newton_fits[family]
    assert res.converged and res.gradient == "numeric"
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-5, atol=1e-5 * np.abs(ref.params).max())


def test_iteration_limit_is_a_result_not_an_exception():
    path, target = CASES["bernoulli"]
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = mlefit.fit(path, "bernoulli", target=target, max_iter=2)
    assert not res.converged
    assert "iteration limit (2)" in res.message
    assert res.n_iter == 2 and len(res.trace) == 3
    # every method says how far it stopped from the optimum, in standard errors (the decrement)
    for method in ("newton", "gd", "lbfgs"):
        with pytest.warns(ConvergenceWarning):
            short = mlefit.fit(path, "bernoulli", target=target, max_iter=2, method=method)
        assert short.message.endswith(f"the point is {short.decrement:.2g} standard errors from the optimum")
    assert np.all(np.isfinite(res.se))


def test_trace_records_every_iteration(newton_fits):
    res = newton_fits["categorical"]
    assert [r.iteration for r in res.trace] == list(range(res.n_iter + 1))
    nll = [r.nll for r in res.trace]
    assert all(b <= a + 1e-9 for a, b in zip(nll, nll[1:]))  # monotone: line search
    assert np.isnan(res.trace[0].step)
    assert res.trace[-1].grad_norm < 1e-6
    assert all(b.seconds >= a.seconds for a, b in zip(res.trace, res.trace[1:]))
    assert res.trace[-1].nll == res.nll


def test_fit_on_arrays_equals_fit_on_frame(newton_fits):
    frame = pd.read_csv(SAMPLES / "house_prices.csv")
    res = mlefit.fit(X=frame[["area_m2", "bedrooms", "age_years"]].to_numpy(), y=frame["price_k"].to_numpy(),
                     family="gaussian", feature_names=["area_m2", "bedrooms", "age_years"])
    ref = newton_fits["gaussian"]
    assert res.names == ref.names
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-12)


def test_no_intercept(rng):
    X = rng.standard_normal((300, 2))
    y = X @ [2.0, -1.0] + 0.1 * rng.standard_normal(300)
    res = mlefit.fit(X=X, y=y, family="gaussian", intercept=False)
    assert res.names == ("x1", "x2", "sigma")
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(res.params[:2], coef, rtol=1e-10)


def test_sigma_interval_is_positive_and_log_symmetric(newton_fits):
    res = newton_fits["gaussian"]
    sigma, lo, hi = res.params[-1], res.ci_low[-1], res.ci_high[-1]
    assert 0 < lo < sigma < hi
    assert np.log(hi) - np.log(sigma) == pytest.approx(np.log(sigma) - np.log(lo), rel=1e-12)
    assert np.isnan(res.z[-1]) and np.isnan(res.p_values[-1])


def test_to_dict_layout(newton_fits):
    d = newton_fits["categorical"].to_dict()
    for key in ("family", "method", "gradient", "target", "n_obs", "n_params", "converged", "message",
                "iterations", "nll", "mean_nll", "loglik", "aic", "bic", "parameters", "trace", "cov"):
        assert key in d
    assert list(d["parameters"][0]) == ["name", "class", "estimate", "std_error", "z", "p_value", "ci_low", "ci_high",
                                        "model_std_error", "profile_ci_low", "profile_ci_high", "profile_status"]
    assert d["ci_method"] == "wald" and d["level"] == 0.95
    assert d["parameters"][0]["profile_ci_low"] is None and d["parameters"][0]["profile_status"] is None
    assert d["parameters"][0]["name"] == "intercept" and d["parameters"][0]["class"] == "bus"
    assert list(d["trace"][0]) == ["iteration", "nll", "grad_norm", "step", "seconds"]
    assert d["trace"][0]["step"] is None  # NaN written as null
    assert np.asarray(d["cov"]).shape == (d["n_params"], d["n_params"])


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"method": "bfgs"}, UsageError, "unknown method 'bfgs'"),
        ({"gradient": "auto"}, UsageError, "unknown gradient"),
        ({"tol": -1.0}, UsageError, "--tol must be a positive"),
        ({"target": "nope"}, DataError, "target column 'nope' not found"),
        ({"features": "gpa,nope"}, DataError, "feature column 'nope' not found"),
    ],
)
def test_api_errors(kwargs, error, fragment):
    kwargs.setdefault("target", "admitted")
    with pytest.raises(error, match=fragment):
        mlefit.fit(SAMPLES / "admissions.csv", "bernoulli", **kwargs)


def test_fewer_rows_than_parameters():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 0.1, 0.9], "y": [1.0, 2.0, 2.5]})
    with pytest.raises(DataError, match="too few for 4 parameters"):
        mlefit.fit(frame, "gaussian")


def test_exact_gaussian_fit_reports_sigma_zero():
    x = np.arange(10.0)
    res = mlefit.fit(X=x, y=1.0 + 2.0 * x, family="gaussian")
    assert res.exact_fit and res.converged
    np.testing.assert_allclose(res.params[:2], [1.0, 2.0], rtol=1e-14)
    assert res.params[-1] == 0.0
    assert "exact fit" in res.message


def test_default_target_is_y_then_last_column():
    frame = pd.DataFrame({"y": [0, 1, 0, 1, 1, 0, 1, 0], "a": [1.0, 2, 3, 4, 5, 6, 8, 7], "z": [0.1, 0.5, 0.2, 0.9, 0.3, 0.4, 0.6, 0.1]})
    assert mlefit.fit(frame, "bernoulli").target == "y"
    frame = frame.rename(columns={"y": "label"})
    assert mlefit.fit(frame, "gaussian").target == "z"
