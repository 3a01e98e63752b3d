"""Profile-likelihood intervals over any objective the optimisers minimise.

The profile NLL of parameter ``j`` at value ``v`` is the NLL minimised over the other parameters
with ``theta_j = v``: ``nll_p(v) = min nll(theta | theta_j = v)``. The profile interval at level
``L`` is the set ``{v : 2 (nll_p(v) - nll_hat) <= chi2_1(L)}`` (Wilks), and its endpoints are the
roots of the signed root

    r(v) = sign(v - v_hat) sqrt(2 (nll_p(v) - nll_hat)) = +-z,    z = Phi^-1((1 + L) / 2),

since ``chi2_1(L) = z^2``. ``r`` is nearly linear in ``v`` (exactly linear for a quadratic NLL,
where the profile interval is the Wald interval), so a few iterations of a root-finder find them.
Each iteration is one constrained fit (Newton over the other parameters, warm-started on the
first-order path of the constrained optimum), and its last evaluation gives the derivatives:

- ``d nll_p / dv = g_j`` at the constrained optimum (envelope theorem), so ``r' = g_j / r``;
- ``d^2 nll_p / dv^2 = H_jj - H_j,o H_o,o^-1 H_o,j`` (the Schur complement; ``o`` the others),
  so ``r'' = (nll_p'' - r'^2) / r``;
- ``d theta_o / dv = -H_o,o^-1 H_o,j``: where the next constrained fit starts.

Halley's method on ``r`` (cubic convergence) inside a bracket that falls back to bisection
finds an endpoint in 2-4 fits. An endpoint is *unbounded* when the profile flattens below the
threshold (it rises by less than rounding while the distance from the estimate grows
:data:`EXPANSION`-fold, or stays below it :data:`MAX_DISTANCE` standard errors out); a constrained
fit with a lower NLL than the MLE's means the original fit was not at the maximum, and is reported
as such. Parameters on the boundary of their space (``held``) stay there.

Everything here works on the optimiser's parameter scale and sees only ``value``,
``value_grad`` and ``value_grad_hess``, so it runs unchanged over rows in memory, streamed from
disk or spread over a cluster (each evaluation is one pass over the rows). Profile intervals are
invariant under monotone reparametrisation: the caller maps the endpoints to the reported scale
(gaussian's ``sigma = exp(log sigma)``) by the family's transform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .errors import UsageError
from .inference import critical_value
from .optimize import Objective, newton

#: What became of one side of an interval.
FOUND = "found"
UNBOUNDED = "unbounded"
#: A constrained fit had a lower NLL than the MLE: the original fit was not at the maximum.
BETTER = "better maximum"
FAILED = "failed"
NOT_PROFILED = "not profiled"

#: Constrained fits allowed per endpoint.
MAX_FITS = 40
#: An endpoint still below the threshold this many (Wald) standard errors from the estimate is
#: declared unbounded.
MAX_DISTANCE = 1e4
#: A step outwards reaches at most this multiple of the current distance from the estimate.
EXPANSION = 4.0
#: Newton decrement at which a constrained fit stops: its NLL is then within ~tol^2 / 2 of the
#: constrained minimum, far below what the endpoint's accuracy needs.
INNER_TOL = 1e-8
#: A constrained fit that stops short of INNER_TOL (on an ill-conditioned design the rounding of
#: the gradient keeps the decrement near cond * u) is accepted within this decrement: its NLL is
#: within 5e-13 of the constrained minimum, r within about 3e-13.
ACCEPT_DECREMENT = 1e-6
#: Newton iterations of a constrained fit: a first run (warm starts need 1-5), then, if it is
#: neither converged nor within ACCEPT_DECREMENT but within a standard error, a longer one from
#: where it stopped.
INNER_ITER = (8, 40)
#: Failed constrained fits allowed per endpoint before it is given up (a failure is retried from
#: other starts, then halfway back towards the last point that worked).
MAX_FAILURES = 4

_EPS = np.finfo(float).eps


def split_names(names: "str | Sequence[str] | None") -> tuple[str, ...] | None:
    """``--profile a,b`` as a tuple of names; commas inside brackets belong to the name
    (``poly(x, 2, raw=True)[0]``). None stays None."""
    if names is None:
        return None
    if isinstance(names, str):
        parts, depth, current = [], 0, []
        for ch in names:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(depth - 1, 0)
            if ch == "," and depth == 0:
                parts.append("".join(current))
                current = []
            else:
                current.append(ch)
        parts.append("".join(current))
        names = parts
    out = tuple(str(n).strip() for n in names)
    if not out or any(not n for n in out):
        raise UsageError(f"--profile needs parameter names separated by commas; got '{','.join(out)}'.")
    return out


def resolve(names: Sequence[str] | None, params: Sequence[str], classes: Sequence[str | None]) -> list[int]:
    """The indices of the parameters ``names`` (all when None): a label ``class:name`` picks one
    categorical row, a bare name every class's row of it."""
    if names is None:
        return list(range(len(params)))
    labels = [n if c is None else f"{c}:{n}" for n, c in zip(params, classes)]
    out: list[int] = []
    for name in names:
        hits = [i for i, label in enumerate(labels) if label == name] or [
            i for i, p in enumerate(params) if p == name
        ]
        if not hits:
            raise UsageError(
                f"--profile names '{name}', which is not a parameter of this model; "
                f"its parameters are: {', '.join(dict.fromkeys(labels))}."
            )
        out += [i for i in hits if i not in out]
    return out


