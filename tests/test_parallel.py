"""The in-memory engine's threads and the passes it saves: row blocks summed on several threads
give the same sums to the last bit as one thread, run after run; the separation screen read from
the optimiser's last pass; the threaded design copy and rank check."""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pytest

import mlefit
from mlefit import checks, data, parallel
from mlefit.engines import memory as objective
from mlefit.errors import CollinearityError, DataError, UsageError
from mlefit.families import get_family
from mlefit.fit import _null_model, source_of
from mlefit.engines.base import RowsObjective
from mlefit.engines.memory import MemoryRows
from conftest import data_objective


@pytest.fixture
def threads(monkeypatch):
    """Set mlefit.parallel.THREADS for the test (restored afterwards)."""

    def set_threads(n: int | None) -> None:
        monkeypatch.setattr(parallel, "THREADS", n)

    return set_threads


def family_data(name: str, rng, n: int = 20_000, p: int = 4):
    X = np.column_stack([np.ones(n), rng.standard_normal((n, p - 1))])
    X = np.asfortranarray(X)
    eta = X @ rng.normal(0.0, 0.5, p)
    if name == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
        params = rng.normal(0.0, 0.3, p)
    elif name == "categorical":
        y = rng.integers(0, 3, n).astype(np.intp)
        params = rng.normal(0.0, 0.3, 2 * p)
    else:
        y = eta + rng.standard_normal(n)
        params = np.append(rng.normal(0.0, 0.3, p), 0.1)
    return X, y, params


def assert_same_sums(a, b):
    assert a.nll == b.nll and a.weight == b.weight and a.min_log_prob == b.min_log_prob
    for u, v in ((a.grad, b.grad), (a.hess, b.hess)):
        assert (u is None) == (v is None)
        if u is not None:
            np.testing.assert_array_equal(u, v)


# -- sums on threads --------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["bernoulli", "categorical", "gaussian"])
def test_threaded_sums_equal_the_sequential_sums_bit_for_bit(name, weighted, rng, threads):
    X, y, params = family_data(name, rng)
    w = rng.integers(0, 3, len(y)).astype(float) if weighted else None
    fam = get_family(name)
    obj = data_objective(fam, X, y, w, rows=700)  # 29 blocks of rows, in runs of blocks
    for order in (0, 1, 2):
        threads(1)
        one = obj.sums(params, order)
        threads(2)
        two = obj.sums(params, order)
        again = obj.sums(params, order)
        threads(3)
        three = obj.sums(params, order)
        assert_same_sums(one, two)
        assert_same_sums(two, again)
        assert_same_sums(one, three)
        # and the blocked sums are the sums over all rows, up to the order of the additions
        whole = fam.evaluate(params, X, y, w, order=order)
        assert one.nll == pytest.approx(whole.nll, rel=1e-12)
        if order >= 1:
            np.testing.assert_allclose(one.grad, whole.grad, rtol=1e-12, atol=1e-12 * np.abs(whole.grad).max())
        if order == 2:
            np.testing.assert_allclose(one.hess, whole.hess, rtol=1e-12, atol=1e-12 * np.abs(whole.hess).max())


@pytest.mark.parametrize("name", ["bernoulli", "categorical"])
def test_a_threaded_fit_equals_a_sequential_fit(name, threads):
    rng = np.random.default_rng(7)
    n = 150_000  # past the warm start's threshold: the subsample fit runs on threads too
    X = rng.standard_normal((n, 3))
    if name == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ [0.5, -0.2, 0.1])))).astype(int)
    else:
        y = rng.integers(0, 3, n)
    threads(1)
    one = mlefit.fit(X=X, y=y, family=name)
    threads(2)
    two = mlefit.fit(X=X, y=y, family=name)
    again = mlefit.fit(X=X, y=y, family=name)
    assert one.converged and two.converged
    for a, b in ((one, two), (two, again)):
        np.testing.assert_array_equal(a.params, b.params)
        np.testing.assert_array_equal(a.se, b.se)
        assert a.nll == b.nll and a.n_iter == b.n_iter


