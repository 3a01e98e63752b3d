"""Poisson family: regression for counts."""

from __future__ import annotations

import numpy as np

from .. import linalg
from ..errors import FamilyError
from .base import BlockSums, Family, Target, data_row, gram, label_text, numeric_target, total_weight, weighted_sum


class Poisson(Family):
    r"""Poisson distribution with the log link: regression for counts.

    Domain of y: counts 0, 1, 2, ... (a negative, fractional or non-numeric value is an error naming
    its data row).
    Link: ``mu = exp(eta)``, ``eta = X @ b`` (plus the offset, ``log(exposure)`` for an exposure, so
    that ``mu / exposure`` is the rate per unit of exposure).
    Per-row NLL: ``mu - y * eta + lgamma(y + 1)``.
    Gradient: ``X.T @ (mu - y)``; Hessian: ``X.T @ diag(mu) @ X``.
    The NLL is half the Poisson deviance ``2 sum_i [y_i log(y_i / mu_i) - (y_i - mu_i)]`` plus
    ``sum_i [lgamma(y_i + 1) - y_i log(y_i) + y_i]``, which does not depend on b.
    """

    name = "poisson"
    description = "Poisson regression for counts: log link, rates with --exposure"
    distribution = "Poisson(mu), mu = exp(x'b)"
    link = "log: log(mu) = x'b (+ offset)"
    loss_name = "Poisson NLL"
    loss_statement = (
        "half the Poisson deviance plus a constant: NLL = D / 2 + sum_i [lgamma(y_i + 1) - y_i log(y_i) + y_i], "
        "D = 2 sum_i [y_i log(y_i / mu_i) - (y_i - mu_i)]"
    )
    nll_formula = "sum_i [exp(x_i'b) - y_i x_i'b + lgamma(y_i + 1)]"
    grad_formula = "X^T (exp(Xb) - y)"
    hess_formula = "X^T diag(mu_i) X, mu_i = exp(x_i'b)"
    parameters = "b: one coefficient per column of X (the intercept first, when present); exp(b) multiplies the mean"
    y_domain = "counts: whole numbers 0, 1, 2, ..."
    integer_target = True
    log_link = True

    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
        return Target(count_target(values, column, rows, self.name))

    def check_y(self, y: np.ndarray) -> None:
        if not np.all((y >= 0) & (y == np.floor(y))):
            raise FamilyError("poisson targets must be counts 0, 1, 2, ...")

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients and, with an intercept, the intercept-only MLE
        ``log(sum w y / sum w exp(offset))``."""
        params = np.zeros(X.shape[1])
        if intercept:
            params[0] = log_mean_rate(y, weights, offset)
        return params

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        eta = linalg.dot(X, params) if precise else np.dot(X, params)
        if offset is not None:
            eta = eta + offset
        weight = total_weight(len(y), weights)
        # A trial point far out has exp(eta > 709) = inf: an infinite NLL, which the optimiser
        # rejects, not a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            mu = np.exp(eta)
            loss = mu - y * eta
            loss += log_factorial(y)
            nll = weighted_sum(loss, weights)
            if order == 0:
                return BlockSums(nll, weight=weight)
            r = mu - y if weights is None else weights * (mu - y)
            grad = linalg.tdot(X, r) if precise else np.dot(X.T, r)
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            h = mu if weights is None else weights * mu
            return BlockSums(nll, grad, gram(X, h), weight)

    def hess_root(self, params, X, y, weights=None, offset=None):
        """``sqrt(mu) X`` (times the root of the weights): its Gram matrix is the Hessian."""
        h = np.exp(_eta(params, X, offset))
        if weights is not None:
            h = h * weights
        return X * np.sqrt(h)[:, None]

    def scores(self, params, X, y, offset=None):
        return X * (np.exp(_eta(params, X, offset)) - y)[:, None]

    def simulate(self, params, X, rng, offset=None):
        return rng.poisson(np.exp(_eta(params, X, offset))).astype(np.float64)

    def predict(self, estimates, X, offset=None):
        return np.exp(_eta(np.asarray(estimates, dtype=float), X, offset))


def _eta(params: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    eta = np.dot(X, params)
    return eta if offset is None else eta + offset


#: log(k!) for the counts k below this come from a table (a gather instead of lgamma per row).
FACTORIAL_TABLE_SIZE = 1024
_LOG_FACTORIALS: np.ndarray | None = None


def log_factorial(y: np.ndarray) -> np.ndarray:
    """``lgamma(y + 1)`` of counts: the small ones looked up in a table of the same values (the
    constant term of every count likelihood, on every pass: lgamma per row cost more than the rest
    of a poisson evaluation), the large ones computed."""
    from scipy.special import gammaln

    global _LOG_FACTORIALS
    if _LOG_FACTORIALS is None:
        _LOG_FACTORIALS = gammaln(np.arange(FACTORIAL_TABLE_SIZE) + 1.0)
    top = FACTORIAL_TABLE_SIZE - 1
    out = np.take(_LOG_FACTORIALS, np.minimum(y, top).astype(np.intp))
    large = y > top
    if large.any():
        out[large] = gammaln(y[large] + 1.0)
    return out


def log_mean_rate(y: np.ndarray, weights: np.ndarray | None, offset: np.ndarray | None) -> float:
    """``log(sum w y / sum w exp(offset))``: the intercept-only MLE of a log-link mean (0.0 when
    every count is zero, where it does not exist)."""
    w = np.ones(len(y)) if weights is None else weights
    total = float(w @ y)
    exposure = float(w.sum() if offset is None else w @ np.exp(offset))
    return float(np.log(total / exposure)) if total > 0 and exposure > 0 else 0.0


def count_target(values: np.ndarray, column: str, rows: np.ndarray | None, family: str) -> np.ndarray:
    """Counts as float64, or a FamilyError naming the first value that is not a whole number >= 0
    and its data row."""
    y = numeric_target(values, column, rows, f"{family} needs counts 0, 1, 2 and so on")
    bad = np.flatnonzero(~(np.isfinite(y) & (y >= 0) & (y == np.floor(y))))
    if bad.size:
        first = int(bad[0])
        raise FamilyError(
            f"target column '{column}' has {label_text(values[first])} in data row {data_row(rows, first)}; "
            f"{family} needs counts 0, 1, 2, ... (whole numbers, not negative)."
        )
    return y

