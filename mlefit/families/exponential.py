"""Exponential family: survival regression with a constant hazard, right-censoring allowed."""

from __future__ import annotations

from .weibull import Weibull


class Exponential(Weibull):
    r"""Exponential survival times as an accelerated-failure-time model, right-censoring allowed:
    the Weibull model with its scale fixed at 1 (a constant hazard).

    Domain of y: positive times; with ``--event``, a row with event 0 is right-censored (zero, a
    negative or a non-numeric time is an error naming its data row).
    Model: ``log T = eta + W``, ``eta = X @ b`` (plus the offset), W standard extreme value
    (minimum): T is exponential with mean ``exp(eta)`` (hazard ``exp(-eta)``), as R's
    ``survreg(dist = "exponential")``; the proportional-hazards coefficients are ``-b``.
    Per-row NLL, with ``z = log t - eta`` and ``delta`` 1 for an event:
    ``exp(z) - delta (z - log t) = t exp(-eta) + delta eta``; a censored row's is
    ``-log S(t) = t exp(-eta)``.
    Gradient: ``X.T @ (delta - exp(z))``; Hessian: ``X.T @ diag(exp(z)) @ X`` (convex).
    """

    name = "exponential"
    description = "exponential survival regression (constant hazard), right-censoring with --event"
    distribution = "log T = x'b + W, W standard extreme value: T ~ Exponential(mean exp(x'b))"
    link = "log: log(T) = x'b (+ offset) + W; exp(b) multiplies the time"
    loss_name = "exponential NLL"
    loss_statement = (
        "the censored exponential NLL: -log f(t_i) for an event, -log S(t_i) = t_i exp(-x_i'b) for a censored row"
    )
    nll_formula = "sum_i [t_i exp(-x_i'b) + delta_i x_i'b]"
    grad_formula = "X^T (delta - t exp(-Xb))"
    hess_formula = "X^T diag(t_i exp(-x_i'b)) X"
    parameters = (
        "b: one coefficient per column of X (the intercept first, when present); exp(b) multiplies the time "
        "(the hazard ratio is exp(-b)); the scale is 1"
    )
    convex = True
    ancillary = ()
    ancillary_defaults = {}
    penalty_statement = "NLL + (l2/2) ||b||^2, intercept not penalised"
