"""Wide designs and many classes: quasi-Newton steps from gradient passes and a subsample's Hessian,
then one Hessian pass for the verdict and the covariance (``optimize.newton(approx=...)``,
``RowsObjective.hessian_approximation``), checked against statsmodels and against plain Newton."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import statsmodels.api as sm

import mlefit
from mlefit import linalg, optimize
from mlefit.engines import base, memory
from mlefit.engines.base import RowsObjective, SampledHessian
from mlefit.engines.memory import MemoryRows
from mlefit.families import get_family

RTOL = 1e-6


def wide_bernoulli(n: int = 3000, p: int = 150, seed: int = 7):
    """Correlated features; coefficients shrinking as 1/sqrt(p), so the linear predictor spreads
    as in a 20-column design (standard deviation about 1.4) and the MLE exists."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    X[:, 1:] += 0.3 * X[:, :-1]
    beta = rng.normal(0.0, 0.3 * math.sqrt(20 / p), p)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + X @ beta)))).astype(float)
    return X, y


def many_classes(n: int = 6000, p: int = 12, k: int = 10, seed: int = 8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    eta = np.column_stack([np.zeros(n), 0.1 + X @ rng.normal(0.0, 0.3, (p, k - 1))])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = (P.cumsum(axis=1)[:, :-1] < rng.random((n, 1))).sum(axis=1)
    return X, y


def with_intercept(X: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(X)), X])


def full_passes(monkeypatch, X: np.ndarray) -> list[int]:
    """The orders of the evaluations on all rows and columns of ``X`` and the intercept (not a
    subsample's, not the null model's)."""
    orders = []
    original = RowsObjective.sums

    def counting(self, params, order, precise=False):
        if self.null_columns is None and (self.rows.n_obs, self.rows.n_features) == (X.shape[0], X.shape[1] + 1):
            orders.append(order)
        return original(self, params, order, precise)

    monkeypatch.setattr(RowsObjective, "sums", counting)
    return orders


# -- agreement with statsmodels ------------------------------------------------------------------


def test_a_wide_bernoulli_fit_matches_statsmodels(monkeypatch):
    X, y = wide_bernoulli()
    orders = full_passes(monkeypatch, X)
    res = mlefit.fit(X=X, y=y, family="bernoulli")
    assert res.n_params >= base.QUASI_PARAMS  # the quasi-Newton path
    # the verdict's Hessian pass at the end, and one near the optimum where it pays (hess_cost)
    assert orders[-1] == 2 and orders.count(2) <= 2 and len(orders) < 30
    ref = sm.Logit(y, with_intercept(X)).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    assert res.converged and res.decrement <= res.tol
    np.testing.assert_allclose(res.params, ref.params, rtol=RTOL)
    np.testing.assert_allclose(res.se, ref.bse, rtol=RTOL)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-12)


def test_a_many_class_fit_matches_statsmodels(monkeypatch):
    X, y = many_classes()
    orders = full_passes(monkeypatch, X)
    res = mlefit.fit(X=X, y=y, family="categorical")
    assert res.n_params >= base.QUASI_PARAMS
    assert orders[-1] == 2 and orders.count(2) <= 2 and len(orders) < 30
    ref = sm.MNLogit(y, with_intercept(X)).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    assert res.converged and res.decrement <= res.tol
    # statsmodels' params are (n_features, K-1); mlefit's are class-major
    np.testing.assert_allclose(res.params, np.asarray(ref.params).T.ravel(), rtol=RTOL)
    np.testing.assert_allclose(res.se, np.asarray(ref.bse).T.ravel(), rtol=RTOL)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-12)


# -- the same fit as plain Newton ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["bernoulli", "categorical"])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_quasi_newton_path_gives_plain_newtons_estimates_and_verdict(name, weighted, monkeypatch):
    X, y = wide_bernoulli() if name == "bernoulli" else many_classes()
    w = np.random.default_rng(1).integers(0, 4, len(y)).astype(float) if weighted else None
    orders = full_passes(monkeypatch, X)
    quasi = mlefit.fit(X=X, y=y, family=name, weights=w)
    quasi_hessians = orders.count(2)
    orders.clear()
    monkeypatch.setattr(base, "QUASI_PARAMS", 10**9)
    plain = mlefit.fit(X=X, y=y, family=name, weights=w)
    assert plain.n_iter < quasi.n_iter  # the paths differ ...
    assert quasi_hessians <= 2 and quasi_hessians < orders.count(2)  # ... and the quasi path spares Hessian passes
    assert quasi.converged and plain.converged
    assert quasi.decrement <= quasi.tol and plain.decrement <= plain.tol
    assert quasi.message.startswith("converged") and plain.message.startswith("converged")
    # both within tol (1e-8) standard errors of the optimum
    assert np.max(np.abs(quasi.params - plain.params) / plain.se) < 3e-8
    np.testing.assert_allclose(quasi.se, plain.se, rtol=1e-7)
    assert quasi.loglik == pytest.approx(plain.loglik, rel=1e-13)
    assert len(quasi.trace) == quasi.n_iter + 1  # one row per iteration, as before


