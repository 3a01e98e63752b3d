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
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from . import progress
from .results import IterationRecord

if TYPE_CHECKING:
    from .linalg import ScaledSPD

#: Default tolerance on the Newton decrement (distance to the optimum in standard errors).
DEFAULT_TOL = {"newton": 1e-8, "lbfgs": 1e-6, "gd": 1e-6}
DEFAULT_MAX_ITER = {"newton": 100, "lbfgs": 2000, "gd": 20000}
METHODS = tuple(DEFAULT_TOL)
#: Condition number of the unit-diagonal Hessian beyond which Newton finishes with gradients
#: summed in extended precision (their float64 rounding would cost more than ~1e-12 relative).
POLISH_COND = 1e4
#: ... and beyond which its steps come from a QR of the Hessian's square root, not Cholesky.
QR_COND = 1e8
#: With ``chord=True``, a Newton step from a point this close to the optimum (decrement, in
#: standard errors) may evaluate the next point without a Hessian and step on with this one.
CHORD_DECREMENT = 0.5
#: The chord step's predicted decrement, ``CHORD_FACTOR c^2 lam^3`` with ``c = lam / lam_prev^2``
#: the observed quadratic rate (lam_{k+1} = c lam_k^2): a reused Hessian is off by about c lam
#: (relative), which multiplies the next step's error (factor measured on the benchmarks: 5).
CHORD_FACTOR = 5.0
#: A chord step is also taken when the next point is predicted to pass the test by less than this
#: factor: the prediction is rough (categorical benchmark: 9.7e-9 predicted, 1.17e-8 found), and a
#: miss costs a Newton iteration with its Hessian pass, a hit only a gradient pass.
CHORD_MARGIN = 10.0

#: The quasi-Newton passes of ``newton(approx=...)``: secant pairs kept (L-BFGS memory) ...
QUASI_MEMORY = 10
#: ... a step is slow when it shrinks the estimated decrement by less than this factor ...
QUASI_RATE = 0.5
#: ... after a slow step the approximate Hessian is taken again at the current point when the point
#: has moved at least this far (in the approximation's norm, standard errors) from where it was
#: taken (closer, its error is the approximation's own, not the distance's), at most QUASI_SLOW
#: times in a row; QUASI_SLOW other slow steps in a row hand over to Newton's own iterations ...
QUASI_MOVE = 1.0
QUASI_SLOW = 3
#: ... and the passes stop when the estimated decrement is below ``tol / QUASI_MARGIN``: the
#: estimate was within 5-25% of the true decrement on the benchmark's wide and many-class fits, so
#: the Hessian pass that follows (the verdict's, and the covariance's) finds the point converged;
#: each factor of 3 asks one or two more gradient passes.
QUASI_MARGIN = 3.0
#: With ``newton(hess_cost=...)``, the first point within QUASI_FULL_DECREMENT standard errors of the
#: optimum may take the Hessian of all rows in place of the approximation: the secant steps then
#: converge almost as Newton's, in about QUASI_FULL_PASSES more gradient passes (3 or 4 on the
#: benchmark's wide fits, from 0.5 standard errors to 1e-10), where the approximation's steps would
#: take ``log(lam / (tol / QUASI_MARGIN)) / log(1 / rate)`` at the slower of the last two steps' rate.
#: It is taken when that saves more passes than the Hessian pass costs (``hess_cost``, in gradient
#: passes): bernoulli 100,000 x 201, 18 gradient passes become 8 for a Hessian pass worth 7 (fit
#: 0.357 s -> 0.316 s); at 20,000 x 501 and 10,000 x 1,001 the pass costs 17 and 29, more than the
#: 12 and 17 it saves, and is not taken.
QUASI_FULL_DECREMENT = 1.0
QUASI_FULL_PASSES = 3.0

_EPS = np.finfo(float).eps
_ARMIJO = 1e-4


