"""Accuracy beyond the NIST problems: extended-precision kernels, and logistic and multinomial fits
on ill-conditioned polynomial designs against references solved here in 50-digit arithmetic.

The designs are polynomials of degree 3-5 in a variable running to 40 (raw powers, so the columns
span eight orders of magnitude) with steep but overlapping labels drawn from a fixed seed.
"""

from __future__ import annotations

import json
import warnings
from fractions import Fraction

import mpmath
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, softmax

import mlefit
import mlefit.inference
import mlefit.optimize
from mlefit import linalg
from mlefit.engines.base import RowsObjective
from conftest import data_objective

LONGDOUBLE_WIDER = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps
DPS = 50


def lre(estimate: float, reference) -> float:
    reference = mpmath.mpf(reference)
    err = abs(mpmath.mpf(float(estimate)) - reference)
    return 16.0 if err == 0 else float(-mpmath.log10(err / abs(reference)))


def min_lre(estimates, reference) -> float:
    return min(lre(e, r) for e, r in zip(estimates, reference))


# -- extended-precision kernels ----------------------------------------------------------------------


def cancelling_problem(n: int, p: int, seed: int):
    """A design with entries up to 1e8 and a vector whose products cancel to ~1e-8 of their terms."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p)) * 10.0 ** rng.integers(0, 9, p)
    x = rng.standard_normal(p)
    b = A @ x + rng.standard_normal(n) * 1e-8 * (np.abs(A) @ np.abs(x))
    return A, x, b


def exact_residual(A, x, b):
    xs = [Fraction(float(v)) for v in x]
    return np.array([float(Fraction(float(bi)) - sum(Fraction(float(a)) * xj for a, xj in zip(row, xs))) for row, bi in zip(A, b)])


def exact_tdot(A, r):
    return np.array([float(sum(Fraction(float(a)) * Fraction(float(v)) for a, v in zip(col, r))) for col in A.T])


def test_double_double_kernels_round_the_exact_value():
    A, x, b = cancelling_problem(301, 5, seed=1)
    exact = exact_residual(A, x, b)
    got = linalg.residual(A, x, b, precision="double-double")
    np.testing.assert_allclose(got, exact, rtol=4e-16, atol=0)
    assert not np.allclose(b - A @ x, exact, rtol=1e-9, atol=0)  # float64 alone cannot
    r = got * 1e3
    np.testing.assert_allclose(linalg.tdot(A, r, precision="double-double"), exact_tdot(A, r), rtol=4e-16, atol=0)
    np.testing.assert_allclose(linalg.dot(A, x, precision="double-double"), [float(v) for v in b - exact], rtol=4e-16)
    R = np.column_stack([r, -2 * r])  # several right-hand sides at once
    np.testing.assert_allclose(linalg.tdot(A, R, precision="double-double")[:, 1], -2 * exact_tdot(A, r), rtol=4e-16, atol=0)


@pytest.mark.skipif(not LONGDOUBLE_WIDER, reason="longdouble is float64 here")
def test_longdouble_kernels_within_their_precision():
    A, x, b = cancelling_problem(301, 5, seed=2)
    exact = exact_residual(A, x, b)
    bound = 8 * np.finfo(np.longdouble).eps * (np.abs(b) + np.abs(A) @ np.abs(x))
    assert np.all(np.abs(linalg.residual(A, x, b, precision="longdouble") - exact) <= bound + 4e-16 * np.abs(exact))


def test_well_conditioned_least_squares_takes_the_fast_path():
    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(5000), rng.standard_normal((5000, 6))])
    y = X @ rng.standard_normal(7) + rng.standard_normal(5000)
    sol = linalg.QR(X).solve(y)
    assert sol.refined == 0 and sol.error < linalg.REFINE_TOL
    np.testing.assert_allclose(sol.x, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-12)
    result = mlefit.fit(X=X[:, 1:], y=y, family="gaussian")
    assert result.converged and "refined" not in result.message


def test_inverse_gram_matches_high_precision():
    x = np.linspace(0.0, 20.0, 21)
    X = np.column_stack([x**k for k in range(6)])  # Wampler's design, cond(scaled) ~ 4e3
    inv, _ = linalg.QR(X).inverse_gram(refine=True)
    with mpmath.workdps(60):
        A = mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in X])
        ref = mpmath.inverse(A.T * A)
    assert min(lre(inv[i, j], ref[i, j]) for i in range(6) for j in range(6)) >= 12


# -- logistic and multinomial polynomial designs -----------------------------------------------------


def poly(x: np.ndarray, degree: int) -> np.ndarray:
    return np.column_stack([x**k for k in range(1, degree + 1)])


def bernoulli_case(degree: int, seed: int, low: float = 0.0, steep: float = 5.0, n: int = 300):
    """Labels switching at ``degree`` points of [low, 40]: steep logits, overlapping classes."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(low, 40.0, n))
    t = (x - low) / (40.0 - low)
    roots = {3: [0.25, 0.5, 0.8], 4: [0.2, 0.45, 0.7, 0.9], 5: [0.15, 0.35, 0.55, 0.75, 0.9]}[degree]
    q = np.prod([t - r for r in roots], axis=0)
    y = (rng.random(n) < expit(steep * 8 * q / np.max(np.abs(q)))).astype(float)
    return poly(x, degree), y