def test_a_separated_wide_design_is_reported_as_by_plain_newton(monkeypatch):
    """250 rows of noise in 150 columns are completely separated: the quasi-Newton path ends in
    the same exact check and the same message as plain Newton."""
    from mlefit.errors import SeparationError

    rng = np.random.default_rng(0)
    X = rng.standard_normal((250, 150))
    y = (rng.random(250) < 0.5).astype(float)
    with pytest.raises(SeparationError) as quasi:
        mlefit.fit(X=X, y=y, family="bernoulli")
    monkeypatch.setattr(base, "QUASI_PARAMS", 10**9)
    with pytest.raises(SeparationError) as plain:
        mlefit.fit(X=X, y=y, family="bernoulli")
    assert str(quasi.value) == str(plain.value)
    assert str(quasi.value).startswith("complete separation")


# -- the optimiser -------------------------------------------------------------------------------


class Counting:
    """An objective that records the order of each evaluation."""

    def __init__(self, inner):
        self.inner, self.orders = inner, []

    def value(self, params):
        self.orders.append(0)
        return self.inner.value(params)

    def value_grad(self, params):
        self.orders.append(1)
        return self.inner.value_grad(params)

    def value_grad_hess(self, params, precise=False):
        self.orders.append(2)
        return self.inner.value_grad_hess(params, precise)


def bernoulli_objective(n: int = 3000, p: int = 150):
    X, y = wide_bernoulli(n, p)
    X = np.asfortranarray(with_intercept(X))
    fam = get_family("bernoulli")
    return RowsObjective(fam, MemoryRows(X, y)), fam.start_params(X, y, intercept=True)


def plain_newton_optimum():
    obj, x0 = bernoulli_objective()
    return optimize.newton(obj, x0, tol=1e-8, max_iter=50)


@pytest.mark.parametrize("factor", [1.0, 0.6, 1.5])
def test_quasi_newton_steps_need_only_gradient_passes(factor):
    """An approximation off by a factor (a subsample's is off by tens of percent in some
    directions) still gives a converged fit whose only Hessian pass is the final point's; the
    Hessian returned is that point's own."""
    inner, x0 = bernoulli_objective()
    obj = Counting(inner)
    res = optimize.newton(obj, x0, tol=1e-8, max_iter=100, approx=lambda x: factor * inner.value_grad_hess(x)[2])
    assert res.converged and res.decrement <= 1e-8
    assert obj.orders.count(2) == 1 and obj.orders[-1] == 2
    assert set(obj.orders[:-1]) <= {0, 1}  # NLL and gradient passes, NLL-only in a line search
    if factor == 1.0:  # the full steps are taken: one pass for the start and for each step
        assert obj.orders[:-1] == [1] * (res.n_iter + 1)
    np.testing.assert_array_equal(res.hess, inner.value_grad_hess(res.params)[2])
    plain = plain_newton_optimum()
    se = np.sqrt(np.diag(np.linalg.inv(plain.hess)))
    assert np.max(np.abs(res.params - plain.params) / se) < 3e-8
    assert [r.iteration for r in res.trace] == list(range(res.n_iter + 1))
    assert all(b.nll <= a.nll + 1e-9 * abs(a.nll) for a, b in zip(res.trace, res.trace[1:]))


@pytest.mark.parametrize("hess_cost", [None, 1e9])
def test_no_hessian_pass_before_the_end_when_it_costs_more_than_it_saves(hess_cost):
    inner, x0 = bernoulli_objective()
    obj = Counting(inner)
    res = optimize.newton(obj, x0, tol=1e-8, max_iter=100, approx=lambda x: 1.5 * inner.value_grad_hess(x)[2], hess_cost=hess_cost)
    assert res.converged and obj.orders.count(2) == 1 and obj.orders[-1] == 2