class Objective(Protocol):
    """The function an optimiser minimises: NLL, gradient and Hessian at ``params``.

    Optionally (see :class:`~mlefit.engines.base.RowsObjective`), when its ``refinable`` attribute is
    true, ``value_grad_hess(params, precise=True)`` sums the gradient in extended precision and
    ``hess_root(params)`` returns a matrix ``Z`` with ``Z'Z`` the Hessian; Newton uses them on
    ill-conditioned problems.
    """

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
    #: The factorisation of ``hess`` the verdict solved with (a :class:`mlefit.linalg.ScaledSPD`),
    #: for the covariance to reuse; None when there is none.
    factor: ScaledSPD | None = None


def newton_direction(g: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, bool]:
    """Solve ``H d = -g``; return ``(d, H_was_positive_definite)``.

    The Hessian is first scaled to unit diagonal (Jacobi), which removes the effect of column
    scaling on the Cholesky factorisation. When ``H`` is not positive definite the step uses its
    eigen-decomposition with the eigenvalues replaced by their magnitudes, floored, which is still
    a descent direction.
    """
    d, pd, _, _ = _factored_direction(g, H)
    return d, pd


def _factored_direction(g: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, bool, float, ScaledSPD | None]:
    """:func:`newton_direction` plus the estimated condition number of the unit-diagonal Hessian
    (inf when it is not positive definite) and the factorisation the direction was solved with
    (a :class:`mlefit.linalg.ScaledSPD` of ``H``; None when ``H`` is not positive definite)."""
    from . import linalg

    try:
        factor = linalg.ScaledSPD(H)
        d = -factor.solve(g)
        if np.all(np.isfinite(d)):
            return d, True, factor.cond if g.size else 1.0, factor
    except linalg.NotPositiveDefinite:
        pass
    diag = np.diag(H)
    scale = np.sqrt(np.where(diag > 0, diag, 1.0))
    Hs = H / np.outer(scale, scale)
    gs = g / scale
    if not np.all(np.isfinite(Hs)):
        return -g, False, math.inf, None
    vals, vecs = np.linalg.eigh(Hs)
    floor = max(np.abs(vals).max(), 1.0) * 1e-8
    vals = np.maximum(np.abs(vals), floor)
    d = -(vecs @ ((vecs.T @ gs) / vals)) / scale
    return d, False, math.inf, None


def root_direction(g: np.ndarray, Z: np.ndarray) -> np.ndarray | None:
    """Solve ``Z'Z d = -g`` by a QR factorisation of ``Z`` (the Hessian's square root), or None
    when ``Z`` is numerically rank deficient.

    The error of this solve grows with ``cond(Z)``, where a Cholesky factorisation of the
    Hessian's would grow with ``cond(Z)^2``; it is refined (``mlefit.linalg``) when even that
    could cost the step more than a millionth of its size.
    """
    from . import linalg

    qr = linalg.QR(Z)
    if qr.cond > linalg.COLLINEAR_COND:
        return None
    d = qr.solve(None, g, refine=linalg.U * qr.cond**2 > 1e-6).x
    return d if np.all(np.isfinite(d)) else None


def decrement(g: np.ndarray, H: np.ndarray) -> float:
    """The Newton decrement ``sqrt(g' H^{-1} g)``; inf when ``H`` is not positive definite."""
    d, pd = newton_direction(g, H)
    return math.sqrt(max(-float(g @ d), 0.0)) if pd else math.inf