@pytest.mark.parametrize("n_obs, rows", [(10_000, 4_004), (5_070, 4_004), (20_000, 2_004), (6_000, 1_200), (40_000, 655)])
def test_few_blocks_come_in_a_multiple_of_the_threads_and_of_equal_size(n_obs, rows):
    even = objective.even_rows(n_obs, rows)
    n_blocks = -(-n_obs // even)
    assert even <= rows and n_blocks % parallel.MAX_THREADS == 0 and n_blocks >= -(-n_obs // rows)
    last = n_obs - (n_blocks - 1) * even
    assert even - n_blocks < last <= even  # the last block is short by less than a row a block


@pytest.mark.parametrize("n_obs, rows", [(3_000, 4_004), (4_004, 4_004), (1_000_000, 6_241), (64 * 100, 100)])
def test_one_block_or_many_are_left_as_they_are(n_obs, rows):
    assert objective.even_rows(n_obs, rows) == rows


def test_task_runs_depend_on_the_shape_only():
    assert objective.task_count(1, 5) == 1
    assert objective.task_count(1000, 5) == objective.MAX_TASKS
    # a big Hessian per task: fewer tasks, but enough to share among a few threads
    assert objective.task_count(1000, 4000) == 4



def test_a_wide_gradient_pass_takes_smaller_blocks_and_the_same_sums(rng, threads):
    """Without a Hessian a wide design's pass keeps cache-sized blocks (no Gram matrices to amortise);
    its NLL and gradient are those of the Hessian pass's larger blocks up to rounding."""
    p = 400
    assert objective.block_rows(p, hessian=False) < objective.block_rows(p) == objective.WIDE_ROWS_PER_FEATURE * p
    assert objective.block_rows(20, hessian=False) == objective.block_rows(20)
    # (about 4 MB for more than 128 columns, 1 MB up to 128)
    assert objective.block_rows(p, hessian=False) == objective.WIDE_GRADIENT_BYTES // (8 * p)
    assert objective.block_rows(128, hessian=False) == objective.BLOCK_BYTES // (8 * 128)
    assert objective.block_rows(2000, hessian=False) == objective.MIN_BLOCK_ROWS
    threads(2)
    n = 6 * objective.block_rows(p)
    X = rng.standard_normal((n, p))
    y = (rng.random(n) < 0.4).astype(float)
    calls = []

    def sums(X, y, w, o):
        calls.append(len(y))
        return get_family("bernoulli").evaluate(params, X, y, order=1)

    params = rng.normal(0.0, 0.02, p)
    rows = MemoryRows(X, y)
    first = rows.map_sum(sums, hessian=False)
    assert max(calls) == objective.even_rows(n, objective.block_rows(p, hessian=False))
    calls.clear()
    second = rows.map_sum(sums)
    assert max(calls) == objective.even_rows(n, objective.block_rows(p))
    assert first.nll == pytest.approx(second.nll, rel=1e-13)
    np.testing.assert_allclose(first.grad, second.grad, rtol=1e-10, atol=1e-10)
    fam = get_family("bernoulli")
    a, b = RowsObjective(fam, rows).sums(params, 1), RowsObjective(fam, rows).sums(params, 2)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-10)


# -- the thread pool ---------------------------------------------------------------------------------


def test_map_tasks_returns_results_in_task_order_from_several_threads(threads):
    threads(3)
    seen = set()
    barrier = threading.Barrier(3, timeout=10)

    def task(i):
        if i < 3:  # the first three tasks wait for each other: they must be on three threads
            barrier.wait()
        seen.add(threading.get_ident())
        return i * i

    assert parallel.map_tasks(task, 50) == [i * i for i in range(50)]
    assert len(seen) == 3


def test_map_tasks_raises_a_task_error_and_carries_numpy_error_state(threads):
    threads(2)

    def task(i):
        if i == 7:
            raise ValueError("task 7")
        return i

    with pytest.raises(ValueError, match="task 7"):
        parallel.map_tasks(task, 20)
    # np.errstate set by the caller holds in the other threads too
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            parallel.map_tasks(lambda i: np.exp(np.full(4, 1000.0)), 8)
    with np.errstate(all="ignore"):
        out = parallel.map_tasks(lambda i: np.exp(np.full(1, 1000.0))[0], 8)
    assert out == [np.inf] * 8


def test_map_tasks_off_the_main_thread_stays_on_that_thread(threads):
    threads(4)
    result = {}

    def run():
        result["threads"] = set(parallel.map_tasks(lambda i: threading.get_ident(), 16))
        result["self"] = threading.get_ident()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert result["threads"] == {result["self"]}


def test_thread_count_from_the_setting_and_the_environment(threads, monkeypatch):
    threads(None)
    monkeypatch.delenv(parallel.ENV_VAR, raising=False)
    assert parallel.n_threads() == min(parallel.usable_cores(), parallel.MAX_THREADS)
    monkeypatch.setenv(parallel.ENV_VAR, "3")
    assert parallel.n_threads() == 3
    threads(1)
    assert parallel.n_threads() == 1  # the module setting wins
    threads(None)
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv(parallel.ENV_VAR, bad)
        with pytest.raises(UsageError, match="MLEFIT_THREADS"):
            parallel.n_threads()


def test_bad_thread_setting_is_a_usage_error_from_the_cli(invoke, monkeypatch):
    from conftest import SAMPLES

    monkeypatch.setattr(parallel, "THREADS", None)
    monkeypatch.setenv(parallel.ENV_VAR, "many")
    result = invoke("fit", str(SAMPLES / "admissions.csv"), "--family", "bernoulli", "--target", "admitted")
    assert result.exit_code == 2
    assert "MLEFIT_THREADS must be a whole number" in result.stderr


# -- the separation screen from the last pass -------------------------------------------------------


def class_log_prob_min(name, params, X, w=None):
    fam = get_family(name)
    eta = fam.linear_predictor(params, X) if name == "categorical" else np.column_stack([np.zeros(len(X)), X @ params])
    logp = checks.class_log_probabilities(eta)
    if w is not None:
        logp = logp[w > 0]
    return logp.min()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["bernoulli", "categorical"])
