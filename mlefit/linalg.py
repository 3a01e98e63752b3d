"""Accurate dense least squares: Householder QR, refinement in extended precision, inverse Gram.

A least-squares problem ``min ||b - A x||`` is solved by Householder QR of the column-scaled matrix
``A S`` (``S`` diagonal, powers of two, so the scaling is exact) and, when the estimated error of
that solution is too large, by Björck's iterative refinement of the augmented system::

    [ I    A ] [r]   [b]
    [ A^T  0 ] [x] = [c]

which reuses the QR factors and computes the residuals ``b - r - A x`` and ``c - A^T r`` in extended
precision. Each step removes a factor of about ``cond(A S) * u`` from the error, so a few steps give
the float64 solution of the float64 data even when plain QR would lose digits to the conditioning
(``u cond``) and to a large residual (``u cond^2 ||r|| / (||A|| ||x||)``): Longley, Filip and the
Wampler problems of the NIST StRD are the classic examples.

The same system with ``b = 0`` gives ``x = -(A^T A)^{-1} c``: the inverse Gram matrix (``c = -I``,
a covariance) and Newton steps ``H d = -g`` for a Hessian given by a square root ``H = A^T A``
(``c = g``), all without forming ``A^T A``, whose condition number is the square of ``A``'s.

Extended precision is ``np.longdouble`` where it is wider than float64 (the 80-bit format on x86)
and accurate enough for the problem (the plain error estimate scaled by ``eps(longdouble) /
eps(float64)``, what refinement in longdouble can reach, is at most 1e-15); otherwise double-double
arithmetic: error-free products and sums (Dekker, Knuth) accumulated to about twice float64's
precision, which works on every platform. Set :data:`PRECISION` to force one.

Refinement is triggered by an a-priori estimate, so well-conditioned problems pay only for the QR:
``u cond (1 + cond ||r|| / ||z||)`` (scaled variables), or a residual so small that its own rounding
matters (exact and near-exact fits), above :data:`REFINE_TOL`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

#: Unit roundoff of float64.
U = 2.0**-53
#: Refine when the estimated relative error of the plain QR solution exceeds this.
REFINE_TOL = 1e-13
#: Extended-precision arithmetic for residuals: "auto", "longdouble" or "double-double".
PRECISION = "auto"
#: Condition numbers (of the column-scaled matrix) beyond which columns count as collinear: the
#: refinement's contraction factor, about ``cond * u``, would exceed 1%. Exactly collinear columns
#: give about ``1 / u`` (1e16); Filip, the worst NIST problem, 1e10.
COLLINEAR_COND = 0.01 / U
#: Largest number of refinement steps (each gains about -log10(cond * u) digits).
MAX_REFINE = 10

#: How much more precise longdouble is than float64 (1 where it is float64 itself).
_LD_GAIN = float(np.finfo(np.float64).eps / np.finfo(np.longdouble).eps)
#: longdouble refines when the error estimate scaled to its precision stays below this.
_LD_TARGET = 1e-15
#: Rows per block in the extended-precision kernels (bounds their temporary memory).
_BLOCK = 1 << 15
_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp's splitter


# -- extended-precision residuals ----------------------------------------------------------------


def _two_sum(a, b):
    """``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    t = s - a
    return s, (a - (s - t)) + (b - t)


def _split(a):
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    """``a * b = p + e`` exactly (Dekker), barring overflow beyond about 1e300."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fast_two_sum(a, b):
    """``a + b = s + e`` exactly when ``|a| >= |b|`` (Dekker)."""
    s = a + b
    return s, b - (s - a)


def powers(x: np.ndarray, exponents) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Integer powers of a float64 array as double-double pairs: ``{k: (hi, lo)}``, shape (n,) each.

    ``x**k = hi + lo`` to about ``k u^2`` relative (``u = 2^-53``): each step multiplies by ``x``
    with an error-free product (Dekker) and carries the low part, so ``hi`` is ``x**k`` correctly
    rounded (barring a near tie) and ``lo`` the rounding error of that float64 value, which a plain
    ``x**k`` loses. Entries whose powers overflow (beyond about 1e300) or fall into the subnormal
    range are not finite double-doubles: their ``hi`` is then inf or nan, or ``lo`` inexact, and the
    caller keeps the plain float64 column.

    Parameters
    ----------
    x : ndarray of shape (n,)
    exponents : iterable of int
        Each at least 1 (``x**1`` is ``(x, 0)``).
    """
    x = np.asarray(x, dtype=np.float64)
    wanted = sorted({int(k) for k in exponents})
    if wanted and wanted[0] < 1:
        raise ValueError("exponents must be at least 1")
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    hi, lo = x.copy(), np.zeros_like(x)
    k = 1
    with np.errstate(all="ignore"):
        for target in wanted:
            while k < target:
                p, e = _two_prod(hi, x)
                hi, lo = _fast_two_sum(p, e + lo * x)
                k += 1
            out[target] = (hi.copy(), lo.copy())
    return out