@dataclass(frozen=True)
class Endpoint:
    """One end of a profile interval.

    Attributes
    ----------
    value : float or None
        On the optimiser's scale; None unless ``status`` is :data:`FOUND`.
    status : str
        :data:`FOUND`, :data:`UNBOUNDED`, :data:`BETTER` or :data:`FAILED`.
    fits : int
        Constrained fits made for it.
    passes : int
        Evaluations of the objective (passes over the rows) they took.
    note : str or None
        Why there is no value (said in the report); for :data:`BETTER`, where the lower NLL was.
    lower_nll : tuple or None
        For :data:`BETTER`: ``(params, nll)`` of the better point found (optimiser scale).
    """

    value: float | None
    status: str
    fits: int = 0
    passes: int = 0
    note: str | None = None
    lower_nll: tuple | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ProfileInterval:
    """The profile interval of parameter ``index``: its lower and upper :class:`Endpoint`."""

    index: int
    lower: Endpoint
    upper: Endpoint

    @property
    def fits(self) -> int:
        return self.lower.fits + self.upper.fits

    @property
    def passes(self) -> int:
        return self.lower.passes + self.upper.passes


class _Counted:
    """The objective, counting its evaluations (each a pass over the rows)."""

    def __init__(self, objective: Objective):
        self.objective = objective
        self.passes = 0
        #: Newton's extended-precision refinement (``optimize._Precision``) passes through.
        self.refinable = bool(getattr(objective, "refinable", False))

    def value(self, params):
        self.passes += 1
        return self.objective.value(params)

    def value_grad(self, params):
        self.passes += 1
        return self.objective.value_grad(params)

    def value_grad_hess(self, params, precise: bool = False):
        self.passes += 1
        if precise:
            return self.objective.value_grad_hess(params, precise=True)
        return self.objective.value_grad_hess(params)

    def hess_root(self, params):
        return self.objective.hess_root(params)


class _Fixed:
    """The objective over the ``free`` parameters, ``theta_j`` held at ``v`` and the others not
    free at their values in ``base``; it keeps the full gradient and Hessian of its last
    second-order evaluation."""

    def __init__(self, objective: _Counted, j: int, v: float, free: np.ndarray, base: np.ndarray):
        self.objective, self.free = objective, free
        self.base = base.copy()
        self.base[j] = v
        self.last: tuple[np.ndarray, float, np.ndarray, np.ndarray] | None = None
        self.refinable = objective.refinable

    def full(self, others: np.ndarray) -> np.ndarray:
        x = self.base.copy()
        x[self.free] = others
        return x

    def value(self, others):
        return self.objective.value(self.full(others))

    def value_grad(self, others):
        f, g = self.objective.value_grad(self.full(others))
        return f, g[self.free]

    def value_grad_hess(self, others, precise: bool = False):
        x = self.full(others)
        f, g, H = self.objective.value_grad_hess(x, precise=True) if precise else self.objective.value_grad_hess(x)
        self.last = (x, f, g, H)
        return f, g[self.free], H[np.ix_(self.free, self.free)]

    def hess_root(self, others):
        """The Hessian's square root over the free columns (``Z'Z`` is then their Hessian)."""
        Z = self.objective.hess_root(self.full(others))
        return None if Z is None else Z[:, self.free]


