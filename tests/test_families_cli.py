"""`mlefit families`: every family with every field, and its statements checked against the code."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.metrics import log_loss

import mlefit
from mlefit.families import FAMILY_NAMES, get_family

FIELDS = ("name", "description", "distribution", "link", "parameters", "nll", "loss", "gradient")
FULL_FIELDS = FIELDS + ("y", "hessian", "convex", "doc")


def families_json(invoke, *args, expect: int = 0):
    result = invoke("families", *args, "--format", "json")
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout)


def test_list_has_every_registry_family_with_every_field(invoke):
    entries = families_json(invoke)
    assert [e["name"] for e in entries] == list(FAMILY_NAMES)
    for entry in entries:
        assert tuple(entry) == FIELDS
        assert all(isinstance(entry[k], str) and entry[k].strip() for k in FIELDS), entry


def test_text_list_shows_a_line_per_family(invoke):
    result = invoke("families")
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    for line, name in zip(lines, FAMILY_NAMES):
        assert line.split(maxsplit=1) == [name, get_family(name).description]
    assert lines[len(FAMILY_NAMES)] == "" and "mlefit families NAME" in lines[-1]


def test_one_family_in_full_shows_every_field(invoke):
    fam = get_family("gaussian")
    lines = invoke("families", "gaussian").stdout.splitlines()
    assert lines[0] == f"gaussian: {fam.description}"
    labels = [line.split()[0] for line in lines[1:9]]
    assert labels == ["distribution", "link", "parameters", "NLL", "loss", "gradient", "target", "Hessian"]
    assert f"  gradient      {fam.grad_formula}" in lines


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_one_family_in_full(name, invoke):
    [entry] = families_json(invoke, name.upper())  # names are not case-sensitive
    assert tuple(entry) == FULL_FIELDS
    fam = get_family(name)
    assert entry["doc"] == inspect.cleandoc(type(fam).__doc__)
    assert entry["convex"] is fam.convex
    text = invoke("families", name).stdout
    assert "Hessian" in text and "Notes" in text and fam.hess_formula in text


def test_unknown_family_is_a_usage_error(invoke):
    result = invoke("families", "binomial")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "Error: unknown family 'binomial'. Choose one of: bernoulli, categorical, gaussian, poisson, negbin, gamma, "
        "weibull, exponential, lognormal, loglogistic, ordinal."
    )


# -- the statements are true of the code ----------------------------------------------------------


@pytest.fixture
def design(rng):
    X = np.column_stack([np.ones(300), rng.standard_normal((300, 2))])
    return X


LOSSES = {
    "bernoulli": "binary cross-entropy", "categorical": "cross-entropy", "gaussian": "MSE up to scale and constant",
    "poisson": "half the Poisson deviance", "negbin": "the negative binomial (NB2) NLL",
    "gamma": "k times half the gamma deviance", "weibull": "the censored Weibull NLL",
    "exponential": "the censored exponential NLL", "lognormal": "the censored log-normal NLL",
    "loglogistic": "the censored log-logistic NLL",
    "ordinal": "cross-entropy",
}
#: The loss's short name in the one-line description, and its statement in the docstring.
SHORT = {"gaussian": ("MSE", "squared error"), "poisson": ("Poisson", "Poisson deviance"),
         "negbin": ("negative binomial", "NB2"), "gamma": ("gamma", "Gamma distribution"),
         "weibull": ("Weibull", "Weibull survival times"), "exponential": ("exponential", "Exponential survival times"),
         "lognormal": ("log-normal", "Log-normal survival times"),
         "loglogistic": ("log-logistic", "Log-logistic survival times")}


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_loss_is_named_in_the_listing_and_the_docstring(name):
    fam = get_family(name)
    entry = fam.describe()
    assert entry["loss"].startswith(LOSSES[name])
    short, doc = SHORT.get(name, (LOSSES[name], LOSSES[name]))
    assert short.lower() in fam.description.lower()
    assert doc in " ".join(fam.__doc__.split())


def test_bernoulli_statements(design, rng):
    fam = get_family("bernoulli")
    w = np.array([0.2, -1.0, 0.5])
    y = fam.simulate(w, design, rng)
    p = expit(design @ w)
    # NLL = n * mean binary cross-entropy (log loss)
    assert fam.nll(w, design, y) == pytest.approx(len(y) * log_loss(y, p), rel=1e-12)
    # gradient X^T (sigmoid(Xw) - y); Hessian X^T diag(p (1 - p)) X
    np.testing.assert_allclose(fam.grad(w, design, y), design.T @ (p - y), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fam.hess(w, design, y), design.T @ ((p * (1 - p))[:, None] * design), rtol=1e-12)
    # the prediction is P(y = 1) = sigmoid(x'w)
    np.testing.assert_allclose(fam.predict(w, design), p, rtol=1e-15)


def test_categorical_statements(design, rng):
    fam = get_family("categorical")
    W = np.array([[0.3, 1.0, -0.5], [-0.2, 0.4, 0.9]])  # non-reference classes, class-major
    params = W.ravel()
    y = fam.simulate(params, design, rng)
    eta = np.column_stack([np.zeros(len(y)), design @ W.T])  # reference class fixed at 0
    P = softmax(eta, axis=1)
    assert fam.nll(params, design, y) == pytest.approx(len(y) * log_loss(y, P, labels=[0, 1, 2]), rel=1e-12)
    onehot = np.eye(3)[y]
    expected = (design.T @ (P - onehot))[:, 1:].T.ravel()  # X^T (softmax(XW) - onehot(y)), non-reference
    np.testing.assert_allclose(fam.grad(params, design, y), expected, rtol=1e-12, atol=1e-12)
    H = fam.hess(params, design, y)
    for j in range(2):
        for k in range(2):
            w_jk = P[:, j + 1] * ((j == k) - P[:, k + 1])
            block = design.T @ (w_jk[:, None] * design)
            np.testing.assert_allclose(H[3 * j:3 * j + 3, 3 * k:3 * k + 3], block, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fam.predict(params, design), P, rtol=1e-14)
    # the link: log(p_k / p_0) = x'w_k
    np.testing.assert_allclose(np.log(P[:, 1:] / P[:, :1]), design @ W.T, rtol=1e-10, atol=1e-12)


def test_gaussian_statements(design, rng):
    fam = get_family("gaussian")
    b, sigma = np.array([1.0, 2.0, -0.5]), 0.7
    params = np.append(b, math.log(sigma))
    y = fam.simulate(params, design, rng)
    n = len(y)
    resid = y - design @ b
    mse, rss = np.mean(resid**2), resid @ resid
    # NLL = n MSE / (2 sigma^2) + n log(sigma) + (n/2) log(2 pi)
    expected = n * mse / (2 * sigma**2) + n * math.log(sigma) + n / 2 * math.log(2 * math.pi)
    assert fam.nll(params, design, y) == pytest.approx(expected, rel=1e-12)
    g = fam.grad(params, design, y)
    np.testing.assert_allclose(g[:-1], -design.T @ resid / sigma**2, rtol=1e-12)
    assert g[-1] == pytest.approx(n - rss / sigma**2, rel=1e-12)
    H = fam.hess(params, design, y)
    np.testing.assert_allclose(H[:-1, :-1], design.T @ design / sigma**2, rtol=1e-12)
    np.testing.assert_allclose(H[:-1, -1], 2 * design.T @ resid / sigma**2, rtol=1e-12)
    assert H[-1, -1] == pytest.approx(2 * rss / sigma**2, rel=1e-12)
    # the b minimising the NLL minimise the MSE: the fit's coefficients are least squares
    res = mlefit.fit(X=design[:, 1:], y=y, family="gaussian")
    np.testing.assert_allclose(res.params[:-1], np.linalg.lstsq(design, y, rcond=None)[0], rtol=1e-10)
    np.testing.assert_allclose(fam.predict(np.append(b, sigma), design), design @ b, rtol=1e-15)