class _Precision:
    """Newton's arithmetic: fast float64 sums and Cholesky steps, or, for an ill-conditioned
    Hessian, gradients summed in extended precision and steps from a QR of the Hessian's root.

    With float64 sums the gradient carries an error of about ``u |X|'|r|``, and Newton stops where
    that error balances the true gradient: ``cond(H)`` times ``u`` (relative) from the optimum,
    whatever the step solver. Past :data:`POLISH_COND` the iterations therefore finish with
    precise gradients (iterative refinement of Newton's method); past :data:`QR_COND`, where a
    Cholesky step is itself unreliable, the steps come from a QR of the weighted design as well.
    Objectives that are not ``refinable`` (numeric derivatives, families without a Hessian root)
    always use the fast arithmetic.
    """

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.available = bool(getattr(objective, "refinable", False))
        self.precise = False
        self.factor = None  # the last direction's factorisation (its ``matrix`` is the Hessian)

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        if self.precise:
            return self.objective.value_grad_hess(x, precise=True)
        return self.objective.value_grad_hess(x)

    def direction(self, x: np.ndarray, g: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``(d, decrement, cond)`` at ``x``."""
        d, pd, cond, self.factor = _factored_direction(g, H)
        if self.precise and cond > QR_COND:
            Z = self.objective.hess_root(x)
            root_d = root_direction(g, Z) if Z is not None else None
            if root_d is not None:
                d, pd = root_d, True
            else:
                # Singular to working precision (collinear columns, separation): no digits to
                # gain, so stop paying for extended precision.
                self.precise = self.available = False
        lam = math.sqrt(max(-float(g @ d), 0.0)) if pd else math.inf
        return d, lam, cond

    def upgrade(self, cond: float, finished: bool) -> bool:
        """Switch to precise arithmetic if this Hessian calls for it; True when switched."""
        if self.precise or not self.available:
            return False
        if cond > QR_COND or (finished and cond > POLISH_COND):
            self.precise = True
        return self.precise


def final_decrement(objective: Objective, x: np.ndarray, g: np.ndarray, H: np.ndarray, tol: float) -> float:
    """The decrement for a convergence verdict; from a QR of the Hessian's root (and a precise
    gradient) where a Cholesky factorisation of the Hessian is unreliable (past QR_COND) and the
    verdict could depend on it (the fast value is not far above ``tol``)."""
    prec = _Precision(objective)
    lam, cond = prec.direction(x, g, H)[1:]
    if lam > 100.0 * tol and math.isfinite(lam):
        return lam  # relative error about cond * u, far from deciding the verdict
    if prec.upgrade(cond, finished=False):
        _, g, H = prec.evaluate(x)
        lam = prec.direction(x, g, H)[1]
    return lam


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
        progress.iteration(len(self.records) - 1, float(f))


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


def _trial(evaluate: Callable[[np.ndarray], tuple], x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Everything at a trial point, with floating-point warnings held back: a rejected point may
    be wild. An accepted point whose derivatives are not finite is evaluated again in the open,
    so its warnings are seen as before."""
    with np.errstate(all="ignore"):
        f, g, H = evaluate(x)
    if math.isfinite(f) and not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        f, g, H = evaluate(x)
    return f, g, H


