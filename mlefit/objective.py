"""The NLL of a dataset as an optimiser sees it: the sum of a family's block sums.

:class:`DataObjective` evaluates the family on rows held in memory. Later engines (streamed chunks,
a cluster) only need to add :class:`~mlefit.families.base.BlockSums` up in the same way.
:class:`NumericObjective` replaces the analytic derivatives by central finite differences of the NLL.
:class:`PenalizedObjective` adds an L2 penalty (a Gaussian prior): the optimiser then finds the MAP
estimate, and the families never know.
"""

from __future__ import annotations

import numpy as np

from . import numdiff
from .families.base import BlockSums, Family


#: Target size of one row block of ``X``. A block this small stays in the CPU cache while a family
#: computes eta, the loss, the gradient and the Hessian from it, so each evaluation reads ``X``
#: from memory once, and the family's temporaries (a few per row, a scaled copy of the block for
#: the Hessian) are small instead of n_obs long.
BLOCK_BYTES = 1 << 20
MIN_BLOCK_ROWS = 512


def block_rows(n_features: int) -> int:
    """Rows per block: about :data:`BLOCK_BYTES` of ``X``."""
    return max(MIN_BLOCK_ROWS, BLOCK_BYTES // (8 * max(n_features, 1)))


_BLAS_CONTROLLER = None


def one_blas_thread():
    """A context in which BLAS runs on one thread.

    The blocks are small, so a BLAS call on one of them is over in microseconds: a second BLAS
    thread saves little, and when another process holds a core the threads wait for each other
    on every call (measured: a categorical fit 5x slower on a loaded 2-core machine).
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


class DataObjective:
    """NLL, gradient and Hessian of ``family`` on ``(X, y, weights)`` held in memory.

    The rows are evaluated in blocks of :func:`block_rows` rows and the family's
    :class:`~mlefit.families.base.BlockSums` added up, which gives the same sums as one call on
    all rows (up to the order of floating-point additions) in one cache-friendly pass.
    """

    def __init__(
        self, family: Family, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
        *, rows: int | None = None,
    ):
        self.family, self.X, self.y, self.weights = family, X, y, weights
        self.rows = rows
        #: The family supplies a Hessian root and precise gradients (see ``Family.hess_root``).
        self.refinable = type(family).hess_root is not Family.hess_root

    def sums(self, params: np.ndarray, order: int, precise: bool = False) -> BlockSums:
        X, y, w, evaluate = self.X, self.y, self.weights, self.family.evaluate
        if precise:  # the rare extended-precision path of ill-conditioned fits: all rows at once
            return evaluate(params, X, y, w, order=order, precise=True)
        n_obs, rows = X.shape[0], self.rows or block_rows(X.shape[1])
        if n_obs <= rows:
            return evaluate(params, X, y, w, order=order)
        nll = weight = 0.0
        grad = hess = None
        with one_blas_thread():
            for start in range(0, n_obs, rows):
                block = slice(start, start + rows)
                s = evaluate(params, X[block], y[block], None if w is None else w[block], order=order)
                nll += s.nll
                weight += s.weight
                if order >= 1:
                    grad = s.grad.copy() if grad is None else np.add(grad, s.grad, out=grad)
                if order >= 2:
                    hess = s.hess.copy() if hess is None else np.add(hess, s.hess, out=hess)
        return BlockSums(nll, grad, hess, weight)

    def value(self, params: np.ndarray) -> float:
        return self.sums(params, 0).nll

    def value_grad(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        s = self.sums(params, 1)
        return s.nll, s.grad

    def value_grad_hess(self, params: np.ndarray, precise: bool = False) -> tuple[float, np.ndarray, np.ndarray]:
        """NLL, gradient and Hessian; ``precise`` sums the gradient's products with the design in
        extended precision (for refining Newton's method on ill-conditioned designs)."""
        s = self.sums(params, 2, precise)
        return s.nll, s.grad, s.hess

    def hess_root(self, params: np.ndarray) -> np.ndarray | None:
        """A matrix ``Z`` with ``Z.T @ Z`` the Hessian (the family's weighted design), or None."""
        return self.family.hess_root(params, self.X, self.y, self.weights)


class NumericObjective:
    """The same NLL with its gradient and Hessian from central finite differences."""

    def __init__(self, inner: DataObjective):
        self.inner = inner

    def value(self, params: np.ndarray) -> float:
        return self.inner.value(params)

    def value_grad(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        return self.value(params), numdiff.gradient(self.value, params)

    def value_grad_hess(self, params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        f, g = self.value_grad(params)
        return f, g, numdiff.hessian(self.value, params)


class PenalizedObjective:
    r"""``inner + (lam / 2) params' P params``: the negative log-posterior under a Gaussian prior.

    ``P`` says which parameters are penalised and how (``Family.l2_matrix``: the identity on the
    coefficients, zero for intercepts and gaussian's log sigma; categorical's symmetric form). The
    penalty's gradient is ``lam P params`` and its Hessian ``lam P``, added to the inner
    objective's, so the penalised Hessian at the optimum is the posterior precision of the Laplace
    approximation.
    """

    def __init__(self, inner, penalty: np.ndarray, lam: float):
        self.inner, self.lam = inner, float(lam)
        self.penalty = np.asarray(penalty, dtype=float)
        # only the penalised parameters enter the products (an unpenalised log sigma may be -inf)
        self._idx = np.flatnonzero(np.any(self.penalty != 0, axis=0))
        self._P = self.penalty[np.ix_(self._idx, self._idx)]

    def _pen(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        v = params[self._idx]
        Pv = self._P @ v
        grad = np.zeros_like(params, dtype=float)
        grad[self._idx] = self.lam * Pv
        return 0.5 * self.lam * float(v @ Pv), grad

    def penalty_value(self, params: np.ndarray) -> float:
        return self._pen(params)[0]

    def value(self, params: np.ndarray) -> float:
        return self.inner.value(params) + self.penalty_value(params)

    def value_grad(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.inner.value_grad(params)
        pf, pg = self._pen(params)
        return f + pf, g + pg

    def value_grad_hess(self, params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        f, g, H = self.inner.value_grad_hess(params)
        pf, pg = self._pen(params)
        return f + pf, g + pg, H + self.lam * self.penalty
