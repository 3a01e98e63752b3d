"""Does the maximum-likelihood estimate exist? Rank of the design and separation of the classes.

Two ways a fit can have no unique finite optimum, each reported by naming the columns involved:

* **Rank deficiency** (every family): a feature column is a linear combination of other columns
  (a duplicate, a sum, a constant beside the intercept). The likelihood is flat along that
  combination. :func:`check_rank` finds it before the optimiser runs: one pass forms the
  column-scaled Gram matrix, whose Cholesky factor clears well-conditioned designs at once; others
  get the R factor of a column-scaled QR decomposition of the design, computed block by block,
  which keeps the accuracy the Gram matrix loses (Filip's design is full rank but its Gram matrix
  is numerically singular).
* **Separation** (bernoulli, categorical): a direction in parameter space along which no row's
  likelihood decreases and some row's increases, so the likelihood keeps rising as the
  coefficients go to infinity (Albert & Anderson, 1984). :func:`suspect_separation` looks at a
  finished fit for its symptoms (a class probability at 0 or 1 to within ``exp(-20)``, no
  convergence, a singular Hessian); only then :func:`check_separation` decides exactly, with linear
  programs (the approach of Konis, 2007), whether such a direction exists, whether it separates
  completely or quasi-completely, and which columns and classes it involves. The programs have one
  constraint per (distinct row, other class) and a handful of variables: about half a second per
  100,000 rows of six columns. For ordered classes (a cumulative model: one coefficient vector and
  cutpoints) the directions are those of that model, a constraint per (distinct row, finite
  boundary of its class): the multinomial programs would find separation where the cumulative
  model's estimates exist.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import parallel
from .errors import CollinearityError, SeparationError

#: A column whose distance to the span of the columns before it (both scaled to unit norm) is below
#: this is a linear combination of them. Exact collinearity in float64 leaves ~1e-15; the NIST
#: Filip design (degree-10 polynomial, condition number ~1e10 after scaling) keeps 5e-8.
RANK_TOL = 1e-10

#: Rows per block of the blocked QR (bounds the memory of the check).
QR_BLOCK = 65536

#: A fitted class log-probability below this (p < 2e-9) is a symptom worth the exact check.
SUSPECT_LOG_PROB = -20.0

#: Margins (in units of max-abs-scaled columns, directions in the unit box) above this are strict.
#: The solver's feasibility tolerance is set to 1e-10, well below.
_STRICT = 1e-7


# -- rank ----------------------------------------------------------------------------------------


def _r_factor(X: np.ndarray, scale: np.ndarray, root_w: np.ndarray | None) -> np.ndarray:
    """R of the QR decomposition of ``diag(root_w) X diag(scale)``, accumulated over row blocks."""
    p = X.shape[1]
    R = np.zeros((0, p))
    for start in range(0, X.shape[0], QR_BLOCK):
        block = X[start:start + QR_BLOCK] * scale
        if root_w is not None:
            block = block * root_w[start:start + QR_BLOCK, None]
        R = np.linalg.qr(np.vstack([R, block]), mode="r")
    return R


#: :func:`sample_shows_full_rank` clears a design when every column of its subsample keeps more than
#: this squared distance from the span of the columns before it (scaled by the norms of all rows):
#: a hundred times check_rank's fast-path threshold, so the Gram's rounding cannot decide it.
SAMPLE_RANK_TOL = 1e-6
#: ... from the Gram matrices of this many runs of the subsample's rows (parallel tasks), added in order.
SAMPLE_RANK_PARTS = 4


def sample_shows_full_rank(X: np.ndarray, weights: np.ndarray | None, norms: np.ndarray) -> bool:
    """Whether rows ``X`` (with their ``weights``) of a design whose columns have the weighted norms
    ``norms`` over all its rows prove that the design has full column rank: the check of
    :func:`check_rank` on a subsample, for a fraction of its work (n p^2 for the Gram matrix of
    all rows).

    The Gram matrix of all rows is that of the subsample plus a positive semi-definite rest, so
    each column's distance from the span of the columns before it (the diagonal of the Cholesky
    factor; both scaled by ``norms``) is at least the subsample's. When every one of the
    subsample's squares exceeds :data:`SAMPLE_RANK_TOL`, :func:`check_rank` would pass the design
    on its fast path; otherwise (a rare level missing from the subsample, a dependent column) the
    answer is False and the caller runs :func:`check_rank`.

    Parameters
    ----------
    X : ndarray of shape (n_sample, n_features)
    weights : ndarray of shape (n_sample,), optional
    norms : ndarray of shape (n_features,)
        ``sqrt(sum_i w_i x_ij^2)`` over all rows.
    """
    if X.shape[0] < X.shape[1] or not np.all(norms > 0):
        return False
    A = X / norms if weights is None else X * (np.sqrt(weights)[:, None] / norms)
    # The Gram matrix from SAMPLE_RANK_PARTS runs of rows on the engine's threads, each with one
    # BLAS thread: on a machine whose cores are busy, OpenBLAS's threads wait for each other
    # (measured on a loaded 2-core machine: 0.24-1.4 s instead of 0.07 s for 2,002 x 1,001 on
    # BLAS's threads; 0.03 s on two of ours, 0.057 s on one).
    step = -(-A.shape[0] // SAMPLE_RANK_PARTS)

    def part(i: int) -> np.ndarray:
        rows = A[i * step:(i + 1) * step]
        return np.dot(rows.T, rows)

    with parallel.one_blas_thread():
        G = sum(parallel.map_tasks(part, -(-A.shape[0] // step)))
    return _shows_full_rank(G)


def hessian_shows_full_rank(hess: np.ndarray, bound: float, norms: np.ndarray, pivots: np.ndarray | None = None) -> bool:
    """Whether the Hessian ``hess`` of the NLL over some rows proves that the design has full
    column rank, when the second derivative of a row's NLL with respect to its first linear
    predictor is at most ``bound`` (``Family.curvature_bound``; that predictor's coefficients
    first): the check of :func:`sample_shows_full_rank` without a Gram matrix of its own.

    The leading ``p x p`` block of ``hess`` is ``sum_i w_i a_i x_i x_i'`` with ``a_i <= bound``,
    at most ``bound`` times the rows' weighted Gram matrix, itself at most the Gram matrix of all
    rows; so each column's distance from the span of the columns before it is at least that of
    ``hess / bound``, and the test of :func:`sample_shows_full_rank` on it proves what the Gram
    matrix's would.

    Parameters
    ----------
    hess : ndarray of shape (n_params, n_params)
        Unscaled: the sums over the rows it was computed from.
    bound : float
    norms : ndarray of shape (p,)
        ``sqrt(sum_i w_i x_ij^2)`` over all rows, or upper bounds of them.
    pivots : ndarray of shape (n_params,), optional
        The squared diagonal of the Cholesky factor of ``hess`` scaled to unit diagonal
        (``linalg.ScaledSPD.pivots``), when it is factorised already: the leading block's factor is
        the leading block of the whole one, and scaling the columns scales its diagonal, so the
        test needs no factorisation of its own (0.01-0.02 s at 1,001 parameters).
    """
    p = len(norms)
    if not (bound > 0 and np.all(norms > 0) and np.all(np.isfinite(hess[:p, :p]))):
        return False
    if pivots is not None:
        return bool(np.min(pivots[:p] * np.diag(hess)[:p] / (bound * np.square(norms))) > SAMPLE_RANK_TOL)
    return _shows_full_rank(hess[:p, :p] / (bound * np.outer(norms, norms)))


def _shows_full_rank(G: np.ndarray) -> bool:
    """Every squared diagonal entry of the Cholesky factor of ``G`` (a Gram matrix scaled by the
    columns' norms over all rows) above SAMPLE_RANK_TOL."""
    with parallel.one_blas_thread():
        try:
            L = np.linalg.cholesky(G)
        except np.linalg.LinAlgError:
            return False
    return bool(np.min(np.diag(L)) ** 2 > SAMPLE_RANK_TOL)


def _term(coef: float, name: str, intercept_name: str | None) -> str:
    return f"{coef:.6g}" if name == intercept_name else f"{coef:.6g}*{name}"


def check_rank(
    X: np.ndarray,
    names: Sequence[str],
    weights: np.ndarray | None = None,
    *,
    intercept: bool = False,
    gram: np.ndarray | None = None,
) -> np.ndarray | None:
    """Raise :class:`CollinearityError` when the columns of ``X`` are linearly dependent.

    Columns are taken in order; the first column whose distance from the span of the columns
    before it is below :data:`RANK_TOL` (after scaling every column to unit norm) is reported with
    the combination that reproduces it, so the message blames the later of the columns involved.

    Parameters
    ----------
    X : ndarray of shape (n_obs, n_features)
    names : sequence of str, length n_features
    weights : ndarray of shape (n_obs,), optional
        Frequency weights; rows of weight 0 do not count.
    intercept : bool
        Whether column 0 is the intercept (named as a constant in the message).
    gram : ndarray of shape (n_features, n_features), optional
        ``X' diag(weights) X`` when the caller has formed it (``X`` is then read only for a
        design that the Gram matrix cannot clear).

    Returns
    -------
    ndarray of shape (n_features, n_features) or None
        The Gram matrix ``X' diag(weights) X`` it formed (None without columns), for the caller
        to reuse (gaussian least squares by the normal equations).
    """
    n, p = X.shape
    if p == 0:
        return None
    root_w = None if weights is None else np.sqrt(weights)

    def block_gram(i: int) -> np.ndarray:
        block = X[i * QR_BLOCK:(i + 1) * QR_BLOCK]
        if root_w is not None:
            block = block * root_w[i * QR_BLOCK:(i + 1) * QR_BLOCK, None]
        return np.dot(block.T, block)  # np.dot: BLAS without the GIL (see mlefit.families.base)

    n_blocks = -(-n // QR_BLOCK)
    if gram is not None:
        parts = [gram]
    elif isinstance(X, np.ndarray):  # in memory: the blocks on several threads, added up in order
        with parallel.one_blas_thread():
            parts = parallel.map_tasks(block_gram, n_blocks)
    else:  # rows read on demand (a streamed cache): one block at a time
        parts = (block_gram(i) for i in range(n_blocks))
    gram = np.zeros((p, p))
    for part in parts:
        gram += part
    norms = np.sqrt(np.diag(gram))
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise CollinearityError(
            f"the design is rank-deficient: column '{names[zero[0]]}' is zero in every row"
            + (" with a positive weight." if weights is not None else "."),
            "Remove the column.",
        )
    # Fast path: the Cholesky factor of the column-scaled Gram matrix has diagonal |R_kk|. When every
    # one is far above the tolerance (squares above 1e-8, where the Gram's rounding, ~1e-14, cannot
    # matter) the design has full rank. Ill-conditioned designs (Filip) go on to the QR of X itself,
    # which does not square the condition number.
    try:
        L = np.linalg.cholesky(gram / np.outer(norms, norms))
        if np.min(np.diag(L)) ** 2 > 1e-8:
            return gram
    except np.linalg.LinAlgError:
        pass
    R = _r_factor(X, 1.0 / norms, root_w)
    if R.shape[0] < p:  # fewer rows than columns: pad so the diagonal covers every column
        R = np.vstack([R, np.zeros((p - R.shape[0], p))])
    dependent = np.flatnonzero(np.abs(np.diag(R)) < RANK_TOL)
    if not dependent.size:
        return gram
    # The first dependent column k lies in the span of columns 0..k-1 (all independent): since
    # X = Q R, its combination solves R[:, :k] c = R[:, k].
    k = int(dependent[0])
    kept = list(range(k))
    coef = np.linalg.lstsq(R[:, :k], R[:, k], rcond=None)[0] if k else np.zeros(0)
    coef = coef * norms[k] / norms[:k]  # back to the units of the data
    big = np.abs(coef) > 1e-9 * max(np.abs(coef).max(initial=0.0), 1e-300)
    involved = [j for j in kept if big[j]]
    intercept_name = names[0] if intercept else None
    col = names[k]
    others = [names[j] for j in involved]
    also = [names[j] for j in dependent[1:]]
    tail = f" (also dependent: {', '.join(repr(a) for a in also)})" if also else ""
    if not involved:
        what = f"column '{col}' is zero in every row"
    elif involved == [0] and intercept:
        what = f"column '{col}' is constant ({coef[0]:.6g} in every row), so it repeats the intercept"
    elif len(involved) == 1:
        c = float(coef[involved[0]])
        what = (f"column '{col}' duplicates '{others[0]}'" if math.isclose(c, 1.0, rel_tol=1e-9)
                else f"column '{col}' is {c:.6g} times '{others[0]}'")
    else:
        terms = " + ".join(_term(float(coef[j]), names[j], intercept_name) for j in involved)
        what = f"column '{col}' is a linear combination of {', '.join(repr(o) for o in others)}: {col} = {terms}"
    raise CollinearityError(
        f"the design is rank-deficient: {what}{tail}.",
        "Remove one of the columns involved; their coefficients cannot be told apart.",
    )


# -- separation ----------------------------------------------------------------------------------


def class_log_probabilities(eta: np.ndarray) -> np.ndarray:
    """``log softmax`` of a linear predictor of shape (n_obs, n_classes) (numpy's log-sum-exp: a
    small fit need not import scipy.special for it)."""
    top = eta.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    shifted = eta - top
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def suspect_separation(eta: np.ndarray, weights: np.ndarray | None = None) -> bool:
    """Whether some row with a positive weight has a class probability below ``exp(-20)``.

    ``eta`` has shape (n_obs, n_classes) (bernoulli: ``[0, x'w]``). At the end of a fit of
    separated data such probabilities appear in every method's result, because the optimiser
    follows the coefficients towards infinity; in other fits they are rare, and only cost the
    exact check.
    """
    logp = class_log_probabilities(eta)
    if weights is not None:
        logp = logp[weights > 0]
    return bool(logp.size and logp.min() < SUSPECT_LOG_PROB)


def _constraints(X: np.ndarray, y: np.ndarray, n_classes: int):
    """The sparse matrix D with a row per (row i, class k != y_i): ``x_i' (w_{y_i} - w_k)``.

    Variables are the K coefficient vectors stacked class-major (symmetric parametrisation, no
    reference class), so the direction found does not depend on which class is the reference.
    """
    from scipy.sparse import csr_matrix

    n, p = X.shape
    others = np.array([[k for k in range(n_classes) if k != c] for c in range(n_classes)])
    rows = np.repeat(np.arange(n), n_classes - 1)
    k_other = others[y].ravel()
    k_own = np.repeat(y, n_classes - 1)
    m = rows.size
    cols_own = k_own[:, None] * p + np.arange(p)
    cols_other = k_other[:, None] * p + np.arange(p)
    data = np.concatenate([X[rows], -X[rows]], axis=1).ravel()
    indices = np.concatenate([cols_own, cols_other], axis=1).ravel()
    indptr = np.arange(0, 2 * p * m + 1, 2 * p)
    D = csr_matrix((data, indices, indptr), shape=(m, n_classes * p))
    return D, rows, k_other


def _ordered_constraints(X: np.ndarray, y: np.ndarray, n_classes: int):
    """The cumulative model's margins: variables ``(b, c)`` (p coefficients, then the K - 1
    cutpoints), a row of D per (row i, finite boundary of its class y_i): ``c_{y_i} - x_i'b`` below
    the upper cutpoint and ``x_i'b - c_{y_i - 1}`` above the lower one; and the matrix G of the
    cutpoints' order, ``c_{k+1} - c_k`` (None for two classes).

    Along a direction ``(b, c)`` with ``D (b, c) >= 0`` and ``G c >= 0`` no row's probability
    ``F(c_{y_i} - x_i'b) - F(c_{y_i - 1} - x_i'b)`` falls (for any increasing F) and the cutpoints
    stay in order, so the likelihood rises to its supremum at infinity when some margin is positive.
    """
    from scipy.sparse import csr_matrix

    n, p = X.shape
    n_cuts = n_classes - 1
    upper = np.flatnonzero(y < n_cuts)
    lower = np.flatnonzero(y > 0)
    rows = np.concatenate([upper, lower])
    m = rows.size
    signs = np.concatenate([-np.ones(upper.size), np.ones(lower.size)])
    cuts = np.concatenate([y[upper], y[lower] - 1])
    data = np.column_stack([X[rows] * signs[:, None], -signs]).ravel()
    indices = np.column_stack([np.broadcast_to(np.arange(p), (m, p)), p + cuts]).ravel()
    D = csr_matrix((data, indices, np.arange(0, (p + 1) * m + 1, p + 1)), shape=(m, p + n_cuts))
    G = None
    if n_cuts > 1:
        k = np.arange(n_cuts - 1)
        G = csr_matrix(
            (np.tile([-1.0, 1.0], n_cuts - 1), np.column_stack([p + k, p + k + 1]).ravel(),
             np.arange(0, 2 * (n_cuts - 1) + 1, 2)),
            shape=(n_cuts - 1, p + n_cuts),
        )
    return D, rows, G


def _linprog(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=None):
    from scipy.optimize import linprog

    return linprog(
        c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )


def find_separation(
    X: np.ndarray, y: np.ndarray, n_classes: int, weights: np.ndarray | None = None, *, ordered: bool = False,
):
    """Whether the classes are separated, exactly, by linear programming.

    ``ordered``: the classes are ordered and the model is a cumulative one (one coefficient vector
    and cutpoints between the classes, ``Family.ordered``), whose directions are those of
    :func:`_ordered_constraints`; otherwise the multinomial model's, one coefficient vector per
    class (bernoulli: two classes).

    Returns None when the maximum-likelihood estimate exists (the classes overlap), else a dict:
    ``complete`` (bool), ``perfect`` (bool mask of the rows whose class is predicted with
    probability tending to 1), ``rows`` (the rows where some class probability tends to 0 or 1),
    ``columns`` (indices of the columns of a sparsest separating direction) and ``classes``
    (indices of the classes that direction moves).
    """
    from scipy.sparse import csr_matrix, hstack, vstack

    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(np.intp)
    keep = np.ones(len(y), bool) if weights is None else weights > 0
    Xk, yk = X[keep], y[keep]
    # identical rows give identical constraints: solve on the distinct (x, y) pairs
    pairs, inverse = np.unique(np.column_stack([Xk, yk]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    Xu, yu = pairs[:, :-1], pairs[:, -1].astype(np.intp)
    scale = np.abs(Xu).max(axis=0)
    scale[scale == 0] = 1.0
    Xu = Xu / scale
    p = Xu.shape[1]
    order = None  # constraints that are not margins: the cutpoints' order
    if ordered:
        D, row_of, order = _ordered_constraints(Xu, yu, n_classes)
        m, nv = D.shape
        box = [(-1.0, 1.0)] * nv
    else:
        D, row_of, _ = _constraints(Xu, yu, n_classes)
        m, nv = D.shape
        # Existence only needs differences between classes: fix class 0's vector at zero (presolve
        # removes it), which leaves the reference parametrisation and a smaller program.
        box = [(0.0, 0.0)] * p + [(-1.0, 1.0)] * (nv - p)
    A = D if order is None else vstack([D, order], format="csr")
    n_order = 0 if order is None else order.shape[0]

    # LP 1 (Konis, 2007): maximise the total margin sum_c D_c w subject to D w >= 0, w in the unit
    # box. Zero iff no direction separates. Then, while some margin outside the strict set S can be
    # made positive, maximise their total and add them: directions add up, so S ends as the largest
    # set of margins any one direction makes strict, and the separation is complete iff S is all.
    strict = np.zeros(m, bool)
    for _ in range(20):
        weights_c = (~strict).astype(float)
        res = _linprog(-(weights_c @ D), A_ub=-A, b_ub=np.zeros(m + n_order), bounds=box)
        if res.status != 0:
            break
        margins = D @ res.x
        if margins.min() < -1e-8 * max(1.0, np.abs(margins).max()):
            break  # the solver's direction does not survive an exact check: count it as none
        new = (margins > _STRICT) & ~strict
        if not new.any():
            break
        strict |= new
        if strict.all():
            break
    if not strict.any():
        return None
    complete = bool(strict.all())

    # LP 2: the sparsest direction (least L1 norm, w = a - b; all K class vectors free, so the
    # classes it moves are named symmetrically) with a positive total strict margin.
    total = csr_matrix(np.asarray(strict, dtype=float) @ D)
    A2 = vstack([hstack([-A, A]), hstack([-total, total])], format="csr")
    res = _linprog(
        np.ones(2 * nv), A_ub=A2, b_ub=np.concatenate([np.zeros(m + n_order), [-1.0]]), bounds=[(0, None)] * (2 * nv)
    )
    if ordered:  # the coefficients it moves; the cutpoints move between every pair of classes
        W = np.abs(res.x[:p] - res.x[nv:nv + p])[None, :] if res.status == 0 else np.ones((1, p))
        big = W > 1e-6 * max(W.max(), 1e-300)
        if not big.any():
            big = np.ones((1, p), bool) if p else np.zeros((1, 0), bool)
        classes = list(range(n_classes))
    else:
        W = np.abs(res.x[:nv] - res.x[nv:]).reshape(n_classes, p) if res.status == 0 else np.ones((n_classes, p))
        big = W > 1e-6 * max(W.max(), 1e-300)
        classes = np.flatnonzero(big.any(axis=1)).tolist()

    any_strict = np.zeros(len(pairs), bool)
    np.logical_or.at(any_strict, row_of[strict], True)
    all_strict = np.ones(len(pairs), bool)
    np.logical_and.at(all_strict, row_of, strict)

    def expand(mask_pairs: np.ndarray) -> np.ndarray:
        out = np.zeros(len(y), bool)
        out[np.flatnonzero(keep)] = mask_pairs[inverse]
        return out

    return {
        "complete": complete,
        "perfect": expand(all_strict),
        "rows": expand(any_strict),
        "columns": np.flatnonzero(big.any(axis=0)).tolist(),
        "classes": classes,
    }


def _quote(items: Sequence[str]) -> str:
    return ", ".join(f"'{s}'" for s in items)


def check_separation(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    names: Sequence[str],
    level_names: Sequence[str],
    weights: np.ndarray | None = None,
    *,
    intercept: bool = False,
    ordered: bool = False,
) -> None:
    """Raise :class:`SeparationError` naming the columns and classes when the classes are separated.

    ``y`` holds class codes 0..K-1 (bernoulli: 0/1), ``level_names`` the label of each code;
    ``ordered``: a cumulative model's classes (see :func:`find_separation`).
    """
    found = find_separation(X, y, n_classes, weights, ordered=ordered)
    if found is None:
        return
    cols = [names[j] for j in found["columns"] if not (intercept and j == 0)]
    with_intercept = " (with the intercept)" if intercept and cols and 0 in found["columns"] else ""
    kind = "complete" if found["complete"] else "quasi-complete"
    who = (f"column {_quote(cols)}{with_intercept} separates" if len(cols) == 1
           else f"columns {_quote(cols)}{with_intercept} separate" if cols else "the intercept separates")
    n_total = len(y) if weights is None else int((weights > 0).sum())
    if n_classes == 2 or len(found["classes"]) in (0, n_classes):
        what = f"{who} the classes {_quote(level_names)}"
    else:
        classes = [f"'{level_names[k]}'" + (" (the reference class)" if k == 0 else "") for k in found["classes"]]
        what = f"{who} class{'es' if len(classes) > 1 else ''} {', '.join(classes)} from the other classes"
    if found["complete"]:
        rows = "every row's class is predicted with probability 1"
    else:
        perfect = found["perfect"]
        counts = np.bincount(y[perfect], minlength=n_classes)
        by_class = ", ".join(f"{c} '{level_names[k]}'" for k, c in enumerate(counts) if c)
        rows = f"{int(perfect.sum())} of {n_total} rows" + (f" ({by_class})" if by_class else "")
        rows += " are predicted with probability 1"
        partial = int(found["rows"].sum() - perfect.sum())
        if partial:
            rows += f" and {partial} more have a class probability tending to 0"
    raise SeparationError(
        f"{kind} separation: {what}; {rows}, so the maximum-likelihood estimates do not exist "
        "(the likelihood keeps increasing as coefficients go to infinity).",
        "Use --l2 LAMBDA (for example --l2 1) for finite penalised (MAP) estimates, or remove or merge the "
        "columns involved.",
    )