def newton(
    objective: Objective, x0: np.ndarray, *, tol: float, max_iter: int, chord: bool = False,
    hess0: "np.ndarray | ScaledSPD | None" = None, stop: Callable[[np.ndarray], bool] | None = None,
    approx: Callable[[np.ndarray], np.ndarray] | None = None, hess_cost: float | None = None,
) -> OptimizeResult:
    """Newton's method on the analytic Hessian with a backtracking line search.

    On an ill-conditioned Hessian it finishes in precise arithmetic (see :class:`_Precision`),
    and there, once converged, takes the final Newton step too, so the estimate is as accurate as
    the float64 data allow rather than ``tol`` standard errors from it.

    A full Newton step is almost always accepted, so the NLL, gradient and Hessian are computed
    together at the full step, in one pass over the data; only when that point fails the Armijo
    test does the line search backtrack, with NLL-only evaluations.

    ``chord``: a step taken within :data:`CHORD_DECREMENT` standard errors of the optimum
    evaluates only the NLL and gradient at its end and steps on from there with the Hessian it
    already has (a chord step; that Hessian differs from the new point's by a fraction of a
    standard error's worth, so the convergence stays as fast in practice), one Hessian less per
    fit. The next point gets a fresh Hessian, and so does every verdict: the decrement that
    decides convergence and the Hessian returned (for the covariance) are always the final
    point's own.

    ``hess0``: an approximation of the Hessian at ``x0`` (a warm start's, from a subsample, scaled
    to the full data): the first point is then evaluated without a Hessian and the first step taken
    with ``hess0``, a chord step like the above, with the same fresh-Hessian rule for verdicts.

    ``stop``: called at every accepted point; when it returns True the run ends there, not
    converged (the caller goes on from that point in another way: a parameter at a boundary).

    ``approx``: a function giving an approximation of the Hessian at any point for a fraction of a
    pass (a subsample's Hessian, scaled to the full data; for wide designs, whose Hessian pass costs
    tens of gradient passes). The iterations then begin with quasi-Newton steps that evaluate only
    the NLL and gradient (:func:`quasi_newton`), until the point is predicted to pass the
    convergence test; the Hessian pass at that point gives the verdict and, almost always, ends the
    fit (its Hessian is the covariance's). From a point that fails the test, or where the
    quasi-Newton steps stop gaining, the iterations go on as Newton's. With ``hess0`` too, the first
    approximation is ``hess0``, which may then come factorised (a :class:`mlefit.linalg.ScaledSPD`).

    ``hess_cost``: what a Hessian pass costs in gradient passes (None: never mid-way). Near the
    optimum the quasi-Newton steps take the Hessian of all rows in place of the approximation when
    it is predicted to save more passes than that (see :data:`QUASI_FULL_DECREMENT`).
    """
    rec = _Recorder()
    prec = _Precision(objective)
    x = np.array(x0, dtype=float)
    it = 0
    if approx is not None:
        x, it, stopped = quasi_newton(
            objective, x, approx, tol=tol, max_iter=max_iter, rec=rec, hess0=hess0, stop=stop, hess_cost=hess_cost
        )
        if stopped:
            f, g, H = prec.evaluate(x)
            return OptimizeResult(x, f, g, H, False, "stopped at a boundary", it, math.nan, tuple(rec.records))
        hess0 = None
    stale = hess0 is not None  # H is not this point's own (after a chord step, or hess0)
    if stale:
        f, g = objective.value_grad(x)
        H = hess0
    else:
        f, g, H = prec.evaluate(x)
    if approx is None:
        rec.add(f, g, math.nan)
    lam_prev = math.nan  # the decrement at the previous point with its own Hessian
    while True:
        lam_last = lam_prev
        d, lam, cond = prec.direction(x, g, H)
        if not stale:
            lam_prev = lam
        finished = lam <= tol
        if stale and (finished or it == max_iter):
            f, g, H = prec.evaluate(x)  # a verdict needs this point's own Hessian
            stale = False
            continue
        if prec.upgrade(cond, finished):
            f, g, H = prec.evaluate(x)
            stale = False
            continue
        if finished:
            if prec.precise and lam > 0 and it < max_iter:
                x_new = x + d
                f_new, g_new, H_new = prec.evaluate(x_new)
                d_new, lam_new, _ = prec.direction(x_new, g_new, H_new)
                if lam_new <= lam:
                    it += 1
                    rec.add(f_new, g_new, float(np.max(np.abs(d))))
                    x, f, g, H, lam = x_new, f_new, g_new, H_new, lam_new
            return OptimizeResult(
                x, f, g, H, True, _converged_message(lam, tol), it, lam, tuple(rec.records), factor=prec.factor
            )
        if it == max_iter:
            return OptimizeResult(
                x, f, g, H, False, _stalled_message(f"iteration limit ({max_iter}) reached", lam), it, lam,
                tuple(rec.records),
            )
        slope = float(g @ d)
        alpha = 1.0
        # A chord step when the next point is not predicted to converge, or only just (its verdict
        # would need a Hessian pass after all), but the one after it, with this Hessian reused,
        # is (so the pass spared is not paid back by an extra iteration).
        rate = lam / lam_last**2 if lam_last > 0.0 else math.nan
        reuse = (
            chord and not stale and not prec.precise and 0.0 < lam <= CHORD_DECREMENT
            and rate * lam**2 > tol / CHORD_MARGIN and CHORD_FACTOR * rate**2 * lam**3 <= tol
        )
        evaluate = (lambda z: (*objective.value_grad(z), H)) if reuse else prec.evaluate
        f_new, g_new, H_new = _trial(evaluate, x + d)
        if not _sufficient(f_new, f, slope, alpha):
            found = _armijo(objective, x, f, slope, d, 0.5)
            if found is None:
                if stale:
                    f, g, H = prec.evaluate(x)
                    stale = False
                    continue
                if prec.upgrade(cond, finished=True):
                    f, g, H = prec.evaluate(x)
                    continue
                return OptimizeResult(
                    x, f, g, H, False,
                    _stalled_message("the line search found no decrease along the Newton direction", lam),
                    it, lam, tuple(rec.records),
                )
            alpha = found[0]
            f_new, g_new, H_new = evaluate(x + alpha * d)
        step = alpha * d
        x = x + step
        it += 1
        f_old = f
        f, g, H = f_new, g_new, H_new
        stale = reuse
        rec.add(f, g, float(np.max(np.abs(step))))
        if stop is not None and stop(x):
            return OptimizeResult(x, f, g, H, False, "stopped at a boundary", it, math.nan, tuple(rec.records))
        # No decrease at all: float64 rounding of the gradient, not the optimum, is steering.
        if f >= f_old and prec.upgrade(cond, finished=True):
            f, g, H = prec.evaluate(x)
            stale = False