def categorical_case(degree: int, seed: int, steep: float, low: float = 0.0, n: int = 300):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(low, 40.0, n))
    t = (x - low) / (40.0 - low)
    eta = np.column_stack([np.zeros(n), steep * np.sin(2.6 * np.pi * t), steep * (np.cos(1.8 * np.pi * t) - 0.2)])
    P = softmax(eta, axis=1)
    y = (np.cumsum(P, axis=1)[:, :-1] < rng.random((n, 1))).sum(axis=1)
    return poly(x, degree), y


def mp_newton(X: np.ndarray, y: np.ndarray, n_classes: int, start: np.ndarray):
    """The MLE and its standard errors in 50-digit arithmetic: Newton from a good start.

    Softmax with a reference class (bernoulli is ``n_classes = 2``); parameters class-major, the
    intercept column included in ``X``. Returns ``(params, se)`` as lists of mpf.
    """
    with mpmath.workdps(DPS):
        n, p = X.shape
        k = n_classes - 1
        m = k * p
        rows = [[mpmath.mpf(float(v)) for v in row] for row in X]
        b = [mpmath.mpf(float(v)) for v in start]
        for _ in range(40):
            g = [mpmath.mpf(0)] * m
            H = mpmath.matrix(m, m)
            for i in range(n):
                xi = rows[i]
                eta = [mpmath.mpf(0)] + [mpmath.fsum(xi[f] * b[j * p + f] for f in range(p)) for j in range(k)]
                top = max(eta)
                ex = [mpmath.exp(e - top) for e in eta]
                total = mpmath.fsum(ex)
                prob = [e / total for e in ex]
                for j in range(k):
                    rj = prob[j + 1] - (1 if y[i] == j + 1 else 0)
                    for f in range(p):
                        g[j * p + f] += rj * xi[f]
                    for l in range(j, k):
                        w = prob[j + 1] * ((1 if j == l else 0) - prob[l + 1])
                        for f in range(p):
                            wf = w * xi[f]
                            for h in range(p):
                                H[j * p + f, l * p + h] += wf * xi[h]
            for a in range(m):
                for c in range(a + 1, m):
                    if H[c, a] == 0:
                        H[c, a] = H[a, c]
            step = mpmath.lu_solve(H, mpmath.matrix(g))
            b = [b[j] - step[j] for j in range(m)]
            if max(abs(step[j]) / abs(b[j]) for j in range(m)) < mpmath.mpf(10) ** (-(DPS - 5)):
                break
        else:
            raise AssertionError("the high-precision reference did not converge (separated data?)")
        inv = mpmath.inverse(H)
        return b, [mpmath.sqrt(inv[j, j]) for j in range(m)]


BERNOULLI_CASES = {
    "degree3": dict(degree=3, seed=2),
    "degree4": dict(degree=4, seed=1),
    "degree5": dict(degree=5, seed=1),
    "degree5-on-10..40": dict(degree=5, seed=1, low=10.0),  # cond(H) ~ 6e9: steps by QR
}
CATEGORICAL_CASES = {
    "degree3": dict(degree=3, seed=5, steep=8.0),
    "degree4": dict(degree=4, seed=2, steep=3.0),
    "degree5": dict(degree=5, seed=4, steep=6.0),
    "degree4-on-20..40": dict(degree=4, seed=3, steep=3.0, low=20.0),  # cond(H) ~ 3e9: steps by QR
}
_REFERENCES: dict = {}


def reference(family: str, case: str):
    """Data, the default Newton fit and the mpmath reference, computed once per case."""
    key = (family, case)
    if key not in _REFERENCES:
        if family == "bernoulli":
            X, y = bernoulli_case(**BERNOULLI_CASES[case])
        else:
            X, y = categorical_case(**CATEGORICAL_CASES[case])
        result = mlefit.fit(X=X, y=y, family=family)
        n_classes = 2 if family == "bernoulli" else int(y.max()) + 1
        design = np.column_stack([np.ones(len(y)), X])
        _REFERENCES[key] = (X, y, result, *mp_newton(design, y, n_classes, result.params))
    return _REFERENCES[key]


@pytest.mark.parametrize("case", BERNOULLI_CASES)
def test_logistic_polynomial_design(case):
    _, _, result, ref, ref_se = reference("bernoulli", case)
    assert result.converged
    assert min_lre(result.params, ref) >= 9
    assert min_lre(result.se, ref_se) >= 8


@pytest.mark.parametrize("case", CATEGORICAL_CASES)
def test_multinomial_polynomial_design(case):
    _, y, result, ref, ref_se = reference("categorical", case)
    assert result.converged and np.bincount(y).min() >= 20
    assert min_lre(result.params, ref) >= 9
    assert min_lre(result.se, ref_se) >= 8