def test_block_sums_carry_the_smallest_class_log_probability(name, weighted, rng):
    X, y, params = family_data(name, rng, n=3000)
    params = params * 8.0  # some probabilities far from 1/2
    w = None
    if weighted:
        w = rng.integers(1, 3, len(y)).astype(float)
        eta_rows = np.abs(X @ params[: X.shape[1]])
        w[np.argsort(eta_rows)[-50:]] = 0.0  # the most extreme rows do not count
    fam = get_family(name)
    s = data_objective(fam, X, y, w, rows=512).sums(params, 2)
    expected = class_log_prob_min(name, params, X, w)
    assert expected < -5
    assert s.min_log_prob == pytest.approx(expected, rel=1e-12)
    assert fam.evaluate(params, X, y, w, order=1).min_log_prob is None  # only with the Hessian
    assert get_family("gaussian").evaluate(np.array([0.0, 0.0]), X[:, :1], X[:, 1], order=2).min_log_prob is None


def test_no_row_with_a_positive_weight_has_no_small_probability(rng):
    X, y, params = family_data("bernoulli", rng, n=100)
    s = get_family("bernoulli").evaluate(params * 100, X, y, np.zeros(100), order=2)
    assert s.min_log_prob == 0.0


def test_the_screen_reuses_the_last_pass(rng, monkeypatch):
    """An ordinary fit makes no pass of its own for the separation screen."""
    calls = []
    monkeypatch.setattr(checks, "suspect_separation", lambda *a, **k: calls.append(1) or False)
    X = rng.standard_normal((5000, 3))
    y = (rng.random(5000) < 1 / (1 + np.exp(-X @ [1.0, -1.0, 0.5]))).astype(int)
    for method in ("newton", "lbfgs", "gd"):
        assert mlefit.fit(X=X, y=y, family="bernoulli", method=method, max_iter=100_000).converged
    assert mlefit.fit(X=X, y=rng.integers(0, 3, 5000), family="categorical").converged
    assert mlefit.fit(X=X, y=y, family="bernoulli", gradient="numeric").converged
    assert calls == []


