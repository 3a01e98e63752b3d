"""The distributions of mlefit dist that are not registry families (logistic, gumbel, student_t,
beta, geometric): NLL against scipy.stats' log-densities and derivatives against central finite
differences on a design with a covariate (their derivatives are chained through X like every
family's), the series of student_t's large-df constants against mpmath, and the Kaplan-Meier
curve the plot draws for censored data against lifelines."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import expit

from mlefit.dist import Sample, kaplan_meier
from mlefit.families.univariate import ASYMPTOTIC_DF, Beta, Geometric, Gumbel, Logistic, StudentT, t_constants


def problem(name: str, rng: np.random.Generator):
    """A family, a design with an intercept and a covariate, data, parameters off the optimum and
    scipy's log-density of each row."""
    n = 80
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    if name == "logistic":
        p = np.array([0.8, 0.3, np.log(1.7)])
        y = rng.logistic(1.0, 2.0, n)
        return Logistic(), X, y, p, lambda p: st.logistic.logpdf(y, X @ p[:2], np.exp(p[2]))
    if name == "gumbel":
        p = np.array([0.8, 0.3, np.log(1.7)])
        y = rng.gumbel(1.0, 2.0, n)
        return Gumbel(), X, y, p, lambda p: st.gumbel_r.logpdf(y, X @ p[:2], np.exp(p[2]))
    if name.startswith("student_t"):
        df = float(name.split(":")[1])
        p = np.array([0.8, 0.3, np.log(1.7), np.log(df)])
        y = 1.0 + 2.0 * rng.standard_t(4.0, n)
        return StudentT(), X, y, p, lambda p: st.t.logpdf(y, np.exp(p[3]), X @ p[:2], np.exp(p[2]))
    if name == "beta":
        p = np.array([-0.8, 0.3, np.log(6.0)])
        y = rng.beta(2.0, 5.0, n)

        def logpdf(p):
            eta, phi = X @ p[:2], np.exp(p[2])
            return st.beta.logpdf(y, expit(eta) * phi, expit(-eta) * phi)

        return Beta(), X, y, p, logpdf
    p = np.array([0.8, 0.3])
    y = rng.geometric(0.3, n) - 1.0
    return Geometric(), X, y, p, lambda p: st.geom.logpmf(y, 1 / (1 + np.exp(X @ p)), loc=-1)


NAMES = ["logistic", "gumbel", "student_t:4", "student_t:150", "student_t:1e6", "beta", "geometric"]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", NAMES)
def test_nll_and_derivatives(name, weighted, rng):
    fam, X, y, p, logpdf = problem(name, rng)
    w = rng.uniform(0.5, 2.0, len(y)) if weighted else None
    sums = fam.evaluate(p, X, y, w)
    ref = logpdf(p) if w is None else w * logpdf(p)
    # scipy's own lgamma differences lose about 1e-14 per row at df = 150
    assert sums.nll == pytest.approx(-ref.sum(), rel=1e-12)
    eps = 1e-6
    grad = np.array([(fam.nll(p + eps * e, X, y, w) - fam.nll(p - eps * e, X, y, w)) / (2 * eps) for e in np.eye(len(p))])
    hess = np.array([(fam.grad(p + eps * e, X, y, w) - fam.grad(p - eps * e, X, y, w)) / (2 * eps) for e in np.eye(len(p))])
    np.testing.assert_allclose(sums.grad, grad, rtol=1e-6, atol=1e-7 * np.max(np.abs(grad)))
    np.testing.assert_allclose(sums.hess, hess, rtol=1e-6, atol=1e-7 * np.max(np.abs(hess)))
    np.testing.assert_allclose(sums.hess, sums.hess.T, rtol=0, atol=1e-12 * np.max(np.abs(sums.hess)))


def test_beta_intercept_only_design_takes_the_scalar_path(rng):
    """An intercept-only design computes a and b's special functions once: the same sums as a
    design whose eta varies by a hair."""
    y = rng.beta(2.0, 5.0, 200)
    ones = np.ones((200, 1))
    p = np.array([-0.9, np.log(7.0)])
    fam = Beta()
    a = fam.evaluate(p, ones, y)
    offset = np.r_[1e-15, np.zeros(199)]  # one row's eta a few ulps away: the per-row path
    assert (ones[:, 0] * p[0] + offset).min() != (ones[:, 0] * p[0] + offset).max()
    b = fam.evaluate(p, ones, y, offset=offset)
    assert a.nll == pytest.approx(b.nll, rel=1e-13)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-11)
    np.testing.assert_allclose(a.hess, b.hess, rtol=1e-11)


@pytest.mark.parametrize("nu", [ASYMPTOTIC_DF, 250.0, 1e4, 1e9])
def test_student_t_constants_by_series_equal_mpmath(nu):
    mpmath.mp.dps = 40
    x = mpmath.mpf(nu) / 2
    c0 = mpmath.loggamma(x) - mpmath.loggamma(x + 0.5) + mpmath.log(nu) / 2
    c1 = mpmath.digamma(x + 0.5) - mpmath.digamma(x) - 1 / mpmath.mpf(nu)
    c2 = mpmath.psi(1, x) - mpmath.psi(1, x + 0.5)
    got = t_constants(nu, 2)
    assert got[0] == pytest.approx(float(c0), rel=1e-15)
    assert got[1] == pytest.approx(float(c1), rel=1e-13)
    assert got[2] == pytest.approx(float(c2), rel=1e-13)


def test_kaplan_meier_equals_lifelines(rng):
    lifelines = pytest.importorskip("lifelines")
    t = np.round(rng.weibull(1.3, 300) * 10, 1)  # ties included
    event = rng.random(300) < 0.7
    w = rng.integers(1, 4, 300).astype(float)
    order = np.argsort(t)
    times, S = kaplan_meier(Sample(t[order], w[order], event[order]))
    km = lifelines.KaplanMeierFitter().fit(t, event, weights=w)
    ref = km.survival_function_at_times(times).to_numpy()
    np.testing.assert_allclose(S, ref, rtol=1e-12)
    assert np.all(np.isin(times, t[event]))