@dataclass
class _Point:
    """A constrained optimum on the profile: ``v``, the full parameters, the signed root and its
    derivatives, and the direction of the path of the constrained optimum."""

    v: float
    theta: np.ndarray
    r: float
    dr: float
    d2r: float
    path: np.ndarray  # d theta / dv (1 in place j)


def _constrained(counted: _Counted, j: int, v: float, start: np.ndarray, free: np.ndarray):
    """Minimise over the ``free`` parameters with ``theta_j = v`` from ``start`` (a full vector):
    ``(theta, nll, grad, hess)`` at the constrained optimum, or the reason (a string) it failed."""
    if not free.any():
        x = start.copy()
        x[j] = v
        with np.errstate(all="ignore"):
            f, g, H = counted.value_grad_hess(x)
        ok = math.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
        return (x, f, g, H) if ok else "the NLL or its derivatives are not finite there"
    fixed = _Fixed(counted, j, v, free, start)
    others = start[free]
    for max_iter in INNER_ITER:
        with np.errstate(all="ignore"):
            opt = newton(fixed, others, tol=INNER_TOL, max_iter=max_iter)
        close = opt.converged or opt.decrement <= ACCEPT_DECREMENT
        # a second run only for a fit that is getting there (not one that cannot factor its Hessian)
        if close or not opt.decrement < 1.0 or not np.all(np.isfinite(opt.params)):
            break
        others = opt.params
    if not close or not math.isfinite(opt.nll):
        return opt.message
    x = fixed.full(opt.params)
    if fixed.last is None or not np.array_equal(fixed.last[0], x):
        f, g, H = counted.value_grad_hess(x)
    else:
        _, f, g, H = fixed.last
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return "the derivatives are not finite there"
    return x, f, g, H


def _starts(v: float, j: int, inside: _Point, outside: "_Point | None", last: _Point, params: np.ndarray):
    """Starts for the constrained fit at ``v``, best first: the first-order path from the nearest
    point of the bracket, then from the last point, then the nearest point's other parameters as
    they are, then the MLE's (each only if new)."""
    near = inside if outside is None or abs(v - inside.v) <= abs(v - outside.v) else outside
    seen: list[np.ndarray] = []
    for base, order in ((near, 1.0), (last, 1.0), (near, 0.0), (None, 0.0)):
        start = params.copy() if base is None else base.theta + order * (v - base.v) * base.path
        start[j] = v
        if np.all(np.isfinite(start)) and not any(np.array_equal(start, s) for s in seen):
            seen.append(start)
            yield start