def test_the_screen_from_the_last_pass_still_calls_the_exact_check(rng, monkeypatch):
    """A strong but finite effect: probabilities below exp(-20) at the estimate, so the exact check
    runs (and finds the classes overlap); separated data are still refused."""
    exact = []
    real = checks.check_separation
    monkeypatch.setattr(checks, "check_separation", lambda *a, **k: exact.append(1) or real(*a, **k))
    x = np.linspace(-15, 15, 401)
    y = (rng.random(401) < 1 / (1 + np.exp(-2 * x))).astype(int)
    y[200], y[205] = 1, 0
    res = mlefit.fit(X=x, y=y, family="bernoulli")
    assert res.converged and exact == [1]
    sep = (x > 0).astype(int)
    with pytest.raises(mlefit.errors.SeparationError):
        mlefit.fit(X=x, y=sep, family="bernoulli")


def test_the_objective_answers_only_for_the_point_it_last_saw(rng):
    X, y, params = family_data("bernoulli", rng, n=2000)
    obj = data_objective(get_family("bernoulli"), X, y)
    assert obj.min_log_prob(params) is None
    low = obj.sums(params, 2).min_log_prob
    assert obj.min_log_prob(params) == low
    assert obj.min_log_prob(params + 1e-9) is None
    obj.sums(params + 1.0, 0)  # an NLL-only evaluation elsewhere does not forget it
    assert obj.min_log_prob(params) == low


# -- the design copy and the rank check on threads --------------------------------------------------


@pytest.mark.parametrize("order", ["C", "F"])
def test_design_copy_on_threads_equals_stacking_a_column_of_ones(order, rng, threads):
    X = np.asarray(rng.standard_normal((100_000, 3)), order=order)  # several runs of rows
    threads(2)
    out = data.as_design_array(X, True)
    assert out.flags.f_contiguous
    np.testing.assert_array_equal(out, np.column_stack([np.ones(len(X)), X]))
    bad = X.copy()
    bad[-3, 1] = np.nan  # in the last run
    with pytest.raises(DataError, match="missing or infinite"):
        data.as_design_array(bad, True)


def test_an_intercept_fit_equals_the_fit_with_a_column_of_ones(rng, threads):
    threads(2)
    n = 120_000
    X = rng.standard_normal((n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.5 + X @ [1.0, -0.5])))).astype(int)
    fam = get_family("bernoulli")
    ones = np.column_stack([np.ones(n), X])
    ds = data.dataset_from_arrays(X, y, fam)
    assert ds.ones and ds.X is X  # the column of ones is not stored, nor X copied
    rows = MemoryRows(ds.X, ds.y, ones=True)
    np.testing.assert_array_equal(rows.X, data.dataset_from_arrays(ones, y, fam, intercept=False).X)
    implicit = mlefit.fit(X=X, y=y, family="bernoulli")
    explicit = mlefit.fit(X=ones, y=y, family="bernoulli", intercept=False)
    assert implicit.converged and explicit.converged
    # different starts (the intercept-only fit, zeros): the same optimum to far below the tolerance
    np.testing.assert_allclose(implicit.params, explicit.params, rtol=1e-10)
    np.testing.assert_allclose(implicit.se, explicit.se, rtol=1e-10)
    assert implicit.nll == pytest.approx(explicit.nll, rel=1e-14)


def test_a_row_major_design_without_an_intercept_is_fitted_as_given(rng, threads):
    """intercept=False: a row-major matrix is neither copied nor changed, its values are checked,
    and its fit is that of the same matrix column-major."""
    threads(2)
    n, p = 20_000, 80
    X = np.column_stack([np.ones(n), rng.standard_normal((n, p - 1))])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ rng.normal(0.0, 0.1, p))))).astype(int)
    before = X.copy()
    ds = data.dataset_from_arrays(X, y, get_family("bernoulli"), intercept=False)
    assert ds.X is X and not ds.ones
    rowwise = mlefit.fit(X=X, y=y, family="bernoulli", intercept=False)
    columnwise = mlefit.fit(X=np.asfortranarray(X), y=y, family="bernoulli", intercept=False)
    assert rowwise.converged and columnwise.converged
    np.testing.assert_allclose(rowwise.params, columnwise.params, rtol=1e-10)
    np.testing.assert_allclose(rowwise.se, columnwise.se, rtol=1e-10)
    np.testing.assert_array_equal(X, before)
    X[12_345, 7] = np.nan
    with pytest.raises(DataError, match="missing or infinite"):
        data.dataset_from_arrays(X, y, get_family("bernoulli"), intercept=False)


