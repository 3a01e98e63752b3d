"""Gaussian family: linear regression with the noise scale estimated."""

from __future__ import annotations

import math

import numpy as np

from ..errors import FamilyError
from .base import BlockSums, Family, Target, gram

LOG_2PI = math.log(2.0 * math.pi)


class Gaussian(Family):
    r"""Normal distribution with the identity link: linear regression, sigma estimated.

    Domain of y: any real number.
    Link: ``mu = X @ b``; ``y ~ Normal(mu, sigma^2)``.
    Per-row NLL: ``(y - mu)^2 / (2 sigma^2) + log(sigma) + log(2 pi) / 2``, i.e. the squared error
    scaled by ``1 / (2 sigma^2)`` plus a constant: minimising it over ``b`` is least squares, and
    sigma's MLE is ``sqrt(RSS / n)``.
    The optimiser works on ``s = log(sigma)`` (unconstrained); results report sigma.
    Gradient: ``-X.T @ (y - mu) / sigma^2`` and ``n - RSS / sigma^2`` for ``s``.
    Hessian: ``X.T @ X / sigma^2``, ``2 X.T @ (y - mu) / sigma^2`` and ``2 RSS / sigma^2``.
    """

    name = "gaussian"
    description = "linear regression: identity link, sigma estimated, Gaussian NLL (MSE up to scale)"
    distribution = "Normal(mu, sigma^2), mu = x'b"
    link = "identity: mu = x'b"
    loss_name = "Gaussian NLL"
    loss_statement = (
        "MSE up to scale and constant: NLL = n MSE / (2 sigma^2) + n log(sigma) + (n/2) log(2 pi), "
        "so the b minimising it minimise the MSE"
    )
    nll_formula = "sum_i [(y_i - x_i'b)^2 / (2 sigma^2)] + n log(sigma) + (n/2) log(2 pi)  = n MSE / (2 sigma^2) + const"
    grad_formula = "-X^T (y - Xb) / sigma^2;  d/d log(sigma): n - RSS / sigma^2"
    hess_formula = (
        "b, b: X^T X / sigma^2;  b, log(sigma): 2 X^T (y - Xb) / sigma^2;  "
        "log(sigma), log(sigma): 2 RSS / sigma^2"
    )
    parameters = (
        "b: one coefficient per column of X (the intercept first, when present); "
        "sigma > 0, optimised as log(sigma) and reported as sigma"
    )
    y_domain = "any real number"
    convex = False  # jointly in (b, log sigma); convex in b for fixed sigma

    def encode_target(self, values: np.ndarray, column: str = "y") -> Target:
        if values.dtype.kind not in "iuf":
            raise FamilyError(
                f"target column '{column}' is not numeric; gaussian needs a numeric target.",
                "Use --family bernoulli or categorical for labels.",
            )
        y = values.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise FamilyError(f"target column '{column}' has infinite values.")
        return Target(y)

    def check_y(self, y: np.ndarray) -> None:
        if not np.all(np.isfinite(y)):
            raise FamilyError("gaussian targets must be finite numbers.")

    def n_params(self, n_features: int, n_classes: int | None = None) -> int:
        return n_features + 1

    def param_names(self, feature_names, levels=None):
        return [(name, None) for name in feature_names] + [("sigma", None)]

    def least_squares(self, X, y, weights=None) -> tuple[np.ndarray, float]:
        """Coefficients by QR least squares and the (weighted) residual sum of squares.

        QR keeps the conditioning of ``X`` rather than squaring it as the normal equations do.
        """
        from scipy.linalg import lstsq

        if weights is not None:
            root = np.sqrt(weights)
            X, y = X * root[:, None], y * root
        coef = lstsq(X, y, lapack_driver="gelsy", check_finite=False)[0]
        resid = y - X @ coef
        return coef, float(resid @ resid)

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None):
        coef, rss = self.least_squares(X, y, weights)
        total = float(len(y) if weights is None else weights.sum())
        # Residuals at rounding level of y mean the data fit exactly: sigma = 0 (log sigma = -inf).
        noise = len(y) * np.finfo(float).eps * float(np.linalg.norm(y))
        log_sigma = 0.5 * math.log(rss / total) if rss > noise**2 else -np.inf
        return np.append(coef, log_sigma)

    def evaluate(self, params, X, y, weights=None, order=2):
        coef, log_sigma = params[:-1], float(params[-1])
        r = y - X @ coef
        wr = r if weights is None else weights * r
        rss = float(wr @ r)
        weight = float(len(y) if weights is None else weights.sum())
        inv_var = math.exp(-2.0 * log_sigma) if log_sigma > -350 else math.inf
        # rss * inv_var is 0 for an exact fit, not inf * 0.
        scaled_rss = rss * inv_var if rss else 0.0
        nll = weight * (log_sigma + 0.5 * LOG_2PI) + 0.5 * scaled_rss
        if order == 0:
            return BlockSums(nll, weight=weight)
        xr = X.T @ wr
        grad = np.append(-xr * inv_var, weight - scaled_rss)
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        k = X.shape[1]
        hess = np.empty((k + 1, k + 1))
        hess[:k, :k] = gram(X, np.ones(len(y)) if weights is None else weights) * inv_var
        hess[:k, k] = hess[k, :k] = 2.0 * xr * inv_var
        hess[k, k] = 2.0 * scaled_rss
        return BlockSums(nll, grad, hess, weight)

    def natural(self, params, cov):
        """Report sigma = exp(s); the delta method scales its row and column of cov by sigma."""
        sigma = math.exp(params[-1])
        jac = np.ones(len(params))
        jac[-1] = sigma
        return np.append(params[:-1], sigma), cov * np.outer(jac, jac)

    def from_natural(self, estimates):
        estimates = np.asarray(estimates, dtype=float)
        if estimates[-1] <= 0:
            raise FamilyError(f"sigma must be positive; got {estimates[-1]:g}.")
        return np.append(estimates[:-1], math.log(estimates[-1]))

    def simulate(self, params, X, rng):
        return X @ params[:-1] + math.exp(params[-1]) * rng.standard_normal(X.shape[0])

    def predict(self, estimates, X):
        return X @ np.asarray(estimates, dtype=float)[:-1]
