"""Accelerated-failure-time regression for right-censored survival times: what the survival
families (weibull, exponential, lognormal) share.

A survival family models the logarithm of a positive time ``T`` as a location-scale model,
``log T = eta + scale * W`` with ``eta = x'b`` (plus the offset) and ``W`` a standard error
distribution (extreme value, normal), as R's ``survival::survreg`` parametrises it. A row whose
event was observed contributes the density of ``T``; a right-censored row (the event had not
happened by time t) contributes the survival function ``P(T > t)``. A family says only what is
particular to its ``W`` (:meth:`AcceleratedFailureTime.error_terms` and the hooks beside it); the
likelihood's layout, the derivatives' chain through ``eta`` and ``log(scale)``, the censored target,
simulation and prediction are here.

The target is encoded as one float64 per row, the time for an observed event and minus the time
for a censored row, so every engine (memory, the stream cache, Dask) carries it unchanged.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from .. import linalg
from ..errors import DataError, FamilyError, UsageError
from .base import BlockSums, Family, Target, data_row, gram, label_text, numeric_target, total_weight, weighted_sum


class AcceleratedFailureTime(Family):
    r"""The accelerated-failure-time (AFT) model for right-censored times; subclasses give ``W``.

    Domain of y: positive times; with ``--event``, a row with event 0 (false) is right-censored:
    its time is a lower bound of the time of its event.
    Model: ``log T = eta + scale * W``, ``eta = X @ b`` (plus the offset); ``scale`` > 0 is
    optimised as ``s = log(scale)`` and reported as ``scale`` (a family may fix it at 1).
    With ``z = (log t - eta) / scale`` and ``L(z)`` the error's part of the row's NLL, ``-log f_W(z)``
    for an event and ``-log S_W(z)`` for a censored row (``S_W(z) = P(W > z)``):

    Per-row NLL: ``L(z) + delta (s + log t)``, ``delta`` 1 for an event and 0 for a censored row:
    an event's term is ``-log f_T(t)``, the density of T at t, whose Jacobian is ``1 / (scale t)``.
    Derivatives, with ``g = dL/dz`` and ``h = d2L/dz2`` (``dz/d eta = -1 / scale``,
    ``dz/ds = -z``): ``d/d eta = -g / scale``, ``d/ds = delta - z g``;
    ``d2/d eta2 = h / scale^2``, ``d2/d eta ds = (g + z h) / scale``, ``d2/ds2 = z g + z^2 h``.
    """

    censored = True
    count_names = ("n_events", "n_censored")
    prediction_options = ("at",)
    convex = False
    ancillary = ("scale",)
    ancillary_defaults = {"scale": 1.0}
    y_domain = (
        "positive times; with --event COLUMN, a row whose event is 0 (false) is right-censored: "
        "its time is a lower bound"
    )
    penalty_statement = "NLL + (l2/2) ||b||^2, intercept and scale not penalised"
    #: The median, mean and standard deviation of the error W.
    error_median: ClassVar[float]
    error_mean: ClassVar[float]
    error_sd: ClassVar[float]

    # -- the error distribution: a subclass's part ----------------------------------------------
    def error_terms(
        self, z: np.ndarray, event: np.ndarray, order: int
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(L, g, h)`` per row: ``L(z) = -log f_W(z)`` for an event, ``-log S_W(z)`` for a
        censored row, and its first and second derivatives in z (None above ``order``)."""
        raise NotImplementedError

    def error_log_survival(self, z: np.ndarray) -> np.ndarray:
        """``log S_W(z) = log P(W > z)``."""
        raise NotImplementedError

    def error_draw(self, rng: np.random.Generator, n_obs: int) -> np.ndarray:
        """``n_obs`` draws of W."""
        raise NotImplementedError

    # -- the target -------------------------------------------------------------------------------
    def encode_target(
        self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None, event: np.ndarray | None = None
    ) -> Target:
        """Positive times; ``event`` (booleans, True for an observed event) negates the censored
        rows' times. Without it every row is an event."""
        t = survival_times(values, column, rows, self.name)
        return Target(t if event is None else np.where(event, t, -t))

    def check_y(self, y: np.ndarray) -> None:
        if not np.all(np.isfinite(y) & (y != 0)):
            raise FamilyError(f"{self.name} targets must be positive times (negated for a censored row).")

    def count_rows(self, y, weights):
        event = (y > 0).astype(np.float64)
        n_events = weighted_sum(event, weights)
        return np.array([n_events, total_weight(len(y), weights) - n_events])

    def check_counts(self, counts):
        if not counts["n_events"] > 0:
            raise DataError(
                "no row has an observed event: every time is right-censored, so the likelihood rises "
                "without bound as the times grow and has no maximum.",
                "Check --event: 1 (or true) marks an observed event, 0 (false) a censored row.",
            )

    def censor(self, y, limits):
        """Times ``y`` (encoded) censored at ``limits``: a row whose time exceeds its limit becomes a
        censored row at the limit."""
        limits = np.broadcast_to(np.asarray(limits, dtype=np.float64), y.shape)
        return np.where(np.abs(y) > limits, -limits, y)

    def split_target(self, y):
        return np.abs(y), (y > 0).astype(np.int64)

    # -- start ------------------------------------------------------------------------------------
    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients and, with an intercept, :meth:`start_intercept` of the log times
        (less the offset); the scale from their spread, ``sd(log t) / sd(W)``, clipped to
        [0.05, 20]."""
        r = np.log(np.abs(y))
        if offset is not None:
            r = r - offset
        w = np.ones(len(r)) if weights is None else weights
        mean = float(np.average(r, weights=w))
        sd = math.sqrt(float(np.average((r - mean) ** 2, weights=w)))
        scale = min(max(sd / self.error_sd, 0.05), 20.0) if self.ancillary else 1.0
        coef = np.zeros(X.shape[1])
        if intercept:
            coef[0] = self.start_intercept(r, y > 0, w, scale)
        return np.append(coef, [math.log(scale)] * len(self.ancillary))

    def start_intercept(self, r: np.ndarray, event: np.ndarray, w: np.ndarray, scale: float) -> float:
        """A start of the intercept from the log times ``r`` (less the offset): their mean less
        ``scale`` times the mean of W."""
        return float(np.average(r, weights=w)) - scale * self.error_mean

    # -- the block function ---------------------------------------------------------------------------
    def _split(self, params: np.ndarray, n_features: int) -> tuple[np.ndarray, float]:
        return params[:n_features], (float(params[n_features]) if self.ancillary else 0.0)

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        p = X.shape[1]
        coef, s = self._split(params, p)
        eta = linalg.dot(X, coef) if precise else np.dot(X, coef)
        if offset is not None:
            eta = eta + offset
        weight = total_weight(len(y), weights)
        event = y > 0
        delta = event.astype(np.float64)
        log_t = np.log(np.abs(y))
        # A trial point far out (a scale or an exp(z) beyond float64) gives an infinite NLL, which
        # the optimiser rejects, not a warning.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            scale = np.exp(s)
            z = (log_t - eta) / scale
            loss, g, h = self.error_terms(z, event, order)
            nll = weighted_sum(loss + delta * (s + log_t), weights)
            if order == 0:
                return BlockSums(nll, weight=weight)
            d_eta = -g / scale
            de = d_eta if weights is None else weights * d_eta
            grad_b = linalg.tdot(X, de) if precise else np.dot(X.T, de)
            grad = np.append(grad_b, [weighted_sum(delta - z * g, weights)] * len(self.ancillary))
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            h_ee = h / (scale * scale)
            hess = np.empty((grad.size, grad.size))
            hess[:p, :p] = gram(X, h_ee if weights is None else weights * h_ee)
            if self.ancillary:
                h_es = (g + z * h) / scale
                hess[:p, p] = hess[p, :p] = np.dot(X.T, h_es if weights is None else weights * h_es)
                hess[p, p] = weighted_sum(z * g + z * z * h, weights)
            return BlockSums(nll, grad, hess, weight)

    def scores(self, params, X, y, offset=None):
        p = X.shape[1]
        coef, s = self._split(params, p)
        scale = math.exp(s)
        z = (np.log(np.abs(y)) - eta_of(coef, X, offset)) / scale
        _, g, _ = self.error_terms(z, y > 0, 1)
        columns = [X * (-g / scale)[:, None]]
        if self.ancillary:
            columns.append(((y > 0) - z * g)[:, None])
        return np.hstack(columns)

    # -- simulation and prediction ----------------------------------------------------------------------
    def simulate(self, params, X, rng, offset=None):
        """Event times ``exp(eta + scale W)`` (none censored: see :meth:`censor`)."""
        coef, s = self._split(params, X.shape[1])
        return np.exp(eta_of(coef, X, offset) + math.exp(s) * self.error_draw(rng, X.shape[0]))

    def _natural_split(self, estimates: np.ndarray, n_features: int) -> tuple[np.ndarray, float]:
        estimates = np.asarray(estimates, dtype=float)
        return estimates[:n_features], (float(estimates[n_features]) if self.ancillary else 1.0)

    def predict(self, estimates, X, offset=None):
        """The median time of each row, ``exp(eta + scale * median(W))``."""
        coef, scale = self._natural_split(estimates, X.shape[1])
        return np.exp(eta_of(coef, X, offset) + scale * self.error_median)

    def survival(self, estimates, X, at: float, offset=None) -> np.ndarray:
        """``P(T > at)`` for each row."""
        coef, scale = self._natural_split(estimates, X.shape[1])
        z = (math.log(at) - eta_of(coef, X, offset)) / scale
        return np.exp(self.error_log_survival(z))

    def prediction_columns(self, estimates, X, *, levels, target, offset=None, at: Any = None, **options):
        """``predicted_<target>``, the median time, and with ``at`` the probability of surviving
        past that time, ``survival_at_<at>``."""
        columns = {f"predicted_{target}": self.predict(estimates, X, offset=offset)}
        if at is not None:
            if not (math.isfinite(at) and at > 0):
                raise UsageError(f"--at must be a positive time; got {at:g}.")
            columns[f"survival_at_{label_text(float(at))}"] = self.survival(estimates, X, float(at), offset=offset)
        return columns


def eta_of(coef: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    eta = np.dot(X, coef)
    return eta if offset is None else eta + offset


def survival_times(values: np.ndarray, column: str, rows: np.ndarray | None, family: str) -> np.ndarray:
    """Positive times as float64, or a FamilyError naming the first other value and its data row."""
    t = numeric_target(values, column, rows, f"{family} needs positive survival times")
    bad = np.flatnonzero(~(np.isfinite(t) & (t > 0)))
    if bad.size:
        first = int(bad[0])
        raise FamilyError(
            f"target column '{column}' has {label_text(values[first])} in data row {data_row(rows, first)}; "
            f"{family} needs positive survival times (an event cannot happen at time zero or before it)."
        )
    return t
