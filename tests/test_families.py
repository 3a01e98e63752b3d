"""One suite over the family registry: the maths of each family against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

from mlefit import numdiff
from mlefit.errors import FamilyError
from mlefit.families import FAMILIES, FAMILY_NAMES, get_family
from mlefit.simulate import censoring_limits

N_CLASSES = 4
#: Every family with its default options, and the other links of those that have a choice.
VARIANTS = [(name, {}) for name in FAMILY_NAMES] + [
    ("bernoulli", {"link": "probit"}), ("bernoulli", {"link": "cloglog"}), ("ordinal", {"link": "probit"}),
]
VARIANT_IDS = [name + "".join(f"-{v}" for v in options.values()) for name, options in VARIANTS]


def make_problem(name: str, rng: np.random.Generator, n: int = 60, p: int = 3, scale: float = 1.0, **options):
    """Random design (intercept + p features; the features alone for a family without an intercept
    column), parameters and an encoded y for a family."""
    fam = get_family(name, **options)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, p))])
    if not fam.intercept_column:
        X = X[:, 1:]
    k = fam.n_params(X.shape[1], N_CLASSES)
    params = scale * rng.standard_normal(k)
    if fam.ancillary:  # sigma, alpha, shape: 0.7
        params[-len(fam.ancillary):] = np.log(0.7)
    y = fam.simulate(params, X, rng)
    if fam.censored:  # survival times: about 30% of the rows right-censored
        y = fam.censor(y, censoring_limits(y, 0.3, rng))
    return fam, X, y, params


def log_density(name: str, params: np.ndarray, X: np.ndarray, y: np.ndarray, link: str = "logit") -> np.ndarray:
    """Per-row log-density from scipy.stats, independent of the families' code."""
    if name == "bernoulli":
        eta = X @ params
        p = {"logit": st.logistic.cdf, "probit": st.norm.cdf, "cloglog": st.gumbel_l.cdf}[link](eta)
        return st.bernoulli.logpmf(y, p)
    if name == "ordinal":
        # K - 1 cutpoints after the coefficients, the first and the logs of the gaps
        p = X.shape[1]
        cut = params[p] + np.concatenate([[0.0], np.cumsum(np.exp(params[p + 1:]))])
        F = st.logistic.cdf if link == "logit" else st.norm.cdf
        bounds = np.concatenate([[-np.inf], cut, [np.inf]])
        eta = X @ params[:p]
        return np.log(F(bounds[y + 1] - eta) - F(bounds[y] - eta))
    if name == "categorical":
        B = np.vstack([np.zeros(X.shape[1]), params.reshape(-1, X.shape[1])])
        eta = X @ B.T
        P = np.exp(eta - eta.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        onehot = np.eye(P.shape[1])[y]
        return np.array([st.multinomial.logpmf(o, 1, pr) for o, pr in zip(onehot, P)])
    if name == "gaussian":
        return st.norm.logpdf(y, loc=X @ params[:-1], scale=np.exp(params[-1]))
    if name == "poisson":
        return st.poisson.logpmf(y, np.exp(X @ params))
    if name == "negbin":
        alpha, mu = np.exp(params[-1]), np.exp(X @ params[:-1])
        return st.nbinom.logpmf(y, 1 / alpha, 1 / (1 + alpha * mu))
    if name == "gamma":
        shape, mu = np.exp(params[-1]), np.exp(X @ params[:-1])
        return st.gamma.logpdf(y, shape, scale=mu / shape)
    if name in ("weibull", "exponential", "lognormal", "loglogistic"):
        # the time's log-density for an event, its log-survival function for a censored row
        t, event = np.abs(y), y > 0
        if name == "weibull":
            dist = st.weibull_min(1 / np.exp(params[-1]), scale=np.exp(X @ params[:-1]))
        elif name == "exponential":
            dist = st.expon(scale=np.exp(X @ params))
        elif name == "loglogistic":
            dist = st.fisk(1 / np.exp(params[-1]), scale=np.exp(X @ params[:-1]))
        else:
            dist = st.lognorm(np.exp(params[-1]), scale=np.exp(X @ params[:-1]))
        return np.where(event, dist.logpdf(t), dist.logsf(t))
    raise AssertionError(name)


def test_registry_lists_every_family():
    assert set(FAMILY_NAMES) == {
        "bernoulli", "categorical", "gaussian", "poisson", "negbin", "gamma", "weibull", "exponential", "lognormal",
        "loglogistic", "ordinal",
    }
    for name, cls in FAMILIES.items():
        assert cls.name == name
        assert get_family(name).name == name


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
def test_nll_matches_scipy_stats_log_density(name, options, rng):
    fam, X, y, params = make_problem(name, rng, **options)
    expected = -log_density(name, params, X, y, **options).sum()
    assert fam.nll(params, X, y) == pytest.approx(expected, rel=1e-12)
    if fam.censored:  # both kinds of row are tested
        assert 0 < np.count_nonzero(y < 0) < len(y)


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_gradient_and_hessian_match_finite_differences(name, options, scale, rng):
    fam, X, y, params = make_problem(name, rng, scale=scale, **options)
    params = params + 0.3 * rng.standard_normal(params.size)  # away from the truth
    f = lambda b: fam.nll(b, X, y)  # noqa: E731
    g = fam.grad(params, X, y)
    H = fam.hess(params, X, y)
    np.testing.assert_allclose(g, numdiff.gradient(f, params), rtol=1e-6, atol=1e-6 * max(1, abs(f(params))) * 1e-2)
    np.testing.assert_allclose(H, numdiff.jacobian(lambda b: fam.grad(b, X, y), params), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(H, numdiff.hessian(f, params), rtol=1e-4, atol=1e-4 * np.abs(H).max())


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
def test_weights_equal_repeated_rows(name, options, rng):
    fam, X, y, params = make_problem(name, rng, n=30, **options)
    w = rng.integers(1, 4, size=len(y)).astype(float)
    Xr, yr = np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int))
    a = fam.evaluate(params, X, y, w)
    b = fam.evaluate(params, Xr, yr)
    assert a.nll == pytest.approx(b.nll, rel=1e-12)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.hess, b.hess, rtol=1e-10, atol=1e-10)
    assert a.weight == b.weight == w.sum()


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
def test_block_sums_add_up_over_row_blocks(name, options, rng):
    fam, X, y, params = make_problem(name, rng, n=50, **options)
    whole = fam.evaluate(params, X, y)
    parts = fam.evaluate(params, X[:17], y[:17]) + fam.evaluate(params, X[17:], y[17:])
    assert parts.nll == pytest.approx(whole.nll, rel=1e-13)
    np.testing.assert_allclose(parts.grad, whole.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(parts.hess, whole.hess, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
def test_hessian_symmetric_and_psd_for_convex_families(name, options, rng):
    fam, X, y, params = make_problem(name, rng, scale=2.0, **options)
    H = fam.hess(params, X, y)
    np.testing.assert_array_equal(H, H.T)
    if fam.convex:
        assert np.linalg.eigvalsh(H).min() >= -1e-10 * np.abs(H).max()


@pytest.mark.parametrize("name", ["bernoulli", "categorical"])
@pytest.mark.parametrize("big", [1000.0, -1000.0])
def test_exact_at_extreme_linear_predictors(name, big, rng):
    """eta = +-1000: no overflow, no log(0); NLL, gradient and Hessian finite and exact."""
    fam = get_family(name)
    n = 8
    X = np.column_stack([np.ones(n), np.linspace(-1, 1, n)])
    if name == "bernoulli":
        params = np.array([big, 0.0])
        y = np.array([0, 1] * (n // 2), dtype=float)
        # rows with y != (eta > 0) cost |eta| each; the others cost log1p(exp(-1000)) = 0
        expected = (n // 2) * abs(big)
    else:
        params = np.array([big, 0.0, 0.0, 0.0])  # class 1 at eta = big, class 2 at 0, reference 0
        y = np.array([0, 1, 2, 1, 0, 2, 1, 1], dtype=np.intp)
        lse = max(big, 0.0)
        eta_rows = np.where(y == 1, big, 0.0)
        expected = float(np.sum(lse - eta_rows)) + (0.0 if big > 0 else n * np.log(2.0))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = fam.evaluate(params, X, y)
    assert np.isfinite(s.nll) and np.all(np.isfinite(s.grad)) and np.all(np.isfinite(s.hess))
    assert s.nll == pytest.approx(expected, rel=1e-12)
    # the derivatives at extreme eta still equal finite differences of the exact NLL
    f = lambda b: fam.nll(b, X, y)  # noqa: E731
    np.testing.assert_allclose(s.grad, numdiff.gradient(f, params), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.hess, numdiff.jacobian(lambda b: fam.grad(b, X, y), params), atol=1e-6)


def test_gaussian_extreme_mean_is_finite():
    fam = get_family("gaussian")
    X = np.column_stack([np.ones(4), np.arange(4.0)])
    y = np.array([0.0, 1.0, 0.5, 2.0])
    s = fam.evaluate(np.array([1000.0, -1000.0, 0.0]), X, y)
    assert np.isfinite(s.nll) and np.all(np.isfinite(s.hess))


# -- the knowledge card's numbers, through the library's own loss functions ---------------------


def test_knowledge_card_binary_cross_entropy():
    fam = get_family("bernoulli")
    y = np.array([1, 0, 1, 1, 0], dtype=float)
    logits = np.array([2.0, -1.0, 1.5, 0.5, -2.0])
    # with X = I, the linear predictor equals the parameter vector
    bce = fam.nll(logits, np.eye(5), y) / len(y)
    assert round(bce, 4) == 0.2485
    p = 1 / (1 + np.exp(-logits))
    assert bce == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-14)


def test_knowledge_card_cross_entropy_and_softmax_gradient():
    fam = get_family("categorical")
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.0, 1.0]])
    targets = np.array([0, 1])
    # class 0 is the reference: shift each row so its first logit is 0 (softmax is unchanged)
    shifted = logits - logits[:, :1]
    X = np.eye(2)
    params = shifted[:, 1:].T.ravel()  # class-major: class 1 for both rows, then class 2
    ce = fam.nll(params, X, targets) / 2
    assert round(ce, 4) == 0.4407
    # gradient identity: d CE / d logits = softmax(logits) - onehot(targets)
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = (P - np.eye(3)[targets])[:, 1:]  # free classes only
    np.testing.assert_allclose(fam.grad(params, X, targets), expected.T.ravel(), rtol=1e-12)


def test_knowledge_card_gaussian_nll_is_scaled_sse_plus_constant():
    fam = get_family("gaussian")
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.1, 2.2, 2.8])
    X = x[:, None]
    for sigma in (1.0, 0.3, 2.5):
        nll = fam.nll(np.array([1.0, np.log(sigma)]), X, y)
        sse = np.sum((y - x) ** 2)
        assert nll - sse / (2 * sigma**2) == pytest.approx(len(y) / 2 * np.log(2 * np.pi * sigma**2), rel=1e-13)
    # the card's number: sigma = 1
    assert round(fam.nll(np.array([1.0, 0.0]), X, y), 4) == round(-st.norm.logpdf(y, x, 1.0).sum(), 4)


