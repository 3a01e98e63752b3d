"""What every engine provides: rows that sum, the objective over them, and the source of a fit.

A family turns a block of rows ``(X, y, weights, offset)`` and a parameter vector into
:class:`~mlefit.families.base.BlockSums`; an engine adds those sums over all of its rows
(:meth:`Rows.map_sum`). :class:`RowsObjective` is the NLL, gradient and Hessian of a family over
any engine's rows, which is all the optimisers see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

import numpy as np

from ..families.base import BlockSums, Family

if TYPE_CHECKING:
    from .memory import MemoryRows

BlockFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None"], Any]


class Rows(Protocol):
    """The rows of a fit, wherever they are.

    Attributes
    ----------
    n_obs : int
        Number of rows.
    n_features : int
        Columns of the design.
    weighted : bool
        Whether the rows carry frequency weights.
    has_offset : bool
        Whether the rows carry an offset.
    """

    n_obs: int
    n_features: int
    weighted: bool
    has_offset: bool

    def map_sum(self, fn: BlockFn, *, design: bool = True, n_params: int | None = None, hessian: bool = True) -> Any:
        """``fn(X, y, weights, offset)`` added over blocks of rows, in an order that depends on the
        data's shape (and ``hessian``) only, so the sum is the same to the last bit on every run.
        With ``design=False`` the design is not read and ``X`` is None (sums over the target
        alone). Weights and offset are None where the rows have none. ``n_params``: the size of
        the model whose sums these are (it bounds how many partial sums are held at once).
        ``hessian=False``: ``fn`` forms no matrix of the model's size per block (an engine may
        then take smaller blocks)."""
        ...

    def arrays(self) -> "MemoryRows | None":
        """All rows as arrays in this process (the in-memory engine), else None."""
        ...

    def target_chunks(self) -> Iterable[tuple[np.ndarray, "np.ndarray | None"]]:
        """``(y, weights)`` of consecutive blocks of rows, in row order, one block in memory at a
        time (the design is not read): for :func:`mlefit.fingerprint.rows_fingerprint`."""
        ...

    def subsample(self, which: int) -> "MemoryRows | None":
        """Runs of rows spread over the data, in memory, for a warm start (``which`` 0 and 1 give
        disjoint runs), or None where the engine has none."""
        ...

    def sample(self) -> "MemoryRows":
        """Some rows in memory to compute a start from (every row in memory, a subsample otherwise)."""
        ...

    def gather(self, limit: int | None) -> "MemoryRows | None":
        """Every row in memory (for the exact separation check), or None when they need more than
        ``limit`` bytes."""
        ...

    def check_rank(self, names, intercept: bool) -> np.ndarray | None:
        """Raise CollinearityError when the design's columns are dependent; returns the Gram matrix
        ``X'WX`` when it was formed in memory (else None)."""
        ...

    def scaled(self, scale: np.ndarray) -> "Rows":
        """The same rows with design column j multiplied by ``scale[j]`` (powers of two: exact)."""
        ...

    def spread(self, n_rows: int) -> "MemoryRows | None":
        """About ``n_rows`` rows in runs of consecutive rows spread evenly over the data (see
        :func:`spread_runs`), in memory, or None where the engine has none: the subsample of a
        Hessian approximation (:meth:`RowsObjective.hessian_approximation`)."""
        ...


def add_up(sums: Iterable[Any]) -> Any:
    """The sum of block sums (or of arrays), added in the order given, in place (one copy of each
    array). For BlockSums the smallest class log-probability is known only when every part has it."""
    total = None
    nll = weight = 0.0
    grad = hess = None
    lows: list[float | None] = []
    blocks = False
    for s in sums:
        if s is None:
            continue
        if isinstance(s, BlockSums):
            blocks = True
            nll += s.nll
            weight += s.weight
            if s.grad is not None:
                grad = s.grad.copy() if grad is None else np.add(grad, s.grad, out=grad)
            if s.hess is not None:
                hess = s.hess.copy() if hess is None else np.add(hess, s.hess, out=hess)
            lows.append(s.min_log_prob)
        elif total is None:
            total = np.array(s, dtype=float, copy=True)
        else:
            total += s
    if blocks:
        low = None if not lows or None in lows else min(lows)
        return BlockSums(nll, grad, hess, weight, low)
    return total


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