def test_rank_check_on_threads(rng, threads):
    n = 3 * checks.QR_BLOCK + 5
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 2))])
    w = rng.random(n)
    threads(1)
    one = checks.check_rank(X, ["intercept", "a", "b"], w, intercept=True)
    threads(2)
    two = checks.check_rank(X, ["intercept", "a", "b"], w, intercept=True)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(two, (X * w[:, None]).T @ X, rtol=1e-12)
    dup = np.column_stack([X, 2.0 * X[:, 1]])
    with pytest.raises(CollinearityError, match="'c' is 2 times 'a'"):
        checks.check_rank(dup, ["intercept", "a", "b", "c"], intercept=True)


def test_null_model_from_blocks_equals_one_call(rng):
    X, y, _ = family_data("bernoulli", rng, n=300_000, p=2)
    ds = data.dataset_from_arrays(X[:, 1:], y, get_family("bernoulli"))
    null = _null_model(source_of(ds), get_family("bernoulli"), 2)
    whole = get_family("bernoulli").evaluate(null["params"], np.ones((len(ds.y), 1)), ds.y, order=0).nll
    assert null["n_params"] == 1 and -null["loglik"] == pytest.approx(whole, rel=1e-12)
    mean = ds.y.mean()
    assert null["params"][0] == pytest.approx(np.log(mean / (1 - mean)), rel=1e-12)


# -- the chord step ----------------------------------------------------------------------------------


class CountingObjective(RowsObjective):
    """Records the order of every evaluation."""

    def __init__(self, fam, X, y):
        super().__init__(fam, MemoryRows(X, y))
        self.orders = []

    def sums(self, params, order, precise=False):
        self.orders.append(order)
        return super().sums(params, order, precise)


def chord_problem():
    rng = np.random.default_rng(3)
    n, p = 200_000, 4
    X = np.asfortranarray(np.column_stack([np.ones(n), rng.standard_normal((n, p - 1))]))
    y = rng.integers(0, 3, n)
    return CountingObjective(get_family("categorical"), X, y), np.zeros(2 * p)


def test_a_chord_step_spares_a_hessian_and_ends_on_a_fresh_one():
    from mlefit.optimize import newton

    plain_obj, x0 = chord_problem()
    plain = newton(plain_obj, x0, tol=1e-8, max_iter=50)
    obj, _ = chord_problem()
    res = newton(obj, x0, tol=1e-8, max_iter=50, chord=True)
    assert plain.converged and res.converged and res.decrement <= 1e-8
    assert 1 in obj.orders and 1 not in plain_obj.orders  # the chord step ran, and only then
    assert obj.orders.count(2) < plain_obj.orders.count(2)
    assert len(obj.orders) <= len(plain_obj.orders)
    # the Hessian returned (for the covariance) is the final point's own
    np.testing.assert_array_equal(res.hess, obj.value_grad_hess(res.params)[2])
    np.testing.assert_allclose(res.params, plain.params, rtol=1e-9)


def test_a_chord_step_at_the_iteration_limit_returns_a_fresh_hessian():
    from mlefit.optimize import newton

    obj, x0 = chord_problem()
    res = newton(obj, x0, tol=1e-8, max_iter=2, chord=True)
    assert not res.converged and res.n_iter == 2
    assert obj.orders[-2:] == [1, 2]  # the chord point, then its own Hessian for the verdict
    np.testing.assert_array_equal(res.hess, obj.value_grad_hess(res.params)[2])


def count_full_passes(monkeypatch, n_rows: int) -> list[int]:
    """The orders of the evaluations on the design of all ``n_rows`` rows (not the warm start's,
    nor the intercept-only model's)."""
    orders = []
    original = RowsObjective.sums

    def counting(self, params, order, precise=False):
        if self.rows.n_obs == n_rows and self.null_columns is None:
            orders.append(order)
        return original(self, params, order, precise)

    monkeypatch.setattr(RowsObjective, "sums", counting)
    return orders


