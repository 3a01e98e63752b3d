"""Gaussian family: linear regression with the noise scale estimated."""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from .. import linalg
from ..errors import DataError, FamilyError
from ..linalg import COLLINEAR_COND
from .base import BlockSums, ClosedForm, Family, Target, gram

LOG_2PI = math.log(2.0 * math.pi)


class Gaussian(Family):
    r"""Normal distribution with the identity link: linear regression, sigma estimated.

    Domain of y: any real number.
    Link: ``mu = X @ b``; ``y ~ Normal(mu, sigma^2)``.
    Per-row NLL: ``(y - mu)^2 / (2 sigma^2) + log(sigma) + log(2 pi) / 2``, i.e. the squared error
    scaled by ``1 / (2 sigma^2)`` plus a constant: minimising it over ``b`` is least squares, and
    sigma's MLE is ``sqrt(RSS / n)``.
    The optimiser works on ``s = log(sigma)`` (unconstrained); results report sigma.
    Gradient: ``-X.T @ (y - mu) / sigma^2`` and ``n - RSS / sigma^2`` for ``s``.
    Hessian: ``X.T @ X / sigma^2``, ``2 X.T @ (y - mu) / sigma^2`` and ``2 RSS / sigma^2``.
    """

    name = "gaussian"
    description = "linear regression: identity link, sigma estimated, Gaussian NLL (MSE up to scale)"
    distribution = "Normal(mu, sigma^2), mu = x'b"
    link = "identity: mu = x'b"
    loss_name = "Gaussian NLL"
    loss_statement = (
        "MSE up to scale and constant: NLL = n MSE / (2 sigma^2) + n log(sigma) + (n/2) log(2 pi), "
        "so the b minimising it minimise the MSE"
    )
    nll_formula = "sum_i [(y_i - x_i'b)^2 / (2 sigma^2)] + n log(sigma) + (n/2) log(2 pi)  = n MSE / (2 sigma^2) + const"
    grad_formula = "-X^T (y - Xb) / sigma^2;  d/d log(sigma): n - RSS / sigma^2"
    hess_formula = (
        "b, b: X^T X / sigma^2;  b, log(sigma): 2 X^T (y - Xb) / sigma^2;  "
        "log(sigma), log(sigma): 2 RSS / sigma^2"
    )
    parameters = (
        "b: one coefficient per column of X (the intercept first, when present); "
        "sigma > 0, optimised as log(sigma) and reported as sigma"
    )
    y_domain = "any real number"
    convex = False  # jointly in (b, log sigma); convex in b for fixed sigma
    ancillary = ("sigma",)
    ancillary_defaults = {"sigma": 1.0}
    penalty_statement = "NLL + (l2/2) ||b||^2, intercept and sigma not penalised"

    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
        if values.dtype.kind not in "iuf":
            raise FamilyError(
                f"target column '{column}' is not numeric; gaussian needs a numeric target.",
                "Use --family bernoulli or categorical for labels.",
            )
        y = values.astype(np.float64)
        if not np.all(np.isfinite(y)):
            first = int(np.flatnonzero(~np.isfinite(y))[0])
            row = first + 1 if rows is None else int(rows[first])
            raise FamilyError(f"target column '{column}' has an infinite value in data row {row}.")
        return Target(y)

    def check_y(self, y: np.ndarray) -> None:
        if not np.all(np.isfinite(y)):
            raise FamilyError("gaussian targets must be finite numbers.")

    def _weighted(self, X, y, weights, offset=None):
        """The design and target of the equivalent unweighted least-squares problem (the offset
        moved to the target's side)."""
        if offset is not None:
            y = y - offset
        if weights is None:
            return X, y
        root = np.sqrt(weights)
        return X * root[:, None], y * root

    def _qr(self, A, A_lo=None):
        qr = linalg.QR(A, A_lo)
        if qr.cond > COLLINEAR_COND:
            raise DataError(
                "the feature columns are collinear: the column-scaled design has condition number "
                f"{qr.cond:.2g}, so the least-squares coefficients are not determined.",
                "Remove redundant columns.",
            )
        return qr

    def least_squares(self, X, y, weights=None):
        """Least squares by Householder QR, refined when the conditioning calls for it.

        Returns ``(qr, solution)``: the :class:`mlefit.linalg.QR` of the (row-weighted) design and
        the :class:`mlefit.linalg.Solution` (coefficients ``x``, residuals ``r``). QR keeps the
        conditioning of ``X`` rather than squaring it as the normal equations do; the refinement
        (see ``mlefit.linalg``) recovers the digits QR alone loses on ill-conditioned designs with
        large residuals.
        """
        A, b = self._weighted(X, y, weights)
        qr = self._qr(A)
        return qr, qr.solve(b)

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        A, b = self._weighted(X, y, weights, offset)
        sol = linalg.normal_solve(A, b)
        if sol is None:
            _, sol = self.least_squares(X, y, weights)
        rss = float(sol.r @ sol.r)
        total = float(len(y) if weights is None else weights.sum())
        log_sigma = 0.5 * math.log(rss / total) if rss > 0 else -np.inf
        return np.append(sol.x, log_sigma)

    def closed_form(self, X, y, weights=None, *, gram=None, X_lo=None, offset=None) -> ClosedForm:
        r"""The MLE: least-squares coefficients, ``sigma^2 = RSS / n``, and its covariance.

        At the MLE the Hessian is block diagonal, ``X'WX / sigma^2`` and ``2 n`` (for log sigma),
        so the covariance is ``sigma^2 (X'WX)^{-1}`` (from the R factor, by triangular solves,
        refined when the conditioning calls for it) and ``1 / (2 n)``.

        Two ways to the least-squares solution: for a well-conditioned design (checked by
        :func:`mlefit.linalg.normal_solve`: ``u cond^2`` at most 1e-11 and the a-priori error at
        most :data:`mlefit.linalg.REFINE_TOL`, no near-exact fit) the Cholesky factor of the Gram
        matrix ``X'WX`` (``gram``, when the rank check has formed it), with one or more float64
        correction steps, which costs a few passes over the data; otherwise Householder QR with
        refinement in extended precision (:class:`mlefit.linalg.QR`). The note says which.

        ``X`` may be an operator for the design's products with vectors (``X @ v``, ``X.T @ r``,
        ``np.asarray(X)`` forming the matrix), as ``mlefit.fit`` passes a design whose column of
        ones is not stored.

        ``X_lo`` (shape of ``X``, optional): a low-order part of the design, the exact columns
        being ``X + X_lo`` (power columns formed in double-double, see
        :func:`mlefit.data.exact_powers`). Where the normal equations are not accurate enough,
        the QR refinement then uses both parts in its residuals, so the coefficients, residuals
        and sigma are those of the exact columns (rows weighted by ``sqrt(w)`` in double-double,
        the target's too; the note says ``exact power columns``); the Hessian reported is that of
        ``X``. A well-conditioned design ignores it: its float64 rounding moves the solution by
        less than the normal equations' accepted error.

        An **exact fit** is declared when the residual norm is at most
        ``8 u (||y|| + sum_j ||X_j|| |b_j|)`` (``u = 2^-53``, ``X_j`` the columns, rows weighted
        by ``sqrt(w)``): rounding the data and the coefficients to float64 perturbs the residuals
        of a model that fits exactly by at most ``u ||y||`` and ``u sum_j ||X_j|| |b_j|`` each, so a
        smaller residual is rounding, not noise (for data without cancellation the bound is about
        ``16 u ||y||``). Then sigma is 0, the likelihood unbounded and the coefficients exact.
        """
        if offset is not None:
            y = y - offset
        A, b = self._weighted(X, y, weights)
        normal = linalg.normal_solve(A, b, gram=gram)
        A_lo = b_lo = None
        if normal is None and X_lo is not None:
            # Where the normal equations are accepted, their error estimate u cond (1 + cond ||r|| /
            # ||z||) bounds what the columns' float64 rounding (a relative perturbation of u, the
            # size of X_lo) does to the solution too, so the low part matters only on this path.
            if weights is None:
                A_lo = X_lo
            else:  # rows scaled in double-double, or the rounding of sqrt(w) X would undo X_lo
                A, A_lo, b, b_lo = linalg.weighted_rows(X, X_lo, y, weights)
        if normal is not None:
            # Well conditioned (checked, see linalg.normal_solve): Cholesky of the Gram matrix.
            qr = None
            coef, r, col_norms = normal.x, normal.r, normal.col_norms
            how = (
                "least squares by Cholesky of the Gram matrix (well conditioned) with "
                f"{normal.refined} correction {'step' if normal.refined == 1 else 'steps'}; "
                f"scaled condition number {normal.cond:.2g}"
            )
        else:
            A = np.asarray(A)  # the whole matrix (X may be an operator for products with vectors)
            qr = self._qr(A, A_lo)
            sol = qr.solve(b, b_lo=b_lo)
            coef, r, col_norms = sol.x, sol.r, qr.col_norms
            how = "least squares by Householder QR"
            if sol.refined:
                how += f", refined {sol.refined} steps in {sol.precision} arithmetic"
            how += f"; scaled condition number {qr.cond:.2g}"
            if A_lo is not None:
                n_exact = int(np.count_nonzero(np.any(A_lo != 0, axis=0)))
                how += (
                    f"; exact power columns: {n_exact} column{'s' if n_exact != 1 else ''} of powers "
                    "carried beyond float64 (double-double)"
                )
        k = len(coef)
        rss = float(r @ r)
        total = float(len(y) if weights is None else weights.sum())
        threshold = 8.0 * linalg.U * (float(np.linalg.norm(b)) + float(col_norms @ np.abs(coef)))
        if math.sqrt(rss) <= threshold:
            zeros = np.zeros((k + 1, k + 1))
            return ClosedForm(np.append(coef, -np.inf), zeros, zeros, np.zeros(k + 1), 0.0, True, how)
        var = rss / total
        cov = np.zeros((k + 1, k + 1))
        cov[k, k] = 1.0 / (2.0 * total)
        hess = np.zeros((k + 1, k + 1))
        hess[k, k] = 2.0 * total  # at the MLE RSS / sigma^2 = n
        if qr is None:
            cov[:k, :k] = var * normal.inverse_gram()
            hess[:k, :k] = normal.gram / var
            xr = normal.g
        else:
            inv_gram, steps = qr.inverse_gram()
            if steps:
                how += f"; covariance refined {steps} steps"
            cov[:k, :k] = var * inv_gram
            # X'WX = S^-1 R'R S^-1 without forming it from the rows.
            rs = qr.R / qr.scale
            hess[:k, :k] = (rs.T @ rs) / var
            # The gradient is zero in exact arithmetic (normal equations; RSS / sigma^2 = n).
            # Rounded in float64, X'r carries an error of about u |X|'|r| that would read as a
            # distance of u cond sqrt(n) standard errors on an ill-conditioned design, so it is
            # summed in extended precision whenever the solution needed refining.
            xr = linalg.tdot(A, r) if sol.refined else A.T @ r
            if A_lo is not None:
                xr = xr + A_lo.T @ r
        grad = np.append(-xr / var, total - rss / var)
        decrement = math.sqrt(max(float(grad @ cov @ grad), 0.0))
        log_sigma = 0.5 * math.log(var)
        nll = None
        # Without a low part the float64 residuals are those evaluate() would compute: no extra
        # pass. With one, evaluate() sees the rounded columns; the NLL is the exact design's.
        if qr is None or A_lo is not None:
            nll = total * (log_sigma + 0.5 * LOG_2PI) + 0.5 * (rss * math.exp(-2.0 * log_sigma))
        return ClosedForm(np.append(coef, log_sigma), cov, hess, grad, decrement, False, how, nll)

    def covariance(self, params, X, y, weights=None, offset=None):
        """Inverse of the analytic Hessian at any ``params``, from the QR of the design.

        With ``M = sigma^2 (X'WX)^{-1}`` (the inverse of the coefficient block), ``v`` the
        coefficient/log-sigma block ``2 X'W r / sigma^2`` and ``c = 2 RSS / sigma^2``, the inverse
        follows by the Schur complement ``c - v' M v``; None when that is not positive (the
        Hessian is not positive definite there). At the MLE ``v = 0`` and this is
        :meth:`closed_form`'s covariance.
        """
        A, b = self._weighted(X, y, weights, offset)
        coef = params[:-1]
        inv_var = math.exp(-2.0 * float(params[-1]))
        inv_gram = linalg.normal_inverse_gram(A)  # well conditioned: Cholesky of the Gram matrix
        if inv_gram is None:
            qr = self._qr(A)
            precise = linalg.U * qr.cond > 1e-10
            inv_gram, _ = qr.inverse_gram()
        else:
            precise = False
        r = linalg.residual(A, coef, b) if precise else b - A @ coef
        xr = linalg.tdot(A, r) if precise else A.T @ r
        M = inv_gram / inv_var
        v = 2.0 * xr * inv_var
        Mv = M @ v
        schur = 2.0 * float(r @ r) * inv_var - float(v @ Mv)
        if not schur > 0:
            return None
        k = len(coef)
        cov = np.empty((k + 1, k + 1))
        cov[:k, :k] = M + np.outer(Mv, Mv) / schur
        cov[:k, k] = cov[k, :k] = -Mv / schur
        cov[k, k] = 1.0 / schur
        return cov

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        coef, log_sigma = params[:-1], float(params[-1])
        if offset is not None:
            y = y - offset
        r = linalg.residual(X, coef, y) if precise else y - np.dot(X, coef)
        wr = r if weights is None else weights * r
        rss = float(np.dot(wr, r))
        weight = float(len(y) if weights is None else weights.sum())
        inv_var = math.exp(-2.0 * log_sigma) if log_sigma > -350 else math.inf
        # rss * inv_var is 0 for an exact fit, not inf * 0.
        scaled_rss = rss * inv_var if rss else 0.0
        nll = weight * (log_sigma + 0.5 * LOG_2PI) + 0.5 * scaled_rss
        if order == 0:
            return BlockSums(nll, weight=weight)
        xr = linalg.tdot(X, wr) if precise else np.dot(X.T, wr)
        grad = np.append(-xr * inv_var, weight - scaled_rss)
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        k = X.shape[1]
        hess = np.empty((k + 1, k + 1))
        hess[:k, :k] = gram(X, np.ones(len(y)) if weights is None else weights) * inv_var
        hess[:k, k] = hess[k, :k] = 2.0 * xr * inv_var
        hess[k, k] = 2.0 * scaled_rss
        return BlockSums(nll, grad, hess, weight)

    def scores(self, params, X, y, offset=None):
        r = y - np.dot(X, params[:-1]) - (0.0 if offset is None else offset)
        inv_var = math.exp(-2.0 * float(params[-1]))
        return np.column_stack([X * (-r * inv_var)[:, None], 1.0 - r * r * inv_var])

    def start_from_sums(self, map_sum, n_features, n_classes=None, *, intercept=False):
        """Least squares from ``X'WX`` and ``X'Wy`` summed over the rows (the normal equations),
        then sigma from the residual sum of squares (a second pass): the MLE up to the accuracy of
        the normal equations, which Newton's first step polishes."""
        import scipy.linalg

        p = n_features
        sums = map_sum(_normal_equations)
        G, b = sums[: p * p].reshape(p, p), sums[p * p:]
        coef = scipy.linalg.cho_solve(scipy.linalg.cho_factor(G), b)
        rss, total = map_sum(partial(_rss, coef))
        if not rss > 0:
            raise DataError(
                "every residual is zero (an exact fit), which is not supported when the rows are not "
                "in memory.",
                "Fit it in memory (without --stream or --engine dask).",
            )
        return np.append(coef, 0.5 * math.log(rss / total))

    def summary_statistics(self, estimates, n_weight, loglik, null):
        """The MSE ``RSS / n``, the residual standard error ``sqrt(RSS / (n - k))`` of OLS tools
        (k coefficients) and, with an intercept-only fit, R^2 ``1 - RSS / TSS``."""
        sigma = float(estimates[-1])
        rss = sigma**2 * n_weight
        df_resid = n_weight - (len(estimates) - 1)
        out = {"mse": rss / n_weight, "residual_std_error": math.sqrt(rss / df_resid), "df_resid": df_resid}
        if null is not None:
            tss = float(null["estimates"][-1]) ** 2 * n_weight  # the intercept-only least squares
            out["r2"] = 1.0 - rss / tss
        return out

    def simulate(self, params, X, rng, offset=None):
        mu = np.dot(X, params[:-1]) + (0.0 if offset is None else offset)
        return mu + math.exp(params[-1]) * rng.standard_normal(X.shape[0])

    def predict(self, estimates, X, offset=None):
        mu = np.dot(X, np.asarray(estimates, dtype=float)[:-1])
        return mu if offset is None else mu + offset


def _normal_equations(X, y, w, offset):
    if offset is not None:
        y = y - offset
    Xw = X if w is None else X * w[:, None]
    return np.concatenate([np.dot(Xw.T, X).ravel(), np.dot(Xw.T, y)])


def _rss(coef, X, y, w, offset):
    r = y - np.dot(X, coef) - (0.0 if offset is None else offset)
    return np.array([float(r @ r) if w is None else float(w @ (r * r)), float(len(y) if w is None else w.sum())])
