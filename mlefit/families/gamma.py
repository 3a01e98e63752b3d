"""Gamma family: regression for positive, right-skewed data, the shape estimated."""

from __future__ import annotations

import numpy as np

from .. import linalg
from ..errors import FamilyError
from .base import BlockSums, Family, Target, data_row, gram, label_text, numeric_target, total_weight, weighted_sum


class Gamma(Family):
    r"""Gamma distribution with the log link, its shape estimated by maximum likelihood.

    Domain of y: positive numbers (zero, a negative or a non-numeric value is an error naming its
    data row).
    Link: ``mu = exp(eta)``, ``eta = X @ b`` (plus the offset); ``y ~ Gamma(shape k, scale mu / k)``,
    so ``E(y) = mu`` and ``Var(y) = mu^2 / k``.
    Per-row NLL: ``lgamma(k) - k log(k) + k eta + k y / mu - (k - 1) log(y)``.
    The optimiser works on ``t = log(k)``; results report ``shape`` = k. Derivatives (``z = y / mu``):
    ``d/d eta = k (1 - z)``, ``d/dt = k [digamma(k) - log(k) + z - 1 - log(z)]``;
    ``d2/d eta2 = k z``, ``d2/d eta dt = k (1 - z)``, ``d2/dt2 = d/dt + k (k trigamma(k) - 1)``.

    GLM tools (statsmodels' GLM Gamma, R's glm) give the same coefficients but estimate the
    dispersion ``1 / k`` by the Pearson statistic ``sum (y - mu)^2 / mu^2 / (n - p)``, not by maximum
    likelihood, and scale their standard errors by it; mlefit estimates k jointly with the
    coefficients, so its standard errors are those of the full likelihood.

    The NLL is convex in b at a fixed shape (``d2/d eta2 = k y / mu > 0``), not jointly in b and
    log(k): Newton steps are damped by a line search, and the Hessian at the optimum is checked to
    be positive definite.
    """

    name = "gamma"
    description = "gamma regression for positive skewed data: log link, shape estimated"
    distribution = "Gamma(shape k, scale mu / k), mu = exp(x'b): mean mu, variance mu^2 / k"
    link = "log: log(mu) = x'b (+ offset)"
    loss_name = "gamma NLL"
    loss_statement = (
        "k times half the gamma deviance plus terms in k and y: NLL = k sum_i [y_i / mu_i - log(y_i / mu_i) - 1] "
        "+ sum_i [lgamma(k) - k log(k) + k + k log(y_i) - (k - 1) log(y_i)]"
    )
    nll_formula = "sum_i [lgamma(k) - k log(k) + k x_i'b + k y_i exp(-x_i'b) - (k - 1) log(y_i)]"
    grad_formula = "b: k X^T (1 - y / mu);  log(k): sum_i k [digamma(k) - log(k) + y_i/mu_i - 1 - log(y_i/mu_i)]"
    hess_formula = (
        "b, b: k X^T diag(y_i / mu_i) X;  b, log(k): k X^T (1 - y / mu);  "
        "log(k), log(k): d/dlog(k) + n k (k trigamma(k) - 1)"
    )
    parameters = (
        "b: one coefficient per column of X (the intercept first, when present); exp(b) multiplies the mean; "
        "shape k > 0, optimised as log(k) and reported as shape (Var = mu^2 / shape)"
    )
    y_domain = "positive numbers"
    convex = False
    log_link = True
    ancillary = ("shape",)
    ancillary_defaults = {"shape": 2.0}
    penalty_statement = "NLL + (l2/2) ||b||^2, intercept and shape not penalised"

    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
        return Target(positive_target(values, column, rows, self.name))

    def check_y(self, y: np.ndarray) -> None:
        if not np.all(y > 0):
            raise FamilyError("gamma targets must be positive numbers.")

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients (with an intercept, the log of the mean rate) and the shape of the
        moments, ``mean^2 / variance`` of ``y / exp(offset)``, clipped to [1e-2, 1e4]."""
        coef = np.zeros(X.shape[1])
        rate = y if offset is None else y * np.exp(-offset)
        mean = float(np.average(rate, weights=weights))
        if intercept:
            coef[0] = np.log(mean)
        var = float(np.average((rate - mean) ** 2, weights=weights))
        shape = mean**2 / var if var > 0 else 1.0
        return np.append(coef, np.log(np.clip(shape, 1e-2, 1e4)))

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        from scipy.special import digamma, gammaln, polygamma

        coef, t = params[:-1], float(params[-1])
        eta = linalg.dot(X, coef) if precise else np.dot(X, coef)
        if offset is not None:
            eta = eta + offset
        weight = total_weight(len(y), weights)
        with np.errstate(over="ignore", invalid="ignore"):  # a trial point far out: an infinite NLL
            k = np.exp(t)
            z = y * np.exp(-eta)  # y / mu
            log_y = np.log(y)
            loss = k * (eta + z) - (k - 1.0) * log_y
            nll = weighted_sum(loss, weights) + weight * float(gammaln(k) - k * t)
            if order == 0:
                return BlockSums(nll, weight=weight)
            d = k * (1.0 - z)  # d/d eta
            gt_rows = _excess(z, log_y, eta)  # d/dt, less k (digamma(k) - log(k)), over k
            dw = d if weights is None else weights * d
            grad_b = linalg.tdot(X, dw) if precise else np.dot(X.T, dw)
            grad_t = k * (weighted_sum(gt_rows, weights) + weight * float(digamma(k) - t))
            grad = np.append(grad_b, grad_t)
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            h = k * z if weights is None else weights * k * z
            p = X.shape[1]
            hess = np.empty((p + 1, p + 1))
            hess[:p, :p] = gram(X, h)
            hess[:p, p] = hess[p, :p] = grad_b
            hess[p, p] = grad_t + weight * k * float(k * polygamma(1, k) - 1.0)
            return BlockSums(nll, grad, hess, weight)

    def scores(self, params, X, y, offset=None):
        from scipy.special import digamma

        coef, t = params[:-1], float(params[-1])
        k = np.exp(t)
        eta = _eta(coef, X, offset)
        z = y * np.exp(-eta)
        d = k * (1.0 - z)
        st = k * (_excess(z, np.log(y), eta) + float(digamma(k) - t))
        return np.column_stack([X * d[:, None], st])

    def simulate(self, params, X, rng, offset=None):
        k = float(np.exp(params[-1]))
        mu = np.exp(_eta(params[:-1], X, offset))
        return rng.gamma(k, mu / k)

    def predict(self, estimates, X, offset=None):
        return np.exp(_eta(np.asarray(estimates, dtype=float)[:-1], X, offset))


def _excess(z: np.ndarray, log_y: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """``z - 1 - log(z) >= 0`` for ``z = y / mu``: near z = 1 as ``(z - 1) - log1p(z - 1)`` (no
    cancellation of log(z)); elsewhere with ``log(z) = log(y) - eta``, exact however small z is
    (where z - 1 rounds to -1, log1p would be log(0))."""
    near = np.abs(z - 1.0) < 0.5
    return np.where(near, (z - 1.0) - np.log1p(np.where(near, z - 1.0, 0.0)), (z - 1.0) - (log_y - eta))


def _eta(coef: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    eta = np.dot(X, coef)
    return eta if offset is None else eta + offset


def positive_target(values: np.ndarray, column: str, rows: np.ndarray | None, family: str) -> np.ndarray:
    """Positive numbers as float64, or a FamilyError naming the first other value and its data row."""
    y = numeric_target(values, column, rows, f"{family} needs positive numbers")
    bad = np.flatnonzero(~(np.isfinite(y) & (y > 0)))
    if bad.size:
        first = int(bad[0])
        raise FamilyError(
            f"target column '{column}' has {label_text(values[first])} in data row {data_row(rows, first)}; "
            f"{family} needs positive numbers (zero and negative values have no density)."
        )
    return y

