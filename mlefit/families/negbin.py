"""Negative binomial (NB2) family: regression for overdispersed counts."""

from __future__ import annotations

import numpy as np

from .. import linalg
from ..errors import FamilyError
from .base import BlockSums, Family, Target, gram, total_weight, weighted_sum
from .poisson import count_target, log_factorial, log_mean_rate

#: At and above this size parameter r = 1/alpha, the differences of lgamma, digamma and trigamma at
#: r + y and r come from their asymptotic series (which keep every digit); below, from the
#: functions themselves (which lose about r u of them).
ASYMPTOTIC_R = 50.0
#: An alpha below this is the boundary alpha = 0: no overdispersion (the poisson model).
BOUNDARY_ALPHA = 1e-8
#: The alpha that stands for the limit 0: the NB2 NLL there equals the poisson NLL to float64
#: precision (they differ by about alpha mu^2 per row).
LIMIT_ALPHA = 1e-20


class NegBin(Family):
    r"""Negative binomial (NB2) distribution with the log link: counts with overdispersion.

    Domain of y: counts 0, 1, 2, ... (a negative, fractional or non-numeric value is an error naming
    its data row).
    Link: ``mu = exp(eta)``, ``eta = X @ b`` (plus the offset); ``Var(y) = mu + alpha mu^2`` with
    ``alpha > 0`` estimated jointly (the poisson model is the limit alpha -> 0). With ``r = 1 / alpha``
    (R's ``theta``) and ``s = log(alpha) + eta``:

    Per-row NLL: ``-[lgamma(y + r) - lgamma(r) - lgamma(y + 1)] - y s + (r + y) softplus(s)``,
    ``softplus(s) = log(1 + alpha mu)``, the negative log of
    ``Gamma(y + r) / (Gamma(r) y!) (alpha mu / (1 + alpha mu))^y (1 / (1 + alpha mu))^r``.
    The optimiser works on ``a = log(alpha)``; results report ``alpha``. With ``p = sigmoid(s)``:
    ``d/d eta = (r + y) p - y = r p - y (1 - p) = (mu - y) / (1 + alpha mu)``,
    ``d/da = r [digamma(y + r) - digamma(r)] - y - r softplus(s) + (r + y) p``;
    ``d2/d eta2 = (r + y) p (1 - p)``, ``d2/d eta da = (r + y) p (1 - p) - r p``,
    ``d2/da2 = -r [digamma(y + r) - digamma(r)] - r^2 [trigamma(y + r) - trigamma(r)] + r softplus(s)
    - 2 r p + (r + y) p (1 - p)``.
    The differences ``lgamma(y + r) - lgamma(r)`` and those of digamma and trigamma are computed from
    their asymptotic series for large r (small alpha), where taking them directly would cancel.

    The NLL is convex in b at a fixed alpha (``d2/d eta2 = (r + y) p (1 - p) > 0``), not jointly in
    b and log(alpha): Newton steps are damped by a line search, and the Hessian at the optimum is
    checked to be positive definite.
    """

    name = "negbin"
    description = "negative binomial (NB2) regression for overdispersed counts: log link, alpha estimated"
    distribution = "NegativeBinomial(mean mu, Var = mu + alpha mu^2), mu = exp(x'b)"
    link = "log: log(mu) = x'b (+ offset)"
    loss_name = "negative binomial NLL"
    loss_statement = "the negative binomial (NB2) NLL; the poisson NLL in the limit alpha -> 0"
    nll_formula = (
        "sum_i [lgamma(r) + lgamma(y_i + 1) - lgamma(y_i + r) - y_i log(alpha mu_i) + (r + y_i) log(1 + alpha mu_i)], "
        "r = 1 / alpha"
    )
    grad_formula = (
        "b: X^T ((mu - y) / (1 + alpha mu));  log(alpha): sum_i r [digamma(y_i + r) - digamma(r) - log(1 + alpha mu_i)] "
        "+ (r + y_i) p_i - y_i, p_i = alpha mu_i / (1 + alpha mu_i)"
    )
    hess_formula = (
        "b, b: X^T diag((r + y_i) p_i (1 - p_i)) X;  b, log(alpha): X^T ((r + y) p (1 - p) - r p);  "
        "log(alpha), log(alpha): see mlefit families negbin"
    )
    parameters = (
        "b: one coefficient per column of X (the intercept first, when present); exp(b) multiplies the mean; "
        "alpha > 0, optimised as log(alpha) and reported as alpha (theta = 1 / alpha)"
    )
    y_domain = "counts: whole numbers 0, 1, 2, ..."
    convex = False
    integer_target = True
    log_link = True
    ancillary = ("alpha",)
    ancillary_defaults = {"alpha": 1.0}
    penalty_statement = "NLL + (l2/2) ||b||^2, intercept and alpha not penalised"

    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
        return Target(count_target(values, column, rows, self.name))

    def check_y(self, y: np.ndarray) -> None:
        if not np.all((y >= 0) & (y == np.floor(y))):
            raise FamilyError("negbin targets must be counts 0, 1, 2, ...")

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients (with an intercept, the log of the mean rate) and alpha of the
        moments, ``(variance - mean) / mean^2`` of the counts, clipped to [0.01, 100]."""
        coef = np.zeros(X.shape[1])
        if intercept:
            coef[0] = log_mean_rate(y, weights, offset)
        mean = float(np.average(y, weights=weights))
        var = float(np.average((y - mean) ** 2, weights=weights))
        alpha = (var - mean) / mean**2 if mean > 0 else 1.0
        return np.append(coef, np.log(np.clip(alpha, 1e-2, 1e2)))

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        from scipy.special import expit

        coef, a = params[:-1], float(params[-1])
        eta = linalg.dot(X, coef) if precise else np.dot(X, coef)
        if offset is not None:
            eta = eta + offset
        weight = total_weight(len(y), weights)
        if not -700.0 < a < 700.0:  # alpha beyond float64: a trial point far out
            return _infinite(params.size, order, weight)
        r = np.exp(-a)
        with np.errstate(over="ignore", invalid="ignore"):  # a trial point far out: an infinite NLL
            s = a + eta
            soft = np.logaddexp(0.0, s)
            # -y s + (r + y) softplus(s) = r softplus(s) + y softplus(-s): two positive terms, no
            # cancellation however large y and mu are
            loss = r * soft
            loss += y * np.logaddexp(0.0, -s)
            loss -= log_beta_term(y, r)
            nll = weighted_sum(loss, weights)
            if order == 0:
                return BlockSums(nll, weight=weight)
            dg, tg = _digamma_differences(y, r, order)
            p, q = expit(s), expit(-s)
            d_eta = r * p - y * q  # (r + y) p - y without its cancellation for large y
            d_a = r * (dg - soft) + d_eta
            de = d_eta if weights is None else weights * d_eta
            grad_b = linalg.tdot(X, de) if precise else np.dot(X.T, de)
            grad = np.append(grad_b, weighted_sum(d_a, weights))
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            h_ee = (r + y) * p * q
            h_ea = h_ee - r * p
            h_aa = -r * dg - r * r * tg + r * soft - 2.0 * r * p + h_ee
            p_ = X.shape[1]
            hess = np.empty((p_ + 1, p_ + 1))
            hess[:p_, :p_] = gram(X, h_ee if weights is None else weights * h_ee)
            hw = h_ea if weights is None else weights * h_ea
            hess[:p_, p_] = hess[p_, :p_] = np.dot(X.T, hw)
            hess[p_, p_] = weighted_sum(h_aa, weights)
            return BlockSums(nll, grad, hess, weight)

    def scores(self, params, X, y, offset=None):
        from scipy.special import expit

        coef, a = params[:-1], float(params[-1])
        r = np.exp(-a)
        s = a + _eta(coef, X, offset)
        soft = np.logaddexp(0.0, s)
        dg, _ = _digamma_differences(y, r, 1)
        d_eta = r * expit(s) - y * expit(-s)
        return np.column_stack([X * d_eta[:, None], r * (dg - soft) + d_eta])

    def boundary(self, params):
        """alpha below :data:`BOUNDARY_ALPHA`: its MLE is the boundary 0 (the likelihood rises all
        the way down to it, where the model is the poisson one); held at :data:`LIMIT_ALPHA`."""
        if not np.exp(params[-1]) < BOUNDARY_ALPHA:
            return None
        mask = np.zeros(len(params), dtype=bool)
        mask[-1] = True
        held = np.array(params, dtype=float)
        held[-1] = np.log(LIMIT_ALPHA)
        return mask, held

    def boundary_note(self, estimates: np.ndarray) -> str | None:
        if float(estimates[-1]) < BOUNDARY_ALPHA:
            return (
                "alpha's estimate is at the boundary 0 (shown as 1e-20): these data show no overdispersion, so "
                "the negative binomial is the poisson model and the coefficients are the poisson fit's; alpha "
                "has no standard error there (fit --family poisson)"
            )
        return None

    def simulate(self, params, X, rng, offset=None):
        alpha = float(np.exp(params[-1]))
        mu = np.exp(_eta(params[:-1], X, offset))
        # a gamma mixture of poissons: the rate has mean mu and variance alpha mu^2
        return rng.poisson(rng.gamma(1.0 / alpha, alpha * mu)).astype(np.float64)

    def predict(self, estimates, X, offset=None):
        return np.exp(_eta(np.asarray(estimates, dtype=float)[:-1], X, offset))


def _eta(coef: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    eta = np.dot(X, coef)
    return eta if offset is None else eta + offset


def _infinite(n_params: int, order: int, weight: float) -> BlockSums:
    nan = np.full(n_params, np.nan)
    return BlockSums(np.inf, None if order == 0 else nan, np.full((n_params, n_params), np.nan) if order == 2 else None, weight)


def _series(coefs, powers):
    return lambda v: sum(c * v ** (-k) for c, k in zip(coefs, powers))


#: The remainder of Stirling's series for lgamma: ``lgamma(v) = (v - 1/2) log(v) - v + log(2 pi) / 2 + C(v)``.
_C = _series((1 / 12, -1 / 360, 1 / 1260), (1, 3, 5))
#: ``digamma(v) = log(v) - 1/(2v) + D(v)``.
_D = _series((-1 / 12, 1 / 120, -1 / 252), (2, 4, 6))
#: ``trigamma(v) = 1/v + 1/(2v^2) + T(v)``.
_T = _series((1 / 6, -1 / 30, 1 / 42), (3, 5, 7))
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


def _lgamma_shift(z: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``lgamma(z + d) - lgamma(z)`` for ``z, z + d >= ASYMPTOTIC_R``, from Stirling's series
    written so that nothing of size ``z log z`` cancels: ``d log(z) + (z + d - 1/2) log1p(d / z) - d
    + C(z + d) - C(z)`` (C's remainder is below 1e-15 there)."""
    L = np.log1p(d / z)
    return d * np.log(z) + (z + d - 0.5) * L - d + (_C(z + d) - _C(z))