#: :meth:`RowsObjective.hessian_approximation` from this many parameters on, ...
QUASI_PARAMS = 100
#: ... from a subsample of 1 row in SAMPLE_STRIDE at most, about SAMPLE_ROWS_PER_PARAM rows per
#: parameter and at least SAMPLE_MIN_ROWS_PER_PARAM (measured on the benchmark's wide fits: 5 to 30
#: rows per parameter take 1.1-1.5 Hessian passes and 16-29 gradient passes in all; 2.5 rows per
#: parameter are too few: the steps are slow and Newton takes over) and at most half the rows, in
#: runs of SAMPLE_RUN rows (shorter runs when there would be fewer than SAMPLE_MIN_RUNS of them).
SAMPLE_STRIDE = 16
SAMPLE_ROWS_PER_PARAM = 12
SAMPLE_MIN_ROWS_PER_PARAM = 4
SAMPLE_RUN = 256
SAMPLE_MIN_RUNS = 64
#: :meth:`RowsObjective.hessian_pass_cost`: a Hessian pass costs about ``n_params^2 / (n_features *
#: HESSIAN_PASS_RATIO)`` gradient passes. Its ``n_params^2`` products a row run at the speed of a
#: matrix product; a gradient pass reads the row's ``n_features`` values from memory once, and its
#: few products a value wait for them. Measured, bernoulli on 2 threads: 29 gradient passes at
#: 10,000 x 1,001, 17 at 20,000 x 501, 7 at 100,000 x 201 (the model: 31, 16 and 6); categorical
#: n=100,000 p=50 K=10, whose gradient passes cost more than a read, about 48 (the model: 129).
HESSIAN_PASS_RATIO = 32