def test_a_hessian_pass_near_the_optimum_when_it_saves_more_passes_than_it_costs():
    """An approximation off by half: its steps shrink the decrement by about a third each. With a
    Hessian pass as cheap as a gradient pass, the first point within QUASI_FULL_DECREMENT standard
    errors takes the Hessian of all rows; the steps after it converge as Newton's, in fewer passes
    in all, to the same optimum and the same verdict."""
    inner, x0 = bernoulli_objective()
    approx = lambda x: 1.5 * inner.value_grad_hess(x)[2]  # noqa: E731
    slow, fast = Counting(inner), Counting(inner)
    without = optimize.newton(slow, x0, tol=1e-8, max_iter=100, approx=approx)
    points = []
    original = inner.value_grad_hess

    def hessian(params, precise=False):
        points.append(params.copy())
        return original(params, precise)

    fast.inner = type("Seen", (), {"value": inner.value, "value_grad": inner.value_grad, "value_grad_hess": staticmethod(hessian)})()
    res = optimize.newton(fast, x0, tol=1e-8, max_iter=100, approx=approx, hess_cost=1.0)
    assert res.converged and res.decrement <= 1e-8
    assert fast.orders.count(2) == 2 and fast.orders[-1] == 2  # one near the optimum, the verdict's
    first = fast.orders.index(2)
    assert 0 < first < len(fast.orders) - 1
    # taken where the decrement (with the point's own Hessian) is within QUASI_FULL_DECREMENT
    f, g, H = inner.value_grad_hess(points[0])
    assert optimize.decrement(g, H) <= 1.2 * optimize.QUASI_FULL_DECREMENT
    # at most QUASI_FULL_PASSES + 1 gradient passes after it, and fewer in all than without it
    assert fast.orders[first + 1:-1].count(1) <= optimize.QUASI_FULL_PASSES + 1
    assert len(fast.orders) + 1 < len(slow.orders)
    np.testing.assert_array_equal(res.hess, inner.value_grad_hess(res.params)[2])
    se = np.sqrt(np.diag(np.linalg.inv(res.hess)))
    assert np.max(np.abs(res.params - without.params) / se) < 3e-8


def test_whether_a_hessian_pass_pays():
    tol = 1e-8
    # from 0.5 standard errors at a rate of 0.3 a step: log(1.5e8) / log(1/0.3) = 15.6 passes left
    left = math.log(0.5 * optimize.QUASI_MARGIN / tol) / math.log(1 / 0.3)
    assert left == pytest.approx(15.6, abs=0.05)
    assert optimize._full_hessian_pays(0.5, 0.3, tol, left - optimize.QUASI_FULL_PASSES - 0.1)
    assert not optimize._full_hessian_pays(0.5, 0.3, tol, left - optimize.QUASI_FULL_PASSES + 0.1)
    assert not optimize._full_hessian_pays(0.5, 1.0, tol, 0.0)  # no progress: no estimate
    assert not optimize._full_hessian_pays(0.5, 0.0, tol, 0.0)


def test_a_hessian_passes_cost_by_shape(rng):
    """n_params^2 / (n_features * HESSIAN_PASS_RATIO): the parameters' products against the
    features read; a categorical model's classes multiply the products, not the reads."""
    X = np.asfortranarray(rng.standard_normal((500, 201)))
    y = (rng.random(500) < 0.5).astype(float)
    obj = RowsObjective(get_family("bernoulli"), MemoryRows(X, y))
    assert obj.hessian_pass_cost(201) == pytest.approx(201 / base.HESSIAN_PASS_RATIO, rel=1e-15)
    assert obj.hessian_pass_cost(9 * 201) == pytest.approx(81 * 201 / base.HESSIAN_PASS_RATIO, rel=1e-15)


def test_a_wide_fit_takes_a_hessian_pass_near_the_optimum_by_the_cost_model(monkeypatch):
    """The fit passes the engine's cost of a Hessian pass on: a free one is taken near the optimum,
    one that costs a thousand gradient passes is not; both fits give the same estimates."""
    X, y = wide_bernoulli()
    orders = full_passes(monkeypatch, X)
    monkeypatch.setattr(base, "HESSIAN_PASS_RATIO", math.inf)
    cheap = mlefit.fit(X=X, y=y, family="bernoulli")
    assert orders.count(2) == 2 and orders[-1] == 2
    orders.clear()
    monkeypatch.setattr(base, "HESSIAN_PASS_RATIO", 1e-3)
    dear = mlefit.fit(X=X, y=y, family="bernoulli")
    assert orders.count(2) == 1 and orders[-1] == 2
    assert np.max(np.abs(cheap.params - dear.params) / dear.se) < 3e-8
    np.testing.assert_allclose(cheap.se, dear.se, rtol=1e-7)


def test_an_approximation_that_is_not_positive_definite_hands_over_to_newton():
    inner, x0 = bernoulli_objective()
    obj = Counting(inner)
    res = optimize.newton(obj, x0, tol=1e-8, max_iter=100, approx=lambda x: -np.eye(x.size))
    plain = plain_newton_optimum()
    assert res.converged and res.n_iter == plain.n_iter
    np.testing.assert_array_equal(res.params, plain.params)


def test_slow_quasi_newton_steps_hand_over_to_newton():
    """An approximation with no relation to the Hessian (the identity): the steps are slow, so
    after QUASI_SLOW of them Newton's own iterations finish the fit."""
    inner, x0 = bernoulli_objective()
    obj = Counting(inner)
    res = optimize.newton(obj, x0, tol=1e-8, max_iter=100, approx=lambda x: np.eye(x.size))
    assert res.converged and res.decrement <= 1e-8
    assert obj.orders.count(2) > 1  # Newton's iterations took over
    plain = plain_newton_optimum()
    se = np.sqrt(np.diag(np.linalg.inv(plain.hess)))
    assert np.max(np.abs(res.params - plain.params) / se) < 3e-8


