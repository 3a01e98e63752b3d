"""Weibull family: accelerated-failure-time regression for right-censored survival times."""

from __future__ import annotations

import math

import numpy as np

from .survival import AcceleratedFailureTime

#: Euler's constant: the mean of the standard extreme-value (minimum) distribution is its negative.
EULER_GAMMA = 0.5772156649015329


class Weibull(AcceleratedFailureTime):
    r"""Weibull survival times as an accelerated-failure-time model, right-censoring allowed.

    Domain of y: positive times; with ``--event``, a row with event 0 is right-censored (zero, a
    negative or a non-numeric time is an error naming its data row).
    Model: ``log T = eta + scale * W``, ``eta = X @ b`` (plus the offset), W standard extreme value
    (minimum): ``S_W(w) = exp(-exp(w))``, ``f_W(w) = exp(w - exp(w))``. T is Weibull with shape
    ``1 / scale`` and scale ``exp(eta)``, as R's ``survreg(dist = "weibull")`` parametrises it; the
    proportional-hazards coefficients are ``-b / scale``.
    Per-row NLL, with ``z = (log t - eta) / scale``, ``s = log(scale)``, ``delta`` 1 for an event:
    ``exp(z) - delta (z - s - log t)``; a censored row's is ``-log S(t) = exp(z)``, never
    ``log(1 - cdf)``. The optimiser works on s; results report ``scale``.
    Derivatives: ``d/d eta = (delta - exp(z)) / scale``, ``d/ds = delta + z (delta - exp(z))``;
    ``d2/d eta2 = exp(z) / scale^2``, ``d2/d eta ds = (exp(z) (1 + z) - delta) / scale``,
    ``d2/ds2 = z (exp(z) - delta) + z^2 exp(z)``.
    The NLL is convex in b at a fixed scale (``exp(z)`` is convex in eta), not jointly in b and s.
    """

    name = "weibull"
    description = "Weibull survival regression (accelerated failure time), right-censoring with --event"
    distribution = "log T = x'b + scale W, W standard extreme value: T ~ Weibull(shape 1/scale, scale exp(x'b))"
    link = "log: log(T) = x'b (+ offset) + scale W; exp(b) multiplies the time"
    loss_name = "Weibull NLL"
    loss_statement = (
        "the censored Weibull NLL: -log f(t_i) for an event, -log S(t_i) = exp(z_i) for a censored row, "
        "z_i = (log t_i - x_i'b) / scale"
    )
    nll_formula = "sum_i [exp(z_i) - delta_i (z_i - log(scale) - log(t_i))], z_i = (log t_i - x_i'b) / scale"
    grad_formula = (
        "b: X^T ((delta - exp(z)) / scale);  log(scale): sum_i [delta_i - z_i (exp(z_i) - delta_i)]"
    )
    hess_formula = (
        "b, b: X^T diag(exp(z_i) / scale^2) X;  b, log(scale): X^T ((exp(z) (1 + z) - delta) / scale);  "
        "log(scale), log(scale): sum_i [z_i (exp(z_i) - delta_i) + z_i^2 exp(z_i)]"
    )
    parameters = (
        "b: one coefficient per column of X (the intercept first, when present); exp(b) multiplies the time "
        "(the hazard ratio is exp(-b / scale)); scale > 0, optimised as log(scale) and reported as scale "
        "(the Weibull shape is 1 / scale)"
    )
    error_median = math.log(math.log(2.0))
    error_mean = -EULER_GAMMA
    error_sd = math.pi / math.sqrt(6.0)

    def error_terms(self, z, event, order):
        ez = np.exp(z)
        loss = np.where(event, ez - z, ez)
        if order == 0:
            return loss, None, None
        return loss, ez - event, ez

    def error_log_survival(self, z):
        return -np.exp(z)

    def error_draw(self, rng, n_obs):
        # log of a standard exponential: S(w) = P(E > exp(w)) = exp(-exp(w))
        return np.log(rng.standard_exponential(n_obs))

    def start_intercept(self, r, event, w, scale):
        """The intercept-only MLE at this scale, ``scale log(sum_i w_i exp(r_i / scale) / sum_i w_i
        delta_i)`` (exact for the exponential); the mean-based start when no row is an event."""
        from scipy.special import logsumexp

        n_events = float(w @ event)
        if not n_events > 0:
            return super().start_intercept(r, event, w, scale)
        return scale * (float(logsumexp(r / scale, b=w)) - math.log(n_events))
