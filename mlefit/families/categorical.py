"""Categorical family: multinomial (softmax) logistic regression."""

from __future__ import annotations

import functools

import numpy as np

from .. import linalg
from ..errors import FamilyError, UsageError
from .base import BlockSums, Family, Target, label_text, python_scalar, sorted_levels, total_weight, weighted_sum


#: The Hessian's rows of weights (W, (K-1)K/2 of them) are formed for chunks of rows of about this
#: many bytes, but at least HESSIAN_MIN_ROWS rows (see ``Categorical._hessian``).
HESSIAN_CHUNK_BYTES = 1 << 22
HESSIAN_MIN_ROWS = 512


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
    classes = True
    separable = True
    integer_target = True
    target_dtype = "intp"
    no_offset = "an offset common to every class cancels out of the class probabilities"
    penalty_statement = (
        "NLL + (l2/2) sum_k ||w_k||^2 over the coefficients of all K classes (symmetric), intercepts not penalised"
    )

    def encode_target(self, values: np.ndarray, column: str = "y", rows: np.ndarray | None = None) -> Target:
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

    def n_coef_rows(self, n_classes: int | None = None) -> int:
        return n_classes - 1

    def coef_labels(self, feature_names, levels=None):
        return [(name, label_text(level)) for level in levels[1:] for name in feature_names]

    @staticmethod
    def _n_classes(params: np.ndarray, X: np.ndarray) -> int:
        return params.size // X.shape[1] + 1

    def start_params(self, X, y, weights=None, *, intercept=False, n_classes=None, offset=None):
        n_classes = int(y.max()) + 1 if n_classes is None else n_classes
        B = np.zeros((n_classes - 1, X.shape[1]))
        if intercept:
            counts = np.bincount(y, weights=weights, minlength=n_classes).astype(float)
            if np.all(counts > 0):
                B[:, 0] = np.log(counts[1:]) - np.log(counts[0])
        return B.ravel()

    def linear_predictor(self, params: np.ndarray, X: np.ndarray, precise: bool = False) -> np.ndarray:
        """``eta`` of shape (n_obs, n_classes) with the reference column fixed at zero."""
        B = params.reshape(-1, X.shape[1])
        eta = np.zeros((X.shape[0], B.shape[0] + 1))
        if precise:
            eta[:, 1:] = linalg.dot(X, B.T)
        else:
            np.matmul(X, B.T, out=eta[:, 1:])
        return eta

    def curvature_bound(self):
        """The first class's ``p_1 (1 - p_1) <= 1/4`` (its coefficients come first)."""
        return 0.25

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        n_obs, n_features = X.shape
        # Class-major (n_classes, n_obs) throughout: the sums over the classes run along whole
        # rows, and each class's weights are a contiguous row.
        coef = params.reshape(-1, n_features)
        n_classes = coef.shape[0] + 1
        eta = np.zeros((n_classes, n_obs))
        if precise:
            eta[1:] = linalg.dot(X, coef.T).T
        else:
            np.matmul(coef, X.T, out=eta[1:])
        # logsumexp by hand (scipy's checks cost more than the sums on a small block): the
        # maximum over the classes is >= 0 (the reference), so every exp(eta - max) is in (0, 1].
        top = eta.max(axis=0)
        P = np.exp(eta - top)
        total = P.sum(axis=0)
        picked = y * n_obs + np.arange(n_obs)  # flat index of each row's observed class
        loss = np.log(total)
        loss += top  # logsumexp(eta): the smallest class log-probability of a row is min(eta) - this
        if order >= 2:
            lows = eta.min(axis=0)
            lows -= loss
            low = float(lows.min(initial=0.0) if weights is None else lows.min(where=weights > 0, initial=0.0))
        loss -= eta.ravel()[picked]
        nll = weighted_sum(loss, weights)
        weight = total_weight(n_obs, weights)
        if order == 0:
            return BlockSums(nll, weight=weight)
        P /= total
        R = P.copy()
        R.ravel()[picked] -= 1.0  # softmax minus one-hot
        R = R[1:]
        if weights is not None:
            R *= weights
        grad = linalg.tdot(X, R.T).T.ravel() if precise else np.dot(R, X).ravel()
        if order == 1:
            return BlockSums(nll, grad, weight=weight)
        return BlockSums(nll, grad, self._hessian(X, P[1:], weights), weight, low)

    @staticmethod
    def _hessian(X: np.ndarray, P: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """The (K-1)K/2 distinct blocks ``X.T @ diag(p_j (delta_jk - p_k)) @ X``, j <= k, each a
        weighted Gram matrix, in one matrix product: the weights of every block (one row each)
        times the products ``x_a x_b`` (a <= b) of each row's features. Each block is symmetric,
        so p(p+1)/2 products per row give it; the products do not depend on the parameters.
        Never a Kronecker product, and nothing wider than p(p+1)/2 per row.

        ``P`` holds the probabilities of the non-reference classes, class-major: (K-1, n_obs).
        """
        n_obs, n_features = X.shape
        n_free = P.shape[0]
        if n_features == 1:
            # One column (the intercept-only model's): the blocks are numbers,
            # sum_i w_i x_i^2 p_ij (delta_jk - p_ik), from one (K-1) x (K-1) product, without the
            # (K-1)K/2 rows of W (with K = 30 and the null model's 131,072-row blocks: 450 MB).
            root = np.abs(X[:, 0]) if weights is None else np.abs(X[:, 0]) * np.sqrt(weights)
            A = P * root
            hess = -np.dot(A, A.T)  # one symmetric product: exactly symmetric
            hess[np.diag_indices(n_free)] += np.dot(A, root)
            return hess
        j, k, diagonal = _pairs(n_free)
        rows, cols, starts = _triangle(n_features)
        first = _triangle(n_free)[2]  # where class j's pairs (j, k >= j) start
        Pw = P if weights is None else P * weights
        # Rows in chunks whose W stays within HESSIAN_CHUNK_BYTES: with many classes W has
        # (K-1)K/2 rows (435 for K = 30), and W and Q written and read back from the cache rather
        # than from memory make the pass about a third faster (measured: K = 30, 21 columns).
        step = min(n_obs, max(HESSIAN_MIN_ROWS, HESSIAN_CHUNK_BYTES // (8 * len(j))))
        W = np.empty((len(j), step))
        Q = np.empty((step, len(rows)), order="F")
        upper = np.zeros((len(j), len(rows)))  # (n_blocks, p(p+1)/2)
        for s in range(0, n_obs, step):
            m = min(step, n_obs - s)
            Wc, Qc, part = W[:, :m], Q[:m], slice(s, s + m)
            for a in range(n_free):  # -w p_j p_k for the pairs (j, k >= j), class by class
                np.multiply(Pw[a, part], P[a:, part], out=Wc[first[a]:first[a + 1]])
            np.negative(Wc, out=Wc)
            Wc[diagonal] += Pw[:, part]  # + w p_j on the diagonal blocks
            for a in range(n_features):  # x_a x_b for a <= b, column by column
                np.multiply(X[part, a : a + 1], X[part, a:], out=Qc[:, starts[a] : starts[a + 1]])
            upper += np.dot(Wc, Qc)
        G = np.empty((len(j), n_features, n_features))
        G[:, rows, cols] = upper
        G[:, cols, rows] = upper
        hess = np.empty((n_free, n_features, n_free, n_features))
        hess[j, :, k, :] = G
        hess[k, :, j, :] = G
        return hess.reshape(n_free * n_features, n_free * n_features)

    def hess_root(self, params, X, y, weights=None, offset=None):
        r"""A square root ``Z`` of the Hessian, shape (n_obs (K-1), n_features (K-1)).

        Row i's weight matrix ``W = diag(q) - q q'`` (``q`` the non-reference probabilities) is
        ``S' S`` with ``S = (I - c u u') diag(u)``, ``u = sqrt(q)``, ``c = 1 / (1 + sqrt(p_0))``
        (because ``2c - c^2 |u|^2 = 1`` with ``|u|^2 = 1 - p_0``); ``Z``'s rows for row i are
        ``S kron x_i'``, in the class-major parameter order.
        """
        from scipy.special import softmax

        n_obs, n_features = X.shape
        P = softmax(self.linear_predictor(params, X), axis=1)
        q = P[:, 1:]
        u = np.sqrt(q)
        c = 1.0 / (1.0 + np.sqrt(P[:, 0]))
        n_free = q.shape[1]
        # S[i, m, j] = u_j delta_mj - c_i u_m q_j
        S = -c[:, None, None] * u[:, :, None] * q[:, None, :]
        S[:, np.arange(n_free), np.arange(n_free)] += u
        if weights is not None:
            S *= np.sqrt(weights)[:, None, None]
        Z = S[:, :, :, None] * X[:, None, None, :]
        return Z.reshape(n_obs * n_free, n_free * n_features)

    def scores(self, params, X, y, offset=None):
        from scipy.special import softmax

        P = softmax(self.linear_predictor(params, X), axis=1)
        R = P[:, 1:]
        hit = y > 0
        R[np.flatnonzero(hit), y[hit] - 1] -= 1.0
        # row i's score for class k is R[i, k] * x_i: class-major like the parameters
        return (R[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)

    def l2_matrix(self, n_features, n_classes=None, *, intercept=False):
        r"""The symmetric multinomial penalty, written in the reference parametrisation.

        With K coefficient vectors ``w_0..w_{K-1}`` (no reference class) the penalty
        ``sum_k ||w_k||^2`` is minimised, for given differences ``v_k = w_k - w_0`` (the reported
        coefficients), at ``w_k = v_k - mean_j v_j``, where it equals
        ``sum_k ||v_k||^2 - ||sum_k v_k||^2 / K = v' (C kron I) v`` with
        ``C = I_{K-1} - 11'/K``. So the penalised optimum is the one of the symmetric model
        (scikit-learn's multinomial LogisticRegression) and does not depend on which class is the
        reference. Intercepts are not penalised.
        """
        n_free = n_classes - 1
        C = np.eye(n_free) - 1.0 / n_classes
        mask = np.ones(n_features)
        if intercept and n_features:
            mask[0] = 0.0
        return np.kron(C, np.diag(mask))

    def simulation_classes(self, n_rows, n_classes):
        if n_classes is not None and n_classes < 2:
            raise UsageError(f"categorical needs at least 2 classes; got {n_classes}.")
        if n_classes is not None and n_classes != n_rows + 1:
            raise UsageError(
                f"{n_classes} classes need {n_classes - 1} coefficient row(s) (one per non-reference class); "
                f"--coef has {n_rows}.",
                "Separate the rows with ';', e.g. --coef \"1,-2;0.5,0\".",
            )
        return n_rows + 1

    def simulation_levels(self, n_classes):
        return tuple(range(n_classes))

    def simulate(self, params, X, rng, offset=None):
        from scipy.special import softmax

        P = softmax(self.linear_predictor(params, X), axis=1)
        # Inverse-CDF draw per row, vectorised: count the cumulative probabilities below u.
        u = rng.random((X.shape[0], 1))
        codes = (np.cumsum(P, axis=1)[:, :-1] < u).sum(axis=1)
        return codes.astype(np.intp)

    def predict(self, estimates, X, offset=None):
        from scipy.special import logsumexp

        eta = self.linear_predictor(np.asarray(estimates, dtype=float), X)
        return np.exp(eta - logsumexp(eta, axis=1, keepdims=True))


@functools.lru_cache(maxsize=None)
def _pairs(n_free: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class pairs j <= k of the Hessian's distinct blocks, and which of them are diagonal."""
    j, k = np.triu_indices(n_free)
    return j, k, np.flatnonzero(j == k)


@functools.lru_cache(maxsize=None)
def _triangle(n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of each entry of an upper triangle, row by row, and where each row starts."""
    rows, cols = np.triu_indices(n_features)
    starts = np.concatenate([[0], np.cumsum(np.arange(n_features, 0, -1))])
    return rows, cols, starts