def test_the_iteration_limit_during_quasi_newton_steps():
    inner, x0 = bernoulli_objective()
    obj = Counting(inner)
    res = optimize.newton(obj, x0, tol=1e-8, max_iter=3, approx=lambda x: inner.value_grad_hess(x)[2])
    assert not res.converged and res.n_iter == 3
    assert res.message == (
        f"iteration limit (3) reached; the point is {res.decrement:.2g} standard errors from the optimum"
    )
    assert len(res.trace) == 4
    f, g, H = inner.value_grad_hess(res.params)  # the verdict is the final point's own
    np.testing.assert_array_equal(res.hess, H)
    assert res.decrement == pytest.approx(optimize.decrement(g, H), rel=1e-12)
    assert res.decrement > 1e-8


# -- the approximation ---------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_the_sampled_hessian_is_a_subsample_hessian_scaled_to_all_rows(weighted, rng):
    fam = get_family("categorical")
    n, p = 5000, 4
    X = np.asfortranarray(with_intercept(rng.standard_normal((n, p - 1))))
    y = rng.integers(0, 3, n).astype(np.intp)
    w = rng.random(n) * 3 if weighted else None
    full = RowsObjective(fam, MemoryRows(X, y, w))
    rows = np.concatenate([np.arange(s, min(s + 100, n)) for s in range(100, n, 400)])
    total = n if w is None else w.sum()
    approx = SampledHessian(fam, full.rows.runs(np.arange(100, n, 400), 100), total)
    params = rng.normal(0, 0.3, 2 * p)
    direct = fam.evaluate(params, X[rows], y[rows], None if w is None else w[rows]).hess
    part = len(rows) if w is None else w[rows].sum()
    np.testing.assert_allclose(approx(params), direct * (total / part), rtol=1e-12)
    # a subsample's Hessian is near the full one (about sqrt(n_params / rows) relative)
    H = full.value_grad_hess(params)[2]
    assert np.max(np.abs(approx(params) - H)) < 0.2 * np.max(np.abs(H))


def test_spread_runs_cover_the_rows_evenly():
    starts, length = base.spread_runs(100_000, 1_440)
    assert length == 1_440 // base.SAMPLE_MIN_RUNS  # at least SAMPLE_MIN_RUNS runs
    assert starts[0] == 0 and len(starts) * length >= 1_440 > (len(starts) - 1) * length
    gaps = np.diff(starts)
    assert gaps.min() >= length and gaps.max() - gaps.min() <= 1  # disjoint, evenly spaced
    assert 100_000 - starts[-1] <= gaps.max() + 1  # up to the end of the data
    starts, length = base.spread_runs(10**7, 10**6)
    assert length == base.SAMPLE_RUN
    starts, length = base.spread_runs(50, 500)  # never more rows than there are
    assert length == 1 and np.array_equal(starts, np.arange(50))


def test_the_hessian_approximation_by_shape(rng):
    fam = get_family("bernoulli")
    n, p = 20_000, 120
    X = np.asfortranarray(rng.standard_normal((n, p)))
    y = (rng.random(n) < 0.5).astype(float)
    obj = RowsObjective(fam, MemoryRows(X, y))
    assert obj.hessian_approximation(base.QUASI_PARAMS - 1, n) is None  # narrow: plain Newton
    approx = obj.hessian_approximation(p, n)
    assert isinstance(approx, SampledHessian)
    # about SAMPLE_ROWS_PER_PARAM rows per parameter (more than 1 row in SAMPLE_STRIDE)
    sample = approx.sample.rows
    assert sample.n_obs == pytest.approx(base.SAMPLE_ROWS_PER_PARAM * p, rel=0.05)
    assert approx.scale == pytest.approx(n / sample.n_obs, rel=1e-15)
    np.testing.assert_array_equal(sample.X[:10], X[:10])
    # many rows: 1 in SAMPLE_STRIDE
    assert obj.hessian_approximation(101, n).sample.rows.n_obs == pytest.approx(n / base.SAMPLE_STRIDE, rel=0.05)
    # fewer: half the rows at most
    half = RowsObjective(fam, MemoryRows(X[:2000], y[:2000]))
    assert half.hessian_approximation(p, 2000).sample.rows.n_obs == pytest.approx(1000, rel=0.05)
    # too few rows for a subsample: the Hessian itself
    few = RowsObjective(fam, MemoryRows(X[:900], y[:900]))
    params = rng.normal(0, 0.1, p)
    np.testing.assert_array_equal(few.hessian_approximation(p, 900)(params), few.value_grad_hess(params)[2])
    # an engine without a subsample (the cluster's): none
    elsewhere = type("Elsewhere", (), {"n_obs": n, "spread": lambda self, k: None, "arrays": lambda self: None})()
    assert RowsObjective(fam, elsewhere).hessian_approximation(p, n) is None


