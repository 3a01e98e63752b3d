"""Ordinal family: cumulative link regression for ordered outcomes (proportional odds, ordered probit)."""

from __future__ import annotations

import math

import numpy as np

from .. import linalg
from ..errors import FamilyError, UsageError
from .base import (
    BlockSums, Family, Target, data_row, gram, label_text, python_scalar, sorted_levels, total_weight, weighted_sum,
)
from .bernoulli import inverse_mills, probit_curvature

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class Ordinal(Family):
    r"""Cumulative link model for K ordered classes: proportional odds (logit link, the default) or
    ordered probit (``--link probit``).

    Domain of y: K >= 2 ordered labels, encoded 0..K-1 from the lowest: numbers in numeric order,
    text in the order given by ``--levels a,b,c`` (required for text).
    Link: ``P(y <= j | x) = F(c_j - eta)``, ``eta = X @ b`` (no intercept: the K - 1 cutpoints
    ``c_0 < c_1 < ... < c_{K-2}`` take its place), ``F`` the logistic CDF ``sigmoid`` or the normal
    CDF ``Phi``. A positive coefficient moves the rows towards the higher classes.
    Per-row NLL: ``-log(F(a) - F(b))``, ``a = c_y - eta``, ``b = c_{y-1} - eta`` (``c_{-1} = -inf``,
    ``c_{K-1} = +inf``): the cross-entropy of the class probabilities. Computed in log space, never
    as a difference of CDFs near 1: for the logit,
    ``log(sigmoid(a) - sigmoid(b)) = log_sigmoid(a) + log_sigmoid(-b) + log(1 - exp(-(a - b)))`` with
    ``a - b`` the gap between the cutpoints; for the probit, a difference of ``log_ndtr`` in the
    tail both bounds lie in (``log Phi(a) + log(1 - exp(log Phi(b) - log Phi(a)))``), else
    ``(erf(a / sqrt 2) - erf(b / sqrt 2)) / 2``, a sum of two positive terms.
    Derivatives, with ``r_a = f(a) / D``, ``r_b = f(b) / D``, ``D = F(a) - F(b)``:
    ``d NLL / d eta = r_a - r_b`` (logit: ``sigmoid(-a) - sigmoid(b)``), ``d / d c_y = -r_a``,
    ``d / d c_{y-1} = r_b``; second derivatives in (a, b): ``H_aa = r_a^2 - r_a f'(a) / f(a)``,
    ``H_bb = r_b^2 + r_b f'(b) / f(b)``, ``H_ab = -r_a r_b`` (logit: ``H_aa = f(a) + r_a r_b``,
    ``d2 NLL / d eta2 = f(a) + f(b)``), chained to eta (``da = db = -d eta``) and to the cutpoints.
    Parametrisation: the optimiser works on ``c_0`` and the logarithms of the gaps
    ``c_k - c_{k-1}``, so the cutpoints increase for every parameter value; results report the
    cutpoints ``cut[low|medium]`` (the boundary between two consecutive labels), with the
    delta-method covariance. The NLL is convex in (b, c) but not in that parametrisation.
    """

    name = "ordinal"
    description = (
        "ordinal regression for ordered classes: cutpoints, logit link (proportional odds) or --link probit, "
        "cross-entropy"
    )
    distribution = "P(y <= j) = F(c_j - x'b), K ordered classes, cutpoints c_0 < ... < c_{K-2}"
    link = "logit (default): F = sigmoid, proportional odds; probit: F = Phi"
    loss_name = "cross-entropy"
    loss_statement = "cross-entropy (log loss) of the class probabilities: NLL / n is its mean over the rows"
    nll_formula = "-sum_i log(F(c_{y_i} - x_i'b) - F(c_{y_i - 1} - x_i'b)), c_{-1} = -inf, c_{K-1} = +inf"
    grad_formula = (
        "b: X^T (r_a - r_b);  c_j: sum over rows of class j of -r_a, of class j + 1 of r_b;  "
        "r_a = f(a) / D, r_b = f(b) / D, a = c_y - x'b, b = c_{y-1} - x'b, D = F(a) - F(b)"
    )
    hess_formula = (
        "b, b: X^T diag(H_aa + 2 H_ab + H_bb) X (logit: f(a) + f(b));  b, c: X^T of -(H_aa + H_ab) at c_y and "
        "-(H_ab + H_bb) at c_{y-1};  H_aa = r_a^2 - r_a f'(a)/f(a), H_bb = r_b^2 + r_b f'(b)/f(b), H_ab = -r_a r_b"
    )
    parameters = (
        "b: one coefficient per column of X (no intercept); K - 1 cutpoints cut[low|medium], ..., increasing, "
        "optimised as the first cutpoint and the logarithms of the gaps"
    )
    y_domain = "K >= 2 ordered labels: numbers (numeric order) or text with --levels (lowest first)"
    convex = False
    classes = True
    separable = True
    ordered = True
    integer_target = True
    target_dtype = "intp"
    intercept_column = False
    option_choices = {"link": ("logit", "probit"), "levels": None}
    option_defaults = {"link": "logit", "levels": None}
    penalty_statement = "NLL + (l2/2) ||b||^2, cutpoints not penalised"

    def __init__(self, **options):
        super().__init__(**options)
        levels = self.options["levels"]
        if levels is not None:
            if isinstance(levels, str):
                levels = tuple(v.strip() for v in levels.split(",") if v.strip())
            levels = tuple(label_text(v) for v in levels)
            seen = set()
            for v in levels:
                if v in seen:
                    raise UsageError(f"--levels lists '{v}' twice; give each label once, lowest first.")
                seen.add(v)
            if len(levels) < 2:
                raise UsageError(f"--levels needs at least two labels, lowest first; got {','.join(levels) or 'none'}.")
            self.options["levels"] = levels

    def title(self) -> str:
        return "proportional odds" if self.options["link"] == "logit" else "ordered probit"

    # -- labels ---------------------------------------------------------------------------------
    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
        order = self.options["levels"]
        if order is None and values.dtype.kind not in "iufb":
            found = _found(values, column)
            raise FamilyError(
                f"target column '{column}' holds text labels, whose order {self.name} needs to know; the labels "
                f"found: {found}.",
                "Give them in order, lowest first, with --levels A,B,C.",
            )
        distinct, inverse = sorted_levels(values, column)
        if order is None:
            if len(distinct) < 2:
                raise FamilyError(
                    f"target column '{column}' has a single class ({label_text(distinct[0])}); {self.name} needs "
                    "at least two."
                )
            levels = tuple(python_scalar(v) for v in distinct)
            note = "ordered levels " + " < ".join(label_text(v) for v in levels) + " (numeric order)"
            return Target(inverse.astype(np.intp), levels, note)
        texts = [label_text(python_scalar(v)) for v in distinct]
        position = {label: k for k, label in enumerate(order)}
        for j, text in enumerate(texts):
            if text not in position:
                row = data_row(rows, int(np.flatnonzero(inverse == j)[0]))
                raise FamilyError(
                    f"target column '{column}' has the label '{text}' (data row {row}), which --levels does not "
                    f"list; the labels found: {_found(values, column)}.",
                    "Give every label in --levels, lowest first.",
                )
        absent = [v for v in order if v not in set(texts)]
        if absent:
            raise FamilyError(
                f"--levels lists '{absent[0]}', which target column '{column}' does not have; the labels found: "
                f"{_found(values, column)}.",
                "Give the labels of the data, lowest first.",
            )
        codes = np.array([position[t] for t in texts], dtype=np.intp)
        levels = [None] * len(order)
        for j, k in enumerate(codes):
            levels[k] = python_scalar(distinct[j])
        note = "ordered levels " + " < ".join(order) + " (--levels)"
        return Target(codes[inverse], tuple(levels), note)

    def check_y(self, y: np.ndarray) -> None:
        if y.dtype.kind not in "iu" or (y.size and y.min() < 0):
            raise FamilyError("ordinal labels must be class codes 0..K-1 after encoding.")

    # -- layout: the coefficients, then K - 1 cutpoints (optimised as c_0 and log gaps) ---------
    def n_params(self, n_features: int, n_classes: int | None = None) -> int:
        return n_features + _cuts(n_classes)

    def param_names(self, feature_names, levels=None, *, optimiser=False):
        names = [(str(name), None) for name in feature_names]
        labels = [label_text(v) for v in levels]
        cuts = [f"cut[{labels[k]}|{labels[k + 1]}]" for k in range(len(labels) - 1)]
        if optimiser:
            cuts = cuts[:1] + [f"log({cuts[k]} - {cuts[k - 1]})" for k in range(1, len(cuts))]
        return names + [(c, None) for c in cuts]

    def design_scale(self, scale, n_classes=None):
        return np.concatenate([scale, np.ones(_cuts(n_classes))])

    def l2_matrix(self, n_features, n_classes=None, *, intercept=False):
        return np.diag(np.concatenate([np.ones(n_features), np.zeros(_cuts(n_classes))]))

    null_model = "cutpoints only"

    def null_columns(self, intercept: bool) -> int:
        """The cutpoints alone: no column."""
        return 0

    def start_from_null(self, null_params, n_features, n_classes=None):
        return np.concatenate([np.zeros(n_features), null_params])

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        """Zero coefficients and the cutpoints of the cumulative class proportions,
        ``c_j = F^-1(P(y <= j))`` (the intercept-only MLE; a half row added to each class when one
        is empty), shifted by the mean offset."""
        k = int(y.max()) + 1 if n_classes is None else n_classes
        counts = np.bincount(y, weights=weights, minlength=k).astype(float)
        if np.any(counts <= 0):
            counts = counts + 0.5
        cut = _quantile(self.options["link"], np.cumsum(counts)[:-1] / counts.sum())
        if offset is not None:
            cut = cut + float(np.average(offset, weights=weights))
        return np.concatenate([np.zeros(X.shape[1]), _theta(cut)])

    # -- reporting --------------------------------------------------------------------------------
    def natural(self, params, cov, n_classes=None):
        """Coefficients as they are; ``(c_0, log gaps)`` to the cutpoints, the covariance by the
        delta method ``J cov J'`` with the Jacobian of the cumulative sums."""
        params = np.asarray(params, dtype=float)
        m = _cuts(n_classes)
        p = params.size - m
        jac = np.eye(params.size)
        jac[p:, p:] = _jacobian(params[p:])
        return np.concatenate([params[:p], _cutpoints(params[p:])]), jac @ cov @ jac.T

    def from_natural(self, estimates, n_classes=None):
        estimates = np.asarray(estimates, dtype=float)
        p = estimates.size - _cuts(n_classes)
        cut = estimates[p:]
        if not np.all(np.diff(cut) > 0):
            raise FamilyError(f"the cutpoints must increase; got {', '.join(f'{c:g}' for c in cut)}.")
        return np.concatenate([estimates[:p], _theta(cut)])

    # -- the block function -----------------------------------------------------------------------
    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        n_obs, p = X.shape
        coef, theta = params[:p], params[p:]
        n_classes = theta.size + 1
        eta = linalg.dot(X, coef) if precise else np.dot(X, coef)
        if offset is not None:
            eta = eta + offset
        weight = total_weight(n_obs, weights)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # a trial point far out: inf
            t = _row_terms(self.options["link"], eta, y, theta, order)
            nll = weighted_sum(t.loss, weights)
            if order == 0:
                return BlockSums(nll, weight=weight)
            w = np.ones(n_obs) if weights is None else weights
            ge = t.g_eta * w
            grad_c = _by_cut(y, t.g_a * w, t.g_b * w, n_classes)
            jac = _jacobian(theta)
            grad = np.concatenate([linalg.tdot(X, ge) if precise else np.dot(X.T, ge), jac.T @ grad_c])
            if order == 1:
                return BlockSums(nll, grad, weight=weight)
            hess = np.empty((params.size, params.size))
            hess[:p, :p] = gram(X, t.h_eta * w)
            cross = _spread(y, t.c_a * w, t.c_b * w, n_classes)  # (n_obs, K - 1): d2 / d eta d c
            hess[:p, p:] = np.dot(X.T, cross) @ jac
            hess[p:, :p] = hess[:p, p:].T
            h_cc = np.diag(_by_cut(y, t.h_aa * w, t.h_bb * w, n_classes))
            if n_classes > 2:
                off = np.bincount(y, weights=t.h_ab * w, minlength=n_classes)[1:-1]  # c_{y-1}, c_y of middle rows
                k = np.arange(n_classes - 2)
                h_cc[k, k + 1] = h_cc[k + 1, k] = off
            h_tt = jac.T @ h_cc @ jac
            # the curvature of the map theta -> c: d2 c_k / d theta_m^2 = exp(theta_m), m <= k
            h_tt[np.diag_indices(theta.size)] += np.concatenate([[0.0], np.exp(theta[1:]) * np.cumsum(grad_c[::-1])[::-1][1:]])
            hess[p:, p:] = 0.5 * (h_tt + h_tt.T)
            live = eta if weights is None else eta[weights > 0]
            low = _extreme_log_prob(self.options["link"], _cutpoints(theta), live)
            return BlockSums(nll, grad, hess, weight, low)

    def scores(self, params, X, y, offset=None):
        p = X.shape[1]
        theta = params[p:]
        eta = _eta(params[:p], X, offset)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            t = _row_terms(self.options["link"], eta, y, theta, 1)
        by_cut = _spread(y, t.g_a, t.g_b, theta.size + 1) @ _jacobian(theta)
        return np.column_stack([X * t.g_eta[:, None], by_cut])

    # -- simulation and prediction ----------------------------------------------------------------
    def simulation_cutpoints(self, cutpoints, n_classes):
        """``--cutpoints`` (increasing), or with ``--classes K`` alone the cutpoints ``F^-1(j / K)``
        that make the K classes equally likely at ``x'b = 0``."""
        if cutpoints is None:
            if n_classes is None:
                raise UsageError(
                    "ordinal needs its number of classes: give --classes K, or the K - 1 true cutpoints with "
                    "--cutpoints (increasing)."
                )
            if n_classes < 2:
                raise UsageError(f"ordinal needs at least 2 classes; got {n_classes}.")
            return _quantile(self.options["link"], np.arange(1, n_classes) / n_classes)
        cut = np.asarray(cutpoints, dtype=float).ravel()
        if cut.size < 1 or not np.all(np.isfinite(cut)):
            raise UsageError("--cutpoints must be one or more finite numbers, increasing.")
        if not np.all(np.diff(cut) > 0):
            raise UsageError(f"--cutpoints must increase; got {','.join(f'{c:g}' for c in cut)}.")
        if n_classes is not None and n_classes != cut.size + 1:
            raise UsageError(
                f"{n_classes} classes need {n_classes - 1} cutpoints; --cutpoints has {cut.size}."
            )
        return cut

    def simulation_classes(self, n_rows, n_classes):
        if n_rows != 1:
            raise UsageError(
                f"ordinal takes one row of coefficients, one per feature; --coef has {n_rows}.",
                "Separate values with ',' only.",
            )
        return n_classes

    def simulation_levels(self, n_classes):
        return tuple(range(n_classes))

    def simulate(self, params, X, rng, offset=None):
        """The latent ``eta + e`` (``e`` logistic or normal) placed among the cutpoints."""
        p = X.shape[1]
        cut = _cutpoints(params[p:])
        eta = _eta(params[:p], X, offset)
        noise = rng.logistic(size=len(eta)) if self.options["link"] == "logit" else rng.standard_normal(len(eta))
        return ((eta + noise)[:, None] > cut[None, :]).sum(axis=1).astype(np.intp)

    def predict(self, estimates, X, offset=None):
        """The class probabilities, shape (n_obs, K), each from its log in the stable forms above."""
        estimates = np.asarray(estimates, dtype=float)
        p = X.shape[1]
        cut = estimates[p:]
        eta = _eta(estimates[:p], X, offset)
        theta = _theta(cut)
        out = np.empty((len(eta), cut.size + 1))
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            for k in range(cut.size + 1):
                y = np.full(len(eta), k, dtype=np.intp)
                out[:, k] = np.exp(-_row_terms(self.options["link"], eta, y, theta, 0).loss)
        return out


