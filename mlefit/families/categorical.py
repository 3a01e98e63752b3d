"""Categorical family: multinomial (softmax) logistic regression."""

from __future__ import annotations

import numpy as np

from ..errors import FamilyError
from .base import BlockSums, Family, Target, gram, label_text, python_scalar, sorted_levels, weighted_gram


class Categorical(Family):
    r"""Categorical distribution with the softmax link: multinomial logistic regression.

    Domain of y: K >= 2 classes, encoded 0..K-1 in the sorted order of the labels; class 0 is the
    reference, whose coefficients are fixed at zero so the model is identifiable.
    Link: ``eta_k = X @ w_k`` (``w_0 = 0``), ``p = softmax(eta)``.
    Per-row NLL: ``logsumexp(eta) - eta_y``, the cross-entropy ``-log p_y``.
    Gradient for class k: ``X.T @ (p_k - onehot_k(y))`` (softmax minus one-hot);
    Hessian block (j, k): ``X.T @ diag(p_j (delta_jk - p_k)) @ X``.
    Parameters are laid out class-major: all features of class 1, then of class 2, ...
    """

    name = "categorical"
    description = "multinomial softmax regression: K classes, reference class, cross-entropy"
    distribution = "Categorical(p), p = softmax(x'W), reference class coefficients fixed at 0"
    link = "multinomial logit: log(p_k / p_0) = x'w_k"
    loss_name = "cross-entropy"
    loss_statement = "cross-entropy (multinomial log loss): NLL / n is its mean over the rows"
    nll_formula = "sum_i [logsumexp_k(x_i'w_k) - x_i'w_{y_i}]  = -sum_i log p_{i, y_i}"
    grad_formula = "X^T (softmax(XW) - onehot(y)), columns of the non-reference classes"
    hess_formula = "block (j, k): X^T diag(p_ij (delta_jk - p_ik)) X, for non-reference classes j, k"
    parameters = (
        "W: one row of coefficients per non-reference class (K - 1 rows, one per column of X); "
        "the reference class's row is fixed at 0"
    )
    y_domain = "K >= 2 labels of any kind; the first in sorted order is the reference class"

    def encode_target(self, values: np.ndarray, column: str = "y") -> Target:
        levels, codes = sorted_levels(values, column)
        if len(levels) < 2:
            raise FamilyError(
                f"target column '{column}' has a single class ({label_text(levels[0])}); "
                "categorical needs at least two.",
            )
        levels = tuple(python_scalar(v) for v in levels)
        note = f"reference class '{label_text(levels[0])}' (first in sorted order; its coefficients are 0)"
        return Target(codes.astype(np.intp), levels, note)

    def check_y(self, y: np.ndarray) -> None:
        if y.dtype.kind not in "iu" or (y.size and y.min() < 0):
            raise FamilyError("categorical labels must be class codes 0..K-1 after encoding.")

    def n_params(self, n_features: int, n_classes: int | None = None) -> int:
        return n_features * (n_classes - 1)

    def param_names(self, feature_names, levels=None):
        return [(name, label_text(level)) for level in levels[1:] for name in feature_names]

    @staticmethod
    def _n_classes(params: np.ndarray, X: np.ndarray) -> int:
        return params.size // X.shape[1] + 1

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None):
        n_classes = int(y.max()) + 1 if n_classes is None else n_classes
        B = np.zeros((n_classes - 1, X.shape[1]))
        if intercept:
            counts = np.bincount(y, weights=weights, minlength=n_classes).astype(float)
            if np.all(counts > 0):
                B[:, 0] = np.log(counts[1:]) - np.log(counts[0])
        return B.ravel()

    def linear_predictor(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``eta`` of shape (n_obs, n_classes) with the reference column fixed at zero."""
        B = params.reshape(-1, X.shape[1])
        eta = np.zeros((X.shape[0], B.shape[0] + 1))
        np.matmul(X, B.T, out=eta[:, 1:])
        return eta

    def evaluate(self, params, X, y, weights=None, order=2):
        from scipy.special import logsumexp

        eta = self.linear_predictor(params, X)
        rows = np.arange(X.shape[0])
        lse = logsumexp(eta, axis=1)
        loss = lse - eta[rows, y]
        nll = float(loss.sum() if weights is None else weights @ loss)
        weight = float(len(y) if weights is None else weights.sum())
        if order == 0:
            return BlockSums(nll, weight=weight)
        # eta is no longer needed: turn it into the probabilities in place.
        P = np.exp(np.subtract(eta, lse[:, None], out=eta), out=eta)
        R = P[:, 1:].copy()
        hit = y > 0
        R[rows[hit], y[hit] - 1] -= 1.0  # softmax minus one-hot, non-reference columns
        if weights is not None:
            R *= weights[:, None]
        grad = (R.T @ X).ravel()
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        n_features, n_free = X.shape[1], P.shape[1] - 1
        hess = np.empty((n_free * n_features, n_free * n_features))
        for j in range(n_free):
            pj = P[:, j + 1] if weights is None else weights * P[:, j + 1]
            sj = slice(j * n_features, (j + 1) * n_features)
            hess[sj, sj] = gram(X, pj * (1.0 - P[:, j + 1]))
            for k in range(j + 1, n_free):
                sk = slice(k * n_features, (k + 1) * n_features)
                block = weighted_gram(X, -pj * P[:, k + 1])
                hess[sj, sk] = block
                hess[sk, sj] = block.T
        return BlockSums(nll, grad, hess, weight)

    def simulate(self, params, X, rng):
        from scipy.special import softmax

        P = softmax(self.linear_predictor(params, X), axis=1)
        # Inverse-CDF draw per row, vectorised: count the cumulative probabilities below u.
        u = rng.random((X.shape[0], 1))
        codes = (np.cumsum(P, axis=1)[:, :-1] < u).sum(axis=1)
        return codes.astype(np.intp)

    def predict(self, estimates, X):
        from scipy.special import logsumexp

        eta = self.linear_predictor(np.asarray(estimates, dtype=float), X)
        return np.exp(eta - logsumexp(eta, axis=1, keepdims=True))