def log_beta_term(y: np.ndarray, r: float) -> np.ndarray:
    """``lgamma(y + r) - lgamma(r) - lgamma(y + 1)`` per row, accurate for any sizes of ``y`` and
    ``r``: where an argument is large (at least :data:`ASYMPTOTIC_R`) the lgamma differences come
    from Stirling's series (:func:`_lgamma_shift` and, both large, the form
    ``y log1p((r - 1)/(y + 1)) + (r - 1/2) log1p(y / r) - log(y + 1) / 2 + 1 - log(2 pi) / 2 + C(y + r) - C(r)
    - C(y + 1)``), so that the terms of size ``y log y`` or ``r log r`` never cancel."""
    from scipy.special import gammaln

    big_r = np.bool_(r >= ASYMPTOTIC_R)  # numpy, so that ~big_r is its negation
    big_y = y + 1.0 >= ASYMPTOTIC_R
    out = np.empty(len(y))
    both = big_y & big_r
    if both.any():
        v = y[both]
        out[both] = (
            v * np.log1p((r - 1.0) / (v + 1.0)) + (r - 0.5) * np.log1p(v / r) - 0.5 * np.log(v + 1.0)
            + 1.0 - _HALF_LOG_2PI + (_C(v + r) - _C(r) - _C(v + 1.0))
        )
    only_r = ~big_y & big_r
    if only_r.any():
        v = y[only_r]
        out[only_r] = _lgamma_shift(np.full(v.shape, r), v) - log_factorial(v)
    only_y = big_y & ~big_r
    if only_y.any():
        v = y[only_y]
        out[only_y] = _lgamma_shift(v + 1.0, np.full(v.shape, r - 1.0)) - gammaln(r)
    small = ~big_y & ~big_r
    if small.any():
        v = y[small]
        out[small] = by_count(lambda k: gammaln(k + r), v) - gammaln(r) - log_factorial(v)
    return out


