"""Text models fitted: models written as built-in families against statsmodels and scipy, and real
models (Michaelis-Menten, a zero-inflated Poisson, a normal mixture) against scipy.optimize on a
numpy NLL written independently here. The fit is scipy's trust-region Newton method on the
compiled gradient and Hessian, polished by Newton steps; standard errors are the square roots of
the diagonal of the inverse Hessian."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, special, stats

from mlefit.textmodel import compile_model

DATA = Path(__file__).parent / "data"


def fit(m, D, start, weights=None):
    """The MLE and its standard errors from the compiled derivatives."""
    def fun(p):
        nll, g, _ = m.evaluate(p, D, weights, order=1)
        return nll, g

    res = optimize.minimize(
        fun, np.asarray(start, dtype=float), jac=True, method="trust-exact",
        hess=lambda p: m.evaluate(p, D, weights)[2], options={"gtol": 1e-9, "maxiter": 500},
    )
    p = res.x
    for _ in range(5):  # Newton polish: quadratic convergence from trust-exact's stop
        _, g, H = m.evaluate(p, D, weights)
        step = np.linalg.solve(H, g)
        if np.sqrt(abs(g @ step)) < 1e-13:
            break
        p = p - step
    _, g, H = m.evaluate(p, D, weights)
    assert np.sqrt(g @ np.linalg.solve(H, g)) < 1e-10
    se = np.sqrt(np.diag(np.linalg.inv(H)))
    return p, se


def reference_fit(nll, start):
    """An independent minimiser: Nelder-Mead on the test's own numpy NLL, to tight tolerances."""
    res = optimize.minimize(
        nll, np.asarray(start, dtype=float), method="Nelder-Mead",
        options={"xatol": 1e-11, "fatol": 1e-13, "maxiter": 40_000, "maxfev": 80_000},
    )
    res = optimize.minimize(
        nll, res.x, method="Nelder-Mead",
        options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 40_000, "maxfev": 80_000},
    )  # a restart, the usual guard against a simplex that collapsed early
    return res.x, res.fun


def numeric_se(nll, p, h=1e-4):
    """Standard errors from a central-difference Hessian of ``nll`` at ``p``."""
    n = p.size
    steps = h * np.maximum(1.0, np.abs(p))
    H = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i], ej[j] = steps[i], steps[j]
            H[i, j] = (nll(p + ei + ej) - nll(p + ei - ej) - nll(p - ei + ej) + nll(p - ei - ej)) / (4 * steps[i] * steps[j])
    return np.sqrt(np.diag(np.linalg.inv((H + H.T) / 2)))


def design(n, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)) * 0.5
    return rng, X, np.column_stack([np.ones(n), X])


def linear_text(k, prefix="b"):
    return " + ".join([f"{prefix}0"] + [f"{prefix}{j}*x{j}" for j in range(1, k + 1)])


# -- models written as built-in families -----------------------------------------------------------
def test_poisson_log_link_equals_statsmodels_glm():
    sm = pytest.importorskip("statsmodels.api")
    rng, X, X1 = design(800, 3, seed=1)
    y = rng.poisson(np.exp(X1 @ [0.3, 0.5, -0.4, 0.2])).astype(float)
    m = compile_model(f"y ~ poisson(rate = exp({linear_text(3)}))", columns=["y", "x1", "x2", "x3"])
    p, se = fit(m, np.column_stack([y, X]), np.zeros(4))
    ref = sm.GLM(y, X1, family=sm.families.Poisson()).fit(tol=1e-14, maxiter=100)
    np.testing.assert_allclose(p, ref.params, rtol=1e-8)
    np.testing.assert_allclose(se, ref.bse, rtol=1e-6)
    np.testing.assert_allclose(m.evaluate(p, np.column_stack([y, X]), order=0)[0], -ref.llf, rtol=1e-12)


def test_poisson_with_frequency_weights_equals_repeated_rows():
    sm = pytest.importorskip("statsmodels.api")
    rng, X, X1 = design(300, 2, seed=2)
    y = rng.poisson(np.exp(X1 @ [0.1, 0.6, -0.3])).astype(float)
    w = rng.integers(0, 4, y.size).astype(float)
    m = compile_model(f"y ~ poisson(rate = exp({linear_text(2)}))", columns=["y", "x1", "x2"])
    p, se = fit(m, np.column_stack([y, X]), np.zeros(3), weights=w)
    rep = np.repeat(np.arange(y.size), w.astype(int))
    ref = sm.GLM(y[rep], X1[rep], family=sm.families.Poisson()).fit(tol=1e-14, maxiter=100)
    np.testing.assert_allclose(p, ref.params, rtol=1e-8)
    np.testing.assert_allclose(se, ref.bse, rtol=1e-6)


