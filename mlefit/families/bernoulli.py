"""Bernoulli family: logistic regression."""

from __future__ import annotations

import numpy as np

from .. import linalg
from ..errors import FamilyError, UsageError
from .base import (
    BlockSums, Family, Target, gram, label_text, python_scalar, sorted_levels, total_weight, weighted_sum,
)


class Bernoulli(Family):
    r"""Bernoulli distribution with the logit link: logistic regression.

    Domain of y: two classes, encoded 0 and 1 (the larger label in sorted order is 1).
    Link: ``eta = X @ w``, ``p = sigmoid(eta) = P(y = 1 | x)``.
    Per-row NLL: ``log(1 + exp(eta)) - y * eta``, which is the binary cross-entropy
    ``-[y log p + (1 - y) log(1 - p)]``, evaluated as ``logaddexp(0, eta) - y * eta`` so it is
    exact for any ``eta``. Gradient ``X.T @ (p - y)``; Hessian ``X.T @ diag(p (1 - p)) @ X``.
    """

    name = "bernoulli"
    description = "logistic regression: two classes, logit link, binary cross-entropy"
    distribution = "Bernoulli(p), p = sigmoid(x'w)"
    link = "logit: log(p / (1 - p)) = x'w"
    loss_name = "binary cross-entropy"
    loss_statement = "binary cross-entropy (log loss): NLL / n is its mean over the rows"
    nll_formula = "sum_i [log(1 + exp(x_i'w)) - y_i x_i'w]  = -sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)]"
    grad_formula = "X^T (sigmoid(Xw) - y)"
    hess_formula = "X^T diag(p_i (1 - p_i)) X"
    parameters = "w: one coefficient per column of X (the intercept first, when present)"
    y_domain = "two labels; the larger in sorted order is 1 (0/1, false/true, no/yes, ...)"
    classes = True
    separable = True
    integer_target = True
    penalty_statement = "NLL + (l2/2) ||w||^2, intercept not penalised"

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
        params = np.zeros(X.shape[1])
        if intercept:
            mean = float(np.average(y, weights=weights))
            params[0] = np.log(mean) - np.log1p(-mean) if 0.0 < mean < 1.0 else 0.0
            if offset is not None:
                params[0] -= float(np.average(offset, weights=weights))
        return params

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        # One pass over the block, written around e = exp(-|eta|) in (0, 1], which never
        # overflows. With s = eta where y = 0 and -eta where y = 1 (y is 0/1 after encoding):
        #   per-row NLL  log(1 + exp(eta)) - y eta = softplus(s) = max(s, 0) + log1p(e),
        #   p - y        = flip * sigmoid(s), flip = 1 - 2y, sigmoid(s) = q (s >= 0) or e q (s < 0)
        #                  with q = 1 / (1 + e),
        #   p (1 - p)    = e q^2.
        # No term is a difference of nearly equal numbers, so each is exact for any eta.
        eta = linalg.dot(X, params) if precise else X @ params
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
        grad = linalg.tdot(X, r) if precise else X.T @ r
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        h = e * q
        h *= q if weights is None else q * weights
        # The smaller class log-probability of a row is -softplus(|eta|): least at the largest |eta|.
        top = a.max(initial=-np.inf) if weights is None else a.max(where=weights > 0, initial=-np.inf)
        low = -float(np.logaddexp(0.0, top)) if top > -np.inf else 0.0
        return BlockSums(nll, grad, gram(X, h), weight, low)

    def hess_root(self, params, X, y, weights=None, offset=None):
        """The weighted design ``sqrt(h) X``, ``h = p (1 - p)`` (times the weights): its Gram
        matrix is the Hessian."""
        from scipy.special import expit

        eta = _eta(params, X, offset)
        h = expit(eta) * expit(-eta)
        if weights is not None:
            h = h * weights
        return X * np.sqrt(h)[:, None]

    def scores(self, params, X, y, offset=None):
        from scipy.special import expit

        return X * (expit(_eta(params, X, offset)) - y)[:, None]

    def simulation_classes(self, n_rows, n_classes):
        if n_classes not in (None, 2):
            raise UsageError(f"bernoulli has 2 classes; --classes {n_classes} does not apply.")
        super().simulation_classes(n_rows, None)
        return 2

    def simulation_levels(self, n_classes):
        return (0, 1)

    def simulate(self, params, X, rng, offset=None):
        from scipy.special import expit

        return (rng.random(X.shape[0]) < expit(_eta(params, X, offset))).astype(np.float64)

    def predict(self, estimates, X, offset=None):
        from scipy.special import expit

        return expit(_eta(np.asarray(estimates, dtype=float), X, offset))


def _eta(params: np.ndarray, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    eta = X @ params
    return eta if offset is None else eta + offset
