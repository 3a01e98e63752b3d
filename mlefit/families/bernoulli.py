"""Bernoulli family: logistic regression."""

from __future__ import annotations

import numpy as np

from ..errors import FamilyError
from .base import BlockSums, Family, Target, gram, label_text, python_scalar, sorted_levels


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

    def encode_target(self, values: np.ndarray, column: str = "y") -> Target:
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
        lo, hi = (python_scalar(v) for v in levels)
        y = codes.astype(np.float64)
        note = None
        if not (lo in (0, False) and hi in (1, True)):
            note = f"'{label_text(hi)}' is 1 and '{label_text(lo)}' is 0 (the larger label in sorted order is 1)"
        return Target(y, (lo, hi), note)

    def check_y(self, y: np.ndarray) -> None:
        if not np.all((y == 0) | (y == 1)):
            raise FamilyError("bernoulli labels must be 0 or 1 after encoding.")

    def n_params(self, n_features: int, n_classes: int | None = None) -> int:
        return n_features

    def param_names(self, feature_names, levels=None):
        return [(name, None) for name in feature_names]

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None):
        params = np.zeros(X.shape[1])
        if intercept:
            mean = float(np.average(y, weights=weights))
            params[0] = np.log(mean) - np.log1p(-mean) if 0.0 < mean < 1.0 else 0.0
        return params

    def evaluate(self, params, X, y, weights=None, order=2):
        from scipy.special import expit

        eta = X @ params
        loss = np.logaddexp(0.0, eta) - y * eta
        nll = float(loss.sum() if weights is None else weights @ loss)
        weight = float(len(y) if weights is None else weights.sum())
        if order == 0:
            return BlockSums(nll, weight=weight)
        p = expit(eta)
        r = p - y if weights is None else weights * (p - y)
        grad = X.T @ r
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        # p * (1 - p) written as p * sigmoid(-eta): exact where 1 - p would cancel.
        h = p * expit(-eta)
        if weights is not None:
            h *= weights
        return BlockSums(nll, grad, gram(X, h), weight)

    def simulate(self, params, X, rng):
        from scipy.special import expit

        return (rng.random(X.shape[0]) < expit(X @ params)).astype(np.float64)

    def predict(self, estimates, X):
        from scipy.special import expit

        return expit(X @ np.asarray(estimates, dtype=float))