@pytest.mark.parametrize(
    "family, case, qr_steps",
    [("bernoulli", "degree3", False), ("bernoulli", "degree5-on-10..40", True), ("categorical", "degree4-on-20..40", True)],
)
def test_newton_solves_by_qr_only_when_ill_conditioned(family, case, qr_steps, monkeypatch):
    """Cholesky steps (fast) on the Gram matrix while it is well conditioned; a QR of the weighted
    design, which does not square the condition number, past QR_COND."""
    X, y, *_ = reference(family, case)
    calls = []
    inner = mlefit.optimize.root_direction
    monkeypatch.setattr(mlefit.optimize, "root_direction", lambda g, Z: calls.append(Z.shape) or inner(g, Z))
    result = mlefit.fit(X=X, y=y, family=family)
    assert result.converged
    assert bool(calls) == qr_steps
    if qr_steps:
        n_params = result.n_params
        assert all(shape[1] == n_params and shape[0] >= len(y) for shape in calls)


def test_well_conditioned_newton_never_pays_for_extended_precision(monkeypatch):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((2000, 4))
    y = (rng.random(2000) < expit(0.3 + X @ np.array([1.0, -0.5, 0.2, 0.0]))).astype(float)
    asked = []
    inner = RowsObjective.value_grad_hess
    monkeypatch.setattr(RowsObjective, "value_grad_hess", lambda self, p, precise=False: asked.append(precise) or inner(self, p, precise))
    result = mlefit.fit(X=X, y=y, family="bernoulli")
    assert result.converged and asked and not any(asked)


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_hess_root_is_a_square_root_of_the_hessian(family):
    rng = np.random.default_rng(4)
    fam = mlefit.get_family(family)
    X = np.column_stack([np.ones(60), rng.standard_normal((60, 2))])
    y = rng.integers(0, 2 if family == "bernoulli" else 4, 60)
    y = y.astype(float) if family == "bernoulli" else y
    params = rng.standard_normal(3 if family == "bernoulli" else 9)
    weights = rng.uniform(0.5, 3.0, 60)
    for w in (None, weights):
        Z = fam.hess_root(params, X, y, w)
        H = fam.hess(params, X, y, w)
        np.testing.assert_allclose(Z.T @ Z, H, rtol=1e-12, atol=1e-12 * np.abs(H).max())
        precise = fam.evaluate(params, X, y, w, order=1, precise=True).grad
        np.testing.assert_allclose(precise, fam.grad(params, X, y, w), rtol=1e-12, atol=1e-12)


# -- honest convergence of the first-order methods ---------------------------------------------------


@pytest.mark.parametrize("method", ["lbfgs", "gd"])
@pytest.mark.parametrize("family, case", [("bernoulli", "degree3"), ("bernoulli", "degree5"), ("categorical", "degree4-on-20..40")])
def test_first_order_methods_converge_or_say_so(family, case, method):
    """Converged means within tol standard errors of the optimum (so 6 digits for every coefficient
    at least a standard error from zero, all of them here); otherwise converged is False."""
    X, y, _, ref, ref_se = reference(family, case)
    # The verdict, not the budget, is under test: gd's default 20000 categorical iterations take
    # ~15 s (the per-call overhead of scipy's logsumexp), so it gets 2000 here.
    max_iter = 2000 if (family, method) == ("categorical", "gd") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlefit.errors.ConvergenceWarning)
        result = mlefit.fit(X=X, y=y, family=family, method=method, max_iter=max_iter)
    distance = max(abs(mpmath.mpf(float(b)) - r) / s for b, r, s in zip(result.params, ref, ref_se))
    if result.converged:
        assert distance <= 2 * result.tol
        assert min(abs(r / s) for r, s in zip(ref, ref_se)) >= 1
        assert min_lre(result.params, ref) >= 6
    else:
        assert result.decrement > result.tol


def test_not_converged_exits_3_and_still_prints(tmp_path, invoke):
    X, y, *_ = reference("bernoulli", "degree5")
    frame = pd.DataFrame(X, columns=[f"x{k}" for k in range(1, 6)])
    frame["y"] = y.astype(int)
    path = tmp_path / "poly.csv"
    frame.to_csv(path, index=False)
    result = invoke("fit", str(path), "--family", "bernoulli", "--method", "gd", "--max-iter", "500", "--format", "json")
    assert result.exit_code == 3
    out = json.loads(result.stdout)
    assert out["converged"] is False and out["decrement"] > out["tol"]
    assert "did not converge" in result.stderr


def test_a_family_without_the_accuracy_hooks_still_fits():
    """The hooks are optional: a family with neither ``hess_root`` nor ``precise`` gets the plain
    float64 Newton method, even on an ill-conditioned design."""
    from mlefit.families.base import Family
    from mlefit.families.bernoulli import Bernoulli

    class Plain(Bernoulli):
        hess_root = Family.hess_root

        def evaluate(self, params, X, y, weights=None, order=2, offset=None):
            return super().evaluate(params, X, y, weights, order, offset=offset)

    X, y, _, ref, ref_se = reference("bernoulli", "degree5-on-10..40")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlefit.errors.ConvergenceWarning)
        result = mlefit.fit(X=X, y=y, family=Plain())
    assert max(abs(mpmath.mpf(float(b)) - r) / s for b, r, s in zip(result.params, ref, ref_se)) < 1e-3