def without_warm_start_hessian(monkeypatch) -> None:
    """Large fits start from the warm start with a Hessian of their own (no hess0)."""
    fit_module = importlib.import_module("mlefit.fit")
    warm_start = fit_module._warm_start
    monkeypatch.setattr(fit_module, "_warm_start", lambda *args: (warm_start(*args)[0], None))


def test_a_chord_step_when_the_next_point_is_predicted_to_pass_only_just(monkeypatch):
    """The benchmark's categorical fit: from the warm start (with a Hessian of its own), Newton's
    prediction for its fourth point (9.7e-9 standard errors) is within CHORD_MARGIN of the
    tolerance and the point misses it (1.2e-8); with the margin a chord step takes its place, one
    Hessian pass fewer, same optimum."""
    from pathlib import Path

    import mlefit
    from mlefit import optimize

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import compare

    n = 200_000
    X, y = compare.categorical_data(np.random.default_rng(compare.SEED + 1), n, 20, 5)
    orders = count_full_passes(monkeypatch, n)
    # From the warm start with its own Hessian, as when the subsample's is not used (hess0)
    without_warm_start_hessian(monkeypatch)
    with_margin = mlefit.fit(X=X, y=y, family="categorical")
    hessians = orders.count(2)
    orders.clear()
    monkeypatch.setattr(optimize, "CHORD_MARGIN", 1.0)
    without = mlefit.fit(X=X, y=y, family="categorical")
    assert with_margin.converged and without.converged
    assert orders.count(2) == hessians + 1  # the margin spared one Hessian pass
    np.testing.assert_allclose(with_margin.params, without.params, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(with_margin.se, without.se, rtol=1e-9)


@pytest.mark.parametrize("scale", [1.02, 0.5, 3.0])
def test_a_first_step_with_a_given_hessian_spares_a_pass_and_ends_on_a_fresh_one(scale):
    """newton(hess0=...): the start is evaluated without a Hessian and the first step uses hess0
    (here the true one, off by a factor: a warm start's subsample Hessian is off by a few percent);
    the verdict and the Hessian returned are still the final point's own, and the optimum is the
    same as plain Newton's."""
    from mlefit.optimize import newton

    plain_obj, x0 = chord_problem()
    plain = newton(plain_obj, x0, tol=1e-8, max_iter=50)
    obj, _ = chord_problem()
    H0 = obj.value_grad_hess(x0)[2] * scale
    obj.orders.clear()
    res = newton(obj, x0, tol=1e-8, max_iter=50, hess0=H0)
    assert res.converged and res.decrement <= 1e-8
    assert obj.orders[0] == 1  # the start: NLL and gradient only
    assert obj.orders[-1] == 2 or obj.orders[-2:] == [2, 0]
    np.testing.assert_array_equal(res.hess, obj.value_grad_hess(res.params)[2])
    se = np.sqrt(np.diag(np.linalg.inv(plain.hess)))
    assert np.all(np.abs(res.params - plain.params) <= 1e-7 * se)  # both within tol of the optimum
    if scale == 1.02:  # no more Hessian passes than plain Newton (fewer from a warm start: below)
        assert obj.orders.count(2) <= plain_obj.orders.count(2)


def test_the_warm_start_hessian_spares_the_first_hessian_pass(monkeypatch):
    """A large fit's first pass (at the warm start) computes no Hessian: the subsample's, scaled to
    the full data, takes its place; estimates and standard errors are those of a fit without it."""
    import mlefit

    rng = np.random.default_rng(11)
    n, p = 120_000, 6
    X = rng.standard_normal((n, p))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ rng.normal(0, 0.5, p))))).astype(float)
    orders = count_full_passes(monkeypatch, n)
    fast = mlefit.fit(X=X, y=y, family="bernoulli")
    first, hessians = orders[0], orders.count(2)
    orders.clear()
    without_warm_start_hessian(monkeypatch)
    slow = mlefit.fit(X=X, y=y, family="bernoulli")
    assert first == 1 and orders[0] == 2
    assert hessians < orders.count(2)
    assert fast.converged and slow.converged
    np.testing.assert_allclose(fast.params, slow.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.se, slow.se, rtol=1e-9)


