"""Distributions that ``mlefit dist`` fits and ``mlefit fit`` does not offer as families.

logistic, gumbel and student_t (a location and a scale), beta (a mean and a precision) and
geometric (a mean) are written in the Family protocol, with the location (or the link of the
mean) a linear predictor ``eta = X @ b``, so that ``mlefit dist`` fits them on the one path every
fit takes (the optimiser, its convergence verdict, the covariance from the analytic Hessian) with a
design of one column of ones. Their derivatives are chained through ``X`` like every family's, but
they are not in the registry of ``mlefit fit --family``: a family named ``logistic`` would read as
logistic regression (that is bernoulli), gumbel and geometric regressions are rarely what anyone
wants (geometric is negbin with alpha = 1), and student_t and beta regression would need what the
registry's families have besides the likelihood (simulation, prediction, the registry's test suite).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .. import linalg
from ..errors import FamilyError
from .base import (
    BlockSums, Family, Target, data_row, gram, label_text, numeric_target, total_weight, weighted_gram, weighted_sum,
)
from .poisson import count_target

#: From this df on (half of it: 50), the differences of lgamma, digamma and trigamma at df/2 and
#: (df + 1)/2 come from their asymptotic series, which keep every digit where the functions'
#: difference cancels.
ASYMPTOTIC_DF = 100.0
#: A df above this is the boundary df = infinity: the normal distribution.
BOUNDARY_DF = 1e8
#: The df that stands for the limit: the student_t NLL there equals the normal NLL to float64.
LIMIT_DF = 1e20
EULER_GAMMA = 0.5772156649015329


def real_target(values: np.ndarray, column: str, rows: np.ndarray | None, family: str) -> np.ndarray:
    """Finite numbers as float64, or a FamilyError naming the first other value and its data row."""
    y = numeric_target(values, column, rows, f"{family} needs numbers")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        first = int(bad[0])
        raise FamilyError(
            f"target column '{column}' has {label_text(values[first])} in data row {data_row(rows, first)}; "
            f"{family} needs finite numbers."
        )
    return y


def unit_target(values: np.ndarray, column: str, rows: np.ndarray | None, family: str) -> np.ndarray:
    """Numbers strictly between 0 and 1 as float64, or a FamilyError naming the first other value."""
    y = numeric_target(values, column, rows, f"{family} needs numbers between 0 and 1")
    bad = np.flatnonzero(~((y > 0) & (y < 1)))
    if bad.size:
        first = int(bad[0])
        raise FamilyError(
            f"target column '{column}' has {label_text(values[first])} in data row {data_row(rows, first)}; "
            f"{family} needs numbers strictly between 0 and 1."
        )
    return y


def _eta(coef: np.ndarray, X: np.ndarray, offset: np.ndarray | None, precise: bool = False) -> np.ndarray:
    eta = linalg.dot(X, coef) if precise else np.dot(X, coef)
    return eta if offset is None else eta + offset


def _moments(y: np.ndarray, weights: np.ndarray | None) -> tuple[float, float]:
    mean = float(np.average(y, weights=weights))
    return mean, float(np.average((y - mean) ** 2, weights=weights))


class LocationScale(Family):
    r"""``y = eta + scale * W`` with ``eta = X @ b`` (plus the offset) and W a standard error
    distribution; subclasses give W's part of the NLL.

    With ``z = (y - eta) / scale``, ``s = log(scale)`` and ``L(z) = -log f_W(z)``:
    per-row NLL ``L(z) + s``; with ``g = dL/dz``, ``h = d2L/dz2`` (``dz/d eta = -1 / scale``,
    ``dz/ds = -z``): ``d/d eta = -g / scale``, ``d/ds = 1 - z g``; ``d2/d eta2 = h / scale^2``,
    ``d2/d eta ds = (g + z h) / scale``, ``d2/ds2 = z g + z^2 h``.
    """

    ancillary = ("scale",)
    ancillary_defaults = {"scale": 1.0}
    convex = False
    link = "identity: the location is x'b (+ offset)"
    y_domain = "numbers"
    #: The mean and standard deviation of W (for the start).
    error_mean: ClassVar[float]
    error_sd: ClassVar[float]

    def error_terms(self, z: np.ndarray, order: int):
        """``(L, g, h)`` per row: ``-log f_W(z)`` and its derivatives in z (None above ``order``)."""
        raise NotImplementedError

    def encode_target(self, values, column="y", rows=None):
        return Target(real_target(values, column, rows, self.name))

    def check_y(self, y):
        if not np.all(np.isfinite(y)):
            raise FamilyError(f"{self.name} targets must be finite numbers.")

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients (with an intercept, the location of the moments) and the scale of the
        moments, ``sd(y) / sd(W)``."""
        r = y if offset is None else y - offset
        mean, var = _moments(r, weights)
        scale = math.sqrt(var) / self.error_sd if var > 0 else 1.0
        coef = np.zeros(X.shape[1])
        if intercept:
            coef[0] = mean - scale * self.error_mean
        return np.append(coef, math.log(scale))

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        p = X.shape[1]
        coef, s = params[:p], float(params[p])
        eta = _eta(coef, X, offset, precise)
        weight = total_weight(len(y), weights)
        with np.errstate(over="ignore", invalid="ignore"):  # a trial point far out: an infinite NLL
            scale = math.exp(s) if s < 700.0 else math.inf
            z = (y - eta) / scale
            loss, g, h = self.error_terms(z, order)
            nll = weighted_sum(loss, weights) + weight * s
            if order == 0:
                return BlockSums(nll, weight=weight)
            d_eta = -g / scale
            de = d_eta if weights is None else weights * d_eta
            grad_b = linalg.tdot(X, de) if precise else np.dot(X.T, de)
            grad = np.append(grad_b, weight - weighted_sum(z * g, weights))
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            h_ee = h / (scale * scale)
            h_es = (g + z * h) / scale
            hess = np.empty((p + 1, p + 1))
            hess[:p, :p] = gram(X, h_ee if weights is None else weights * h_ee)
            hess[:p, p] = hess[p, :p] = np.dot(X.T, h_es if weights is None else weights * h_es)
            hess[p, p] = weighted_sum(z * g + z * z * h, weights)
            return BlockSums(nll, grad, hess, weight)


