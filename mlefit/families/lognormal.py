"""Log-normal family: accelerated-failure-time regression for right-censored survival times."""

from __future__ import annotations

import math

import numpy as np

from .survival import AcceleratedFailureTime

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
#: Above this z, the inverse Mills ratio comes from its continued fraction (see :func:`inverse_mills`).
MILLS_FRACTION_Z = 4.0
#: Terms of that continued fraction: at z >= 4 the truncation error is below float64's rounding.
MILLS_FRACTION_TERMS = 40


class LogNormal(AcceleratedFailureTime):
    r"""Log-normal survival times as an accelerated-failure-time model, right-censoring allowed.

    Domain of y: positive times; with ``--event``, a row with event 0 is right-censored (zero, a
    negative or a non-numeric time is an error naming its data row).
    Model: ``log T = eta + scale * W``, ``eta = X @ b`` (plus the offset), W standard normal, as
    R's ``survreg(dist = "lognormal")``: ``log T ~ Normal(eta, scale^2)``.
    Per-row NLL, with ``z = (log t - eta) / scale``, ``s = log(scale)``, ``delta`` 1 for an event:
    an event's ``z^2 / 2 + log(2 pi) / 2 + s + log t``, a censored row's
    ``-log S(t) = -log Phi(-z)`` (``scipy.special.log_ndtr``, exact far in the tail).
    The optimiser works on s; results report ``scale``. With ``g = z`` for an event and the inverse
    Mills ratio ``g = lambda(z) = phi(z) / Phi(-z)`` for a censored row, ``h = 1`` and
    ``h = lambda (lambda - z)``: ``d/d eta = -g / scale``, ``d/ds = delta - z g``;
    ``d2/d eta2 = h / scale^2``, ``d2/d eta ds = (g + z h) / scale``, ``d2/ds2 = z g + z^2 h``.
    The NLL is convex in b at a fixed scale (the normal density and survival function are
    log-concave), not jointly in b and s.
    """

    name = "lognormal"
    description = "log-normal survival regression (accelerated failure time), right-censoring with --event"
    distribution = "log T = x'b + scale W, W standard normal: log T ~ Normal(x'b, scale^2)"
    link = "log: log(T) = x'b (+ offset) + scale W; exp(b) multiplies the time"
    loss_name = "log-normal NLL"
    loss_statement = (
        "the censored log-normal NLL: -log f(t_i) for an event, -log S(t_i) = -log Phi(-z_i) for a censored row, "
        "z_i = (log t_i - x_i'b) / scale"
    )
    nll_formula = (
        "sum_i delta_i [z_i^2 / 2 + log(2 pi) / 2 + log(scale) + log(t_i)] - (1 - delta_i) log Phi(-z_i), "
        "z_i = (log t_i - x_i'b) / scale"
    )
    grad_formula = (
        "b: -X^T (g / scale);  log(scale): sum_i [delta_i - z_i g_i], g_i = z_i for an event, "
        "phi(z_i) / Phi(-z_i) for a censored row"
    )
    hess_formula = (
        "b, b: X^T diag(h_i / scale^2) X;  b, log(scale): X^T ((g + z h) / scale);  "
        "log(scale), log(scale): sum_i [z_i g_i + z_i^2 h_i], h_i = 1 for an event, g_i (g_i - z_i) censored"
    )
    parameters = (
        "b: one coefficient per column of X (the intercept first, when present); exp(b) multiplies the time "
        "(exp(x'b) is the median time); scale > 0, the standard deviation of log T, optimised as log(scale) "
        "and reported as scale"
    )
    error_median = 0.0
    error_mean = 0.0
    error_sd = 1.0

    def error_terms(self, z, event, order):
        from scipy.special import log_ndtr

        censored = ~event
        zc = z[censored]
        loss = 0.5 * z * z + HALF_LOG_2PI
        loss[censored] = -log_ndtr(-zc)
        if order == 0:
            return loss, None, None
        mills, excess = inverse_mills(zc)
        g = z.copy()
        g[censored] = mills
        h = np.ones_like(z)
        h[censored] = mills * excess
        return loss, g, h

    def error_log_survival(self, z):
        from scipy.special import log_ndtr

        return log_ndtr(-z)

    def error_draw(self, rng, n_obs):
        return rng.standard_normal(n_obs)


def inverse_mills(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse Mills ratio ``lambda(z) = phi(z) / Phi(-z)`` (the normal hazard at z) and
    ``lambda(z) - z`` (positive), both to float64 precision for every z.

    Up to :data:`MILLS_FRACTION_Z`, ``lambda = exp(log phi(z) - log Phi(-z))``; beyond, the
    difference would cancel (``lambda - z`` is about ``1 / z``) and the exponent lose ``z^2 / 2``
    units of rounding, so both come from Laplace's continued fraction
    ``lambda(z) - z = 1 / (z + 2 / (z + 3 / (z + ...)))``, evaluated backwards.
    """
    from scipy.special import log_ndtr

    mills = np.empty_like(z)
    excess = np.empty_like(z)
    far = z > MILLS_FRACTION_Z
    near = ~far
    zn = z[near]
    mills[near] = np.exp(-0.5 * zn * zn - HALF_LOG_2PI - log_ndtr(-zn))
    excess[near] = mills[near] - zn
    zf = z[far]
    tail = np.zeros_like(zf)
    for k in range(MILLS_FRACTION_TERMS, 1, -1):
        tail = k / (zf + tail)
    excess[far] = 1.0 / (zf + tail)
    mills[far] = zf + excess[far]
    return mills, excess
