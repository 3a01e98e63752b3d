"""Minimise an objective: Newton, L-BFGS and gradient descent, recording every iteration.

The optimisers see an :class:`Objective` (the NLL and its derivatives at a parameter vector) and
nothing of the rows behind it, so the same code fits data in memory, streamed from disk or spread
over machines.

Convergence has one meaning for every method: the Newton decrement
``lambda = sqrt(g' H^{-1} g)`` at the final point is at most ``tol``. Because the inverse
Hessian of the NLL is the covariance of the estimates, ``lambda`` bounds the distance to the
optimum of every parameter *in standard errors*; it does not depend on how the data are scaled.
A method that stops for any other reason (iteration limit, no further decrease) reports
``converged=False`` with the reason.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from .results import IterationRecord

#: Default tolerance on the Newton decrement (distance to the optimum in standard errors).
DEFAULT_TOL = {"newton": 1e-8, "lbfgs": 1e-6, "gd": 1e-6}
DEFAULT_MAX_ITER = {"newton": 100, "lbfgs": 2000, "gd": 20000}
METHODS = tuple(DEFAULT_TOL)

_EPS = np.finfo(float).eps
_ARMIJO = 1e-4


class Objective(Protocol):
    """The function an optimiser minimises: NLL, gradient and Hessian at ``params``."""

    def value(self, params: np.ndarray) -> float: ...

    def value_grad(self, params: np.ndarray) -> tuple[float, np.ndarray]: ...

    def value_grad_hess(self, params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, eq=False)
class OptimizeResult:
    """What an optimiser returns: the final point, its derivatives and the story of the run."""

    params: np.ndarray
    nll: float
    grad: np.ndarray
    hess: np.ndarray
    converged: bool
    message: str
    n_iter: int
    decrement: float
    trace: tuple[IterationRecord, ...] = field(default_factory=tuple)


def newton_direction(g: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, bool]:
    """Solve ``H d = -g``; return ``(d, H_was_positive_definite)``.

    The Hessian is first scaled to unit diagonal (Jacobi), which removes the effect of column
    scaling on the Cholesky factorisation. When ``H`` is not positive definite the step uses its
    eigen-decomposition with the eigenvalues replaced by their magnitudes, floored, which is still
    a descent direction.
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve, eigh

    diag = np.diag(H).copy()
    scale = np.sqrt(np.where(diag > 0, diag, 1.0))
    Hs = H / np.outer(scale, scale)
    gs = g / scale
    if np.all(diag > 0) and np.all(np.isfinite(Hs)):
        try:
            factor = cho_factor(Hs, check_finite=False)
            d = -cho_solve(factor, gs, check_finite=False) / scale
            if np.all(np.isfinite(d)):
                return d, True
        except LinAlgError:
            pass
    if not np.all(np.isfinite(Hs)):
        return -g, False
    vals, vecs = eigh(Hs, check_finite=False)
    floor = max(np.abs(vals).max(), 1.0) * 1e-8
    vals = np.maximum(np.abs(vals), floor)
    d = -(vecs @ ((vecs.T @ gs) / vals)) / scale
    return d, False


def decrement(g: np.ndarray, H: np.ndarray) -> float:
    """The Newton decrement ``sqrt(g' H^{-1} g)``; inf when ``H`` is not positive definite."""
    d, pd = newton_direction(g, H)
    return math.sqrt(max(-float(g @ d), 0.0)) if pd else math.inf


class _Recorder:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.records: list[IterationRecord] = []

    def add(self, f: float, g: np.ndarray, step: float) -> None:
        self.records.append(
            IterationRecord(
                iteration=len(self.records),
                nll=float(f),
                grad_norm=float(np.max(np.abs(g))) if g.size else 0.0,
                step=float(step),
                seconds=time.perf_counter() - self.start,
            )
        )


def _sufficient(f_new: float, f: float, slope: float, alpha: float) -> bool:
    """The Armijo test, allowing rounding noise in ``f`` (a few ulps of its size) so that a full
    step taken close to the optimum, where the decrease is below the precision of ``f``, is not
    rejected."""
    return math.isfinite(f_new) and f_new <= f + _ARMIJO * alpha * slope + 8.0 * _EPS * abs(f)


def _armijo(
    objective: Objective, x: np.ndarray, f: float, slope: float, d: np.ndarray, alpha: float
) -> tuple[float, float] | None:
    """Backtrack from ``alpha`` until the sufficient-decrease test holds; ``(alpha, f_new)``."""
    for _ in range(60):
        f_new = objective.value(x + alpha * d)
        if _sufficient(f_new, f, slope, alpha):
            return alpha, f_new
        alpha *= 0.5
    return None