def test_a_streamed_wide_fit_takes_the_quasi_newton_path_too(tmp_path, monkeypatch):
    """The streamed cache gives its subsample from the file (``Cache.spread``): one Hessian pass
    over the cache at the end (and one near the optimum, as in memory), and the in-memory fit's
    estimates."""
    X, y = wide_bernoulli()
    names = [f"x{j}" for j in range(X.shape[1])]
    path = tmp_path / "wide.csv"
    np.savetxt(path, np.column_stack([y, X]), delimiter=",", header=",".join(["y", *names]), comments="", fmt="%.17g")
    orders = full_passes(monkeypatch, X)
    streamed = mlefit.fit(str(path), "bernoulli", target="y", stream=True, chunk_rows=997)
    assert orders[-1] == 2 and orders.count(2) <= 2 and len(orders) < 30
    memory_fit = mlefit.fit(X=X, y=y, family="bernoulli")
    assert streamed.converged and streamed.decrement <= streamed.tol
    assert np.max(np.abs(streamed.params - memory_fit.params) / memory_fit.se) < 3e-8
    np.testing.assert_allclose(streamed.se, memory_fit.se, rtol=1e-7)


def test_a_wide_design_in_large_blocks_adds_up_to_one_evaluation(rng):
    """A wide design is summed in blocks of at least WIDE_ROWS_PER_FEATURE rows per column; the
    sums equal one evaluation on all rows."""
    fam = get_family("bernoulli")
    n, p = 6000, 300
    X = np.asfortranarray(rng.standard_normal((n, p)))
    y = (rng.random(n) < 0.5).astype(float)
    params = rng.normal(0, 0.05, p)
    assert memory.block_rows(p) == memory.WIDE_ROWS_PER_FEATURE * p > memory.BLOCK_BYTES // (8 * p)
    assert memory.block_rows(p) < n  # several blocks
    assert memory.block_rows(20) == memory.BLOCK_BYTES // (8 * 20)  # a narrow design's are unchanged
    s = RowsObjective(fam, MemoryRows(X, y)).sums(params, 2)
    one = fam.evaluate(params, X, y)
    assert s.nll == pytest.approx(one.nll, rel=1e-13)
    np.testing.assert_allclose(s.grad, one.grad, rtol=1e-10, atol=1e-10 * np.abs(one.grad).max())
    np.testing.assert_allclose(s.hess, one.hess, rtol=1e-11, atol=1e-12 * np.abs(one.hess).max())


