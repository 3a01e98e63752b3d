"""Text models, one suite over the distributions table: per-row NLL against scipy.stats, exact
derivatives against central finite differences, weights, scores, means and draws."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from mlefit.errors import DataError, UsageError
from mlefit.textmodel import DISTRIBUTIONS, compile_model

N_ROWS = 9


@dataclass
class Case:
    text: str
    draw_y: Callable  # rng, n -> y
    params: Callable  # rng -> dict of parameter values
    logpdf: Callable  # y, x, size, p -> per-row log-density (scipy.stats)
    mean: Callable  # x, size, p -> per-row mean (scipy.stats)


def _eta(p, x, a="a", b="b"):
    return p[a] + p[b] * x


CASES = {
    "normal": Case(
        "y ~ normal(mean = a + b*x, sd = exp(s))",
        lambda r, n: r.normal(size=n),
        lambda r: dict(a=r.normal(), b=r.normal(), s=r.uniform(-1, 1)),
        lambda y, x, size, p: stats.norm.logpdf(y, _eta(p, x), np.exp(p["s"])),
        lambda x, size, p: stats.norm.mean(_eta(p, x), np.exp(p["s"])),
    ),
    "normal_raw_sd": Case(
        "y ~ normal(mean = a*x/(k + x), sd = s)",
        lambda r, n: r.normal(2, 1, size=n),
        lambda r: dict(a=r.uniform(1, 3), k=r.uniform(1, 2), s=r.uniform(0.5, 2)),
        lambda y, x, size, p: stats.norm.logpdf(y, p["a"] * np.abs(x) / (p["k"] + np.abs(x)), p["s"]),
        None,
    ),
    "bernoulli": Case(
        "y ~ bernoulli(prob = sigmoid(a + b*x))",
        lambda r, n: r.integers(0, 2, n).astype(float),
        lambda r: dict(a=r.normal(), b=r.normal()),
        lambda y, x, size, p: stats.bernoulli.logpmf(y, expit(_eta(p, x))),
        lambda x, size, p: stats.bernoulli.mean(expit(_eta(p, x))),
    ),
    "bernoulli_raw": Case(
        "y ~ bernoulli(prob = q)",
        lambda r, n: r.integers(0, 2, n).astype(float),
        lambda r: dict(q=r.uniform(0.1, 0.9)),
        lambda y, x, size, p: stats.bernoulli.logpmf(y, p["q"]),
        lambda x, size, p: np.full(x.shape, p["q"]),
    ),
    "binomial": Case(
        "y ~ binomial(size = n, prob = sigmoid(a + b*x))",
        None,
        lambda r: dict(a=r.normal(), b=r.normal()),
        lambda y, x, size, p: stats.binom.logpmf(y, size, expit(_eta(p, x))),
        lambda x, size, p: stats.binom.mean(size, expit(_eta(p, x))),
    ),
    "binomial_raw": Case(
        "y ~ binomial(size = n, prob = q)",
        None,
        lambda r: dict(q=r.uniform(0.1, 0.9)),
        lambda y, x, size, p: stats.binom.logpmf(y, size, p["q"]),
        lambda x, size, p: size * p["q"],
    ),
    "poisson": Case(
        "y ~ poisson(rate = exp(a + b*x))",
        lambda r, n: r.poisson(3, n).astype(float),
        lambda r: dict(a=r.normal(), b=r.normal()),
        lambda y, x, size, p: stats.poisson.logpmf(y, np.exp(_eta(p, x))),
        lambda x, size, p: stats.poisson.mean(np.exp(_eta(p, x))),
    ),
    "poisson_identity": Case(
        "y ~ poisson(rate = a + b*n)",
        lambda r, n: r.poisson(3, n).astype(float),
        lambda r: dict(a=r.uniform(0.5, 2), b=r.uniform(0.1, 1)),
        lambda y, x, size, p: stats.poisson.logpmf(y, p["a"] + p["b"] * size),
        lambda x, size, p: p["a"] + p["b"] * size,
    ),
    "negbin": Case(
        "y ~ negbin(mean = exp(a + b*x), alpha = exp(la))",
        lambda r, n: r.negative_binomial(2, 0.4, n).astype(float),
        lambda r: dict(a=r.normal(), b=r.normal(), la=r.uniform(-2, 1)),
        lambda y, x, size, p: stats.nbinom.logpmf(
            y, 1 / np.exp(p["la"]), 1 / (1 + np.exp(p["la"]) * np.exp(_eta(p, x)))
        ),
        lambda x, size, p: stats.nbinom.mean(1 / np.exp(p["la"]), 1 / (1 + np.exp(p["la"]) * np.exp(_eta(p, x)))),
    ),
    "gamma": Case(
        "y ~ gamma(shape = exp(k), scale = exp(a + b*x))",
        lambda r, n: r.gamma(2.0, 1.5, n),
        lambda r: dict(k=r.uniform(-1, 1.5), a=r.normal(), b=r.normal()),
        lambda y, x, size, p: stats.gamma.logpdf(y, np.exp(p["k"]), scale=np.exp(_eta(p, x))),
        lambda x, size, p: stats.gamma.mean(np.exp(p["k"]), scale=np.exp(_eta(p, x))),
    ),
    "weibull": Case(
        "y ~ weibull(shape = exp(k), scale = exp(a + b*x))",
        lambda r, n: r.weibull(1.5, n) * 2,
        lambda r: dict(k=r.uniform(-1, 1), a=r.normal(), b=r.normal()),
        lambda y, x, size, p: stats.weibull_min.logpdf(y, np.exp(p["k"]), scale=np.exp(_eta(p, x))),
        lambda x, size, p: stats.weibull_min.mean(np.exp(p["k"]), scale=np.exp(_eta(p, x))),
    ),
    "exponential": Case(
        "y ~ exponential(rate = exp(a + b*x))",
        lambda r, n: r.exponential(1.0, n),
        lambda r: dict(a=r.normal(), b=r.normal()),
        lambda y, x, size, p: stats.expon.logpdf(y, scale=1 / np.exp(_eta(p, x))),
        lambda x, size, p: stats.expon.mean(scale=1 / np.exp(_eta(p, x))),
    ),
    "lognormal": Case(
        "y ~ lognormal(meanlog = a + b*x, sdlog = exp(s))",
        lambda r, n: r.lognormal(0.0, 1.0, n),
        lambda r: dict(a=r.normal(), b=r.normal(), s=r.uniform(-1, 1)),
        lambda y, x, size, p: stats.lognorm.logpdf(y, np.exp(p["s"]), scale=np.exp(_eta(p, x))),
        lambda x, size, p: stats.lognorm.mean(np.exp(p["s"]), scale=np.exp(_eta(p, x))),
    ),
    "beta": Case(
        "y ~ beta(a = exp(c + d*x), b = exp(e))",
        lambda r, n: r.beta(2.0, 3.0, n),
        lambda r: dict(c=r.uniform(-1, 1), d=r.normal(), e=r.uniform(-1, 1)),
        lambda y, x, size, p: stats.beta.logpdf(y, np.exp(_eta(p, x, "c", "d")), np.exp(p["e"])),
        lambda x, size, p: stats.beta.mean(np.exp(_eta(p, x, "c", "d")), np.exp(p["e"])),
    ),
    "student_t": Case(
        "y ~ student_t(df = exp(ld), loc = a + b*x, scale = exp(s))",
        lambda r, n: r.standard_t(4.0, n),
        lambda r: dict(ld=r.uniform(0.5, 2.5), a=r.normal(), b=r.normal(), s=r.uniform(-1, 1)),
        lambda y, x, size, p: stats.t.logpdf(y, np.exp(p["ld"]), _eta(p, x), np.exp(p["s"])),
        lambda x, size, p: stats.t.mean(np.exp(p["ld"]), _eta(p, x), np.exp(p["s"])),
    ),
}


def test_every_distribution_has_a_case():
    assert {name.split("_raw")[0].split("_identity")[0] for name in CASES} == set(DISTRIBUTIONS)


def setup(name: str, seed: int, n: int = N_ROWS):
    """The compiled model, its D, the columns, and three parameter points."""
    case = CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    size = rng.integers(1, 12, n).astype(float)
    y = rng.binomial(size.astype(int), 0.4).astype(float) if case.draw_y is None else case.draw_y(rng, n)
    if name == "normal_raw_sd":
        x = np.abs(x)
    columns = {"y": y, "x": x, "n": size}
    m = compile_model(case.text, columns=list(columns))
    D = np.column_stack([columns[c] for c in m.data_columns])
    points = [case.params(rng) for _ in range(3)]
    return case, m, D, x, y, size, points


def vector(m, p: dict) -> np.ndarray:
    return np.array([p[name] for name in m.param_names])


@pytest.mark.parametrize("name", sorted(CASES))
def test_per_row_nll_equals_scipy_log_density(name):
    case, m, D, x, y, size, points = setup(name, seed=1)
    for p in points:
        np.testing.assert_allclose(m.nll_rows(vector(m, p), D), -case.logpdf(y, x, size, p), rtol=1e-12, atol=1e-13)


def central_gradient(f, p, h=1e-5):
    g = np.empty_like(p)
    for i in range(p.size):
        e = np.zeros_like(p)
        e[i] = h * max(1.0, abs(p[i]))
        g[i] = (f(p + e) - f(p - e)) / (2 * e[i])
    return g


def central_jacobian(f, p, h=1e-5):
    cols = []
    for i in range(p.size):
        e = np.zeros_like(p)
        e[i] = h * max(1.0, abs(p[i]))
        cols.append((f(p + e) - f(p - e)) / (2 * e[i]))
    return np.column_stack(cols)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_and_hessian_equal_central_differences(name):
    case, m, D, x, y, size, points = setup(name, seed=2)
    assert m.symbolic
    w = np.random.default_rng(0).integers(0, 4, D.shape[0]).astype(float)
    for p in points:
        theta = vector(m, p)
        for weights in (None, w):
            nll, grad, hess = m.evaluate(theta, D, weights)
            rows = -case.logpdf(y, x, size, p)
            np.testing.assert_allclose(nll, rows.sum() if weights is None else weights @ rows, rtol=1e-12)
            fd_grad = central_gradient(lambda t: m.evaluate(t, D, weights, order=0)[0], theta)
            fd_hess = central_jacobian(lambda t: m.evaluate(t, D, weights, order=1)[1], theta)
            scale = max(1.0, np.abs(grad).max())
            np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-7 * scale)
            np.testing.assert_allclose(hess, fd_hess, rtol=1e-6, atol=1e-7 * max(1.0, np.abs(hess).max()))
            np.testing.assert_array_equal(hess, hess.T)
            # lower orders give the same sums
            nll1, grad1, hess1 = m.evaluate(theta, D, weights, order=1)
            assert hess1 is None and nll1 == pytest.approx(nll, rel=1e-14)
            np.testing.assert_allclose(grad1, grad, rtol=1e-13)


@pytest.mark.parametrize("name", sorted(CASES))
def test_scores_are_per_row_gradients(name):
    case, m, D, x, y, size, points = setup(name, seed=3)
    theta = vector(m, points[0])
    S = m.scores(theta, D)
    assert S.shape == (D.shape[0], m.n_params)
    for i in (0, D.shape[0] - 1):
        fd = central_gradient(lambda t: m.nll_rows(t, D[i:i + 1])[0], theta)
        np.testing.assert_allclose(S[i], fd, rtol=1e-6, atol=1e-8)
    w = np.arange(D.shape[0], dtype=float)
    np.testing.assert_allclose(w @ S, m.evaluate(theta, D, w, order=1)[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_derivatives_agrees(name):
    case, m, D, x, y, size, points = setup(name, seed=4)
    check = m.check_derivatives(vector(m, points[1]), D)
    assert check.passed(1e-6), (check.grad_error, check.hess_error)


def test_check_derivatives_catches_a_wrong_hessian(monkeypatch):
    case, m, D, x, y, size, points = setup("poisson", seed=5)
    theta = vector(m, points[0])
    right = m.evaluate

    def wrong(params, D, weights=None, order=2):
        nll, g, H = right(params, D, weights, order)
        return nll, g, None if H is None else H * 1.01

    monkeypatch.setattr(m, "evaluate", wrong)
    check = m.check_derivatives(theta, D)
    assert check.grad_error < 1e-6 and check.hess_error > 1e-3 and not check.passed()


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.mean is not None))
def test_mean_equals_scipy_mean(name):
    case, m, D, x, y, size, points = setup(name, seed=6)
    for p in points:
        want = np.broadcast_to(case.mean(x, size, p), (D.shape[0],))
        np.testing.assert_allclose(m.mean(vector(m, p), D), want, rtol=1e-12)
        np.testing.assert_allclose(m.mean(vector(m, p), D[:, 1:]), want, rtol=1e-12)  # covariates only


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.mean is not None and n != "student_t"))
def test_draws_have_the_model_mean_and_support(name):
    case, m, D, x, y, size, points = setup(name, seed=7, n=40_000)
    theta = vector(m, points[0])
    draws = m.simulate(theta, D[:, 1:], np.random.default_rng(8))
    assert draws.shape == (D.shape[0],) and draws.dtype == np.float64
    mean = m.mean(theta, D)
    # The average of (draw - mean) / sd over 40,000 rows is N(0, 1/40,000): 5 SE is 0.025.
    sd = np.sqrt(np.mean((draws - mean) ** 2))
    assert abs(np.mean(draws - mean)) < 0.025 * sd, name
    if name == "beta":  # a draw of beta(a, b) with a tiny a can underflow to exactly 0
        assert ((draws >= 0) & (draws < 1)).all()
    else:
        m.check_data(np.column_stack([draws, D[:, 1:]]))  # inside the support


def test_simulate_refuses_arguments_outside_their_domain():
    m = compile_model("y ~ normal(mean = a + b*x, sd = s)", columns=["y", "x"])
    with pytest.raises(UsageError, match=r"'sd' of normal must be positive.*-0.5 in data row 1"):
        m.simulate([0.0, 1.0, -0.5], np.array([[1.0], [2.0]]), np.random.default_rng(0))
    m = compile_model(nll="(y - a)**2", columns=["y"])
    with pytest.raises(UsageError, match="no distribution"):
        m.simulate([0.0], np.array([[1.0]]), np.random.default_rng(0))
    with pytest.raises(UsageError, match="no distribution"):
        m.mean([0.0], np.array([[1.0]]))


@pytest.mark.parametrize(
    "text, y, words",
    [
        ("y ~ poisson(rate = exp(a))", [0.0, 2.5], ["counts", "data row 2", "2.5"]),
        ("y ~ bernoulli(prob = sigmoid(a))", [1.0, 2.0], ["0 or 1", "data row 2"]),
        ("y ~ gamma(shape = k, scale = s)", [1.0, 0.0], ["positive", "data row 2"]),
        ("y ~ beta(a = p, b = q)", [0.5, 1.0], ["strictly between 0 and 1", "data row 2"]),
        ("y ~ normal(mean = a, sd = s)", [np.nan, 1.0], ["column 'y'", "data row 1"]),
    ],
)
def test_check_data_names_the_first_bad_row(text, y, words):
    m = compile_model(text, columns=["y"])
    with pytest.raises(DataError) as info:
        m.check_data(np.array(y)[:, None])
    for word in words:
        assert word in str(info.value).replace("whole number 0 or more", "counts"), str(info.value)


def test_check_data_binomial_target_at_most_size():
    m = compile_model("y ~ binomial(size = n, prob = q)", columns=["y", "n"])
    m.check_data(np.array([[3.0, 5.0], [5.0, 5.0]]))
    with pytest.raises(DataError, match="at most size; data row 2 has 6 out of 5"):
        m.check_data(np.array([[3.0, 5.0], [6.0, 5.0]]))


def test_blocks_give_the_same_sums_as_one_pass(monkeypatch):
    import mlefit.textmodel.compiled as compiled

    case, m, D, x, y, size, points = setup("negbin", seed=9, n=1000)
    theta = vector(m, points[0])
    whole = m.evaluate(theta, D)
    monkeypatch.setattr(compiled, "BLOCK_ROWS", 64)
    blocked = m.evaluate(theta, D)
    for a, b in zip(whole, blocked):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(m.scores(theta, D).sum(axis=0), whole[1], rtol=1e-10)
    np.testing.assert_allclose(m.nll_rows(theta, D).sum(), whole[0], rtol=1e-12)


def test_rows_of_weight_zero_do_not_count_even_when_not_finite():
    m = compile_model("y ~ poisson(rate = exp(a + b*x))", columns=["y", "x"])
    D = np.array([[1.0, 0.5], [2.0, -0.3], [np.nan, 1.0], [3.0, 0.1]])
    w = np.array([1.0, 2.0, 0.0, 1.0])
    got = m.evaluate([0.2, 0.4], D, w)
    want = m.evaluate([0.2, 0.4], np.repeat(D[[0, 1, 1, 3]], 1, axis=0))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_check_derivatives_uses_a_subset_of_many_rows():
    case, m, D, x, y, size, points = setup("gamma", seed=10, n=5000)
    theta = vector(m, points[0])
    full = m.check_derivatives(theta, D, max_rows=None)
    part = m.check_derivatives(theta, D, max_rows=500)
    assert full.passed(1e-6) and part.passed(1e-6)
    assert not np.allclose(full.grad, part.grad)  # a different sum: fewer rows