def test_logistic_gradient_is_xt_sigmoid_minus_y(rng):
    fam = get_family("bernoulli")
    X = rng.standard_normal((40, 3))
    w = rng.standard_normal(3)
    y = (rng.random(40) < 0.5).astype(float)
    np.testing.assert_allclose(fam.grad(w, X, y), X.T @ (1 / (1 + np.exp(-X @ w)) - y), rtol=1e-12)


# -- labels ------------------------------------------------------------------------------------


def test_bernoulli_label_encoding():
    fam = get_family("bernoulli")
    t = fam.encode_target(np.array(["no", "yes", "yes"], dtype=object), "admit")
    assert list(t.y) == [0.0, 1.0, 1.0] and t.levels == ("no", "yes") and "'yes' is 1" in t.note
    t = fam.encode_target(np.array([True, False]))
    assert list(t.y) == [1.0, 0.0] and t.note is None
    t = fam.encode_target(np.array([0, 1, 1]))
    assert t.note is None
    t = fam.encode_target(np.array([2, 1, 2]))
    assert list(t.y) == [1.0, 0.0, 1.0] and "'2' is 1" in t.note


@pytest.mark.parametrize(
    "values, fragment",
    [
        (np.array([1, 1, 1]), "1 distinct value"),
        (np.array(["a", "b", "c"], dtype=object), "3 distinct values"),
    ],
)
def test_bernoulli_rejects_bad_labels(values, fragment):
    with pytest.raises(FamilyError, match=fragment.replace("values", r"value\(s\)")):
        get_family("bernoulli").encode_target(values, "y")


