"""The distributions of ``mlefit dist``: which family computes each likelihood, and how its
parameters are reported.

A univariate distribution fit is an intercept-only fit of a family: normal is gaussian with one
column of ones (the mean is the intercept, the sd is sigma), gamma is gamma (shape, and scale =
exp(intercept) / shape), and so on. So each distribution here names the family whose code computes
its likelihood (one copy of each distribution's maths: the registry's families, or those of
:mod:`mlefit.families.univariate` for distributions that are not ``mlefit fit`` families), its
support, and the map from that family's reported parameters to the parametrisation its users know,
with the map's Jacobian for the delta method. scipy.stats' distribution of the same parameters
gives the CDF, density and quantiles that goodness of fit and plots need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import UsageError
from . import DISTRIBUTION_NAMES, univariate
from .base import Family

#: Supports: every finite number, positive numbers, numbers strictly between 0 and 1, counts.
REAL, POSITIVE, UNIT, COUNTS = "real", "positive", "unit", "counts"
#: How each support is said in a sentence.
SUPPORT_TEXT = {
    REAL: "finite numbers",
    POSITIVE: "positive numbers",
    UNIT: "numbers strictly between 0 and 1",
    COUNTS: "counts 0, 1, 2, ... (whole numbers, not negative)",
}
#: Interval scales of a reported parameter: the estimate +- q se, on the log scale (positive
#: parameters), or on the logit scale (probabilities).
LINEAR, LOG, LOGIT = "linear", "log", "logit"


def in_support(support: str, y: np.ndarray) -> np.ndarray:
    """Which values of ``y`` (float64) lie in ``support``."""
    finite = np.isfinite(y)
    if support == REAL:
        return finite
    if support == POSITIVE:
        return finite & (y > 0)
    if support == UNIT:
        return (y > 0) & (y < 1)
    return finite & (y >= 0) & (y == np.floor(y))


@dataclass(frozen=True)
class Distribution:
    """A distribution ``mlefit dist`` fits.

    Attributes
    ----------
    name : str
        As the user names it (``--family normal``).
    family : str or type
        The family that computes the likelihood: a registry name, or a class of
        :mod:`mlefit.families.univariate`.
    support : str
        :data:`REAL`, :data:`POSITIVE`, :data:`UNIT` or :data:`COUNTS`.
    parameters : tuple of str
        The reported parameters' names.
    scales : tuple of str
        The scale of each reported parameter's interval (:data:`LINEAR`, :data:`LOG`, :data:`LOGIT`).
    summary : str
        One line: what the distribution is and how its parameters are defined.
    reparametrise : callable
        The family's reported estimates (intercept first) -> ``(values, jacobian)``: the reported
        parameters and ``d values / d estimates``, shape (n_reported, n_family_params).
    frozen : callable
        Reported values -> the scipy.stats distribution with those parameters.
    """

    name: str
    family: Any
    support: str
    parameters: tuple[str, ...]
    scales: tuple[str, ...]
    summary: str
    reparametrise: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    frozen: Callable[[np.ndarray], Any]

    @property
    def discrete(self) -> bool:
        return self.support == COUNTS

    def make_family(self) -> Family:
        if isinstance(self.family, str):
            from . import get_family

            return get_family(self.family)
        return self.family()

    @property
    def censorable(self) -> bool:
        """Whether the family takes right-censored rows (``--event``)."""
        from . import get_family

        cls = type(get_family(self.family)) if isinstance(self.family, str) else self.family
        return bool(cls.censored)


# -- the maps from a family's estimates to the reported parameters ------------------------------------


def _same(estimates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    estimates = np.asarray(estimates, dtype=float)
    return estimates.copy(), np.eye(estimates.size)


def _gamma(estimates):
    b0, k = estimates
    scale = math.exp(b0) / k
    return np.array([k, scale]), np.array([[0.0, 1.0], [scale, -scale / k]])


def _exp_mean(estimates):
    """The mean exp(b0) in place of b0; the others as they are."""
    values, jac = _same(estimates)
    values[0] = math.exp(estimates[0])
    jac[0, 0] = values[0]
    return values, jac


def _rate(estimates):
    """exponential: the rate exp(-b0) in place of b0 (log T = b0 + W)."""
    (b0,) = estimates
    rate = math.exp(-b0)
    return np.array([rate]), np.array([[-rate]])


def _shape_scale(estimates):
    """log T = b0 + scale W: the shape 1 / scale and the scale exp(b0) of T (weibull, loglogistic)."""
    b0, s = estimates
    scale = math.exp(b0)
    return np.array([1.0 / s, scale]), np.array([[0.0, -1.0 / (s * s)], [scale, 0.0]])


def _geometric(estimates):
    (b0,) = estimates
    p = 1.0 / (1.0 + math.exp(b0)) if b0 < 700.0 else 0.0
    return np.array([p]), np.array([[-p * (1.0 - p)]])


def _beta(estimates):
    eta, phi = estimates
    mu, nu = 1.0 / (1.0 + math.exp(-eta)), 1.0 / (1.0 + math.exp(eta))
    a, b = phi * mu, phi * nu
    return np.array([a, b]), np.array([[a * nu, mu], [-b * mu, nu]])


def _scipy(name: str, *args: Any, **kwargs: Any):
    import scipy.stats

    return getattr(scipy.stats, name)(*args, **kwargs)


def _student_t(values):
    loc, scale, df = values
    if df > univariate.BOUNDARY_DF:  # the boundary df = infinity: the normal distribution
        return _scipy("norm", loc=loc, scale=scale)
    return _scipy("t", df, loc=loc, scale=scale)


def _negbin(values):
    mean, alpha = values
    if alpha < 1e-8:  # the boundary alpha = 0: the poisson distribution
        return _scipy("poisson", mean)
    return _scipy("nbinom", 1.0 / alpha, 1.0 / (1.0 + alpha * mean))


_ALL = {
    d.name: d
    for d in (
        Distribution(
            "normal", "gaussian", REAL, ("mean", "sd"), (LINEAR, LOG),
            "normal: mean and standard deviation (gaussian with an intercept only)",
            _same, lambda v: _scipy("norm", loc=v[0], scale=v[1]),
        ),
        Distribution(
            "lognormal", "lognormal", POSITIVE, ("meanlog", "sdlog"), (LINEAR, LOG),
            "log-normal: the mean and standard deviation of log T (the lognormal family: meanlog = intercept, "
            "sdlog = scale)",
            _same, lambda v: _scipy("lognorm", v[1], scale=math.exp(v[0])),
        ),
        Distribution(
            "exponential", "exponential", POSITIVE, ("rate",), (LOG,),
            "exponential: rate, mean 1 / rate (the exponential family: rate = exp(-intercept))",
            _rate, lambda v: _scipy("expon", scale=1.0 / v[0]),
        ),
        Distribution(
            "weibull", "weibull", POSITIVE, ("shape", "scale"), (LOG, LOG),
            "Weibull: shape k and scale, S(t) = exp(-(t / scale)^k) (the weibull family: shape = 1 / its scale, "
            "scale = exp(intercept))",
            _shape_scale, lambda v: _scipy("weibull_min", v[0], scale=v[1]),
        ),
        Distribution(
            "loglogistic", "loglogistic", POSITIVE, ("shape", "scale"), (LOG, LOG),
            "log-logistic: shape k and scale (the median), S(t) = 1 / (1 + (t / scale)^k) (the loglogistic "
            "family: shape = 1 / its scale, scale = exp(intercept))",
            _shape_scale, lambda v: _scipy("fisk", v[0], scale=v[1]),
        ),
        Distribution(
            "gamma", "gamma", POSITIVE, ("shape", "scale"), (LOG, LOG),
            "gamma: shape k and scale, mean k scale (the gamma family: scale = exp(intercept) / shape)",
            _gamma, lambda v: _scipy("gamma", v[0], scale=v[1]),
        ),
        Distribution(
            "beta", univariate.Beta, UNIT, ("shape1", "shape2"), (LOG, LOG),
            "beta: shapes a and b, mean a / (a + b) (fitted as the logit of the mean and the precision a + b)",
            _beta, lambda v: _scipy("beta", v[0], v[1]),
        ),
        Distribution(
            "student_t", univariate.StudentT, REAL, ("location", "scale", "df"), (LINEAR, LOG, LOG),
            "Student's t: location, scale and degrees of freedom",
            _same, _student_t,
        ),
        Distribution(
            "logistic", univariate.Logistic, REAL, ("location", "scale"), (LINEAR, LOG),
            "logistic: location and scale, sd = pi scale / sqrt(3)",
            _same, lambda v: _scipy("logistic", loc=v[0], scale=v[1]),
        ),
        Distribution(
            "gumbel", univariate.Gumbel, REAL, ("location", "scale"), (LINEAR, LOG),
            "Gumbel (largest extreme value): location and scale, right-skewed",
            _same, lambda v: _scipy("gumbel_r", loc=v[0], scale=v[1]),
        ),
        Distribution(
            "poisson", "poisson", COUNTS, ("lambda",), (LOG,),
            "Poisson: mean lambda (the poisson family: lambda = exp(intercept))",
            _exp_mean, lambda v: _scipy("poisson", v[0]),
        ),
        Distribution(
            "negbin", "negbin", COUNTS, ("mean", "alpha"), (LOG, LOG),
            "negative binomial (NB2): mean and overdispersion alpha, variance mean + alpha mean^2 (size = 1 / alpha)",
            _exp_mean, _negbin,
        ),
        Distribution(
            "geometric", univariate.Geometric, COUNTS, ("prob",), (LOGIT,),
            "geometric on 0, 1, 2, ...: success probability prob, mean (1 - prob) / prob",
            _geometric, lambda v: _scipy("geom", v[0], loc=-1),
        ),
    )
}
#: Every distribution by name, in the order of :data:`mlefit.families.DISTRIBUTION_NAMES`.
DISTRIBUTIONS: dict[str, Distribution] = {name: _ALL[name] for name in DISTRIBUTION_NAMES}


def get_distribution(name: str) -> Distribution:
    """The distribution called ``name``, or a UsageError listing the known names."""
    key = name.strip().lower()
    if key not in DISTRIBUTIONS:
        raise UsageError(f"unknown distribution '{name}'.", f"Choose among: {', '.join(DISTRIBUTION_NAMES)}.")
    return DISTRIBUTIONS[key]