class Logistic(LocationScale):
    r"""Logistic distribution: ``y = eta + scale * W``, W standard logistic.

    Domain of y: numbers. ``f_W(z) = exp(-z) / (1 + exp(-z))^2``.
    Per-row NLL: ``z + 2 softplus(-z) + log(scale)``, ``z = (y - eta) / scale``; ``g = tanh(z / 2)
    = expit(z) - expit(-z)``, ``h = 2 expit(z) expit(-z)``.
    """

    name = "logistic"
    description = "logistic distribution: location and scale"
    distribution = "Logistic(location x'b, scale): variance (pi scale)^2 / 3"
    loss_name = "logistic NLL"
    loss_statement = "the logistic NLL"
    nll_formula = "sum_i [z_i + 2 log(1 + exp(-z_i)) + log(scale)], z_i = (y_i - x_i'b) / scale"
    grad_formula = "b: -X^T tanh(z / 2) / scale;  log(scale): sum_i [1 - z_i tanh(z_i / 2)]"
    hess_formula = "see mlefit.families.univariate.LocationScale"
    parameters = "b: the location's coefficients; scale > 0, optimised as log(scale)"
    error_mean = 0.0
    error_sd = math.pi / math.sqrt(3.0)

    def error_terms(self, z, order):
        return logistic_terms(z, None, order)


class Gumbel(LocationScale):
    r"""Gumbel (largest extreme value) distribution: ``y = eta + scale * W``, W standard Gumbel.

    Domain of y: numbers. ``f_W(z) = exp(-z - exp(-z))`` (scipy's ``gumbel_r``), right-skewed.
    Per-row NLL: ``z + exp(-z) + log(scale)``; ``g = 1 - exp(-z)``, ``h = exp(-z)``.
    """

    name = "gumbel"
    description = "Gumbel (largest extreme value) distribution: location and scale"
    distribution = "Gumbel(location x'b, scale): mean location + 0.5772 scale"
    loss_name = "Gumbel NLL"
    loss_statement = "the Gumbel NLL"
    nll_formula = "sum_i [z_i + exp(-z_i) + log(scale)], z_i = (y_i - x_i'b) / scale"
    grad_formula = "b: -X^T (1 - exp(-z)) / scale;  log(scale): sum_i [1 - z_i (1 - exp(-z_i))]"
    hess_formula = "see mlefit.families.univariate.LocationScale"
    parameters = "b: the location's coefficients; scale > 0, optimised as log(scale)"
    error_mean = EULER_GAMMA
    error_sd = math.pi / math.sqrt(6.0)

    def error_terms(self, z, order):
        e = np.exp(-z)
        loss = z + e
        if order == 0:
            return loss, None, None
        return loss, -np.expm1(-z), e