def test_one_blas_thread_also_limits_scipys_blas_loaded_later():
    """numpy and scipy each bring an OpenBLAS; a limit set before scipy.linalg was imported must
    still cover scipy's (its Cholesky factorisations of large Hessians)."""
    code = (
        "from threadpoolctl import threadpool_info\n"
        "from mlefit.parallel import one_blas_thread\n"
        "with one_blas_thread():\n    pass\n"
        "import scipy.linalg\n"
        "with one_blas_thread():\n"
        "    print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))\n"
        "    print(len([i for i in threadpool_info() if i['user_api'] == 'blas']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    threads, libraries = out.split("\n")[:2]
    assert threads == "[1]"
    assert int(libraries) >= 1


# -- dense algebra of large Hessians -------------------------------------------------------------


def spd(rng, p, cond):
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    return (Q * np.geomspace(1.0, 1.0 / cond, p)) @ Q.T


@pytest.mark.parametrize("p,cond", [(300, 10.0), (600, 1e6)])
def test_large_spd_inverse_and_solve_match_numpy(p, cond):
    """Beyond SMALL_SPD: the inverse from LAPACK's dpotri and solves with the Cholesky factor (no
    explicit inverse), against numpy's general inverse and solve."""
    assert p > linalg.SMALL_SPD
    rng = np.random.default_rng(p)
    H = spd(rng, p, cond)
    b = rng.standard_normal(p)
    inv, est = linalg.spd_inverse(H)
    ref = np.linalg.inv(H)
    np.testing.assert_allclose(inv, ref, rtol=0, atol=1e3 * cond * 1e-16 * np.abs(ref).max())
    assert np.array_equal(inv, inv.T)
    exact = np.abs(H).sum(axis=0).max() * np.abs(ref).sum(axis=0).max()
    # LAPACK's estimate, a lower bound, of the same factorisation
    assert exact / 10 <= est <= exact * (1 + 1e-6) and linalg.SPDFactor(H).cond() == est
    x = linalg.SPDFactor(H).solve(b)
    np.testing.assert_allclose(x, np.linalg.solve(H, b), rtol=0, atol=1e3 * cond * 1e-16 * np.abs(x).max())


@pytest.mark.parametrize("p", [40, 300])
def test_one_scaled_factorisation_gives_solves_inverse_and_condition(p):
    """ScaledSPD (the Newton direction's and the covariance's): H with columns of very different
    scales, factorised at unit diagonal once; solves, inverse and the scaled condition number
    against numpy's."""
    rng = np.random.default_rng(p)
    scales = np.geomspace(1e-3, 1e4, p)
    H = spd(rng, p, 1e3) * np.outer(scales, scales)
    b = rng.standard_normal(p)
    factor = linalg.ScaledSPD(H)
    assert factor.matrix is H
    x = factor.solve(b)
    ref_x = np.linalg.solve(H, b)
    np.testing.assert_allclose(x * scales, ref_x * scales, rtol=0, atol=1e-9 * np.abs(ref_x * scales).max())
    inv = factor.inverse()
    ref = np.linalg.inv(H) * np.outer(scales, scales)
    assert np.array_equal(inv, inv.T)
    np.testing.assert_allclose(inv * np.outer(scales, scales), ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    d = 1.0 / np.sqrt(np.diag(H))
    S = H * np.outer(d, d)
    exact = np.abs(S).sum(axis=0).max() * np.abs(np.linalg.inv(S)).sum(axis=0).max()
    assert exact / 10 <= factor.cond <= exact * (1 + 1e-6)


def test_large_indefinite_matrices_are_refused():
    rng = np.random.default_rng(5)
    H = spd(rng, 300, 10.0)
    H[0, 0] = -1.0
    for call in (linalg.spd_inverse, linalg.ScaledSPD, linalg.SPDFactor):
        with pytest.raises(linalg.NotPositiveDefinite):
            call(H)
    H[0, 0] = 1.0
    H[1, 0] = H[0, 1] = 2.0  # positive diagonal, not positive definite
    for call in (linalg.spd_inverse, linalg.ScaledSPD, linalg.SPDFactor):
        with pytest.raises(linalg.NotPositiveDefinite):
            call(H)
    with pytest.raises(linalg.NotPositiveDefinite):
        linalg.SPDFactor(np.full((300, 300), np.nan))


# -- the rank check of a wide design from a subsample ----------------------------------------------


def test_a_subsample_shows_the_full_rank_of_a_wide_design(rng):
    from mlefit import checks
    from mlefit.engines.base import full_rank_from_spread

    n, p = 4000, 100
    X = np.asfortranarray(with_intercept(rng.standard_normal((n, p - 1))))
    rows = MemoryRows(X, np.zeros(n))
    assert full_rank_from_spread(rows)
    sample = rows.spread(n // base.RANK_SAMPLE_STRIDE)
    norms = np.sqrt((X * X).sum(axis=0))
    assert checks.sample_shows_full_rank(sample.X, None, norms)
    # a column that is zero in the subsample's rows: not shown (the full check decides)
    starts, length = base.spread_runs(n, n // base.RANK_SAMPLE_STRIDE)
    outside = np.ones(n, dtype=bool)
    for start in starts:
        outside[start:start + length] = False
    Z = X.copy(order="F")
    Z[:, 5] = 0.0
    Z[np.flatnonzero(outside)[:3], 5] = 1.0
    assert not full_rank_from_spread(MemoryRows(Z, np.zeros(n)))
    assert checks.check_rank(Z, [f"c{j}" for j in range(p)]) is not None  # full rank all the same
    # dependent columns: not shown, and the full check names them
    D = X.copy(order="F")
    D[:, 7] = D[:, 3] + D[:, 4]
    assert not full_rank_from_spread(MemoryRows(D, np.zeros(n)))
    # narrow designs and engines without a subsample: the full check
    narrow = base.RANK_SAMPLE_FEATURES - 1
    assert not full_rank_from_spread(MemoryRows(np.asfortranarray(X[:, :narrow]), np.zeros(n)))


def test_the_rank_from_a_subsample_with_norms_bounded_by_the_column_ranges(rng):
    """Rows in memory given their total weight: sqrt(total weight) times a column's largest magnitude
    stands for its norm (no pass), and the answer is never yes where the true norms say no."""
    from mlefit import checks
    from mlefit.engines.base import full_rank_from_spread

    n, p = 20_000, 15
    X = np.asfortranarray(with_intercept(rng.standard_normal((n, p - 1))))
    w = rng.integers(0, 3, n).astype(float)
    rows = MemoryRows(X, np.zeros(n), w)
    assert full_rank_from_spread(rows, float(w.sum())) and full_rank_from_spread(rows)
    # one huge value: the bound is 1e6 times the norm, and the subsample does not show the rank
    # (the full check does)
    Z = X.copy(order="F")
    Z[123, 4] = 1e6 * np.sqrt(n)
    assert not full_rank_from_spread(MemoryRows(Z, np.zeros(n), w), float(w.sum()))
    assert checks.check_rank(Z, [f"c{j}" for j in range(p)], w) is not None
    # a dependent column: refused with the bound as with the norms
    D = X.copy(order="F")
    D[:, 9] = D[:, 2] - D[:, 5]
    assert not full_rank_from_spread(MemoryRows(D, np.zeros(n), w), float(w.sum()))


@pytest.mark.parametrize("weighted", [False, True])
def test_a_wide_collinear_design_is_refused_as_before(weighted, monkeypatch):
    """The subsample check passes nothing the full check would refuse: a wide design with a
    dependent column gets the same message either way."""
    from mlefit.errors import CollinearityError

    X, y = wide_bernoulli()
    X[:, 100] = X[:, 3] - 2.0 * X[:, 50]
    w = np.random.default_rng(2).integers(0, 3, len(y)).astype(float) if weighted else None
    with pytest.raises(CollinearityError) as wide:
        mlefit.fit(X=X, y=y, family="bernoulli", weights=w)
    monkeypatch.setattr(base, "RANK_SAMPLE_FEATURES", 10**9)
    with pytest.raises(CollinearityError) as full:
        mlefit.fit(X=X, y=y, family="bernoulli", weights=w)
    assert str(wide.value) == str(full.value)
    assert "column 'x101' is a linear combination of 'x4', 'x51'" in str(wide.value)  # 1-based names


def test_a_wide_fit_proves_its_rank_without_the_gram_matrix(monkeypatch):
    from mlefit import checks

    calls = []
    monkeypatch.setattr(checks, "check_rank", lambda *a, **k: calls.append(1))
    X, y = wide_bernoulli()
    mlefit.fit(X=X, y=y, family="bernoulli")
    assert calls == []
    mlefit.fit(X=X[:, :base.RANK_SAMPLE_FEATURES - 2], y=y, family="bernoulli")  # narrow: the full check
    assert calls == [1]


# -- the categorical Hessian with many classes ----------------------------------------------------


@pytest.mark.parametrize("n_features", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_many_class_hessian_in_chunks_is_the_sum_over_rows(n_features, weighted, rng):
    """With K = 30 the rows' weights are formed in chunks (HESSIAN_CHUNK_BYTES); one column (the
    intercept-only model's) takes a product of its own. Both against the Hessian written as a sum of
    Kronecker products over the rows."""
    from mlefit.families import categorical

    fam = get_family("categorical")
    n, k = 3000, 30
    assert categorical.HESSIAN_CHUNK_BYTES // (8 * (k - 1) * k // 2) < n  # several chunks
    X = rng.standard_normal((n, n_features))
    X[:, 0] = 1.0
    y = rng.integers(0, k, n)
    w = rng.random(n) * 2 if weighted else None
    params = rng.normal(0, 0.3, (k - 1) * n_features)
    H = fam.evaluate(params, X, y, w).hess
    eta = np.column_stack([np.zeros(n), X @ params.reshape(k - 1, n_features).T])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P = (P / P.sum(axis=1, keepdims=True))[:, 1:]
    ww = np.ones(n) if w is None else w
    M = np.einsum("i,ij,jk->ijk", ww, P, np.eye(k - 1)) - np.einsum("i,ij,ik->ijk", ww, P, P)
    ref = np.einsum("ijk,ia,ib->jakb", M, X, X).reshape(H.shape)
    np.testing.assert_allclose(H, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    assert np.array_equal(H, H.T)


def test_the_covariance_reuses_the_verdicts_factorisation(rng, monkeypatch):
    """The Cholesky factorisation of the final Hessian that decides convergence also gives the
    covariance: no matrix is factorised twice, and the covariance is the inverse of the Hessian."""
    n, p = 4000, 300
    X = rng.standard_normal((n, p))
    beta = rng.normal(0.0, 0.1, p)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ beta)))).astype(float)
    made = []
    init = linalg.ScaledSPD.__init__

    def counted(self, H):
        made.append(H)
        init(self, H)

    monkeypatch.setattr(linalg.ScaledSPD, "__init__", counted)
    fit = mlefit.fit(X=X, y=y, family="bernoulli")
    assert fit.converged and len(made) >= 1
    assert len({id(H) for H in made}) == len(made)  # the list keeps them alive: ids are unique
    final = made[-1]
    assert final.shape == (p + 1, p + 1)
    np.testing.assert_allclose(fit.cov @ final, np.eye(p + 1), rtol=0, atol=1e-9)


# -- the rank check from the subsample's Hessian ----------------------------------------------------


@pytest.mark.parametrize("name, options", [("bernoulli", {}), ("bernoulli", {"link": "probit"}), ("categorical", {})])
def test_the_curvature_bounds_hold(name, options):
    """Family.curvature_bound: the second derivative of one row's NLL with respect to its first
    linear predictor, over a grid of predictors and every target value, never exceeds it."""
    fam = get_family(name, **options)
    bound = fam.curvature_bound()
    X = np.ones((1, 1))
    highest = 0.0
    for eta in np.linspace(-40.0, 40.0, 801):
        params = np.array([eta]) if name == "bernoulli" else np.array([eta, 0.3 * eta - 1.0, -2.0])
        for y in ((0.0, 1.0) if name == "bernoulli" else (0, 1, 2, 3)):
            h = fam.evaluate(params, X, np.array([y]), order=2).hess[0, 0]
            highest = max(highest, h)
    assert 0.0 < highest <= bound and highest > 0.9 * bound  # a bound, and not a loose one
    assert get_family("bernoulli", link="cloglog").curvature_bound() is None  # exp(eta): unbounded
    assert get_family("poisson").curvature_bound() is None


def test_the_rank_from_a_hessian_never_passes_what_the_gram_matrix_refuses(rng):
    """hessian_shows_full_rank on the Hessian of some rows (any curvature up to the bound) says yes
    only where sample_shows_full_rank on the same rows does; a nearly dependent column is refused
    by both."""
    from mlefit import checks

    n, p = 3000, 120
    fam = get_family("bernoulli")
    for spread, eps in ((0.1, 1.0), (3.0, 1.0), (8.0, 1e-4), (0.5, 1e-7), (0.5, 0.0)):
        X = with_intercept(rng.standard_normal((n, p - 1)))
        X[:, 9] = X[:, 3] - X[:, 4] + eps * rng.standard_normal(n)
        y = (rng.random(n) < 0.3).astype(float)
        beta = rng.normal(0.0, spread / np.sqrt(p), p)
        hess = fam.evaluate(beta, X, y).hess
        norms = np.sqrt((X * X).sum(axis=0))
        by_hessian = checks.hessian_shows_full_rank(hess, fam.curvature_bound(), norms)
        by_gram = checks.sample_shows_full_rank(X, None, norms)
        assert by_gram or not by_hessian
        if eps <= 1e-4:
            assert not by_hessian
        if spread <= 0.1 and eps == 1.0:
            assert by_hessian  # near zero every row's curvature is close to the bound


def test_the_rank_from_a_factorised_hessian_is_the_rank_from_its_own_factor(rng):
    """The squared pivots of the unit-diagonal Hessian's Cholesky factor (ScaledSPD.pivots) decide
    as hessian_shows_full_rank's own factorisation of the scaled leading block does, for a Hessian
    given scaled to all rows with the bound scaled alike."""
    from mlefit import checks

    n, p = 3000, 300
    fam = get_family("bernoulli")
    decisions = []
    for eps in (1.0, 3e-3, 1e-3, 3e-4):
        X = with_intercept(rng.standard_normal((n, p - 1)))
        X[:, 9] = X[:, 3] - X[:, 4] + eps * rng.standard_normal(n)
        y = (rng.random(n) < 0.3).astype(float)
        hess = fam.evaluate(rng.normal(0.0, 0.3 / np.sqrt(p), p), X, y).hess
        norms = np.sqrt((X * X).sum(axis=0))
        factor = linalg.ScaledSPD(hess * 7.0)  # scaled to "all rows"
        S = hess / np.sqrt(np.outer(np.diag(hess), np.diag(hess)))
        np.testing.assert_allclose(factor.pivots(), np.diag(np.linalg.cholesky(S)) ** 2, rtol=1e-10, atol=1e-14)
        own = checks.hessian_shows_full_rank(hess, fam.curvature_bound(), norms)
        shared = checks.hessian_shows_full_rank(hess * 7.0, 7.0 * fam.curvature_bound(), norms, factor.pivots())
        assert own == shared
        decisions.append(own)
    assert decisions[0] and not decisions[-1]  # both answers occur
    assert linalg.ScaledSPD(np.eye(linalg.SMALL_SPD)).pivots() is None  # small: not factorised so


def test_a_wide_fit_takes_its_rank_check_from_the_subsample_hessian(rng, monkeypatch):
    """A wide bernoulli Newton fit: no Gram matrix of a rank sample (the quasi-Newton steps' first
    Hessian shows the rank), the estimates those of statsmodels; a wide design with a dependent
    column is still refused before the fit, naming the column."""
    from mlefit import checks
    from mlefit.errors import CollinearityError

    n, p = 6000, 150
    X = rng.standard_normal((n, p))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(0.3 + X @ rng.normal(0.0, 0.08, p))))).astype(float)
    grams, hessians = [], []
    gram_check, hessian_check = checks.sample_shows_full_rank, checks.hessian_shows_full_rank
    monkeypatch.setattr(checks, "sample_shows_full_rank", lambda *a: grams.append(1) or gram_check(*a))
    monkeypatch.setattr(checks, "hessian_shows_full_rank", lambda *a: hessians.append(hessian_check(*a)) or hessians[-1])
    fit = mlefit.fit(X=X, y=y, family="bernoulli")
    assert fit.converged and hessians == [True] and not grams
    reference = sm.Logit(y, sm.add_constant(X)).fit(method="newton", disp=0, tol=1e-12)
    assert np.max(np.abs(fit.params - reference.params) / reference.bse) < 1e-6
    D = X.copy()
    D[:, 40] = D[:, 10] - 2.0 * D[:, 20]
    with pytest.raises(CollinearityError, match="x41"):
        mlefit.fit(X=D, y=y, family="bernoulli")
    assert hessians[-1] is False
