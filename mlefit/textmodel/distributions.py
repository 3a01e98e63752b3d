"""The distributions a text model may name: their arguments, per-row NLL, mean and sampler.

Each entry gives the per-row negative log-likelihood ``-log p(y | arguments)`` as an expression
tree (built with the stable constructors of :mod:`mlefit.textmodel.expr`), the domain of each
argument and of ``y``, the mean (for ``predict``) and a sampler (for ``simulate``).
``HALF_LOG_2PI`` is ``log(2 pi) / 2``.

=====================================  ===================================================================
distribution (arguments)               per-row NLL
=====================================  ===================================================================
``normal(mean, sd)``                   ``log(sd) + HALF_LOG_2PI + ((y - mean)/sd)**2 / 2``
``bernoulli(prob)``                    ``-y log(prob) - (1 - y) log1p(-prob)``;
                                       with ``prob = sigmoid(eta)``: ``softplus(eta) - y eta``
``binomial(size, prob)``               ``-lchoose(size, y) - y log(prob) - (size - y) log1p(-prob)``;
                                       with ``prob = sigmoid(eta)``: ``size softplus(eta) - y eta - lchoose``,
                                       ``lchoose = lgamma(size+1) - lgamma(y+1) - lgamma(size-y+1)``
``poisson(rate)``                      ``rate - y log(rate) + lgamma(y + 1)``
``negbin(mean, alpha)``                NB2, ``Var(y) = mean + alpha mean**2``:
                                       ``lgamma(1/alpha) - lgamma(y + 1/alpha) + lgamma(y + 1)
                                       + (y + 1/alpha) log1p(alpha mean) - y (log(alpha) + log(mean))``
``gamma(shape, scale)``                ``lgamma(shape) + shape log(scale) - (shape - 1) log(y) + y/scale``
``weibull(shape, scale)``              ``-log(shape) + shape log(scale) - (shape - 1) log(y)
                                       + exp(shape (log(y) - log(scale)))``
``exponential(rate)``                  ``-log(rate) + rate y``
``lognormal(meanlog, sdlog)``          ``log(y) + log(sdlog) + HALF_LOG_2PI + ((log(y) - meanlog)/sdlog)**2 / 2``
``beta(a, b)``                         ``lgamma(a) + lgamma(b) - lgamma(a + b) - (a - 1) log(y) - (b - 1) log1p(-y)``
``student_t(df, loc, scale)``          ``lgamma(df/2) - lgamma((df + 1)/2) + log(df)/2 + log(pi)/2 + log(scale)
                                       + (df + 1)/2 log1p(((y - loc)/scale)**2 / df)``
=====================================  ===================================================================

These are the log-densities of ``scipy.stats`` ``norm(mean, sd)``, ``bernoulli(prob)``,
``binom(size, prob)``, ``poisson(rate)``, ``nbinom(n = 1/alpha, p = 1/(1 + alpha mean))``,
``gamma(shape, scale=scale)``, ``weibull_min(shape, scale=scale)``, ``expon(scale=1/rate)``,
``lognorm(sdlog, scale=exp(meanlog))``, ``beta(a, b)`` and ``t(df, loc, scale)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import expr as E

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

#: What an argument or the target may be, with the sentence that says it.
DOMAINS: dict[str, str] = {
    "real": "a finite number",
    "positive": "positive",
    "nonnegative": "0 or more",
    "probability": "between 0 and 1",
    "count": "a whole number 0 or more",
    "binary": "0 or 1",
    "unit": "strictly between 0 and 1",
}


@dataclass(frozen=True)
class Distribution:
    """One distribution of the table.

    Attributes
    ----------
    name : str
        The name written in a model.
    args : tuple of str
        Its arguments, in the order positional arguments follow.
    arg_domains : tuple of str
        Each argument's domain (a key of :data:`DOMAINS`).
    support : str
        The domain of ``y`` (a key of :data:`DOMAINS`; binomial's ``y`` also at most ``size``).
    nll : callable
        ``nll(y, **args) -> Expr``: the per-row NLL as an expression tree.
    mean : callable
        ``mean(**args) -> ndarray``: the mean of ``y`` from evaluated arguments.
    draw : callable
        ``draw(rng, **args) -> ndarray``: one draw of ``y`` per row, from arguments given as
        arrays of shape (n_obs,) inside their domains.
    """

    name: str
    args: tuple[str, ...]
    arg_domains: tuple[str, ...]
    support: str
    nll: Callable[..., E.Expr]
    mean: Callable[..., np.ndarray]
    draw: Callable[..., np.ndarray]


def log(x):
    return E.call("log", E.wrap(x))


def log1p(x):
    return E.call("log1p", E.wrap(x))


def lgamma(x):
    return E.call("lgamma", E.wrap(x))


def softplus(x):
    return E.call("softplus", E.wrap(x))


def exp(x):
    return E.call("exp", E.wrap(x))


def _sigmoid_argument(prob: E.Expr) -> E.Expr | None:
    """``eta`` when ``prob`` is written ``sigmoid(eta)``, else None."""
    return prob.args[0] if isinstance(prob, E.Call) and prob.func == "sigmoid" else None


def _normal_nll(y, mean, sd):
    z = (y - mean) / sd
    return log(sd) + HALF_LOG_2PI + z**2 / 2


def _bernoulli_nll(y, prob):
    eta = _sigmoid_argument(prob)
    if eta is not None:  # -y log sigmoid(eta) - (1-y) log sigmoid(-eta), simplified
        return softplus(eta) - y * eta
    return -(y * log(prob)) - (1 - y) * log1p(-prob)


def _binomial_nll(y, size, prob):
    lchoose = lgamma(size + 1) - lgamma(y + 1) - lgamma(size - y + 1)
    eta = _sigmoid_argument(prob)
    if eta is not None:
        return size * softplus(eta) - y * eta - lchoose
    return -lchoose - y * log(prob) - (size - y) * log1p(-prob)


def _poisson_nll(y, rate):
    return rate - y * log(rate) + lgamma(y + 1)


def _negbin_nll(y, mean, alpha):
    r = 1 / alpha
    return (
        lgamma(r) - lgamma(y + r) + lgamma(y + 1)
        + (y + r) * log1p(alpha * mean) - y * (log(alpha) + log(mean))
    )


def _gamma_nll(y, shape, scale):
    return lgamma(shape) + shape * log(scale) - (shape - 1) * log(y) + y / scale


def _weibull_nll(y, shape, scale):
    return -log(shape) + shape * log(scale) - (shape - 1) * log(y) + exp(shape * (log(y) - log(scale)))


def _exponential_nll(y, rate):
    return -log(rate) + rate * y


def _lognormal_nll(y, meanlog, sdlog):
    z = (log(y) - meanlog) / sdlog
    return log(y) + log(sdlog) + HALF_LOG_2PI + z**2 / 2


def _beta_nll(y, a, b):
    return lgamma(a) + lgamma(b) - lgamma(a + b) - (a - 1) * log(y) - (b - 1) * log1p(-y)


def _student_t_nll(y, df, loc, scale):
    z = (y - loc) / scale
    return (
        lgamma(df / 2) - lgamma((df + 1) / 2) + log(df) / 2 + 0.5 * math.log(math.pi)
        + log(scale) + (df + 1) / 2 * log1p(z**2 / df)
    )


def _weibull_mean(shape, scale):
    from scipy.special import gammaln

    return scale * np.exp(gammaln(1 + 1 / shape))


def _student_t_mean(df, loc, scale):
    return np.where(df > 1, loc, np.nan)  # the mean exists only for df > 1


def _negbin_draw(rng, mean, alpha):
    return rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mean)).astype(float)


def _table(*entries: Distribution) -> dict[str, Distribution]:
    return {d.name: d for d in entries}


#: The distributions by name, in the order the documentation lists them.
DISTRIBUTIONS: dict[str, Distribution] = _table(
    Distribution(
        "normal", ("mean", "sd"), ("real", "positive"), "real", _normal_nll,
        lambda mean, sd: mean, lambda rng, mean, sd: rng.normal(mean, sd),
    ),
    Distribution(
        "bernoulli", ("prob",), ("probability",), "binary", _bernoulli_nll,
        lambda prob: prob, lambda rng, prob: (rng.random(prob.shape) < prob).astype(float),
    ),
    Distribution(
        "binomial", ("size", "prob"), ("count", "probability"), "count", _binomial_nll,
        lambda size, prob: size * prob,
        lambda rng, size, prob: rng.binomial(np.asarray(size).astype(np.int64), prob).astype(float),
    ),
    Distribution(
        "poisson", ("rate",), ("nonnegative",), "count", _poisson_nll,
        lambda rate: rate, lambda rng, rate: rng.poisson(rate).astype(float),
    ),
    Distribution(
        "negbin", ("mean", "alpha"), ("positive", "positive"), "count", _negbin_nll,
        lambda mean, alpha: mean, _negbin_draw,
    ),
    Distribution(
        "gamma", ("shape", "scale"), ("positive", "positive"), "positive", _gamma_nll,
        lambda shape, scale: shape * scale, lambda rng, shape, scale: rng.gamma(shape, scale),
    ),
    Distribution(
        "weibull", ("shape", "scale"), ("positive", "positive"), "positive", _weibull_nll,
        _weibull_mean, lambda rng, shape, scale: scale * rng.weibull(shape),
    ),
    Distribution(
        "exponential", ("rate",), ("positive",), "nonnegative", _exponential_nll,
        lambda rate: 1 / rate, lambda rng, rate: rng.exponential(1 / rate),
    ),
    Distribution(
        "lognormal", ("meanlog", "sdlog"), ("real", "positive"), "positive", _lognormal_nll,
        lambda meanlog, sdlog: np.exp(meanlog + sdlog**2 / 2),
        lambda rng, meanlog, sdlog: rng.lognormal(meanlog, sdlog),
    ),
    Distribution(
        "beta", ("a", "b"), ("positive", "positive"), "unit", _beta_nll,
        lambda a, b: a / (a + b), lambda rng, a, b: rng.beta(a, b),
    ),
    Distribution(
        "student_t", ("df", "loc", "scale"), ("positive", "real", "positive"), "real", _student_t_nll,
        _student_t_mean, lambda rng, df, loc, scale: loc + scale * rng.standard_t(df),
    ),
)


def in_domain(values: np.ndarray, domain: str) -> np.ndarray:
    """A boolean per value: whether it lies in ``domain`` (a key of :data:`DOMAINS`)."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(v)
        if domain == "real":
            return finite
        if domain == "positive":
            return finite & (v > 0)
        if domain == "nonnegative":
            return finite & (v >= 0)
        if domain == "probability":
            return finite & (v >= 0) & (v <= 1)
        if domain == "count":
            return finite & (v >= 0) & (v == np.floor(v))
        if domain == "binary":
            return (v == 0) | (v == 1)
        if domain == "unit":
            return finite & (v > 0) & (v < 1)
    raise ValueError(f"unknown domain {domain!r}")
