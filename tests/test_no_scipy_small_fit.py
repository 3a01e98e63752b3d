"""The small-fit path avoids scipy: numpy's Cholesky for Newton steps and covariances, a finite
series for the likelihood-ratio p-value, numpy's log-sum-exp for the separation screen. Each piece
agrees with the scipy routine it replaces."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.linalg import cho_factor, cho_solve, lapack
from scipy.special import chdtrc, logsumexp

from mlefit import checks, inference, linalg
from mlefit.optimize import newton_direction


def spd(rng, p, cond):
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    return (Q * np.geomspace(1.0, 1.0 / cond, p)) @ Q.T


@pytest.mark.parametrize("p,cond", [(1, 1.0), (5, 10.0), (21, 1e4), (60, 1e8)])
def test_spd_inverse_matches_scipy(p, cond):
    H = spd(np.random.default_rng(p), p, cond)
    inv, est = linalg.spd_inverse(H)
    ref = cho_solve(cho_factor(H), np.eye(p))
    np.testing.assert_allclose(inv, ref, rtol=0, atol=1e3 * cond * 1e-16 * np.abs(ref).max())
    rcond = lapack.dpocon(np.triu(cho_factor(H, lower=False)[0]), np.abs(H).sum(axis=0).max())[0]
    # exact 1-norm condition number >= LAPACK's estimate (a lower bound), and close to it
    assert 1.0 / rcond * (1 - 1e-6) <= est <= 10.0 / rcond


def test_spd_inverse_rejects_indefinite_and_singular():
    with pytest.raises(linalg.NotPositiveDefinite):
        linalg.spd_inverse(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(linalg.NotPositiveDefinite):
        linalg.spd_inverse(np.array([[1.0, 1.0], [1.0, 1.0]]))
    assert inference.covariance(np.array([[1.0, 2.0], [2.0, 1.0]])) is None
    assert inference.scaled_condition(np.array([[1.0, 2.0], [2.0, 1.0]])) == np.inf


def test_newton_direction_and_covariance_match_scipy():
    rng = np.random.default_rng(3)
    H = spd(rng, 8, 1e3) * np.outer(np.arange(1, 9), np.arange(1, 9))
    g = rng.standard_normal(8)
    d, pd = newton_direction(g, H)
    assert pd
    np.testing.assert_allclose(d, -cho_solve(cho_factor(H), g), rtol=1e-10)
    np.testing.assert_allclose(inference.covariance(H), cho_solve(cho_factor(H), np.eye(8)), rtol=1e-10, atol=0)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 20, 21, 84, 501])
def test_chi2_sf_matches_scipy(df):
    for x in [0.0, 1e-8, 0.3, 1.0, df * 0.5, float(df), 3.0 * df + 10, 40.0 * df + 200, 1e4, np.inf]:
        ref = float(chdtrc(df, x))
        got = inference.chi2_sf(x, df)
        if ref < 1e-300:
            assert got < 1e-290
        else:
            assert got == pytest.approx(ref, rel=1e-12), (df, x)


def test_log_probabilities_match_scipy():
    eta = np.random.default_rng(4).standard_normal((50, 3)) * 30
    eta[0] = [800.0, -800.0, 0.0]
    np.testing.assert_allclose(checks.class_log_probabilities(eta), eta - logsumexp(eta, axis=1, keepdims=True),
                               rtol=1e-14, atol=1e-12)


SCRIPT = """
import sys
import numpy as np
import mlefit
rng = np.random.default_rng(0)
X = rng.standard_normal((1000, 20))
mlefit.fit(X=X, y=(X[:, 0] + rng.standard_normal(1000) > 0).astype(float), family="bernoulli")
mlefit.fit(X=X, y=X[:, 0] + rng.standard_normal(1000), family="gaussian")
print(sorted(m for m in sys.modules if m.split(".")[0] == "scipy"))
"""


def test_small_well_conditioned_fits_do_not_import_scipy():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