def test_bernoulli_sigmoid_equals_statsmodels_logit():
    sm = pytest.importorskip("statsmodels.api")
    rng, X, X1 = design(700, 3, seed=3)
    y = (rng.random(700) < special.expit(X1 @ [-0.2, 1.0, -0.8, 0.5])).astype(float)
    m = compile_model(f"y ~ bernoulli(prob = sigmoid({linear_text(3)}))", columns=["y", "x1", "x2", "x3"])
    p, se = fit(m, np.column_stack([y, X]), np.zeros(4))
    ref = sm.Logit(y, X1).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    np.testing.assert_allclose(p, ref.params, rtol=1e-8)
    np.testing.assert_allclose(se, ref.bse, rtol=1e-6)


def test_normal_with_log_sd_equals_ols_with_the_ml_sigma():
    sm = pytest.importorskip("statsmodels.api")
    rng, X, X1 = design(400, 3, seed=4)
    y = X1 @ [1.0, 2.0, -1.0, 0.5] + rng.normal(size=400) * 0.7
    m = compile_model(f"y ~ normal(mean = {linear_text(3)}, sd = exp(s))", columns=["y", "x1", "x2", "x3"])
    assert m.param_names == ["b0", "b1", "b2", "b3", "s"]
    p, se = fit(m, np.column_stack([y, X]), np.zeros(5))
    ols = sm.OLS(y, X1).fit()
    n = y.size
    sigma_ml = np.sqrt(ols.ssr / n)
    np.testing.assert_allclose(p[:4], ols.params, rtol=1e-8)
    np.testing.assert_allclose(np.exp(p[4]), sigma_ml, rtol=1e-8)
    # At the MLE: cov(beta) = sigma_ml^2 (X'X)^-1, and the information for log sigma is 2n.
    np.testing.assert_allclose(se[:4], np.sqrt(np.diag(ols.cov_params(scale=sigma_ml**2))), rtol=1e-6)
    np.testing.assert_allclose(se[4], 1 / np.sqrt(2 * n), rtol=1e-6)


def test_gamma_equals_the_maximised_scipy_log_density():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(5)
    x = rng.normal(size=600) * 0.5
    y = rng.gamma(2.5, np.exp(0.4 - 0.7 * x))
    m = compile_model("y ~ gamma(shape = exp(k), scale = exp(a + b*x))", columns=["y", "x"])
    D = np.column_stack([y, x])
    p, se = fit(m, D, [0.0, 0.0, 0.0])

    def ref_nll(q):
        k, a, b = q
        return -stats.gamma.logpdf(y, np.exp(k), scale=np.exp(a + b * x)).sum()

    # The log-mean coefficients do not depend on the shape (a gamma GLM with a log link), and the
    # shape then solves n (psi(v) - log v) = sum(log(y/mu) + 1 - y/mu).
    Z = np.column_stack([np.ones_like(x), x])
    glm = sm.GLM(y, Z, family=sm.families.Gamma(sm.families.links.Log())).fit(tol=1e-14, maxiter=100)
    mu = glm.fittedvalues
    rhs = np.mean(np.log(y / mu) + 1 - y / mu)
    v = optimize.brentq(lambda v: special.psi(v) - np.log(v) - rhs, 1e-3, 1e3, xtol=1e-15, rtol=1e-15)
    want = np.array([np.log(v), glm.params[0] - np.log(v), glm.params[1]])
    np.testing.assert_allclose(p, want, rtol=1e-8)
    np.testing.assert_allclose(optimize.approx_fprime(want, ref_nll, 1e-7), 0.0, atol=1e-4)
    assert m.evaluate(p, D, order=0)[0] == pytest.approx(ref_nll(want), rel=1e-12)
    # The Hessian in (k, a, b), written out: with v = exp(k) and eta = a + b x,
    # d2/dk2 = v (psi(v) + eta - log y) + v^2 psi'(v), d2/dk deta = v, d2/deta2 = y exp(-eta).
    k, a, b = want
    eta = a + b * x
    H = np.empty((3, 3))
    H[0, 0] = np.sum(v * (special.psi(v) + eta - np.log(y)) + v**2 * special.polygamma(1, v))
    H[0, 1:] = H[1:, 0] = v * Z.sum(axis=0)
    H[1:, 1:] = Z.T @ ((y * np.exp(-eta))[:, None] * Z)
    np.testing.assert_allclose(se, np.sqrt(np.diag(np.linalg.inv(H))), rtol=1e-6)