def spread_runs(n_obs: int, n_rows: int) -> tuple[np.ndarray, int]:
    """``(starts, length)``: runs of ``length`` consecutive rows, evenly spaced over ``n_obs`` rows
    from row 0, about ``n_rows`` rows in all (:meth:`Rows.spread`); at least SAMPLE_MIN_RUNS runs
    of up to SAMPLE_RUN rows, so the subsample is spread over all the data like single rows but
    copied as contiguous pieces."""
    n_rows = max(1, min(n_rows, n_obs))
    length = max(1, min(SAMPLE_RUN, n_rows // SAMPLE_MIN_RUNS))
    count = -(-n_rows // length)
    starts = (np.arange(count) * n_obs) // count
    return starts.astype(np.int64), length


#: :func:`full_rank_from_spread` from this many design columns on (the columns' norms, a pass of
#: n p, and the subsample's Gram matrix against the Gram matrix of all rows, n p^2 / 2) ...
RANK_SAMPLE_FEATURES = 12
#: ... with 1 row in RANK_SAMPLE_STRIDE of the design, at least RANK_SAMPLE_ROWS_PER_FEATURE per
#: column and at most half the rows.
RANK_SAMPLE_STRIDE = 16
RANK_SAMPLE_ROWS_PER_FEATURE = 2


def full_rank_from_spread(rows: Rows, total_weight: float | None = None) -> bool:
    """True when a subsample of the rows (:meth:`Rows.spread`) proves that the design has full
    column rank (:func:`mlefit.checks.sample_shows_full_rank`): the rank check of a fit that has no
    use for the Gram matrix, for the subsample's Gram matrix and the columns' norms instead of
    n p^2. False (run ``rows.check_rank``) for narrow designs, too few rows, an engine without a
    subsample, or a subsample that does not show it.

    The columns' norms over all rows take a pass of n p, or none for rows in memory given their
    ``total_weight``: ``sqrt(total_weight)`` times each column's largest magnitude
    (``column_range``, known from the check of the values) bounds its norm from above, and the
    subsample's distances scaled by a larger norm are smaller, so a subsample that passes with the
    bound passes with the norms (a column whose largest value is far above its typical one may
    then not pass, and the full check decides).
    """
    from .. import checks

    n_obs, p = rows.n_obs, rows.n_features
    n_rows = max(n_obs // RANK_SAMPLE_STRIDE, RANK_SAMPLE_ROWS_PER_FEATURE * p)
    if p < RANK_SAMPLE_FEATURES or n_rows > n_obs // 2:
        return False
    sample = rows.spread(n_rows)
    if sample is None:
        return False
    return checks.sample_shows_full_rank(sample.X, sample.weights, _column_norms(rows, total_weight))


def full_rank_from_hessian(
    rows: Rows, hess: np.ndarray, bound: float, total_weight: float | None = None, pivots: np.ndarray | None = None,
) -> bool:
    """True when ``hess``, the Hessian of the NLL summed over some of the rows (not scaled to all of
    them), proves that the design has full column rank, for a family whose rows' curvature is at
    most ``bound`` (:func:`mlefit.checks.hessian_shows_full_rank`): the subsample's Hessian that
    the quasi-Newton steps start with serves as the rank check, for no Gram matrix of its own
    (a 2,002 x 1,001 one and its Cholesky factor: 0.06 s of a 1,001-parameter fit). The columns'
    norms as :func:`full_rank_from_spread` takes them; ``pivots`` from the factorisation of
    ``hess`` the steps solve with, when there is one."""
    from .. import checks

    return checks.hessian_shows_full_rank(hess, bound, _column_norms(rows, total_weight), pivots)


def _column_norms(rows: Rows, total_weight: float | None) -> np.ndarray:
    """The design columns' weighted norms over all rows, or for rows in memory given their
    ``total_weight``, upper bounds of them with no pass (see :func:`full_rank_from_spread`)."""
    arrays = rows.arrays()
    if arrays is not None and total_weight is not None:
        return math.sqrt(total_weight) * arrays.column_range()
    return np.sqrt(rows.map_sum(_column_squares, n_params=1))


def _column_squares(X, y, w, offset) -> np.ndarray:
    return np.einsum("ij,ij->j", X, X) if w is None else np.dot((X * X).T, w)


class SampledHessian:
    """The Hessian of a subsample of the rows scaled to all of them, at any parameter vector: an
    approximation of the full Hessian for a fraction of a pass, whose relative error is about
    ``sqrt(n_params / sample rows)`` (``optimize.newton(approx=...)`` corrects it with secant
    pairs).

    ``total_weight``: the weight of all rows (their count without weights)."""

    def __init__(self, family: Family, sample: "MemoryRows", total_weight: float):
        self.sample = RowsObjective(family, sample)
        part = float(sample.n_obs if sample.weights is None else sample.weights.sum())
        self.scale = total_weight / part

    def __call__(self, params: np.ndarray) -> np.ndarray:
        return self.sample.value_grad_hess(params)[2] * self.scale


class RowsObjective(ScreenMemory):
    """NLL, gradient and Hessian of ``family`` summed over ``rows`` (any engine).

    ``null_columns``: None for the fit's own design; an integer k for the intercept-only model, whose
    design is k columns of ones (the design itself is then never read, so on a streamed cache a pass
    reads the target, the weights and the offset alone).
    """

    def __init__(self, family: Family, rows: Rows, *, null_columns: int | None = None):
        self.family, self.rows, self.null_columns = family, rows, null_columns
        #: Passes over the rows so far (each evaluation is one).
        self.passes = 0
        #: The family supplies a Hessian root and precise gradients (see ``Family.hess_root``), and
        #: the rows are in memory to compute them.
        self.refinable = (
            null_columns is None and type(family).hess_root is not Family.hess_root and rows.arrays() is not None
        )

    def sums(self, params: np.ndarray, order: int, precise: bool = False) -> BlockSums:
        self.passes += 1
        if precise:  # the rare extended-precision path of ill-conditioned fits: all rows at once
            a = self.rows.arrays()
            return self._remember(
                params, self.family.evaluate(params, a.X, a.y, a.weights, order=order, precise=True, offset=a.offset)
            )
        fn = partial(block_sums, self.family, params, order, self.null_columns)
        sums = self.rows.map_sum(fn, design=self.null_columns is None, n_params=params.size, hessian=order >= 2)
        return self._remember(params, sums)

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
        a = self.rows.arrays()
        if a is None or self.null_columns is not None:
            return None
        return self.family.hess_root(params, a.X, a.y, a.weights, offset=a.offset)

    def hessian_pass_cost(self, n_params: int) -> float:
        """About what a Hessian pass costs in gradient passes (:data:`HESSIAN_PASS_RATIO`)."""
        return n_params**2 / (max(self.rows.n_features, 1) * HESSIAN_PASS_RATIO)

    def hessian_approximation(self, n_params: int, total_weight: float) -> Callable[[np.ndarray], np.ndarray] | None:
        """For a model of at least :data:`QUASI_PARAMS` parameters, whose Hessian pass costs tens of
        gradient passes: a function giving an approximation of the Hessian at any point, for
        quasi-Newton steps (``optimize.newton(approx=...)``); else None. ``total_weight``: the
        weight of all rows.

        The approximation is a subsample's Hessian scaled to all rows (:class:`SampledHessian`,
        from the engine's :meth:`Rows.spread`): about SAMPLE_ROWS_PER_PARAM rows per parameter (a
        relative error of about 0.3) but 1 row in SAMPLE_STRIDE at least and half the rows at most.
        With fewer than SAMPLE_MIN_ROWS_PER_PARAM rows per parameter in half the rows: the Hessian
        itself (taken at a few points only). None also for an engine without a subsample (the
        cluster's: its passes are map-reduce rounds, where a pass saved is a round trip, not
        arithmetic).
        """
        if n_params < QUASI_PARAMS or self.null_columns is not None:
            return None
        n_obs = self.rows.n_obs
        n_rows = max(n_obs // SAMPLE_STRIDE, SAMPLE_ROWS_PER_PARAM * n_params)
        if n_rows > n_obs // 2:
            if n_obs // 2 < SAMPLE_MIN_ROWS_PER_PARAM * n_params:
                return lambda params: self.value_grad_hess(params)[2]
            n_rows = n_obs // 2
        sample = self.rows.spread(n_rows)
        if sample is None:
            return None
        return SampledHessian(self.family, sample, total_weight)

    def score_outer(self, params: np.ndarray) -> np.ndarray:
        """``sum_i w_i s_i s_i'`` over all rows: the meat of the sandwich covariance."""
        return self.rows.map_sum(partial(score_outer, self.family, params), n_params=params.size)


def block_sums(family: Family, params: np.ndarray, order: int, null_columns: int | None, X, y, w, offset) -> BlockSums:
    """A family's sums over one block (the per-block function of every engine); with
    ``null_columns`` the block's design is that many columns of ones."""
    if null_columns is not None:
        X = np.ones((len(y), null_columns))
    return family.evaluate(params, X, y, w, order=order, offset=offset)


def score_outer(family: Family, params: np.ndarray, X, y, w, offset) -> np.ndarray:
    return family.score_outer(params, X, y, w, offset=offset)


@dataclass(frozen=True, eq=False)
class Source:
    """The rows of a fit (any engine) with what the readers learned about them.

    Attributes
    ----------
    rows : Rows
    feature_names : tuple of str
        A name per design column (``intercept`` first when present).
    target : str
        The target column's name.
    levels : tuple or None
        Class labels in code order (families with classes).
    target_note : str or None
        How the labels were read, for the output.
    intercept : bool
    weights_name, offset_name, exposure_name : str or None
        The columns the weights, the offset and the exposure came from (the rows' offset is the
        offset column plus the log of the exposure column).
    n_dropped : int
        Rows dropped for missing values.
    design : dict or None
        How the design was built, JSON-ready (see ``mlefit.data.design_matrix``).
    separator, separator_detected : str or None, bool
        The CSV's separator (None for a table or arrays), and whether it was detected from the
        header rather than given or the default comma (see ``mlefit.csvformat``).
    notes : tuple of str
        What the reader did differently from an in-memory fit, added to the result's message.
    """

    rows: Rows
    feature_names: tuple[str, ...]
    target: str
    levels: tuple | None = None
    target_note: str | None = None
    intercept: bool = True
    weights_name: str | None = None
    offset_name: str | None = None
    exposure_name: str | None = None
    n_dropped: int = 0
    design: dict | None = None
    separator: str | None = None
    separator_detected: bool = False
    notes: tuple[str, ...] = ()

    @property
    def n_obs(self) -> int:
        return self.rows.n_obs