def logistic_terms(z: np.ndarray, event: np.ndarray | None, order: int):
    """The standard logistic distribution's part of a row's NLL and its derivatives in z:
    ``(L, g, h)`` with ``L = -log f(z) = |z| + 2 log1p(exp(-|z|))`` for an observed value and
    ``L = -log S(z) = softplus(z)`` for a right-censored one (``event`` False; None: every value
    observed), from one exponential ``e = exp(-|z|)``: observed ``g = sign(z) (1 - e) / (1 + e)``,
    ``h = 2 e / (1 + e)^2``; censored ``g = expit(z)``, ``h = e / (1 + e)^2`` (None above ``order``).
    Shared by logistic and the log-logistic survival family (one copy of the maths)."""
    a = np.abs(z)
    e = np.exp(-a)
    log1p_e = np.log1p(e)
    loss = a + 2.0 * log1p_e
    if event is not None:
        censored = ~event
        loss[censored] = np.maximum(z[censored], 0.0) + log1p_e[censored]
    if order == 0:
        return loss, None, None
    r = 1.0 / (1.0 + e)
    g = np.copysign((1.0 - e) * r, z)
    h = 2.0 * e * r * r
    if event is not None:
        g[censored] = np.where(z[censored] >= 0.0, r[censored], e[censored] * r[censored])
        h[censored] *= 0.5
    return loss, g, h


# -- student_t: a location, a scale and the degrees of freedom ----------------------------------------


def _half_lgamma_series(x):
    """``lgamma(x + 1/2) - lgamma(x) - log(x) / 2`` for ``x >= ASYMPTOTIC_DF / 2`` (relative error
    below 1e-20 there)."""
    return -1.0 / (8.0 * x) + 1.0 / (192.0 * x**3) - 1.0 / (640.0 * x**5) + 17.0 / (14336.0 * x**7)


def _half_digamma_series(x):
    """``digamma(x + 1/2) - digamma(x) - 1 / (2x)``, for large x."""
    return 1.0 / (8.0 * x**2) - 1.0 / (64.0 * x**4) + 1.0 / (128.0 * x**6) - 17.0 / (2048.0 * x**8)


def _half_trigamma_series(x):
    """``trigamma(x + 1/2) - trigamma(x)``, for large x."""
    return -1.0 / (2.0 * x**2) - 1.0 / (4.0 * x**3) + 1.0 / (16.0 * x**5) - 3.0 / (64.0 * x**7) + 17.0 / (256.0 * x**9)


def t_constants(nu: float, order: int) -> tuple[float, float, float]:
    """For x = nu / 2: ``c0 = lgamma(x) - lgamma(x + 1/2) + log(nu) / 2`` (so the row's NLL is
    ``c0 + log(pi) / 2 + ...``), ``c1 = digamma(x + 1/2) - digamma(x) - 1 / nu`` and
    ``c2 = trigamma(x) - trigamma(x + 1/2)``, each without the cancellation of the functions'
    difference when nu is large (series from :data:`ASYMPTOTIC_DF` on)."""
    from scipy.special import digamma, gammaln, polygamma

    x = 0.5 * nu
    if nu >= ASYMPTOTIC_DF:
        c0 = 0.5 * math.log(2.0) - _half_lgamma_series(x)
        c1 = _half_digamma_series(x) if order >= 1 else math.nan
        c2 = -_half_trigamma_series(x) if order >= 2 else math.nan
        return c0, c1, c2
    c0 = float(gammaln(x) - gammaln(x + 0.5)) + 0.5 * math.log(nu)
    c1 = float(digamma(x + 0.5) - digamma(x)) - 1.0 / nu if order >= 1 else math.nan
    c2 = float(polygamma(1, x) - polygamma(1, x + 0.5)) if order >= 2 else math.nan
    return c0, c1, c2


