"""The NLL of a dataset as an optimiser sees it: the sum of a family's block sums.

:class:`DataObjective` evaluates the family on rows held in memory. Later engines (streamed chunks,
a cluster) only need to add :class:`~mlefit.families.base.BlockSums` up in the same way.
:class:`NumericObjective` replaces the analytic derivatives by central finite differences of the NLL.
"""

from __future__ import annotations

import numpy as np

from . import numdiff
from .families.base import BlockSums, Family


class DataObjective:
    """NLL, gradient and Hessian of ``family`` on ``(X, y, weights)`` held in memory."""

    def __init__(self, family: Family, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None):
        self.family, self.X, self.y, self.weights = family, X, y, weights
        #: The family supplies a Hessian root and precise gradients (see ``Family.hess_root``).
        self.refinable = type(family).hess_root is not Family.hess_root

    def sums(self, params: np.ndarray, order: int, precise: bool = False) -> BlockSums:
        if precise:
            return self.family.evaluate(params, self.X, self.y, self.weights, order=order, precise=True)
        return self.family.evaluate(params, self.X, self.y, self.weights, order=order)

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