def weighted_rows(
    X: np.ndarray, X_lo: np.ndarray, y: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows scaled by ``sqrt(weights)`` in double-double: ``(A, A_lo, b, b_lo)``.

    ``A + A_lo = (X + X_lo) sqrt(w)`` and ``b + b_lo = y sqrt(w)`` to about ``u^2`` relative, all
    of shape (n, p) or (n,): a double-double design would lose its low part again if its rows were
    multiplied by the float64 ``sqrt(w)``, whose rounding (and that of the products) perturbs an
    ill-conditioned least-squares solution by ``cond * u``. ``sqrt(w)`` itself is carried as
    ``root + root_lo`` (one Newton correction from the error-free square of ``root``).
    """
    w = np.asarray(weights, dtype=np.float64)
    root = np.sqrt(w)
    sq, sq_err = _two_prod(root, root)
    with np.errstate(divide="ignore", invalid="ignore"):
        root_lo = np.where(root > 0, ((w - sq) - sq_err) / (2.0 * root), 0.0)
    A, A_err = _two_prod(X, root[:, None])
    A_lo = A_err + (X * root_lo[:, None] + X_lo * root[:, None])
    b, b_err = _two_prod(y, root)
    return A, A_lo, b, b_err + y * root_lo


def _dd_sum0(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``hi + lo`` over axis 0 in double-double: pairwise, each level an error-free sum."""
    while hi.shape[0] > 1:
        if hi.shape[0] % 2:
            pad = np.zeros((1,) + hi.shape[1:])
            hi, lo = np.concatenate([hi, pad]), np.concatenate([lo, pad])
        s, e = _two_sum(hi[0::2], hi[1::2])
        lo = lo[0::2] + lo[1::2] + e
        hi = s
    return hi[0], lo[0]


def _blocks(n: int):
    for start in range(0, n, _BLOCK):
        yield slice(start, min(start + _BLOCK, n))


def _ld_resid(A, x, b, r):
    """``b - r - A x`` (or ``-r - A x`` when ``b`` is None) in longdouble, rounded to float64."""
    xl = x.astype(np.longdouble)
    out = np.empty(r.shape)
    for rows in _blocks(A.shape[0]):
        acc = -(A[rows].astype(np.longdouble) @ xl) - r[rows]
        if b is not None:
            acc += b[rows]
        out[rows] = acc
    return out


def _ld_tresid(A, r, c):
    """``c - A^T r`` (or ``-A^T r``) in longdouble, rounded to float64."""
    acc = np.zeros((A.shape[1],) + r.shape[1:], dtype=np.longdouble)
    for rows in _blocks(A.shape[0]):
        acc -= A[rows].T.astype(np.longdouble) @ r[rows].astype(np.longdouble)
    if c is not None:
        acc += c
    return acc.astype(np.float64)


def _dd_resid(A, x, b, r):
    """``b - r - A x`` in double-double arithmetic, rounded to float64."""
    out = np.empty(r.shape)
    matrix = x.ndim == 2
    for rows in _blocks(A.shape[0]):
        Ab = A[rows]
        hi = -r[rows]
        lo = np.zeros_like(hi)
        if b is not None:
            hi, lo = _two_sum(b[rows], hi)
        for j in range(A.shape[1]):
            col = Ab[:, j, None] if matrix else Ab[:, j]
            p, pe = _two_prod(col, -x[j])
            hi, e = _two_sum(hi, p)
            lo = lo + (e + pe)
        out[rows] = hi + lo
    return out


def _dd_tresid(A, r, c):
    """``c - A^T r`` in double-double arithmetic, rounded to float64."""
    p = A.shape[1]
    hi = np.zeros((p,) + r.shape[1:])
    lo = np.zeros_like(hi)
    for rows in _blocks(A.shape[0]):
        rb = r[rows]
        if r.ndim == 1:  # all columns at once: (rows, p) products summed down the rows
            s, e = _dd_sum0(*_two_prod(A[rows], -rb[:, None]))
            hi, e2 = _two_sum(hi, s)
            lo = lo + e + e2
            continue
        for j in range(p):
            s, e = _dd_sum0(*_two_prod(A[rows, j, None], -rb))
            hi[j], e2 = _two_sum(hi[j], s)
            lo[j] = lo[j] + e + e2
    if c is not None:
        hi, e = _two_sum(c, hi)
        lo = lo + e
    return hi + lo


@dataclass(frozen=True)
class _Kernels:
    name: str
    resid: object
    tresid: object


_LONGDOUBLE = _Kernels("longdouble", _ld_resid, _ld_tresid)
_DOUBLE_DOUBLE = _Kernels("double-double", _dd_resid, _dd_tresid)


def _kernels(error: float, precision: str | None = None) -> _Kernels:
    """The extended arithmetic for a refinement whose plain solution has relative error ``error``.

    Refinement with residuals of unit roundoff ``u_r`` stops at an error of about
    ``error * u_r / u``; longdouble (where wider than float64: 64 significand bits on x86) is
    used when that is below ``_LD_TARGET``, double-double (about 106 bits) otherwise.
    """
    precision = precision or PRECISION
    if precision == "longdouble":
        return _LONGDOUBLE
    if precision == "double-double":
        return _DOUBLE_DOUBLE
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}")
    return _LONGDOUBLE if _LD_GAIN > 1 and error / _LD_GAIN <= _LD_TARGET else _DOUBLE_DOUBLE