class StudentT(Family):
    r"""Student's t distribution with a location, a scale and its degrees of freedom.

    Domain of y: numbers. ``y = eta + scale * W``, ``eta = X @ b`` (plus the offset), W standard t
    with ``df`` degrees of freedom (scipy's ``t(df, loc, scale)``); the normal is the limit df -> inf.
    Per-row NLL, with ``z = (y - eta) / scale``, ``q = z^2 / df``:
    ``lgamma(df/2) - lgamma((df+1)/2) + log(pi df) / 2 + log(scale) + (df + 1)/2 log1p(q)``.
    The optimiser works on ``s = log(scale)`` and ``r = log(df)``. With ``g = (df + 1) z / (df + z^2)``,
    ``h = (df + 1)(df - z^2) / (df + z^2)^2`` (derivatives in z) and
    ``L_nu = [log1p(q) - q / (1 + q) - q / (df (1 + q)) - c1] / 2`` (``c1 = digamma((df+1)/2) -
    digamma(df/2) - 1/df``, derivative in df):
    ``d/d eta = -g / scale``, ``d/ds = 1 - z g``, ``d/dr = df L_nu``; ``d2/d eta2 = h / scale^2``,
    ``d2/d eta ds = (g + z h) / scale``, ``d2/ds2 = z g + z^2 h``, with ``L_z nu = z (z^2 - 1) /
    (df + z^2)^2``: ``d2/d eta dr = -df L_z nu / scale``, ``d2/ds dr = -z df L_z nu``,
    ``d2/dr2 = df L_nu + df^2 L_nu nu``, ``L_nu nu = [c2 / 2 - z^2 / (df (df + z^2)) - (1 - z^2) /
    (df + z^2)^2] / 2`` (``c2 = trigamma(df/2) - trigamma((df+1)/2)``). The lgamma, digamma and
    trigamma differences come from their asymptotic series for large df, where they cancel.
    """

    name = "student_t"
    description = "Student's t distribution: location, scale and degrees of freedom"
    distribution = "t(df, location x'b, scale): heavier tails than the normal, the normal as df -> inf"
    link = "identity: the location is x'b (+ offset)"
    loss_name = "Student t NLL"
    loss_statement = "the Student t NLL"
    nll_formula = (
        "sum_i [lgamma(df/2) - lgamma((df+1)/2) + log(pi df)/2 + log(scale) + (df+1)/2 log(1 + z_i^2/df)], "
        "z_i = (y_i - x_i'b) / scale"
    )
    grad_formula = "see mlefit.families.univariate.StudentT"
    hess_formula = "see mlefit.families.univariate.StudentT"
    parameters = "b: the location's coefficients; scale > 0 and df > 0, optimised as their logarithms"
    y_domain = "numbers"
    convex = False
    ancillary = ("scale", "df")
    ancillary_defaults = {"scale": 1.0, "df": 5.0}

    def encode_target(self, values, column="y", rows=None):
        return Target(real_target(values, column, rows, self.name))

    def check_y(self, y):
        if not np.all(np.isfinite(y)):
            raise FamilyError("student_t targets must be finite numbers.")

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients (with an intercept, the median), df from the excess kurtosis ``k`` of
        the moments (``4 + 6 / k``, 30 when ``k <= 0``, clipped to [2.5, 100]) and the scale that
        gives the variance of the moments at that df."""
        r = y if offset is None else y - offset
        mean, var = _moments(r, weights)
        d2 = (r - mean) ** 2
        kurt = float(np.average(d2 * d2, weights=weights)) / var**2 - 3.0 if var > 0 else 0.0
        nu = min(max(4.0 + 6.0 / kurt, 2.5), 100.0) if kurt > 0 else 30.0
        scale = math.sqrt(var * (nu - 2.0) / nu) if var > 0 else 1.0
        coef = np.zeros(X.shape[1])
        if intercept:
            coef[0] = float(np.median(r)) if weights is None else mean
        return np.append(coef, [math.log(scale), math.log(nu)])

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        p = X.shape[1]
        coef, s, r = params[:p], float(params[p]), float(params[p + 1])
        eta = _eta(coef, X, offset, precise)
        weight = total_weight(len(y), weights)
        if not (-700.0 < s < 700.0 and -700.0 < r < 700.0):  # beyond float64: a trial point far out
            return _infinite(p + 2, order, weight)
        scale, nu = math.exp(s), math.exp(r)
        c0, c1, c2 = t_constants(nu, order)
        with np.errstate(over="ignore", invalid="ignore"):
            z = (y - eta) / scale
            z2 = z * z
            q = z2 / nu
            u = np.log1p(q)
            nll = weighted_sum(u, weights) * (0.5 * (nu + 1.0)) + weight * (c0 + 0.5 * math.log(math.pi) + s)
            if order == 0:
                return BlockSums(nll, weight=weight)
            inv_d = 1.0 / (nu + z2)
            r_ = z2 * inv_d  # q / (1 + q); z g = (nu + 1) r_
            g = (nu + 1.0) * z * inv_d
            # L_nu = [log1p(q) - q / (1 + q) - q / (nu (1 + q)) - c1] / 2
            l_nu = 0.5 * (u - (1.0 + 1.0 / nu) * r_ - c1)
            d_eta = -g / scale
            de = d_eta if weights is None else weights * d_eta
            grad_b = linalg.tdot(X, de) if precise else np.dot(X.T, de)
            zg = weighted_sum(r_, weights) * (nu + 1.0)
            grad = np.append(grad_b, [weight - zg, nu * weighted_sum(l_nu, weights)])
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            inv_d2 = inv_d * inv_d
            h = (nu + 1.0) * (nu - z2) * inv_d2
            l_znu = z * (z2 - 1.0) * inv_d2
            l_nunu = 0.5 * (0.5 * c2 - r_ / nu - (1.0 - z2) * inv_d2)
            hess = np.empty((p + 2, p + 2))
            h_ee = h / (scale * scale)
            hess[:p, :p] = weighted_gram(X, h_ee if weights is None else weights * h_ee)
            h_es = (g + z * h) / scale
            hess[:p, p] = hess[p, :p] = np.dot(X.T, h_es if weights is None else weights * h_es)
            h_er = -nu * l_znu / scale
            hess[:p, p + 1] = hess[p + 1, :p] = np.dot(X.T, h_er if weights is None else weights * h_er)
            hess[p, p] = zg + weighted_sum(z2 * h, weights)
            hess[p, p + 1] = hess[p + 1, p] = -nu * weighted_sum(z * l_znu, weights)
            hess[p + 1, p + 1] = grad[p + 1] + nu * nu * weighted_sum(l_nunu, weights)
            return BlockSums(nll, grad, hess, weight)

    def boundary(self, params):
        """df above :data:`BOUNDARY_DF`: its MLE is the boundary df = infinity (the likelihood rises
        all the way to it, where the model is the normal one); held at :data:`LIMIT_DF`."""
        if not math.exp(min(float(params[-1]), 700.0)) > BOUNDARY_DF:
            return None
        mask = np.zeros(len(params), dtype=bool)
        mask[-1] = True
        held = np.array(params, dtype=float)
        held[-1] = math.log(LIMIT_DF)
        return mask, held

    def boundary_note(self, estimates):
        if float(estimates[-1]) > BOUNDARY_DF:
            return (
                "df's estimate is at the boundary infinity (shown as 1e+20): the data's tails are no heavier "
                "than the normal's, so the t distribution is the normal one and df has no standard error there"
            )
        return None


def _infinite(n_params: int, order: int, weight: float) -> BlockSums:
    nan = np.full(n_params, np.nan)
    return BlockSums(
        np.inf, None if order == 0 else nan, np.full((n_params, n_params), np.nan) if order == 2 else None, weight
    )


# -- beta: a mean and a precision ------------------------------------------------------------------------


class Beta(Family):
    r"""Beta distribution for numbers in (0, 1), as a mean and a precision.

    Domain of y: numbers strictly between 0 and 1. ``mu = expit(eta)``, ``eta = X @ b`` (plus the
    offset), precision ``phi > 0``: ``y ~ Beta(a = mu phi, b = (1 - mu) phi)``, ``E(y) = mu``,
    ``Var(y) = mu (1 - mu) / (1 + phi)`` (the parametrisation of beta regression).
    Per-row NLL: ``lgamma(a) + lgamma(b) - lgamma(phi) - (a - 1) log(y) - (b - 1) log(1 - y)``.
    The optimiser works on ``t = log(phi)``. With ``A = digamma(a) - digamma(phi) - log(y)`` and
    ``B = digamma(b) - digamma(phi) - log(1 - y)`` (the NLL's derivatives in a and b) and
    ``da/d eta = a (1 - mu)``, ``db/d eta = -b mu``, ``da/dt = a``, ``db/dt = b``:
    ``d/d eta = a (1 - mu) A - b mu B``, ``d/dt = a A + b B``; the Hessian is ``J' K J`` plus the
    second derivatives of a and b times A and B, ``K = [[trigamma(a) - trigamma(phi),
    -trigamma(phi)], [-trigamma(phi), trigamma(b) - trigamma(phi)]]``.
    """

    name = "beta"
    description = "beta distribution for proportions in (0, 1): mean (logit link) and precision"
    distribution = "Beta(mu phi, (1 - mu) phi), mu = expit(x'b): mean mu, variance mu (1 - mu) / (1 + phi)"
    link = "logit: logit(mu) = x'b (+ offset)"
    loss_name = "beta NLL"
    loss_statement = "the beta NLL"
    nll_formula = "sum_i [lgamma(a_i) + lgamma(b_i) - lgamma(phi) - (a_i - 1) log(y_i) - (b_i - 1) log(1 - y_i)]"
    grad_formula = "see mlefit.families.univariate.Beta"
    hess_formula = "see mlefit.families.univariate.Beta"
    parameters = "b: the logit of the mean's coefficients; precision phi > 0, optimised as log(phi)"
    y_domain = "numbers strictly between 0 and 1"
    convex = False
    ancillary = ("precision",)
    ancillary_defaults = {"precision": 10.0}

    def encode_target(self, values, column="y", rows=None):
        return Target(unit_target(values, column, rows, self.name))

    def check_y(self, y):
        if not np.all((y > 0) & (y < 1)):
            raise FamilyError("beta targets must be numbers strictly between 0 and 1.")

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients (with an intercept, the logit of the mean) and the precision of the
        moments, ``mean (1 - mean) / variance - 1``, clipped to [0.1, 1e6]."""
        mean, var = _moments(y, weights)
        coef = np.zeros(X.shape[1])
        if intercept:
            coef[0] = math.log(mean) - math.log1p(-mean) - (0.0 if offset is None else float(np.average(offset, weights=weights)))
        phi = mean * (1.0 - mean) / var - 1.0 if var > 0 else 1.0
        return np.append(coef, math.log(min(max(phi, 0.1), 1e6)))

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        from scipy.special import digamma, expit, gammaln, polygamma

        p = X.shape[1]
        coef, t = params[:p], float(params[p])
        eta = _eta(coef, X, offset, precise)
        weight = total_weight(len(y), weights)
        if not -700.0 < t < 700.0:
            return _infinite(p + 1, order, weight)
        phi = math.exp(t)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            if eta.size and eta.min() == eta.max():
                # an intercept-only design: a and b are the same in every row, so their special
                # functions are computed once (they broadcast like the arrays of other designs)
                eta = float(eta[0])
            mu, nu = expit(eta), expit(-eta)  # nu = 1 - mu without cancellation
            a, b = phi * mu, phi * nu
            log_y, log_1y = np.log(y), np.log1p(-y)
            loss = gammaln(a) + gammaln(b) - (a - 1.0) * log_y - (b - 1.0) * log_1y
            nll = weighted_sum(loss, weights) - weight * float(gammaln(phi))
            if order == 0:
                return BlockSums(nll, weight=weight)
            dphi = float(digamma(phi))
            A = digamma(a) - dphi - log_y
            B = digamma(b) - dphi - log_1y
            d_eta = a * nu * A - b * mu * B
            de = d_eta if weights is None else weights * d_eta
            grad_b = linalg.tdot(X, de) if precise else np.dot(X.T, de)
            grad = np.append(grad_b, weighted_sum(a * A + b * B, weights))
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            tphi = float(polygamma(1, phi))
            kaa, kbb = polygamma(1, a) - tphi, polygamma(1, b) - tphi
            ja, jb = a * nu, -b * mu  # d/d eta of a and b
            # J'KJ plus A d2a + B d2b: d2a/deta2 = a nu (nu - mu), d2b/deta2 = -b mu (nu - mu),
            # d2a/deta dt = a nu, d2b/deta dt = -b mu, d2a/dt2 = a, d2b/dt2 = b
            h_ee = kaa * ja * ja + kbb * jb * jb - 2.0 * tphi * ja * jb + (nu - mu) * (A * a * nu - B * b * mu)
            h_et = kaa * ja * a + kbb * jb * b - tphi * (ja * b + jb * a) + d_eta
            h_tt = kaa * a * a + kbb * b * b - 2.0 * tphi * a * b + a * A + b * B
            hess = np.empty((p + 1, p + 1))
            hess[:p, :p] = weighted_gram(X, h_ee if weights is None else weights * h_ee)
            hess[:p, p] = hess[p, :p] = np.dot(X.T, h_et if weights is None else weights * h_et)
            hess[p, p] = weighted_sum(h_tt, weights)
            return BlockSums(nll, grad, hess, weight)


# -- geometric: counts with a mean ------------------------------------------------------------------------


class Geometric(Family):
    r"""Geometric distribution of counts 0, 1, 2, ...: the failures before the first success.

    Domain of y: counts. ``mu = exp(eta)``, ``eta = X @ b`` (plus the offset); success probability
    ``p = 1 / (1 + mu)``, ``P(y) = p (1 - p)^y``, ``E(y) = mu``, ``Var(y) = mu + mu^2`` (negbin with
    alpha = 1).
    Per-row NLL: ``softplus(eta) + y softplus(-eta)``; ``d/d eta = expit(eta) - y expit(-eta)
    = (mu - y) / (1 + mu)``, ``d2/d eta2 = (1 + y) expit(eta) expit(-eta)`` (convex).
    """

    name = "geometric"
    description = "geometric distribution of counts: mean (log link)"
    distribution = "Geometric(p = 1 / (1 + mu)) on 0, 1, 2, ..., mu = exp(x'b): variance mu + mu^2"
    link = "log: log(mu) = x'b (+ offset)"
    loss_name = "geometric NLL"
    loss_statement = "the geometric NLL"
    nll_formula = "sum_i [log(1 + mu_i) - y_i log(mu_i / (1 + mu_i))]"
    grad_formula = "b: X^T ((mu - y) / (1 + mu))"
    hess_formula = "b, b: X^T diag((1 + y) mu / (1 + mu)^2) X"
    parameters = "b: the log mean's coefficients"
    y_domain = "counts: whole numbers 0, 1, 2, ..."
    integer_target = True
    log_link = True

    def encode_target(self, values, column="y", rows=None):
        return Target(count_target(values, column, rows, self.name))

    def check_y(self, y):
        if not np.all((y >= 0) & (y == np.floor(y))):
            raise FamilyError("geometric targets must be counts 0, 1, 2, ...")

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients; with an intercept the log of the mean (less the offset's mean): the
        MLE of the intercept-only model without an offset."""
        coef = np.zeros(X.shape[1])
        if intercept:
            mean = float(np.average(y, weights=weights))
            shift = 0.0 if offset is None else float(np.average(offset, weights=weights))
            coef[0] = (math.log(mean) if mean > 0 else -math.inf) - shift
        return coef

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        from scipy.special import expit

        eta = _eta(params, X, offset, precise)
        weight = total_weight(len(y), weights)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = np.logaddexp(0.0, eta) + y * np.logaddexp(0.0, -eta)
            nll = weighted_sum(loss, weights)
            if order == 0:
                return BlockSums(nll, weight=weight)
            p, q = expit(eta), expit(-eta)
            d = p - y * q
            dw = d if weights is None else weights * d
            grad = linalg.tdot(X, dw) if precise else np.dot(X.T, dw)
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            h = (1.0 + y) * p * q
            return BlockSums(nll, grad, gram(X, h if weights is None else weights * h), weight)