@pytest.mark.parametrize("order", ["C", "F"])
def test_blocks_with_unstored_ones_equal_the_blocks_of_the_whole_design(order, rng, threads):
    """map_sum over a design whose ones are not stored hands each block function the same rows as
    the whole matrix would (the buffer reused between blocks): the sums are equal to the bit where
    the stored columns are column-major like the whole matrix (row-major blocks may round BLAS
    products differently)."""
    threads(2)
    n = 50_003  # a short last block
    X = np.asarray(rng.standard_normal((n, 4)), order=order)
    y = rng.poisson(1.0, n).astype(float)
    w = rng.random(n)
    lazy = MemoryRows(X, y, w, ones=True, rows=997)
    whole = MemoryRows(np.asfortranarray(np.column_stack([np.ones(n), X])), y, w, rows=997)
    assert lazy.n_features == whole.n_features == 5

    def sums(X, y, w, offset):
        return np.concatenate([X.T @ (w * y), (X * X).sum(axis=0), [X.shape[0]]])

    if order == "F":
        assert np.array_equal(lazy.map_sum(sums), whole.map_sum(sums))
    np.testing.assert_allclose(lazy.map_sum(sums), whole.map_sum(sums), rtol=1e-13)
    assert np.array_equal(lazy.column_range(), whole.column_range())
    names = [f"x{j}" for j in range(5)]
    np.testing.assert_allclose(lazy.check_rank(names, True), whole.check_rank(names, True), rtol=1e-13)
    dup = MemoryRows(np.column_stack([X, 2.0 * X[:, 1]]), y, ones=True, rows=997)
    with pytest.raises(CollinearityError, match="'x5' is 2 times 'x2'"):
        dup.check_rank([*names, "x5"], True)
    starts = np.array([0, 1000, 49_990])
    assert np.array_equal(lazy.runs(starts, 20).X, whole.runs(starts, 20).X)
    # the operator least squares reads: products with vectors, anything else through the matrix
    A, x = lazy.design(), rng.standard_normal(5)
    assert A.shape == (n, 5) and whole.design() is whole.X
    np.testing.assert_allclose(A @ x, whole.X @ x, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(A.T @ y, whole.X.T @ y, rtol=1e-13)
    np.testing.assert_allclose(A.T @ whole.X, whole.X.T @ whole.X, rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(A), whole.X)
    np.testing.assert_array_equal(lazy.X, whole.X)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_passes_tasks_share_as_many_block_buffers_as_run_at_once(n_threads, rng, threads, monkeypatch):
    """51 tasks of one block each, copied with their ones: the buffers finished tasks give back
    serve the next, so a pass makes at most one per thread and the next pass none (a pass of
    larger blocks makes new ones); the sums are the whole design's."""
    threads(n_threads)
    n = 50_003
    X = np.asfortranarray(rng.standard_normal((n, 4)))
    y = rng.poisson(1.0, n).astype(float)
    lazy = MemoryRows(X, y, ones=True, rows=997)
    whole = MemoryRows(np.asfortranarray(np.column_stack([np.ones(n), X])), y, rows=997)
    made = []
    original = MemoryRows.buffer

    def counting(self, n_rows):
        if self is lazy:
            made.append(n_rows)
        return original(self, n_rows)

    monkeypatch.setattr(MemoryRows, "buffer", counting)

    def sums(X, y, w, offset):
        return np.concatenate([X.T @ y, (X * X).sum(axis=0)])

    first = lazy.map_sum(sums)
    assert np.array_equal(first, whole.map_sum(sums))
    for _ in range(4):  # the first pass's buffers, taken again (a thread may join later)
        assert np.array_equal(lazy.map_sum(sums), first)
    assert 1 <= len(made) <= n_threads and set(made) == {997}
    made.clear()
    lazy.rows = 2000  # larger blocks: larger buffers, which then serve smaller blocks too
    for _ in range(4):
        np.testing.assert_allclose(lazy.map_sum(sums), first, rtol=1e-13)
    lazy.rows = 997
    for _ in range(4):
        assert np.array_equal(lazy.map_sum(sums), first)
    assert 1 <= made.count(2000) <= n_threads and made.count(2000) + made.count(997) <= n_threads


def test_arrays_with_a_missing_value_are_refused_with_an_intercept_too(rng):
    X = rng.standard_normal((70_000, 3))
    X[65_000, 2] = np.inf
    with pytest.raises(DataError, match="missing or infinite"):
        data.dataset_from_arrays(X, rng.random(70_000), get_family("gaussian"))
    X[65_000, 2] = np.nan
    with pytest.raises(DataError, match="missing or infinite"):
        data.dataset_from_arrays(X, rng.random(70_000), get_family("gaussian"))


@pytest.mark.parametrize("order", ["C", "F"])
def test_a_wide_design_without_its_ones_sums_as_the_whole(order, rng, threads):
    """From STORE_FEATURES columns on, a design whose ones are not stored is formed whole (row-major)
    at its first pass unless it is row-major already (its rows are then copied block by block with
    their ones); either way its sums are those of the column-major design with the ones."""
    from mlefit.engines import memory

    threads(2)
    n, p = 9_001, data.STORE_FEATURES
    X = np.asarray(rng.standard_normal((n, p)), order=order)
    y = (rng.random(n) < 0.4).astype(float)
    lazy = MemoryRows(X, y, ones=True, rows=700)
    whole = MemoryRows(np.asfortranarray(np.column_stack([np.ones(n), X])), y, rows=700)
    fam = get_family("bernoulli")
    params = rng.normal(0.0, 0.05, p + 1)
    for order_ in (1, 2):
        a = RowsObjective(fam, lazy).sums(params, order_)
        b = RowsObjective(fam, whole).sums(params, order_)
        assert a.nll == pytest.approx(b.nll, rel=1e-13)
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(a.hess, b.hess, rtol=1e-12, atol=1e-11)
    assert (lazy._X is not None) == (order == "F") == data.forms_whole(X)
    assert not data.forms_whole(X[:, :data.STORE_FEATURES - 2])  # narrow: never formed
    np.testing.assert_array_equal(lazy.X, whole.X)  # (formed here if not before), with its column of ones
    assert memory.MemoryRows(X, y, ones=True).n_features == p + 1


@pytest.mark.parametrize("order", ["C", "F"])
def test_wide_arrays_are_formed_with_their_ones_unless_row_major(order, rng, threads):
    """From STORE_FEATURES columns on, arrays given with an intercept are copied once into a row-major
    design with its ones unless they are row-major (then fitted as given, the ones added block by
    block); the columns' ranges are those of column_range either way, and missing values refused."""
    threads(2)
    n, p = 70_001, data.STORE_FEATURES - 1
    X = np.asarray(rng.standard_normal((n, p)) * np.linspace(0.5, 40.0, p), order=order)
    y = (rng.random(n) < 0.4).astype(float)
    fam = get_family("bernoulli")
    ds = data.dataset_from_arrays(X, y, fam)
    if order == "F":
        assert not ds.ones and ds.X.flags.c_contiguous
        np.testing.assert_array_equal(ds.X, np.column_stack([np.ones(n), X]))
    else:
        assert ds.ones and ds.X is X  # not copied
    np.testing.assert_array_equal(ds.ranges, np.concatenate([[1.0], data.column_range(X)]))
    narrow = data.dataset_from_arrays(X[:, :5], y, fam)
    assert narrow.ones  # a narrow design: its ones not stored
    X[n - 2, p - 1] = np.inf
    with pytest.raises(DataError, match="missing or infinite"):
        data.dataset_from_arrays(X, y, fam)
    X[n - 2, p - 1] = np.nan
    with pytest.raises(DataError, match="missing or infinite"):
        data.dataset_from_arrays(X, y, fam)
    X[n - 2, p - 1] = np.nan
    with pytest.raises(DataError, match="missing or infinite"):
        data.dataset_from_arrays(X, y, fam)