def _trial(objective: Objective, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Everything at a trial point, with floating-point warnings held back: a rejected point may
    be wild. An accepted point whose derivatives are not finite is evaluated again in the open,
    so its warnings are seen as before."""
    with np.errstate(all="ignore"):
        f, g, H = objective.value_grad_hess(x)
    if math.isfinite(f) and not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        f, g, H = objective.value_grad_hess(x)
    return f, g, H


def newton(objective: Objective, x0: np.ndarray, *, tol: float, max_iter: int) -> OptimizeResult:
    """Newton's method on the analytic Hessian with a backtracking line search.

    A full Newton step is almost always accepted, so the NLL, gradient and Hessian are computed
    together at the full step, in one pass over the data; only when that point fails the Armijo
    test does the line search backtrack, with NLL-only evaluations.
    """
    rec = _Recorder()
    x = np.array(x0, dtype=float)
    f, g, H = objective.value_grad_hess(x)
    rec.add(f, g, math.nan)
    for it in range(max_iter + 1):
        d, pd = newton_direction(g, H)
        lam = math.sqrt(max(-float(g @ d), 0.0)) if pd else math.inf
        if lam <= tol:
            return OptimizeResult(x, f, g, H, True, _converged_message(lam, tol), it, lam, tuple(rec.records))
        if it == max_iter:
            return OptimizeResult(
                x, f, g, H, False, f"iteration limit ({max_iter}) reached", it, lam, tuple(rec.records)
            )
        slope = float(g @ d)
        alpha = 1.0
        f_new, g_new, H_new = _trial(objective, x + d)
        if not _sufficient(f_new, f, slope, alpha):
            found = _armijo(objective, x, f, slope, d, 0.5)
            if found is None:
                return OptimizeResult(
                    x, f, g, H, False,
                    _stalled_message("the line search found no decrease along the Newton direction", lam),
                    it, lam, tuple(rec.records),
                )
            alpha = found[0]
            f_new, g_new, H_new = objective.value_grad_hess(x + alpha * d)
        step = alpha * d
        x = x + step
        f, g, H = f_new, g_new, H_new
        rec.add(f, g, float(np.max(np.abs(step))))
    raise AssertionError("unreachable")


def gd(objective: Objective, x0: np.ndarray, *, tol: float, max_iter: int) -> OptimizeResult:
    """Gradient descent with a backtracking line search: the textbook method, and slow.

    The step length grows after each accepted step and halves until it gives sufficient decrease.
    Every ``check_every`` iterations (and at the end) the Hessian is evaluated once to test
    convergence by the Newton decrement, so the verdict means the same as for Newton.
    """
    check_every = 10
    rec = _Recorder()
    x = np.array(x0, dtype=float)
    f, g = objective.value_grad(x)
    rec.add(f, g, math.nan)
    alpha = 1.0 / max(1.0, float(np.max(np.abs(g))))
    lam = math.inf
    message = None
    it = 0
    while True:
        if it % check_every == 0 or it == max_iter or message is not None:
            f, g, H = objective.value_grad_hess(x)
            lam = decrement(g, H)
            if lam <= tol:
                return OptimizeResult(x, f, g, H, True, _converged_message(lam, tol), it, lam, tuple(rec.records))
            if message is not None:
                return OptimizeResult(x, f, g, H, False, _stalled_message(message, lam), it, lam, tuple(rec.records))
            if it == max_iter:
                return OptimizeResult(
                    x, f, g, H, False, f"iteration limit ({max_iter}) reached", it, lam, tuple(rec.records)
                )
        found = _armijo(objective, x, f, -float(g @ g), -g, 2.0 * alpha)
        if found is None:
            message = "the line search found no decrease along the gradient"
            continue
        alpha, _ = found
        step = alpha * float(np.max(np.abs(g)))
        x = x - alpha * g
        f, g = objective.value_grad(x)
        it += 1
        rec.add(f, g, step)


def lbfgs(objective: Objective, x0: np.ndarray, *, tol: float, max_iter: int) -> OptimizeResult:
    """scipy's L-BFGS-B on the analytic gradient, run to the precision of the arithmetic.

    scipy's own stopping rules are set tight; the verdict is the Newton-decrement test at the
    point it returns, so a stop short of the optimum is reported as not converged.
    """
    from scipy.optimize import minimize

    rec = _Recorder()
    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        key = x.tobytes()
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = objective.value_grad(x)
        f, g = cache[key]
        return f, g.copy()

    x = np.array(x0, dtype=float)
    last = [x]

    def callback(intermediate_result) -> None:
        xk = intermediate_result.x
        f, g = fun(xk)
        rec.add(f, g, float(np.max(np.abs(xk - last[0]))))
        last[0] = xk.copy()

    f0, g0 = fun(x)
    rec.add(f0, g0, math.nan)
    res = minimize(
        fun, x, jac=True, method="L-BFGS-B", callback=callback,
        options={"maxiter": max_iter, "maxfun": 10 * max_iter, "gtol": 0.0, "ftol": 4 * _EPS, "maxcor": 20},
    )
    x = np.asarray(res.x, dtype=float)
    f, g, H = objective.value_grad_hess(x)
    lam = decrement(g, H)
    n_iter = int(res.nit)
    if lam <= tol:
        return OptimizeResult(x, f, g, H, True, _converged_message(lam, tol), n_iter, lam, tuple(rec.records))
    reason = f"iteration limit ({max_iter}) reached" if n_iter >= max_iter else f"L-BFGS-B stopped: {_text(res.message)}"
    return OptimizeResult(x, f, g, H, False, _stalled_message(reason, lam), n_iter, lam, tuple(rec.records))


def _text(message) -> str:
    return message.decode() if isinstance(message, bytes) else str(message)


def _converged_message(lam: float, tol: float) -> str:
    return f"converged: Newton decrement {lam:.2g} <= tol {tol:.2g} (distance to the optimum in standard errors)"


def _stalled_message(reason: str, lam: float) -> str:
    where = "the Hessian is not positive definite there" if math.isinf(lam) else (
        f"the point is {lam:.2g} standard errors from the optimum"
    )
    return f"{reason}; {where}"


OPTIMIZERS: dict[str, Callable[..., OptimizeResult]] = {"newton": newton, "lbfgs": lbfgs, "gd": gd}