# -- real models ------------------------------------------------------------------------------------
def test_michaelis_menten_on_puromycin_equals_least_squares_and_the_published_fit():
    data = np.loadtxt(DATA / "puromycin" / "treated.csv", delimiter=",", skiprows=1)
    conc, rate = data[:, 0], data[:, 1]
    m = compile_model("rate ~ normal(mean = vmax*conc/(km + conc), sd = exp(s))", columns=["conc", "rate"])
    assert m.data_columns == ["rate", "conc"] and m.param_names == ["vmax", "km", "s"]
    D = np.column_stack([rate, conc])
    p, se = fit(m, D, [200.0, 0.1, np.log(10.0)])

    def ref_nll(q):
        vmax, km, s = q
        r = rate - vmax * conc / (km + conc)
        return np.sum(0.5 * (r / np.exp(s)) ** 2 + s + 0.5 * np.log(2 * np.pi))

    ls = optimize.least_squares(lambda q: rate - q[0] * conc / (q[1] + conc), [200.0, 0.1], xtol=1e-15, ftol=1e-15, gtol=1e-15)
    n = rate.size
    rss = 2 * ls.cost
    np.testing.assert_allclose(p[:2], ls.x, rtol=1e-8)
    np.testing.assert_allclose(np.exp(p[2]), np.sqrt(rss / n), rtol=1e-8)
    q, fun = reference_fit(ref_nll, [200.0, 0.1, np.log(10.0)])
    np.testing.assert_allclose(p, q, rtol=1e-6)
    assert m.evaluate(p, D, order=0)[0] <= fun + 1e-10
    np.testing.assert_allclose(se, numeric_se(ref_nll, p), rtol=1e-4)
    # Published (R nls): Vm 212.7, K 0.06412, residual standard error 10.93 on 10 df.
    assert round(p[0], 1) == 212.7 and round(p[1], 5) == 0.06412
    assert round(np.sqrt(rss / (n - 2)), 2) == 10.93


def test_zero_inflated_poisson_written_as_an_nll():
    rng = np.random.default_rng(6)
    n = 1500
    x = rng.normal(size=n)
    structural_zero = rng.random(n) < special.expit(-0.6)
    y = np.where(structural_zero, 0, rng.poisson(np.exp(0.5 + 0.8 * x))).astype(float)
    zero = (y == 0).astype(float)
    text = (
        "-zero*log(sigmoid(g) + (1 - sigmoid(g))*exp(-exp(a + b*x)))"
        " - (1 - zero)*(log(1 - sigmoid(g)) - exp(a + b*x) + y*(a + b*x) - lgamma(y + 1))"
    )
    m = compile_model(nll=text, columns=["y", "x", "zero"])
    assert m.param_names == ["g", "a", "b"]
    D = np.column_stack([{"y": y, "x": x, "zero": zero}[c] for c in m.data_columns])
    p, se = fit(m, D, [0.0, 0.0, 0.0])

    def ref_nll(q):
        g, a, b = q
        lam = np.exp(a + b * x)
        log_pi, log_1m_pi = -np.logaddexp(0, -g), -np.logaddexp(0, g)
        ll_zero = np.logaddexp(log_pi, log_1m_pi - lam)
        ll_pos = log_1m_pi + stats.poisson.logpmf(y, lam)
        return -np.sum(np.where(y == 0, ll_zero, ll_pos))

    q, fun = reference_fit(ref_nll, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(p, q, rtol=1e-6)
    assert m.evaluate(p, D, order=0)[0] == pytest.approx(fun, abs=1e-9)
    np.testing.assert_allclose(se, numeric_se(ref_nll, p), rtol=1e-4)
    check = m.check_derivatives(p + 0.1, D)
    assert check.passed(1e-6)


def test_two_component_normal_mixture_from_given_starts():
    rng = np.random.default_rng(7)
    n = 1200
    first = rng.random(n) < 0.35
    y = np.where(first, rng.normal(-1.0, 0.6, n), rng.normal(2.0, 1.1, n))
    text = (
        "-log(sigmoid(q)*exp(-((y - m1)/exp(s1))**2/2 - s1)"
        " + (1 - sigmoid(q))*exp(-((y - m2)/exp(s2))**2/2 - s2)) + 0.5*log(2*3.141592653589793)"
    )
    m = compile_model(nll=text, columns=["y"])
    assert m.param_names == ["q", "m1", "s1", "m2", "s2"]
    D = y[:, None]
    start = [0.0, -0.5, 0.0, 1.5, 0.0]
    p, se = fit(m, D, start)

    def ref_nll(t):
        q, m1, s1, m2, s2 = t
        return -np.sum(np.logaddexp(
            -np.logaddexp(0, -q) + stats.norm.logpdf(y, m1, np.exp(s1)),
            -np.logaddexp(0, q) + stats.norm.logpdf(y, m2, np.exp(s2)),
        ))

    ref, fun = reference_fit(ref_nll, start)
    np.testing.assert_allclose(p, ref, rtol=1e-5, atol=1e-7)
    assert m.evaluate(p, D, order=0)[0] == pytest.approx(fun, abs=1e-8)
    np.testing.assert_allclose(se, numeric_se(ref_nll, p), rtol=1e-4)
    assert abs(special.expit(p[0]) - 0.35) < 0.05 and abs(p[1] + 1) < 0.15 and abs(p[3] - 2) < 0.15
