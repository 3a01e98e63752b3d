"""The normal-equations fast path of gaussian least squares (``linalg.normal_solve``): it agrees
with the Householder QR path where it is taken, and it is not taken where it would lose digits."""

from __future__ import annotations

import numpy as np
import pytest
from test_nist import fit_problem, load

import mlefit
from mlefit import linalg


def well_conditioned(rng, n=5000, p=6):
    X = np.column_stack([np.ones(n), rng.standard_normal((n, p))])
    X[:, 2:] += 0.3 * X[:, 1:-1]
    y = X @ rng.standard_normal(p + 1) + rng.standard_normal(n)
    return X, y


def test_cholesky_and_qr_agree_on_a_well_conditioned_problem():
    X, y = well_conditioned(np.random.default_rng(11))
    normal = linalg.normal_solve(X, y)
    assert normal is not None and normal.refined >= 1 and normal.error <= linalg.REFINE_TOL
    qr = linalg.QR(X)
    sol = qr.solve(y)
    np.testing.assert_allclose(normal.x, sol.x, rtol=1e-12)
    np.testing.assert_allclose(normal.r, sol.r, rtol=0, atol=1e-12 * np.abs(sol.r).max())
    np.testing.assert_allclose(normal.gram, X.T @ X, rtol=1e-14)
    inv, _ = qr.inverse_gram(refine=True)
    np.testing.assert_allclose(normal.inverse_gram(), inv, rtol=0, atol=1e-12 * np.abs(inv).max())
    # the condition number from the Cholesky factor is that of the column-scaled design
    assert 0.5 < normal.cond / qr.cond < 2


def test_fit_by_cholesky_matches_the_fit_by_qr(monkeypatch):
    rng = np.random.default_rng(12)
    X, y = well_conditioned(rng)
    w = rng.uniform(0.5, 2.0, len(y))
    fast = mlefit.fit(X=X[:, 1:], y=y, family="gaussian")
    fast_w = mlefit.fit(X=X[:, 1:], y=y, family="gaussian", weights=w)
    assert "Cholesky" in fast.message and "Cholesky" in fast_w.message
    monkeypatch.setattr(linalg, "normal_solve", lambda *a, **k: None)
    slow = mlefit.fit(X=X[:, 1:], y=y, family="gaussian")
    slow_w = mlefit.fit(X=X[:, 1:], y=y, family="gaussian", weights=w)
    assert "Householder QR" in slow.message and "Householder QR" in slow_w.message
    for a, b in ((fast, slow), (fast_w, slow_w)):
        assert a.converged and b.converged
        np.testing.assert_allclose(a.params, b.params, rtol=1e-12)
        np.testing.assert_allclose(a.se, b.se, rtol=1e-12)
        np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-13)


@pytest.mark.parametrize("name", ["longley", "wampler1", "wampler2", "wampler3", "wampler4", "wampler5", "filip"])
def test_ill_conditioned_and_exact_designs_take_qr(name):
    meta, frame, features = load(name)
    X = frame[features].to_numpy()
    if meta["intercept"]:
        X = np.column_stack([np.ones(len(frame)), X])
    assert linalg.normal_solve(X, frame["y"].to_numpy()) is None
    if name != "filip":
        assert "Householder QR" in fit_problem(name).message


def test_an_easy_nist_problem_takes_cholesky():
    """noint1 goes by Cholesky, so test_nist's certified-digits test covers the fast path too."""
    assert "Cholesky" in fit_problem("noint1").message


def test_an_uncentered_column_is_left_to_qr():
    rng = np.random.default_rng(13)
    X, y = well_conditioned(rng)
    X[:, 1] += 1e4  # the intercept and this column are nearly collinear after scaling
    assert linalg.normal_solve(X, y) is None
    assert linalg.QR(X).cond > 1e3