#: Counts up to this size share their per-value terms (see :func:`by_count`).
COUNT_TABLE_SIZE = 4096


def by_count(f, y: np.ndarray) -> np.ndarray:
    """``f(y)`` elementwise, computed once per distinct count when the counts are small (a table
    of ``f(0..max)`` and a gather): counts take few values, and the special functions of the
    negative binomial cost far more per call than the gather."""
    top = float(y.max()) if y.size else 0.0
    if top >= COUNT_TABLE_SIZE:
        return f(y)
    return np.take(f(np.arange(int(top) + 1, dtype=np.float64)), y.astype(np.intp))


def _digamma_differences(y: np.ndarray, r: float, order: int):
    """``digamma(y + r) - digamma(r)`` and (order 2) ``trigamma(y + r) - trigamma(r)`` per row.

    For ``r >= ASYMPTOTIC_R`` from the asymptotic series, written so that nothing cancels:
    ``log1p(y / r) + y / (2 r (r + y)) + D(r + y) - D(r)`` and
    ``-y / (r (r + y)) - y (2r + y) / (2 r^2 (r + y)^2) + T(r + y) - T(r)``; below, from the
    functions themselves (digamma(r) and trigamma(r) are then small next to the differences).
    """
    from scipy.special import digamma, polygamma

    if r < ASYMPTOTIC_R:
        dg = by_count(lambda k: digamma(k + r), y) - digamma(r)
        tg = by_count(lambda k: polygamma(1, k + r), y) - polygamma(1, r) if order >= 2 else None
        return dg, tg
    x = r + y
    dg = np.log1p(y / r) + y / (2.0 * r * x) + (_D(x) - _D(r))
    tg = None
    if order >= 2:
        tg = -y / (r * x) - 0.5 * y * (2.0 * r + y) / (r * r * x * x) + (_T(x) - _T(r))
    return dg, tg