class _Secant:
    """The inverse of an approximate Hessian ``B`` corrected by the last QUASI_MEMORY secant pairs
    ``(s, y)`` (steps and gradient changes): L-BFGS's two-loop recursion with ``B^{-1}`` as its
    initial matrix instead of a multiple of the identity."""

    def __init__(self, B: "np.ndarray | ScaledSPD") -> None:
        from . import linalg

        self.factor = B if isinstance(B, linalg.ScaledSPD) else linalg.ScaledSPD(B)
        self.pairs: list[tuple[np.ndarray, np.ndarray, float]] = []

    def add(self, s: np.ndarray, y: np.ndarray) -> None:
        """Keep the pair when its curvature ``s'y`` is positive (else the update is not positive
        definite)."""
        sy = float(s @ y)
        if sy > _EPS * float(np.linalg.norm(s) * np.linalg.norm(y)):
            self.pairs.append((s, y, 1.0 / sy))
            del self.pairs[:-QUASI_MEMORY]

    def solve(self, g: np.ndarray) -> np.ndarray:
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * float(s @ q)
            alphas.append(a)
            q -= a * y
        r = self.factor.solve(q)
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            r += (a - rho * float(y @ r)) * s
        return r

    def distance(self, dx: np.ndarray) -> float:
        """``sqrt(dx' B dx)``: a move in standard errors, as ``B`` measures them."""
        return math.sqrt(max(float(dx @ (self.factor.matrix @ dx)), 0.0))


