"""Objectives built on another: numerical derivatives, and an L2 penalty.

An objective is what the optimisers minimise: ``value(params)``, ``value_grad(params)`` and
``value_grad_hess(params)`` (see :class:`mlefit.optimize.Objective`). The engines give the NLL of a
family over rows (:class:`mlefit.engines.base.RowsObjective`); :class:`NumericObjective` replaces
its analytic derivatives by central finite differences of the NLL, and :class:`PenalizedObjective`
adds an L2 penalty (a Gaussian prior): the optimiser then finds the MAP estimate, and the families
never know.
"""

from __future__ import annotations

import numpy as np

from . import numdiff


class NumericObjective:
    """The same NLL with its gradient and Hessian from central finite differences."""

    def __init__(self, inner):
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


class FixedObjective:
    """``inner`` as a function of the free parameters (``free``, a mask), the others held at their
    values in ``full``: for a parameter held at a boundary, or a point of a profile likelihood."""

    def __init__(self, inner, free: np.ndarray, full: np.ndarray):
        self.inner, self.free = inner, np.asarray(free, dtype=bool)
        self.full = np.array(full, dtype=float)

    def expand(self, x: np.ndarray) -> np.ndarray:
        """The full parameter vector of free parameters ``x``."""
        out = self.full.copy()
        out[self.free] = x
        return out

    def value(self, x: np.ndarray) -> float:
        return self.inner.value(self.expand(x))

    def value_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.inner.value_grad(self.expand(x))
        return f, g[self.free]

    def value_grad_hess(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        f, g, H = self.inner.value_grad_hess(self.expand(x))
        return f, g[self.free], H[np.ix_(self.free, self.free)]
