"""Bernoulli family: binary regression with the logit (logistic regression), probit or cloglog link."""

from __future__ import annotations

import math

import numpy as np

from .. import linalg
from ..errors import FamilyError, UsageError
from .base import (
    BlockSums, Family, Target, gram, label_text, python_scalar, sorted_levels, total_weight, weighted_sum,
)


class Bernoulli(Family):
    r"""Bernoulli distribution with the logit link (logistic regression), or the probit or
    complementary log-log link (``--link``).

    Domain of y: two classes, encoded 0 and 1 (the larger label in sorted order is 1).
    Link: ``eta = X @ w``, ``p = F(eta) = P(y = 1 | x)`` with ``F`` the logistic function
    ``sigmoid`` (logit, the default), the standard normal CDF ``Phi`` (probit) or
    ``1 - exp(-exp(eta))`` (cloglog).
    Per-row NLL: the binary cross-entropy ``-[y log p + (1 - y) log(1 - p)]``. For the logit,
    ``log(1 + exp(eta)) - y * eta``, evaluated as ``logaddexp(0, eta) - y * eta`` so it is exact for
    any ``eta``; gradient ``X.T @ (p - y)``; Hessian ``X.T @ diag(p (1 - p)) @ X``.
    Probit, with ``s = 2y - 1`` and ``t = s eta``: NLL ``-log Phi(t)`` (``log_ndtr``), gradient
    ``X.T @ (-s r(t))`` with the inverse Mills ratio ``r = phi / Phi``, Hessian
    ``X.T @ diag(r (t + r)) @ X`` (far in the lower tail from the asymptotic series of the Mills
    ratio, where ``t + r`` would cancel). Cloglog, with ``u = exp(eta)``: NLL ``u`` for y = 0 and
    ``-log(1 - exp(-u))`` (``log(-expm1(-u))`` or ``log1p(-exp(-u))``) for y = 1; gradient ``u``
    and ``-q``, Hessian ``u`` and ``q (q + u - 1)``, with ``q = u / expm1(u)`` (from series where
    ``u`` is tiny).
    Each link's NLL is convex in w.
    """

    name = "bernoulli"
    description = "logistic regression: two classes, logit link (or --link probit, cloglog), binary cross-entropy"
    distribution = "Bernoulli(p), p = F(x'w): sigmoid (logit), Phi (probit), 1 - exp(-exp(x'w)) (cloglog)"
    link = (
        "logit: log(p / (1 - p)) = x'w (default); probit: Phi^-1(p) = x'w; cloglog: log(-log(1 - p)) = x'w"
    )
    loss_name = "binary cross-entropy"
    loss_statement = "binary cross-entropy (log loss): NLL / n is its mean over the rows"
    nll_formula = (
        "-sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)];  logit: sum_i [log(1 + exp(x_i'w)) - y_i x_i'w]"
    )
    grad_formula = (
        "logit: X^T (sigmoid(Xw) - y);  probit: X^T (-s r(s Xw)), s = 2y - 1, r = phi / Phi;  "
        "cloglog: X^T (u (1 - y) - y q), u = exp(Xw), q = u / expm1(u)"
    )
    hess_formula = (
        "logit: X^T diag(p_i (1 - p_i)) X;  probit: X^T diag(r_i (t_i + r_i)) X, t = s Xw;  "
        "cloglog: X^T diag(u_i (1 - y_i) + y_i q_i (q_i + u_i - 1)) X"
    )
    parameters = "w: one coefficient per column of X (the intercept first, when present)"
    y_domain = "two labels; the larger in sorted order is 1 (0/1, false/true, no/yes, ...)"
    classes = True
    separable = True
    integer_target = True
    penalty_statement = "NLL + (l2/2) ||w||^2, intercept not penalised"
    option_choices = {"link": ("logit", "probit", "cloglog")}
    option_defaults = {"link": "logit"}

    def title(self) -> str:
        return {
            "logit": "logistic regression", "probit": "probit regression", "cloglog": "complementary log-log regression",
        }[self.options["link"]]

    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
        if values.dtype.kind in "iufb" and values.size:
            # Numbers: two passes over the column instead of a sort (np.unique).
            lo, hi = values.min(), values.max()
            is_hi = values == hi
            if lo != hi and np.all(is_hi | (values == lo)):
                return self._target(is_hi.astype(np.float64), (python_scalar(lo), python_scalar(hi)))
        levels, codes = sorted_levels(values, column)
        if len(levels) != 2:
            shown = ", ".join(label_text(v) for v in levels[:5])
            more = ", ..." if len(levels) > 5 else ""
            raise FamilyError(
                f"target column '{column}' has {len(levels)} distinct value(s) ({shown}{more}); "
                "bernoulli needs exactly two.",
                "Use --family categorical for more than two classes."
                if len(levels) > 2
                else "Both classes must appear in the data.",
            )
        return self._target(codes.astype(np.float64), tuple(python_scalar(v) for v in levels))

    @staticmethod
    def _target(y: np.ndarray, levels: tuple) -> Target:
        lo, hi = levels
        note = None
        if not (lo in (0, False) and hi in (1, True)):
            note = f"'{label_text(hi)}' is 1 and '{label_text(lo)}' is 0 (the larger label in sorted order is 1)"
        return Target(y, (lo, hi), note)

    def check_y(self, y: np.ndarray) -> None:
        if not np.all((y == 0) | (y == 1)):
            raise FamilyError("bernoulli labels must be 0 or 1 after encoding.")

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients and, with an intercept, ``F^-1`` of the mean: the intercept-only MLE."""
        params = np.zeros(X.shape[1])
        if intercept:
            mean = float(np.average(y, weights=weights))
            if 0.0 < mean < 1.0:
                params[0] = _quantile(self.options["link"], mean)
            if offset is not None:
                params[0] -= float(np.average(offset, weights=weights))
        return params

    def curvature_bound(self):
        """logit: ``p (1 - p) <= 1/4``; probit: the second derivative of ``-log Phi`` lies below 1;
        cloglog: none (``exp(eta)`` for a 0)."""
        return {"logit": 0.25, "probit": 1.0}.get(self.options["link"])

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        if self.options["link"] != "logit":
            return self._evaluate_link(params, X, y, weights, order, precise, offset)
        # One pass over the block, written around e = exp(-|eta|) in (0, 1], which never
        # overflows. With s = eta where y = 0 and -eta where y = 1 (y is 0/1 after encoding):
        #   per-row NLL  log(1 + exp(eta)) - y eta = softplus(s) = max(s, 0) + log1p(e),
        #   p - y        = flip * sigmoid(s), flip = 1 - 2y, sigmoid(s) = q (s >= 0) or e q (s < 0)
        #                  with q = 1 / (1 + e),
        #   p (1 - p)    = e q^2.
        # No term is a difference of nearly equal numbers, so each is exact for any eta.
        eta = linalg.dot(X, params) if precise else np.dot(X, params)
        if offset is not None:
            eta = eta + offset
        flip = 1.0 - 2.0 * y  # +1 where y = 0, -1 where y = 1
        s = eta * flip
        a = np.abs(eta)
        e = np.exp(-a)
        loss = np.log1p(e)
        loss += np.maximum(s, 0.0)
        nll = weighted_sum(loss, weights)
        weight = total_weight(len(y), weights)
        if order == 0:
            return BlockSums(nll, weight=weight)
        q = 1.0 / (1.0 + e)
        r = np.where(s >= 0.0, q, e * q)  # sigmoid(s)
        r *= flip if weights is None else flip * weights  # (p - y), weighted
        grad = linalg.tdot(X, r) if precise else np.dot(X.T, r)
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        h = e * q
        h *= q if weights is None else q * weights
        # The smaller class log-probability of a row is -softplus(|eta|): least at the largest |eta|.
        top = a.max(initial=-np.inf) if weights is None else a.max(where=weights > 0, initial=-np.inf)
        low = -float(np.logaddexp(0.0, top)) if top > -np.inf else 0.0
        return BlockSums(nll, grad, gram(X, h), weight, low)

    def _evaluate_link(self, params, X, y, weights, order, precise, offset):
        """:meth:`evaluate` for the probit and cloglog links (see :func:`link_parts`)."""
        eta = linalg.dot(X, params) if precise else np.dot(X, params)
        if offset is not None:
            eta = eta + offset
        link = self.options["link"]
        loss, g, h = link_parts(link, eta, y, order)
        weight = total_weight(len(y), weights)
        with np.errstate(invalid="ignore"):  # an infinite loss at a trial point far out
            nll = weighted_sum(loss, weights)
        if order == 0:
            return BlockSums(nll, weight=weight)
        gw = g if weights is None else g * weights
        grad = linalg.tdot(X, gw) if precise else np.dot(X.T, gw)
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        hw = h if weights is None else h * weights
        live = eta if weights is None else eta[weights > 0]
        low = _min_log_prob(link, live)
        return BlockSums(nll, grad, gram(X, hw), weight, low)

    def hess_root(self, params, X, y, weights=None, offset=None):
        """The weighted design ``sqrt(h) X``, ``h = p (1 - p)`` for the logit (the Hessian's weight
        of the link otherwise; times the weights): its Gram matrix is the Hessian."""
        from scipy.special import expit

        eta = _eta(params, X, offset)
        if self.options["link"] == "logit":
            h = expit(eta) * expit(-eta)
        else:
            h = link_parts(self.options["link"], eta, y, 2)[2]
        if weights is not None:
            h = h * weights
        return X * np.sqrt(h)[:, None]

    def scores(self, params, X, y, offset=None):
        from scipy.special import expit

        if self.options["link"] != "logit":
            return X * link_parts(self.options["link"], _eta(params, X, offset), y, 1)[1][:, None]
        return X * (expit(_eta(params, X, offset)) - y)[:, None]

    def simulation_classes(self, n_rows, n_classes):
        if n_classes not in (None, 2):
            raise UsageError(f"bernoulli has 2 classes; --classes {n_classes} does not apply.")
        super().simulation_classes(n_rows, None)
        return 2

    def simulation_levels(self, n_classes):
        return (0, 1)

    def simulate(self, params, X, rng, offset=None):
        return (rng.random(X.shape[0]) < self._probability(_eta(params, X, offset))).astype(np.float64)

    def predict(self, estimates, X, offset=None):
        return self._probability(_eta(np.asarray(estimates, dtype=float), X, offset))

    def _probability(self, eta: np.ndarray) -> np.ndarray:
        """``P(y = 1) = F(eta)`` of the link."""
        from scipy.special import expit, ndtr

        link = self.options["link"]
        if link == "logit":
            return expit(eta)
        if link == "probit":
            return ndtr(eta)
        with np.errstate(over="ignore"):
            return -np.expm1(-np.exp(eta))


def _eta(params: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    eta = np.dot(X, params)
    return eta if offset is None else eta + offset


def _quantile(link: str, p: float) -> float:
    """``F^-1(p)`` of the link, for 0 < p < 1."""
    if link == "logit":
        return math.log(p) - math.log1p(-p)
    if link == "probit":
        from scipy.special import ndtri

        return float(ndtri(p))
    return math.log(-math.log1p(-p))


# -- the probit and cloglog links: per-row NLL and derivatives with respect to eta ---------------

#: Below ``-MILLS_SERIES_X`` the probit curvature ``r (t + r)`` comes from the asymptotic series of
#: the Mills ratio (``t + r`` would lose about ``u t^2`` of its value to cancellation).
MILLS_SERIES_X = 30.0
#: ``(2k - 1)!!`` for k = 1..10: the series ``1 - x m(x) = sum_k (-1)^(k+1) (2k - 1)!! / x^(2k)``.
_DOUBLE_FACTORIALS = tuple(math.prod(range(1, 2 * k, 2)) for k in range(1, 11))
#: ``sqrt(2 / pi)``.
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def inverse_mills(t: np.ndarray) -> np.ndarray:
    """``phi(t) / Phi(t)``, the derivative of ``log Phi(t)``, for any t (0 at +inf), without
    over- or underflow: ``sqrt(2 / pi) / erfcx(-t / sqrt(2))``."""
    from scipy.special import erfcx

    with np.errstate(over="ignore"):
        return _SQRT_2_OVER_PI / erfcx(-t / math.sqrt(2.0))


def probit_curvature(t: np.ndarray, r: np.ndarray | None = None) -> np.ndarray:
    """``-d^2 log Phi(t) / dt^2 = r (t + r)``, ``r`` the inverse Mills ratio (given or computed),
    in (0, 1) for every finite t (0 at +inf).

    For ``t < -MILLS_SERIES_X``, with ``x = -t`` and the Mills ratio ``m = 1 / r``,
    ``r (t + r) = r^2 (1 - x m)`` and ``1 - x m`` comes from its asymptotic series, to full precision.
    """
    r = inverse_mills(t) if r is None else r
    with np.errstate(invalid="ignore"):  # t = +inf: r = 0, and 0 * inf is replaced below
        out = r * (t + r)
    out = np.where(np.isposinf(t), 0.0, out)
    far = t < -MILLS_SERIES_X
    if far.any():
        v = 1.0 / t[far] ** 2
        series = np.zeros_like(v)
        for k in reversed(range(len(_DOUBLE_FACTORIALS))):  # Horner's scheme in v
            series = (series + (-1) ** k * _DOUBLE_FACTORIALS[k]) * v
        out[far] = r[far] ** 2 * series
    return out


def link_parts(link: str, eta: np.ndarray, y: np.ndarray, order: int):
    """Per-row NLL, its derivative ``g`` and second derivative ``h`` with respect to ``eta`` for
    the probit and cloglog links (None beyond ``order``); ``y`` is 0/1."""
    from scipy.special import log_ndtr

    if link == "probit":
        s = 2.0 * y - 1.0
        t = s * eta
        loss = -log_ndtr(t)
        if order == 0:
            return loss, None, None
        r = inverse_mills(t)
        return loss, -s * r, probit_curvature(t, r) if order >= 2 else None
    # cloglog: p = 1 - exp(-u), u = exp(eta)
    with np.errstate(over="ignore"):
        u = np.exp(eta)
    one = y == 1
    loss = np.where(one, -log_cloglog_cdf(eta, u), u)
    if order == 0:
        return loss, None, None
    # q = u / expm1(u), the y = 1 rows' -g: from u e^-u once expm1 would overflow (q underflows to
    # 0 there, as it does at any eta above 700), and 1 - u/2 where u is too small for the quotient
    q = np.empty_like(eta)
    big, small = eta > 3.9, eta < -18.5  # u > 49, u < 1e-8
    rest = ~(big | small)
    q[big] = np.exp(eta[big] - u[big])
    q[small] = 1.0 - 0.5 * u[small]
    q[rest] = u[rest] / np.expm1(u[rest])
    g = np.where(one, -q, u)
    if order == 1:
        return loss, g, None
    # q + u - 1, from its series where u < 0.01 (directly it would lose digits to cancellation)
    v = q + u - 1.0
    tiny = eta < -4.6
    ut = u[tiny]
    v[tiny] = ut * (0.5 + ut * (1.0 / 12.0 + ut * ut * (-1.0 / 720.0 + ut * ut / 30240.0)))
    # where u overflowed, q = 0 and v = inf: the product is 0 (q underflowed long before)
    h = np.where(one, q * np.minimum(v, 1e300), u)
    return loss, g, h


def log_cloglog_cdf(eta: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
    """``log(1 - exp(-exp(eta)))`` for any eta, ``u = exp(eta)``: ``log(-expm1(-u))`` for u up to
    log 2 and ``log1p(-exp(-u))`` above (Maechler's log1mexp, exact to the last digits of a value
    near 0), and ``eta - u / 2`` (exact to float64) below eta = -30, where u may underflow."""
    if u is None:
        with np.errstate(over="ignore"):
            u = np.exp(eta)
    with np.errstate(divide="ignore"):  # the branches np.where discards
        small = np.log(-np.expm1(-u))
        large = np.log1p(-np.exp(-u))
    return np.where(eta < -30.0, eta - 0.5 * u, np.where(u <= math.log(2.0), small, large))


def _min_log_prob(link: str, eta: np.ndarray) -> float:
    """The smallest class log-probability ``min(log p, log(1 - p))`` over the rows (0 without rows)."""
    from scipy.special import log_ndtr

    if not eta.size:
        return 0.0
    if link == "probit":
        return float(log_ndtr(-np.abs(eta).max()))
    lo, hi = eta.min(), eta.max()
    with np.errstate(over="ignore"):
        return float(min(log_cloglog_cdf(np.array([lo]))[0], -np.exp(hi)))