def _derivatives(j: int, g: np.ndarray, H: np.ndarray, free: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``(nll_p', nll_p'', d theta / dv)`` at a constrained optimum (envelope theorem and the
    Schur complement over the ``free`` parameters)."""
    keep = np.flatnonzero(free)
    path = np.zeros(g.size)
    path[j] = 1.0
    curvature = float(H[j, j])
    if keep.size:
        b = H[keep, j]
        try:
            dothers = -np.linalg.solve(H[np.ix_(keep, keep)], b)
        except np.linalg.LinAlgError:
            dothers = np.zeros(keep.size)
        if np.all(np.isfinite(dothers)):
            path[keep] = dothers
            curvature += float(b @ dothers)
    return float(g[j]), curvature, path


def profile_intervals(
    objective: Objective,
    params: np.ndarray,
    nll: float,
    cov: np.ndarray,
    indices: Sequence[int],
    level: float = 0.95,
    names: Sequence[str] | None = None,
    held: np.ndarray | None = None,
    reported: Callable[[int, float], float] | None = None,
) -> tuple[ProfileInterval, ...]:
    """Profile-likelihood intervals of the parameters ``indices``.

    Parameters
    ----------
    objective : Objective
        The NLL with ``value``, ``value_grad`` and ``value_grad_hess`` (optimiser scale).
    params : ndarray of shape (n_params,)
        The MLE on the optimiser's scale.
    nll : float
        The NLL at ``params``.
    cov : ndarray of shape (n_params, n_params)
        The inverse Hessian at ``params`` (its diagonal sets the first steps, its columns the first
        path of the constrained optima).
    indices : sequence of int
        The parameters to profile.
    level : float
        The intervals' level: endpoints where ``2 (nll_p(v) - nll) = chi2_1(level)``.
    names : sequence of str, optional
        Parameter labels, for the notes.
    held : bool ndarray of shape (n_params,), optional
        Parameters held at their value in ``params`` throughout (one at the boundary of the
        parameter space, as the fit holds it; its own interval is not profiled).
    reported : callable, optional
        ``reported(j, v)``: parameter ``j``'s value ``v`` on the reported scale, for the notes.

    Returns
    -------
    tuple of ProfileInterval
        One per index, in the order given.
    """
    z = critical_value(level)
    params = np.asarray(params, dtype=float)
    labels = list(names) if names is not None else [f"parameter {i}" for i in range(params.size)]
    held = np.zeros(params.size, dtype=bool) if held is None else np.asarray(held, dtype=bool)
    show = reported or (lambda j, v: v)
    out = []
    for j in indices:
        j = int(j)
        if held[j]:
            note = (
                f"{labels[j]}: its estimate is at the boundary of the parameter space ({show(j, params[j]):.6g}), "
                "where the likelihood has no interior maximum to profile from"
            )
            out.append(ProfileInterval(j, Endpoint(None, FAILED, note=note), Endpoint(None, FAILED)))
            continue
        free = ~held
        free[j] = False
        sides = [
            _endpoint(objective, params, float(nll), cov, j, side, z, labels[j], free, show) for side in (-1, 1)
        ]
        out.append(ProfileInterval(j, *sides))
    return tuple(out)


def _endpoint(
    objective: Objective, params: np.ndarray, nll_hat: float, cov: np.ndarray, j: int, side: int, z: float,
    label: str, free: np.ndarray, show: Callable[[int, float], float],
) -> Endpoint:
    """One endpoint: the root of ``r(v) = side * z`` on the ``side`` of the estimate."""
    counted = _Counted(objective)
    fits = 0
    v_hat = float(params[j])
    se = math.sqrt(max(float(cov[j, j]), 0.0))
    if not (se > 0 and math.isfinite(se)):
        return Endpoint(None, FAILED, note=f"{label}: no standard error to start the profile from")
    target = side * z
    where = "below" if side < 0 else "above"
    # Rounding in the NLL differences (nll_p - nll_hat, each ~|nll| in size) sets how closely r can
    # be resolved; a lower NLL than the MLE's by more than that (and a millionth) is a better maximum.
    noise = 64.0 * _EPS * max(abs(nll_hat), 1.0)
    r_tol = 1e-10 + noise
    better = 1e-6 + noise

    path0 = np.zeros(params.size)
    path0[free] = cov[free, j] / cov[j, j]
    path0[~np.isfinite(path0)] = 0.0
    path0[j] = 1.0
    inside = _Point(v_hat, params.copy(), 0.0, 1.0 / se, 0.0, path0)
    outside: _Point | None = None
    v = v_hat + side * z * se
    last = inside
    previous_err = math.inf
    flat_from: tuple[float, float] | None = None  # (distance, r) at the previous expansion
    failed_at = math.inf * side  # no constrained fit has failed

    def done(status: str, value: float | None = None, note: str | None = None, lower=None) -> Endpoint:
        return Endpoint(value, status, fits, counted.passes, note, lower)

    failures = 0
    while fits < MAX_FITS:
        fitted: tuple | str = "no start"
        for start in _starts(v, j, inside, outside, last, params):
            fits += 1
            fitted = _constrained(counted, j, v, start, free)
            if not isinstance(fitted, str):
                break
            failures += 1
            if failures >= MAX_FAILURES or fits >= MAX_FITS:
                break
        if isinstance(fitted, str):
            if failures < MAX_FAILURES and fits < MAX_FITS and abs(v - last.v) > 1e-10 * max(abs(v), se):
                # too far out for the starts we have (or where the family's scale overflows):
                # come back halfway, and no further out than here
                failed_at = v
                v = 0.5 * (last.v + v)
                continue
            return done(
                FAILED,
                note=f"{label}: the endpoint {where} the estimate was not found: the constrained fit at "
                f"{label} = {show(j, v):.6g} failed ({fitted})",
            )
        theta, f, g, H = fitted
        delta = f - nll_hat
        if delta < -better:
            return done(
                BETTER,
                note=(
                    f"{label}: the profile {where} the estimate reached an NLL {-delta:.3g} lower than the fit's "
                    f"at {label} = {show(j, v):.6g}, so the fit was not at the maximum of the likelihood"
                ),
                lower=(theta, f),
            )
        r = side * math.sqrt(2.0 * max(delta, 0.0))
        dnll, d2nll, path = _derivatives(j, g, H, free)
        dr = dnll / r if r != 0 else 1.0 / se
        d2r = (d2nll - dr * dr) / r if r != 0 else 0.0
        point = _Point(v, theta, r, dr, d2r, path)
        err = r - target
        if abs(err) <= r_tol:
            # one more Newton step on r from the converged point (error ~ r'' err^2 / r')
            step = -err / dr if dr > 0 else 0.0
            return done(FOUND, v + step)
        if side * err < 0:
            inside = point
        else:
            outside = point
        last = point

        # Halley's step (Newton's when Halley's is unusable), kept inside the bracket.
        newton_step = -err / dr if dr > 0 else math.nan
        denominator = 2.0 * dr * dr - err * d2r
        halley = -2.0 * err * dr / denominator if dr > 0 and denominator > 0 else math.nan
        step = halley if math.isfinite(halley) and halley * newton_step > 0 else newton_step
        proposal = v + step if math.isfinite(step) else math.nan
        slow = abs(err) > 0.5 * previous_err  # Halley's steps at least halve the error
        previous_err = abs(err)
        if outside is not None:
            lo, hi = sorted((inside.v, outside.v))
            if not (lo < proposal < hi) or slow:
                proposal = 0.5 * (lo + hi)
                previous_err = math.inf
            if hi - lo <= 1e-13 * max(abs(lo), abs(hi), se):
                return done(FOUND, proposal)
        else:
            distance = abs(v - v_hat)
            # Flat: the NLL rose by less than its rounding over the last expansion, or the
            # profile stays below the threshold far out.
            if flat_from is not None and distance > flat_from[0] * 1.5:
                risen = (r * r - flat_from[1] ** 2) / 2.0
                if risen <= max(noise, 1e-12 * (target * target - r * r)) or distance > MAX_DISTANCE * se:
                    with np.errstate(all="ignore"):
                        limit = show(j, side * math.inf)
                    reach = f"reaches {label} = {limit:.6g}" if math.isfinite(limit) else "is unbounded"
                    return done(
                        UNBOUNDED,
                        note=(
                            f"{label}: the profile {where} the estimate flattens below the threshold "
                            f"(2 x NLL rise {r * r:.4g} < {z * z:.4g} at {label} = {show(j, v):.6g}), "
                            f"so the interval {reach} (open {where})"
                        ),
                    )
            cap = v_hat + side * EXPANSION * max(distance, z * se)
            if not math.isfinite(proposal) or side * (proposal - v) <= 0 or side * (proposal - cap) > 0:
                proposal = cap
                flat_from = (distance, r)
            if side * (proposal - failed_at) >= 0:
                proposal = 0.5 * (v + failed_at)
        if proposal == v:
            return done(FOUND, v)
        v = proposal
    return done(FAILED, note=f"{label}: the endpoint {where} the estimate was not found in {MAX_FITS} constrained fits")