def residual(A: np.ndarray, x: np.ndarray, b: np.ndarray, precision: str | None = None) -> np.ndarray:
    """``b - A x`` computed in extended precision and rounded once to float64, shape (n_obs,)."""
    kern = _kernels(math.inf, precision)
    return kern.resid(A, np.asarray(x, dtype=float), b, np.zeros(A.shape[0]))


def dot(A: np.ndarray, x: np.ndarray, precision: str | None = None) -> np.ndarray:
    """``A @ x`` (x of shape (p,) or (p, m)) in extended precision, rounded once to float64."""
    x = np.asarray(x, dtype=float)
    kern = _kernels(math.inf, precision)
    return -kern.resid(A, x, None, np.zeros((A.shape[0],) + x.shape[1:]))


def tdot(A: np.ndarray, r: np.ndarray, precision: str | None = None) -> np.ndarray:
    """``A.T @ r`` (r of shape (n,) or (n, m)) in extended precision, rounded once to float64.

    The gradient of a sum of per-row losses is such a product; rounded in plain float64 its
    error, about ``u |A|^T |r|``, bounds how close any method can get to the optimum
    (``cond^2`` times that, relative), so refinement needs it exact to working precision.
    """
    kern = _kernels(math.inf, precision)
    return -kern.tresid(A, np.asarray(r, dtype=float), None)


# -- QR and the augmented system -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Solution:
    """A solution of the augmented system.

    Attributes
    ----------
    x : ndarray of shape (p,) or (p, m)
        ``argmin ||b - A x||`` (``c = 0``), or ``-(A^T A)^{-1} c`` (``b = 0``).
    r : ndarray of shape (n,) or (n, m)
        ``b - A x``.
    refined : int
        Number of refinement steps taken (0: plain QR was accurate enough).
    error : float
        The a-priori estimate of the relative error of the plain QR solution that decided it.
    precision : str or None
        The extended arithmetic used by the refinement.
    """

    x: np.ndarray
    r: np.ndarray
    refined: int
    error: float
    precision: str | None