def quasi_newton(
    objective: Objective, x0: np.ndarray, approx: Callable[[np.ndarray], np.ndarray], *, tol: float,
    max_iter: int, rec: "_Recorder", hess0: "np.ndarray | ScaledSPD | None" = None,
    stop: Callable[[np.ndarray], bool] | None = None, hess_cost: float | None = None,
) -> tuple[np.ndarray, int, bool]:
    """Quasi-Newton steps towards the optimum from NLL and gradient passes only; ``(x, n_iter,
    stopped)``, ``stopped`` when ``stop(x)`` was true at an accepted point (see :func:`newton`).

    Each step solves with an approximate Hessian (``approx(x)``, or ``hess0`` at ``x0``) corrected
    by the secant pairs of the steps since it was taken (:class:`_Secant`), so a cheap approximation
    (a subsample's Hessian) gives steps almost as good as Newton's: the error of the approximation
    shrinks the decrement by a constant factor per step (the subsample's relative error, about
    ``sqrt(n_params / rows)``), the secant pairs by more. The decrement is estimated with the same
    solve. After a slow step (less than QUASI_RATE) far from where the approximation was taken (as
    in the first, damped steps from a distant start, where the Hessian changes from step to step)
    it is taken again at the current point; QUASI_SLOW other slow steps in a row, a failed line
    search, an approximation that is not positive definite or the iteration limit end the steps
    early, and Newton's own iterations continue from the point reached. Otherwise they end at an
    estimated decrement below ``tol / QUASI_MARGIN``. Every step is one iteration of the trace.
    With ``hess_cost`` (see :func:`newton`), the first point within QUASI_FULL_DECREMENT standard
    errors may take the Hessian of all rows instead (:func:`_full_hessian_pays`).
    """
    from . import linalg

    x = np.array(x0, dtype=float)
    f, g = objective.value_grad(x)
    rec.add(f, g, math.nan)
    try:
        secant = _Secant(approx(x) if hess0 is None else hess0)
    except linalg.NotPositiveDefinite:
        return x, 0, False
    anchor = x
    it, slow, renewed, lam_prev = 0, 0, 0, math.inf
    rates: list[float] = []  # the last two steps' factors on the estimated decrement
    full = hess_cost is not None  # the Hessian of all rows may still be taken
    while it < max_iter:
        d = -secant.solve(g)
        slope = float(g @ d)
        lam = math.sqrt(max(-slope, 0.0))
        if not (slope < 0.0 and math.isfinite(lam)) or lam <= tol / QUASI_MARGIN:
            break
        if math.isfinite(lam_prev):
            rates = [*rates[-1:], lam / lam_prev]
        if full and lam <= QUASI_FULL_DECREMENT and len(rates) == 2:
            full = False
            if _full_hessian_pays(lam, max(rates), tol, hess_cost):
                try:
                    secant = _Secant(objective.value_grad_hess(x)[2])
                except linalg.NotPositiveDefinite:
                    break
                anchor, lam_prev = x, math.inf
                continue
        if lam > QUASI_RATE * lam_prev:  # the step that led here was slow
            lam_prev = math.inf  # judged: not again after a new approximation at this point
            if renewed < QUASI_SLOW and secant.distance(x - anchor) >= QUASI_MOVE:
                # Far from where the approximation was taken (as in Newton's first, damped steps):
                # take it again here.
                try:
                    secant = _Secant(approx(x))
                except linalg.NotPositiveDefinite:
                    break
                anchor = x
                renewed += 1
                continue
            slow += 1
            if slow >= QUASI_SLOW:
                break
        elif math.isfinite(lam_prev):
            slow = renewed = 0
        with np.errstate(all="ignore"):
            f_new, g_new = objective.value_grad(x + d)
        alpha = 1.0
        if not (_sufficient(f_new, f, slope, alpha) and np.all(np.isfinite(g_new))):
            found = _armijo(objective, x, f, slope, d, 0.5)
            if found is None:
                break
            alpha = found[0]
            f_new, g_new = objective.value_grad(x + alpha * d)
        step = alpha * d
        secant.add(step, g_new - g)
        x, f, g = x + step, f_new, g_new
        it += 1
        lam_prev = lam
        rec.add(f, g, float(np.max(np.abs(step))))
        if stop is not None and stop(x):
            return x, it, True
    return x, it, False


def _full_hessian_pays(lam: float, rate: float, tol: float, hess_cost: float) -> bool:
    """Whether a Hessian pass costing ``hess_cost`` gradient passes saves more than it costs, at an
    estimated decrement ``lam`` shrinking by ``rate`` a step (see :data:`QUASI_FULL_DECREMENT`)."""
    if not 0.0 < rate < 1.0:
        return False
    left = math.log(lam * QUASI_MARGIN / tol) / -math.log(rate)
    return left - QUASI_FULL_PASSES > hess_cost


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
            lam = final_decrement(objective, x, g, H, tol)
            if lam <= tol:
                return OptimizeResult(x, f, g, H, True, _converged_message(lam, tol), it, lam, tuple(rec.records))
            if message is not None:
                return OptimizeResult(x, f, g, H, False, _stalled_message(message, lam), it, lam, tuple(rec.records))
            if it == max_iter:
                return OptimizeResult(
                    x, f, g, H, False, _stalled_message(f"iteration limit ({max_iter}) reached", lam), it, lam,
                tuple(rec.records),
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
    lam = final_decrement(objective, x, g, H, tol)
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
