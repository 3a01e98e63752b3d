"""The NLL of a dataset as an optimiser sees it: the sum of a family's block sums.

:class:`DataObjective` evaluates the family on rows held in memory. Later engines (streamed chunks,
a cluster) only need to add :class:`~mlefit.families.base.BlockSums` up in the same way.
:class:`NumericObjective` replaces the analytic derivatives by central finite differences of the NLL.
:class:`PenalizedObjective` adds an L2 penalty (a Gaussian prior): the optimiser then finds the MAP
estimate, and the families never know.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from . import numdiff, parallel
from .parallel import one_blas_thread
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


#: Tasks per evaluation: enough for the threads to share the work evenly whatever the machine's
#: other load; each holds one partial Hessian until they are added up, so fewer for large models.
MAX_TASKS = 64
MAX_TASK_BYTES = 1 << 26


def task_count(n_blocks: int, n_params: int) -> int:
    """How many runs of consecutive blocks an evaluation is split into (a function of the data's
    shape only, so the order of the additions never depends on the threads)."""
    by_memory = MAX_TASK_BYTES // (8 * max(n_params, 1) ** 2)
    return max(1, min(n_blocks, MAX_TASKS, max(by_memory, 4)))


def add_up(sums: Iterable[BlockSums]) -> BlockSums:
    """The sum of block sums, added in the order given (in place, so one copy of each array)."""
    nll = weight = 0.0
    grad = hess = None
    lows: list[float | None] = []
    for s in sums:
        nll += s.nll
        weight += s.weight
        if s.grad is not None:
            grad = s.grad.copy() if grad is None else np.add(grad, s.grad, out=grad)
        if s.hess is not None:
            hess = s.hess.copy() if hess is None else np.add(hess, s.hess, out=hess)
        lows.append(s.min_log_prob)
    low = None if not lows or None in lows else min(lows)  # known only when every part has it
    return BlockSums(nll, grad, hess, weight, low)


class ScreenMemory:
    """Remembers the smallest fitted class log-probability of the last evaluation that computed it
    (``BlockSums.min_log_prob``, reported with the Hessian), so the separation screen at the
    estimate needs no pass of its own."""

    _screened: tuple[np.ndarray, float] | None = None

    def _remember(self, params: np.ndarray, s: BlockSums) -> BlockSums:
        if s.min_log_prob is not None:
            self._screened = (params.copy(), s.min_log_prob)
        return s

    def min_log_prob(self, params: np.ndarray) -> float | None:
        """The smallest fitted class log-probability at ``params`` (see ``BlockSums.min_log_prob``)
        when the last evaluation that computed it was at ``params``, else None."""
        if self._screened is not None and np.array_equal(self._screened[0], params):
            return self._screened[1]
        return None


class DataObjective(ScreenMemory):
    """NLL, gradient and Hessian of ``family`` on ``(X, y, weights)`` held in memory.

    The rows are evaluated in blocks of :func:`block_rows` rows and the family's
    :class:`~mlefit.families.base.BlockSums` added up, which gives the same sums as one call on
    all rows (up to the order of floating-point additions) in one cache-friendly pass. Runs of
    consecutive blocks are tasks for :func:`mlefit.parallel.map_tasks` (several threads); the runs
    depend only on the shape of the data and are added up in order, so the sums are the same to
    the last bit whatever the number of threads.
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
            return self._remember(params, evaluate(params, X, y, w, order=order, precise=True))
        n_obs, rows = X.shape[0], self.rows or block_rows(X.shape[1])
        if n_obs <= rows:
            return self._remember(params, evaluate(params, X, y, w, order=order))
        starts = range(0, n_obs, rows)
        per_task = -(-len(starts) // task_count(len(starts), params.size))

        def task(i: int) -> BlockSums:
            blocks = (slice(start, start + rows) for start in starts[i * per_task:(i + 1) * per_task])
            return add_up(evaluate(params, X[b], y[b], None if w is None else w[b], order=order) for b in blocks)

        with one_blas_thread():
            parts = parallel.map_tasks(task, -(-len(starts) // per_task))
        return self._remember(params, add_up(parts))

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