def test_an_exact_fit_on_a_well_conditioned_design_is_left_to_qr():
    rng = np.random.default_rng(14)
    X, _ = well_conditioned(rng, n=200)
    y = X @ np.arange(1.0, X.shape[1] + 1)
    assert linalg.normal_solve(X, y) is None
    result = mlefit.fit(X=X[:, 1:], y=y, family="gaussian")
    assert result.exact_fit


def test_a_zero_or_collinear_column_is_left_to_qr():
    rng = np.random.default_rng(15)
    X, y = well_conditioned(rng, n=300)
    Z = X.copy()
    Z[:, 3] = 0.0
    assert linalg.normal_solve(Z, y) is None
    Z = np.column_stack([X, X[:, 1] + X[:, 2]])
    assert linalg.normal_solve(Z, y) is None


def test_the_rank_checks_gram_matrix_is_reused_to_the_same_answer():
    from mlefit import checks
    from mlefit.families import get_family

    rng = np.random.default_rng(16)
    X, y = well_conditioned(rng, n=3000)
    w = rng.uniform(0.5, 2.0, len(y))
    fam = get_family("gaussian")
    for weights in (None, w):
        G = checks.check_rank(X, [f"x{j}" for j in range(X.shape[1])], weights, intercept=True)
        expected = X.T @ X if weights is None else (X * weights[:, None]).T @ X
        np.testing.assert_allclose(G, expected, rtol=1e-13)
        reused = fam.closed_form(X, y, weights, gram=G)
        fresh = fam.closed_form(X, y, weights)
        assert "Cholesky" in reused.note and "Cholesky" in fresh.note
        np.testing.assert_allclose(reused.params, fresh.params, rtol=1e-13)
        np.testing.assert_allclose(reused.cov, fresh.cov, rtol=1e-12, atol=0)


@pytest.mark.parametrize("factor", [1e-130, 1e130])
def test_data_near_the_ends_of_the_float_range_are_left_to_qr(factor):
    X, y = well_conditioned(np.random.default_rng(17), n=400)
    assert linalg.normal_solve(X, y) is not None
    assert linalg.normal_solve(X * factor, y) is None
    assert linalg.normal_solve(X, y * factor) is None
    # a fit scales such columns by powers of two first (see test_magnitudes), so its normal
    # equations are those of the data rescaled
    fit = mlefit.fit(X=X[:, 1:] * factor, y=y, family="gaussian")
    ref = mlefit.fit(X=X[:, 1:], y=y, family="gaussian")
    assert "Cholesky of the Gram matrix" in fit.message
    np.testing.assert_allclose(fit.params[1:-1] * factor, ref.params[1:-1], rtol=1e-12)


def test_the_closed_forms_nll_is_the_evaluated_nll():
    from mlefit.families import get_family

    rng = np.random.default_rng(18)
    X, y = well_conditioned(rng, n=2000)
    w = rng.uniform(0.5, 2.0, len(y))
    fam = get_family("gaussian")
    for weights in (None, w):
        closed = fam.closed_form(X, y, weights)
        assert closed.nll is not None
        assert closed.nll == pytest.approx(fam.nll(closed.params, X, y, weights), rel=1e-13)


def test_covariance_away_from_the_closed_form_agrees_between_paths(monkeypatch):
    from mlefit.families import get_family

    rng = np.random.default_rng(19)
    X, y = well_conditioned(rng, n=1500)
    fam = get_family("gaussian")
    params = np.append(np.linalg.lstsq(X, y, rcond=None)[0] + 0.01, 0.1)
    assert linalg.normal_inverse_gram(X) is not None
    fast = fam.covariance(params, X, y)
    monkeypatch.setattr(linalg, "normal_inverse_gram", lambda A: None)
    slow = fam.covariance(params, X, y)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12 * np.abs(slow).max())
    meta, frame, features = load("longley")
    Xl = np.column_stack([np.ones(len(frame)), frame[features].to_numpy()])
    assert linalg.normal_inverse_gram(Xl) is None
