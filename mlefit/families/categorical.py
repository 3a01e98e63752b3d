"""Categorical family: multinomial (softmax) logistic regression."""

from __future__ import annotations

import numpy as np

from ..errors import FamilyError
from .base import BlockSums, Family, Target, label_text, python_scalar, sorted_levels, total_weight, weighted_sum


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
    nll_formula = "sum_i [logsumexp_k(x_i'w_k) - x_i'w_{y_i}]  = -sum_i log p_{i, y_i}"
    grad_formula = "X^T (softmax(XW) - onehot(y)), columns of the non-reference classes"

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
        n_obs, n_features = X.shape
        eta = self.linear_predictor(params, X)
        n_classes = eta.shape[1]
        # logsumexp by hand (scipy's checks cost more than the sums on a small block): the row
        # maximum is >= 0 (the reference column), so every exp(eta - max) lies in (0, 1].
        top = eta.max(axis=1)
        P = np.exp(eta - top[:, None])
        total = P.sum(axis=1)
        picked = np.arange(n_obs) * n_classes + y  # flat index of each row's observed class
        loss = np.log(total)
        loss += top
        loss -= eta.ravel()[picked]
        nll = weighted_sum(loss, weights)
        weight = total_weight(n_obs, weights)
        if order == 0:
            return BlockSums(nll, weight=weight)
        P /= total[:, None]
        R = P.copy()
        R.ravel()[picked] -= 1.0  # softmax minus one-hot
        if weights is not None:
            R *= weights[:, None]
        grad = (X.T @ R[:, 1:]).T.ravel()
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        return BlockSums(nll, grad, self._hessian(X, P[:, 1:], weights), weight)

    @staticmethod
    def _hessian(X: np.ndarray, P: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """The (K-1)K/2 distinct blocks ``X.T @ diag(p_j (delta_jk - p_k)) @ X``, j <= k, as one
        matrix product: the rows of ``X.T`` scaled by each block's weights, stacked, times ``X``.

        ``P`` holds the probabilities of the non-reference classes, shape (n_obs, K-1). The
        stacked scaled copy is (K-1)K/2 times the block of ``X``; the caller keeps blocks small.
        """
        n_features, n_free = X.shape[1], P.shape[1]
        j, k = np.triu_indices(n_free)
        Pt = P.T if weights is None else (P * weights[:, None]).T
        W = -Pt[j] * P.T[k]  # (n_blocks, n_obs): -w p_j p_k
        W[j == k] += Pt[j[j == k]]  # + w p_j on the diagonal blocks
        Z = W[:, None, :] * X.T[None, :, :]  # (n_blocks, n_features, n_obs)
        blocks = (Z.reshape(-1, X.shape[0]) @ X).reshape(len(j), n_features, n_features)
        hess = np.empty((n_free * n_features, n_free * n_features))
        for b, (jb, kb) in enumerate(zip(j, k)):
            sj = slice(jb * n_features, (jb + 1) * n_features)
            sk = slice(kb * n_features, (kb + 1) * n_features)
            if jb == kb:
                hess[sj, sj] = 0.5 * (blocks[b] + blocks[b].T)  # exactly symmetric
            else:
                hess[sj, sk] = blocks[b]
                hess[sk, sj] = blocks[b].T
        return hess

    def simulate(self, params, X, rng):
        from scipy.special import softmax

        P = softmax(self.linear_predictor(params, X), axis=1)
        # Inverse-CDF draw per row, vectorised: count the cumulative probabilities below u.
        u = rng.random((X.shape[0], 1))
        codes = (np.cumsum(P, axis=1)[:, :-1] < u).sum(axis=1)
        return codes.astype(np.intp)