def test_categorical_labels_and_reference_class():
    fam = get_family("categorical")
    t = fam.encode_target(np.array(["walk", "bike", "car", "bike"], dtype=object), "mode")
    assert t.levels == ("bike", "car", "walk")
    assert list(t.y) == [2, 0, 1, 0]
    assert "'bike'" in t.note
    with pytest.raises(FamilyError, match="single class"):
        fam.encode_target(np.array(["a", "a"], dtype=object), "mode")


def test_gaussian_rejects_text_target():
    with pytest.raises(FamilyError, match="not numeric"):
        get_family("gaussian").encode_target(np.array(["a", "b"], dtype=object), "price")


def test_mixed_label_types_are_rejected():
    with pytest.raises(FamilyError, match="mixes numbers and text"):
        get_family("categorical").encode_target(np.array([1, "a", 2.5], dtype=object), "y")


# -- large-n recovery ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, options", VARIANTS, ids=VARIANT_IDS)
def test_large_sample_recovers_truth(name, options):
    import mlefit

    rng = np.random.default_rng(7)
    fam = get_family(name, **options)
    n = 20000
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 2))])
    truth = np.array([0.5, 1.0, -1.5] * fam.n_coef_rows(N_CLASSES))
    if not fam.intercept_column:  # cutpoints -1, 0, 1 (the first, then the logs of the gaps) instead
        X, truth = X[:, 1:], np.array([1.0, -1.5, -1.0, 0.0, 0.0])
    truth = np.append(truth, np.log(2.0) * np.ones(len(fam.ancillary)))
    y = fam.simulate(truth, X, rng)
    res = mlefit.fit(X=X[:, 1:] if fam.intercept_column else X, y=y, family=name, **options)
    natural = fam.natural(truth, np.eye(len(truth)), N_CLASSES)[0]
    assert res.converged
    assert np.all(np.abs(res.params - natural) < 4 * res.se)