# -- the parametrisation ----------------------------------------------------------------------------


def _cuts(n_classes: int | None) -> int:
    if n_classes is None:
        raise ValueError("the ordinal layout needs the number of classes")
    return n_classes - 1


def _cutpoints(theta: np.ndarray) -> np.ndarray:
    """``c_0 = theta_0``, ``c_k = c_{k-1} + exp(theta_k)``."""
    return theta[0] + np.concatenate([[0.0], np.cumsum(np.exp(theta[1:]))])


def _theta(cut: np.ndarray) -> np.ndarray:
    return np.concatenate([cut[:1], np.log(np.diff(cut))])


def _jacobian(theta: np.ndarray) -> np.ndarray:
    """``d c_k / d theta_m``: 1 for m = 0, ``exp(theta_m)`` for 1 <= m <= k, else 0."""
    k = theta.size
    scale = np.concatenate([[1.0], np.exp(theta[1:])])
    return np.tril(np.ones((k, k))) * scale


def _quantile(link: str, p: np.ndarray) -> np.ndarray:
    from scipy.special import logit, ndtri

    return logit(p) if link == "logit" else ndtri(p)


def _eta(coef: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    eta = np.dot(X, coef)
    return eta if offset is None else eta + offset


def _found(values: np.ndarray, column: str) -> str:
    distinct, _ = sorted_levels(values, column)
    shown = ", ".join(label_text(python_scalar(v)) for v in distinct[:10])
    return shown + (f", ... ({len(distinct)} in all)" if len(distinct) > 10 else "")


def _by_cut(y: np.ndarray, at_upper: np.ndarray, at_lower: np.ndarray, n_classes: int) -> np.ndarray:
    """Per cutpoint, the sum of ``at_upper`` over the rows whose class lies below it (``c_y``) and of
    ``at_lower`` over those above it (``c_{y-1}``), shape (K - 1,)."""
    return (
        np.bincount(y, weights=at_upper, minlength=n_classes)[:-1]
        + np.bincount(y, weights=at_lower, minlength=n_classes)[1:]
    )


def _spread(y: np.ndarray, at_upper: np.ndarray, at_lower: np.ndarray, n_classes: int) -> np.ndarray:
    """Row i's ``at_upper`` in column ``c_{y_i}`` and ``at_lower`` in column ``c_{y_i - 1}``, shape
    (n_obs, K - 1) (the infinite end cutpoints' columns are dropped)."""
    n = len(y)
    out = np.zeros((n, n_classes + 1))
    rows = np.arange(n)
    out[rows, y + 1] = at_upper
    out[rows, y] += at_lower
    return out[:, 1:n_classes]


# -- per-row terms ---------------------------------------------------------------------------------


class _Terms:
    """Per-row NLL and derivatives with respect to eta and the row's two cutpoints (a = c_y - eta,
    b = c_{y-1} - eta): ``g_eta``, ``g_a``, ``g_b``; ``h_eta``, the cross terms ``c_a``, ``c_b``
    (d2 / d eta d c) and ``h_aa``, ``h_bb``, ``h_ab``. Zero where a bound is infinite."""

    names = ("loss", "g_eta", "g_a", "g_b", "h_eta", "c_a", "c_b", "h_aa", "h_bb", "h_ab")

    def __init__(self, n: int, order: int):
        wanted = self.names[:1] if order == 0 else self.names[:4] if order == 1 else self.names
        for name in self.names:
            setattr(self, name, np.zeros(n) if name in wanted else None)

    def put(self, rows: np.ndarray, **values: np.ndarray) -> None:
        for name, value in values.items():
            target = getattr(self, name)
            if target is not None:
                target[rows] = value


def _row_terms(link: str, eta: np.ndarray, y: np.ndarray, theta: np.ndarray, order: int) -> _Terms:
    """The per-row terms of each class group: the lowest class (only ``a``), the highest (only
    ``b``) and the classes between (both)."""
    n_classes = theta.size + 1
    cut = _cutpoints(theta)
    gaps = np.exp(theta[1:])
    out = _Terms(len(y), order)
    terms = _logit_terms if link == "logit" else _probit_terms
    for rows, side in ((np.flatnonzero(y == 0), -1), (np.flatnonzero(y == n_classes - 1), 1)):
        if rows.size:
            bound = cut[0] if side < 0 else cut[-1]
            out.put(rows, **terms(bound - eta[rows], side, order))
    middle = np.flatnonzero((y > 0) & (y < n_classes - 1))
    if middle.size:
        j = y[middle]
        e = eta[middle]
        out.put(middle, **terms((cut[j] - e, cut[j - 1] - e, gaps[j - 1]), 0, order))
    return out


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(-x))`` for x > 0 (Maechler's two forms)."""
    return np.where(x <= math.log(2.0), np.log(-np.expm1(-x)), np.log1p(-np.exp(-x)))


def _logit_terms(bounds, side: int, order: int) -> dict:
    from scipy.special import expit, log_expit

    if side:  # one bound: the lowest class (-1: P = F(a)) or the highest (+1: P = 1 - F(b) = F(-b))
        s = -float(side)  # P = F(s x), x the bound
        x = bounds
        loss = -log_expit(s * x)
        if order == 0:
            return {"loss": loss}
        q = expit(-s * x)  # d(-log F(s x)) / dx = -s q
        out = {"loss": loss, "g_eta": s * q}
        out["g_a" if side < 0 else "g_b"] = -s * q
        if order == 1:
            return out
        f = expit(x) * expit(-x)
        out.update(h_eta=f)
        out.update({"c_a": -f, "h_aa": f} if side < 0 else {"c_b": -f, "h_bb": f})
        return out
    a, b, d = bounds
    la, lsa, lb, lsb = log_expit(a), log_expit(-a), log_expit(b), log_expit(-b)
    gap = _log1mexp(d)
    loss = -(la + lsb + gap)
    if order == 0:
        return {"loss": loss}
    ra = np.exp(lsa - lsb - gap)  # f(a) / D
    rb = np.exp(lb - la - gap)  # f(b) / D
    out = {"loss": loss, "g_eta": np.exp(lsa) - np.exp(lb), "g_a": -ra, "g_b": rb}
    if order == 1:
        return out
    fa, fb = np.exp(la + lsa), np.exp(lb + lsb)
    rr = ra * rb
    out.update(h_eta=fa + fb, c_a=-fa, c_b=-fb, h_aa=fa + rr, h_bb=fb + rr, h_ab=-rr)
    return out


def _probit_terms(bounds, side: int, order: int) -> dict:
    from scipy.special import log_ndtr

    if side:
        s = -float(side)
        t = s * bounds  # P = Phi(t)
        loss = -log_ndtr(t)
        if order == 0:
            return {"loss": loss}
        r = inverse_mills(t)
        out = {"loss": loss, "g_eta": s * r}
        out["g_a" if side < 0 else "g_b"] = -s * r
        if order == 1:
            return out
        h = probit_curvature(t, r)
        out.update(h_eta=h)
        out.update({"c_a": -h, "h_aa": h} if side < 0 else {"c_b": -h, "h_bb": h})
        return out
    a, b, _ = bounds
    log_d = _probit_log_diff(a, b)
    loss = -log_d
    if order == 0:
        return {"loss": loss}
    ra = np.exp(-0.5 * a * a - _HALF_LOG_2PI - log_d)
    rb = np.exp(-0.5 * b * b - _HALF_LOG_2PI - log_d)
    out = {"loss": loss, "g_eta": ra - rb, "g_a": -ra, "g_b": rb}
    if order == 1:
        return out
    h_ab = -ra * rb
    h_aa = ra * (ra + a)
    h_bb = rb * (rb - b)
    # exact value positive (the normal CDF is log-concave); rounding far in a tail can leave a hair below
    h_eta = np.maximum(h_aa + 2.0 * h_ab + h_bb, 0.0)
    out.update(h_eta=h_eta, c_a=-(h_aa + h_ab), c_b=-(h_ab + h_bb), h_aa=h_aa, h_bb=h_bb, h_ab=h_ab)
    return out


def _probit_log_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log(Phi(a) - Phi(b))`` for finite ``a > b``: in the lower tail (a <= 0) from
    ``log Phi``, in the upper (b >= 0) from ``log(1 - Phi)``, across 0 from ``erf`` (two terms of
    one sign)."""
    from scipy.special import erf, log_ndtr

    out = np.empty(a.shape)
    lower = a <= 0.0
    upper = b >= 0.0
    across = ~(lower | upper)
    if lower.any():
        la, lb = log_ndtr(a[lower]), log_ndtr(b[lower])
        out[lower] = la + _log1mexp(la - lb)
    if upper.any():
        sa, sb = log_ndtr(-a[upper]), log_ndtr(-b[upper])
        out[upper] = sb + _log1mexp(sb - sa)
    if across.any():
        root = math.sqrt(0.5)
        out[across] = np.log(0.5 * (erf(a[across] * root) - erf(b[across] * root)))
    return out


def _extreme_log_prob(link: str, cut: np.ndarray, eta: np.ndarray) -> float:
    """The smallest log-probability of the lowest and the highest class over the rows (0 without
    rows): ``log F(c_0 - max eta)`` and ``log(1 - F(c_{K-2} - min eta))``. Along a separating
    direction some row's probability of one of them tends to 0."""
    from scipy.special import log_expit, log_ndtr

    if not eta.size:
        return 0.0
    logcdf = log_expit if link == "logit" else log_ndtr
    return float(min(logcdf(cut[0] - eta.max()), logcdf(eta.min() - cut[-1])))
