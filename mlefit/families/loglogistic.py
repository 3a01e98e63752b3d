"""Log-logistic family: accelerated-failure-time regression for right-censored survival times."""

from __future__ import annotations

import math

import numpy as np

from .survival import AcceleratedFailureTime
from .univariate import logistic_terms


class LogLogistic(AcceleratedFailureTime):
    r"""Log-logistic survival times as an accelerated-failure-time model, right-censoring allowed.

    Domain of y: positive times; with ``--event``, a row with event 0 is right-censored (zero, a
    negative or a non-numeric time is an error naming its data row).
    Model: ``log T = eta + scale * W``, ``eta = X @ b`` (plus the offset), W standard logistic, as
    R's ``survreg(dist = "loglogistic")``: T is log-logistic with shape ``1 / scale`` and scale
    ``exp(eta)`` (its median), ``S(t) = 1 / (1 + (t / exp(eta))^(1 / scale))``; the odds of the
    event by time t are proportional across rows (``exp(-b / scale)`` their ratio).
    Per-row NLL, with ``z = (log t - eta) / scale``, ``s = log(scale)``, ``delta`` 1 for an event:
    an event's ``z + 2 log(1 + exp(-z)) + s + log t``, a censored row's ``-log S(t) =
    log(1 + exp(z))``, both from one ``exp(-|z|)``. The optimiser works on s; results report ``scale``.
    With ``g = tanh(z / 2)``, ``h = 2 expit(z) expit(-z)`` for an event and ``g = expit(z)``,
    ``h = expit(z) expit(-z)`` for a censored row: ``d/d eta = -g / scale``, ``d/ds = delta - z g``;
    ``d2/d eta2 = h / scale^2``, ``d2/d eta ds = (g + z h) / scale``, ``d2/ds2 = z g + z^2 h``.
    The NLL is convex in b at a fixed scale (the logistic density and survival function are
    log-concave), not jointly in b and s.
    """

    name = "loglogistic"
    description = "log-logistic survival regression (accelerated failure time), right-censoring with --event"
    distribution = "log T = x'b + scale W, W standard logistic: T ~ LogLogistic(shape 1/scale, scale exp(x'b))"
    link = "log: log(T) = x'b (+ offset) + scale W; exp(b) multiplies the time"
    loss_name = "log-logistic NLL"
    loss_statement = (
        "the censored log-logistic NLL: -log f(t_i) for an event, -log S(t_i) = log(1 + exp(z_i)) for a censored "
        "row, z_i = (log t_i - x_i'b) / scale"
    )
    nll_formula = (
        "sum_i delta_i [z_i + 2 log(1 + exp(-z_i)) + log(scale) + log(t_i)] + (1 - delta_i) log(1 + exp(z_i)), "
        "z_i = (log t_i - x_i'b) / scale"
    )
    grad_formula = (
        "b: -X^T (g / scale);  log(scale): sum_i [delta_i - z_i g_i], g_i = tanh(z_i / 2) for an event, "
        "expit(z_i) for a censored row"
    )
    hess_formula = (
        "b, b: X^T diag(h_i / scale^2) X;  b, log(scale): X^T ((g + z h) / scale);  "
        "log(scale), log(scale): sum_i [z_i g_i + z_i^2 h_i], h_i = 2 expit(z_i) expit(-z_i) for an event, "
        "expit(z_i) expit(-z_i) censored"
    )
    parameters = (
        "b: one coefficient per column of X (the intercept first, when present); exp(b) multiplies the time "
        "(exp(x'b) is the median time); scale > 0, optimised as log(scale) and reported as scale "
        "(the log-logistic shape is 1 / scale)"
    )
    error_median = 0.0
    error_mean = 0.0
    error_sd = math.pi / math.sqrt(3.0)

    def error_terms(self, z, event, order):
        return logistic_terms(z, event, order)

    def error_log_survival(self, z):
        return -np.logaddexp(0.0, z)

    def error_draw(self, rng, n_obs):
        return rng.logistic(size=n_obs)