class QR:
    """Householder QR of a column-scaled matrix, reused for solves, refinement and the inverse Gram.

    Parameters
    ----------
    A : ndarray of shape (n, p), n >= p
        Kept by reference (not modified): refinement needs the original entries.
    A_lo : ndarray of shape (n, p), optional
        A low-order part: the matrix is ``A + A_lo`` exactly (a double-double matrix, e.g. powers
        of a variable formed beyond float64). The factorisation is of ``A`` alone; refinement, then
        always done, uses both parts in its residuals and so converges to the solution for the
        exact matrix (while ``cond * ||A_lo|| / ||A||`` is well below 1).

    Attributes
    ----------
    scale : ndarray of shape (p,)
        Powers of two with ``A * scale`` having columns of norm in [1/sqrt(2), sqrt(2)).
    col_norms : ndarray of shape (p,)
        2-norms of the columns of ``A``.
    R : ndarray of shape (p, p)
        Upper triangular factor of ``A * scale``.
    cond : float
        Estimate of the 1-norm condition number of ``A * scale`` (LAPACK ``dtrcon`` on R;
        inf when R is exactly singular).
    """

    def __init__(self, A: np.ndarray, A_lo: np.ndarray | None = None):
        from scipy.linalg import lapack

        n, p = A.shape
        if n < p:
            raise ValueError("QR needs at least as many rows as columns")
        self.A = A
        self.A_lo = A_lo
        self.col_norms = np.sqrt(np.einsum("ij,ij->j", A, A))
        exps = np.where(self.col_norms > 0, -np.round(np.log2(np.where(self.col_norms > 0, self.col_norms, 1.0))), 0.0)
        self.scale = np.ldexp(1.0, exps.astype(int))
        # A Fortran-ordered scaled copy, written in row blocks (a whole-array transposing copy is
        # several times slower), factorised in place.
        F = np.empty((n, p), order="F")
        for rows in _blocks(n):
            np.multiply(A[rows], self.scale, out=F[rows])
        if p == 0:
            raise ValueError("QR needs at least one column")
        lwork = max(1, int(lapack.dgeqrf_lwork(n, p)[0]))
        self._qr, self._tau, _, info = lapack.dgeqrf(F, lwork=lwork, overwrite_a=True)
        if info != 0:
            raise ValueError(f"dgeqrf failed (info={info})")
        self.R = np.triu(self._qr[:p, :p])
        if not np.all(np.isfinite(self.R)) or np.any(np.diag(self.R) == 0):
            self.cond = math.inf
        else:
            rcond = float(lapack.dtrcon(self.R, norm="1")[0])
            self.cond = 1.0 / rcond if rcond > 0 else math.inf

    # -- the orthogonal factor -----------------------------------------------------------------
    def _apply(self, trans: str, v: np.ndarray) -> np.ndarray:
        from scipy.linalg import lapack

        c = np.asfortranarray(v.reshape(v.shape[0], -1))
        lwork = int(lapack.dormqr("L", trans, self._qr, self._tau, c, -1)[1][0])
        out, _, info = lapack.dormqr("L", trans, self._qr, self._tau, c, max(lwork, 1))
        if info != 0:
            raise ValueError(f"dormqr failed (info={info})")
        return out.reshape(v.shape)

    def _solve_r(self, v: np.ndarray, trans: bool = False) -> np.ndarray:
        from scipy.linalg import solve_triangular

        return solve_triangular(self.R, v, trans="T" if trans else "N", check_finite=False)

    def _correction(self, f: np.ndarray, g: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Solve the scaled augmented system for ``(dr, dz)`` with right-hand side ``(f, g)``.

        With ``A S = Q [R; 0]``: ``h = R^{-T} g``, ``d = Q^T f``, ``dz = R^{-1} (d_1 - h)``,
        ``dr = Q [h; d_2]``.
        """
        p = self.R.shape[0]
        d = self._apply("T", f)
        if g is None:
            h = None
            dz = self._solve_r(d[:p])
        else:
            h = self._solve_r(g, trans=True)
            dz = self._solve_r(d[:p] - h)
        d[:p] = 0.0 if h is None else h
        return self._apply("N", d), dz

    # -- solves ---------------------------------------------------------------------------------
    def solve(
        self,
        b: np.ndarray | None = None,
        c: np.ndarray | None = None,
        *,
        refine: bool | None = None,
        precision: str | None = None,
        b_lo: np.ndarray | None = None,
    ) -> Solution:
        """Solve the augmented system ``r + A x = b``, ``A^T r = c`` (``b``, ``c`` default 0).

        Parameters
        ----------
        b : ndarray of shape (n,) or (n, m), optional
        c : ndarray of shape (p,) or (p, m), optional
        refine : bool, optional
            Force (True) or forbid (False) refinement; by default refine when the estimated
            relative error of the plain solution, ``u cond (1 + cond ||r|| / ||z||)`` in the
            scaled variables ``z = x / scale``, exceeds :data:`REFINE_TOL`, or when the residual
            is so small that its own rounding, ``u (||b|| + sqrt(p) ||z||) / ||r||``, would.
        precision : {"auto", "longdouble", "double-double"}, optional
            Extended arithmetic for the refinement residuals (default :data:`PRECISION`).
        b_lo : ndarray of shape (n,), optional
            A low-order part of ``b`` (the right-hand side is ``b + b_lo`` exactly, as ``A_lo``
            is for the matrix); used by the refinement, which it forces.
        """
        A, s = self.A, self.scale
        n, p = A.shape
        rhs = b if b is not None else c
        if rhs is None:
            raise ValueError("give b, c or both")
        sx = s if rhs.ndim == 1 else s[:, None]
        b_full = b if b is not None else np.zeros((n,) + rhs.shape[1:])
        if c is None:
            z = self._solve_r(self._apply("T", b_full)[:p])
            r = b_full - A @ (z * sx)
        else:
            r, z = self._correction(b_full, c * sx)
        nz = float(np.linalg.norm(z))
        nr = float(np.linalg.norm(r))
        nb = float(np.linalg.norm(b_full)) if b is not None else 0.0
        cond = self.cond
        if not math.isfinite(cond):
            error = math.inf
        else:
            error = U * cond * (1.0 + cond * nr / nz) if nz > 0 else 0.0
            if b is not None and nb > 0:
                scale_r = U * (nb + math.sqrt(p) * nz)
                error = max(error, scale_r / nr if nr > 0 else math.inf)
        if refine is None:
            refine = (error > REFINE_TOL or self.A_lo is not None or b_lo is not None) and math.isfinite(cond)
        if not refine:
            return Solution(z * sx, r, 0, error, None)
        kern = _kernels(error, precision)
        steps = 0
        last = math.inf
        for _ in range(MAX_REFINE):
            f = kern.resid(A, z * sx, b, r)
            g = kern.tresid(A, r, c)
            if self.A_lo is not None:
                # Products with the low part are tiny; float64 rounds them at u^2 relative.
                f -= self.A_lo @ (z * sx)
                g -= self.A_lo.T @ r
            if b_lo is not None:
                f += b_lo
            dr, dz = self._correction(f, g * sx)
            size = float(np.max(np.abs(dz))) if dz.size else 0.0
            if not (np.all(np.isfinite(dz)) and np.all(np.isfinite(dr))) or size > 0.5 * last:
                break  # no longer contracting: the previous iterate is as good as it gets
            z, r = z + dz, r + dr
            steps += 1
            last = size
            if size <= U * float(np.max(np.abs(z))):
                break
        return Solution(z * sx, r, steps, error, kern.name)

    def inverse_gram(self, *, refine: bool | None = None, precision: str | None = None) -> tuple[np.ndarray, int]:
        """``(A^T A)^{-1}`` from R by triangular solves, refined when ``u cond`` calls for it.

        The plain value has relative error about ``2 u cond(A S)`` (not ``cond^2``: A^T A is never
        formed); refinement (``b = 0``, ``c = -I`` in the augmented system, all columns at once)
        brings it to working precision. Returns ``(inverse, refinement steps)``.
        """
        from scipy.linalg import solve_triangular

        p = self.R.shape[0]
        s = self.scale
        if refine is None:
            refine = 2.0 * U * self.cond > 1e-11
        if refine and math.isfinite(self.cond):
            sol = self.solve(None, -np.eye(p), refine=True, precision=precision)
            inv, steps = sol.x, sol.refined
        else:
            rinv = solve_triangular(self.R, np.eye(p), check_finite=False)
            inv = (rinv @ rinv.T) * np.outer(s, s)
            steps = 0
        return 0.5 * (inv + inv.T), steps


# -- the normal equations, when they are accurate enough ----------------------------------------

#: The normal equations are used only when ``u cond^2`` (``cond`` the 1-norm condition number of the
#: column-scaled design, from the Cholesky factor) is at most this: the Gram matrix's inverse, and so
#: the covariance, then has a relative error of about 1e-11 or less, and each refinement step
#: contracts the error of the solution by about that factor.
NORMAL_COND_TOL = 1e-11
#: Largest number of refinement steps on the normal equations (one is almost always enough).
NORMAL_MAX_REFINE = 3


def power_of_two_scale(col_norms: np.ndarray) -> np.ndarray:
    """Powers of two ``s`` with ``col_norms * s`` in [1/sqrt(2), sqrt(2)) (1 for zero columns)."""
    exps = np.where(col_norms > 0, -np.round(np.log2(np.where(col_norms > 0, col_norms, 1.0))), 0.0)
    return np.ldexp(1.0, exps.astype(int))


@dataclass(frozen=True, eq=False)
class NormalSolution:
    """Least squares by Cholesky of the Gram matrix, accepted as accurate (see :func:`normal_solve`).

    Attributes
    ----------
    x : ndarray of shape (p,)
        ``argmin ||b - A x||``.
    r : ndarray of shape (n,)
        ``b - A x`` (float64).
    g : ndarray of shape (p,)
        ``A^T r`` in float64 (zero up to rounding).
    gram : ndarray of shape (p, p)
        ``A^T A``.
    scale, col_norms : ndarray of shape (p,)
        As in :class:`QR`.
    cond : float
        1-norm condition number of the column-scaled design (of its Cholesky factor).
    error : float
        ``u cond (1 + cond ||r|| / ||z||)``: :class:`QR`'s a-priori error estimate, at most
        :data:`REFINE_TOL`.
    refined : int
        Refinement steps taken on the normal equations.
    """

    x: np.ndarray
    r: np.ndarray
    g: np.ndarray
    gram: np.ndarray
    scale: np.ndarray
    col_norms: np.ndarray
    cond: float
    error: float
    refined: int
    _inv_scaled: np.ndarray

    def inverse_gram(self) -> np.ndarray:
        """``(A^T A)^{-1}``, relative error about ``u cond^2`` (at most :data:`NORMAL_COND_TOL`)."""
        inv = self._inv_scaled * np.outer(self.scale, self.scale)
        return 0.5 * (inv + inv.T)


def normal_inverse_gram(A: np.ndarray) -> np.ndarray | None:
    """``(A^T A)^{-1}`` by Cholesky of the column-scaled Gram matrix when ``u cond^2`` (``cond``
    that of the scaled design) is at most :data:`NORMAL_COND_TOL`, else None (use :class:`QR`)."""
    n, p = A.shape
    if p == 0 or n < p:
        return None
    G = A.T @ A
    diag = np.diag(G).copy()
    if not np.all(np.isfinite(G)) or not (np.all(diag > 1e-240) and np.all(diag < 1e240)):
        return None
    s = power_of_two_scale(np.sqrt(diag))
    try:
        inv, cond_gram = spd_inverse(G * np.outer(s, s))
    except NotPositiveDefinite:
        return None
    # cond_1 of the scaled Gram matrix is at least cond_2(A S)^2, and at most p times it.
    if not U * cond_gram <= NORMAL_COND_TOL:
        return None
    return inv * np.outer(s, s)


def normal_solve(A: np.ndarray, b: np.ndarray, gram: np.ndarray | None = None) -> NormalSolution | None:
    """``argmin ||b - A x||`` by the normal equations when that is as accurate as :class:`QR`, else None.

    The Gram matrix ``A^T A`` (one symmetric BLAS product, the cost of a few passes over ``A``
    rather than a Householder QR's ~2p) is scaled by powers of two to unit diagonal and
    factorised by Cholesky; its factor ``R`` is that of the column-scaled design, up to rounding,
    so ``cond_1(R)`` (exact, from the explicit inverse of the small triangle) estimates the
    design's condition number. The solution is then refined with float64 residuals
    ``b - A x`` and ``A^T r``: each step contracts the error by about ``u cond^2``, and the limit
    is :class:`QR`'s, ``u cond (1 + cond ||r|| / ||z||)`` (the residual's rounding, ``u (|b| +
    |A||x|)``, maps to ``x`` through the pseudo-inverse, not the Gram's inverse).

    None (use :class:`QR`) when the data's squares come near float64's overflow or underflow,
    when the Gram matrix is not numerically positive definite, when
    ``u cond^2 > NORMAL_COND_TOL``, when that limit exceeds :data:`REFINE_TOL` (where plain QR
    would refine), when the residual is so small that its own rounding matters (exact fits), or
    when refinement does not settle. No scipy: numpy's LAPACK Cholesky and small dense products.
    """
    n, p = A.shape
    if p == 0 or n < p:
        return None
    # Squares of the data must stay far inside float64's normal range (no overflow, no subnormal
    # loss of digits): the Gram matrix is formed before any scaling. QR scales first.
    big = float(np.max(np.abs(b))) if n else 0.0
    if not 1e-120 < big < 1e120:
        return None
    G = A.T @ A if gram is None else gram
    diag = np.diag(G).copy()
    if not np.all(np.isfinite(G)) or not (np.all(diag > 1e-240) and np.all(diag < 1e240)):
        return None
    col_norms = np.sqrt(diag)
    s = power_of_two_scale(col_norms)
    try:
        L = np.linalg.cholesky(G * np.outer(s, s))
    except np.linalg.LinAlgError:
        return None
    with np.errstate(all="ignore"):
        Linv = np.linalg.solve(L, np.eye(p))
    if not np.all(np.isfinite(Linv)):
        return None
    cond = float(np.linalg.norm(L, np.inf) * np.linalg.norm(Linv, np.inf))
    if not (math.isfinite(cond) and U * cond * cond <= NORMAL_COND_TOL):
        return None
    inv_scaled = Linv.T @ Linv  # (S A^T A S)^{-1}

    def step(rhs):
        return s * (inv_scaled @ (s * rhs))

    x = step(A.T @ b)
    r = b - A @ x
    g = A.T @ r
    steps = 0
    for _ in range(NORMAL_MAX_REFINE):
        dx = step(g)
        x = x + dx
        r = b - A @ x
        g = A.T @ r
        steps += 1
        # Each step contracts the error by about the relative size of the first correction (both
        # are cond^2 times the Gram's rounding), so what remains is about dz * max(dz, p u cond^2).
        dz = float(np.max(np.abs(dx / s))) / max(float(np.max(np.abs(x / s))), np.finfo(float).tiny)
        if dz * max(dz, p * U * cond * cond) <= 1e-2 * REFINE_TOL:
            break
    else:
        return None
    nz = float(np.linalg.norm(x / s))
    nr = float(np.linalg.norm(r))
    nb = float(np.linalg.norm(b))
    if nz == 0 or nr == 0:
        return None
    error = U * cond * (1.0 + cond * nr / nz)
    tiny_residual = U * (nb + math.sqrt(p) * nz) / nr
    if not (error <= REFINE_TOL and tiny_residual <= REFINE_TOL):
        return None
    return NormalSolution(x, r, g, G, s, col_norms, cond, error, steps, inv_scaled)


# -- small symmetric positive definite matrices, without scipy --------------------------------------

#: Up to this order, :func:`spd_inverse` inverts with numpy (explicit inverse of the Cholesky factor:
#: exact 1-norm condition numbers, and no scipy import for a small fit); larger matrices use scipy's
#: LAPACK (``dpotrf``/``dpotri``-style solves and the ``dpocon`` estimate), whose cost grows as p^2
#: per solve rather than p^3.
SMALL_SPD = 256
#: From this order on, :func:`spd_inverse` runs BLAS and LAPACK on one thread: on a machine whose
#: cores are busy with other work, OpenBLAS's threads wait for each other (measured on a loaded
#: 2-core machine: a 200 x 200 factorisation and inverse 0.25 s on two threads against 0.03 s on
#: one), and a factorisation of a Hessian of a few hundred parameters gains little from a second
#: core anyway. Smaller orders run on one thread already and never load threadpoolctl.
ONE_THREAD_SPD = 64


class NotPositiveDefinite(ValueError):
    """The matrix is not numerically positive definite (its Cholesky factorisation failed)."""


def _one_thread(p: int):
    """One BLAS thread (numpy's and scipy's) for dense work on a p x p matrix from ONE_THREAD_SPD on."""
    if p < ONE_THREAD_SPD:
        return contextlib.nullcontext()
    if p > SMALL_SPD:
        import scipy.linalg  # noqa: F401 (its OpenBLAS loaded before the limit is set)
    from .parallel import one_blas_thread

    return one_blas_thread()


def spd_inverse(H: np.ndarray) -> tuple[np.ndarray, float]:
    """``(H^{-1}, cond_1(H))`` for a symmetric positive definite ``H`` (scaled by the caller).

    By Cholesky, ``H = L L'``, and the explicit inverse of the triangle, ``H^{-1} = L^{-T} L^{-1}``;
    numpy only for ``p <= SMALL_SPD`` (the condition number is then exact, not LAPACK's estimate),
    scipy beyond (LAPACK's ``dpotri``, a third of the work of solving against the identity). Raises
    :class:`NotPositiveDefinite` when the factorisation fails or the inverse is not finite.
    """
    p = H.shape[0]
    if p == 0:
        return np.zeros((0, 0)), 1.0
    with _one_thread(p):
        return _spd_inverse(H)


def _spd_inverse(H: np.ndarray) -> tuple[np.ndarray, float]:
    p = H.shape[0]
    if p > SMALL_SPD:
        from scipy.linalg import lapack

        factor = SPDFactor(H)
        inv = factor.inverse()
        cond = factor.cond()
    else:
        norm1 = float(np.abs(H).sum(axis=0).max())
        try:
            L = np.linalg.cholesky(H)
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite("not positive definite") from None
        with np.errstate(all="ignore"):
            Linv = np.linalg.solve(L, np.eye(p))
            inv = Linv.T @ Linv
        cond = norm1 * float(np.abs(inv).sum(axis=0).max())
        inv = 0.5 * (inv + inv.T)
    if not np.all(np.isfinite(inv)):
        raise NotPositiveDefinite("not positive definite")
    return inv, cond if math.isfinite(cond) else math.inf


class SPDFactor:
    """The Cholesky factor ``U'U`` of a symmetric positive definite ``H`` (scipy's LAPACK), for
    solves at p^2 each, with BLAS on one thread for ``p >= ONE_THREAD_SPD``. Raises
    :class:`NotPositiveDefinite` when the factorisation fails."""

    def __init__(self, H: np.ndarray, overwrite: bool = False):
        from scipy.linalg import LinAlgError, cho_factor

        self.p = H.shape[0]
        self.norm1 = float(np.abs(H).sum(axis=0).max()) if H.size else 0.0
        if not np.all(np.isfinite(H)):
            raise NotPositiveDefinite("not positive definite")
        with _one_thread(self.p):
            try:  # overwrite: H is the caller's scratch copy, factorised in its own memory
                c, _ = cho_factor(H, lower=False, overwrite_a=overwrite, check_finite=False)
            except LinAlgError:
                raise NotPositiveDefinite("not positive definite") from None
        self.upper = c  # U in the upper triangle (the strict lower one is not referenced)
        self._cond: float | None = None

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``H^{-1} b``."""
        from scipy.linalg import cho_solve

        with _one_thread(self.p):
            return cho_solve((self.upper, False), b, check_finite=False)

    def cond(self) -> float:
        """LAPACK's estimate of the 1-norm condition number (``dpocon``, which reads the upper
        triangle only; inf when singular), computed once."""
        from scipy.linalg import lapack

        if self._cond is None:
            with _one_thread(self.p):
                rcond = float(lapack.dpocon(self.upper, self.norm1)[0])
            self._cond = 1.0 / rcond if rcond > 0 else math.inf
        return self._cond

    def inverse(self) -> np.ndarray:
        """``H^{-1}`` from the factor (LAPACK's ``dpotri``, a third of the work of solving against
        the identity), exactly symmetric."""
        from scipy.linalg import lapack

        with _one_thread(self.p):
            upper, info = lapack.dpotri(self.upper, lower=0)
        if info != 0:
            raise NotPositiveDefinite("not positive definite")
        # dpotri fills the upper triangle; the strict lower one is its mirror image
        return np.where(np.tri(self.p, k=-1, dtype=bool), upper.T, upper)


class ScaledSPD:
    """A symmetric positive definite ``H`` scaled to unit diagonal, ``S = D H D`` with
    ``D = diag(H)^(-1/2)`` (Jacobi: the factorisation no longer depends on how the columns are
    scaled), and factorised once for solves with ``H``, its inverse and the condition number of
    ``S``: :func:`spd_inverse`'s exact inverse up to SMALL_SPD, scipy's Cholesky factor beyond.
    ``matrix`` is ``H`` itself, so a caller handed one can tell whether it is of the matrix it has.
    Raises :class:`NotPositiveDefinite` when a diagonal entry is not positive, an entry is not
    finite, or the factorisation fails.
    """

    def __init__(self, H: np.ndarray):
        diag = np.diag(H)
        if not (np.all(diag > 0) and np.all(np.isfinite(H))):
            raise NotPositiveDefinite("not positive definite")
        self.matrix = H
        self.scale = 1.0 / np.sqrt(diag)
        S = np.multiply(H, self.scale[:, None], order="F")  # LAPACK's layout: factorised in place
        S *= self.scale
        self._inv: np.ndarray | None = None
        self._factor: SPDFactor | None = None
        if H.shape[0] <= SMALL_SPD:
            self._inv, self._cond = spd_inverse(S)
        else:
            self._factor = SPDFactor(S, overwrite=True)

    @property
    def cond(self) -> float:
        """The 1-norm condition number of ``S`` (exact up to SMALL_SPD, LAPACK's estimate beyond)."""
        return self._cond if self._factor is None else self._factor.cond()

    def pivots(self) -> np.ndarray | None:
        """The squared diagonal of the Cholesky factor of ``S`` (each column's squared distance
        from the span of the columns before it, in the inner product ``S``), or None up to
        SMALL_SPD, where ``S`` is not factorised so."""
        return None if self._factor is None else np.square(np.diag(self._factor.upper))

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``H^{-1} b``."""
        y = self.scale * b
        y = self._inv @ y if self._factor is None else self._factor.solve(y)
        return self.scale * y

    def inverse(self) -> np.ndarray:
        """``H^{-1}``, exactly symmetric; raises :class:`NotPositiveDefinite` when not finite."""
        inv = self._inv.copy() if self._factor is None else self._factor.inverse()
        inv *= np.outer(self.scale, self.scale)  # s_i s_j = s_j s_i: the product stays symmetric
        if not np.all(np.isfinite(inv)):
            raise NotPositiveDefinite("not positive definite")
        return inv
