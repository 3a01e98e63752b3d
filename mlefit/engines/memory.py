"""The in-memory engine: rows held as arrays, summed in cache-sized blocks on a few threads."""

from __future__ import annotations

import numpy as np

from .. import parallel
from ..parallel import one_blas_thread
from ..data import as_design_array, column_range, forms_whole, ones_first
from ..families.base import gram
from .base import add_up, spread_runs

#: Target size of one row block of ``X``. A block this small stays in the CPU cache while a family
#: computes eta, the loss, the gradient and the Hessian from it, so each evaluation reads ``X``
#: from memory once, and the family's temporaries (a few per row, a scaled copy of the block for
#: the Hessian) are small instead of n_obs long.
BLOCK_BYTES = 1 << 20
MIN_BLOCK_ROWS = 512

#: Tasks per evaluation: enough for the threads to share the work evenly whatever the machine's
#: other load; each holds one partial Hessian until they are added up, so fewer for large models.
MAX_TASKS = 64
MAX_TASK_BYTES = 1 << 26

#: A warm start's subsample: every WARM_START_STRIDE-th run of WARM_START_RUN consecutive rows.
WARM_START_STRIDE = 16
WARM_START_RUN = 256


#: A wide design's blocks have at least this many rows per column (up to WIDE_BLOCK_BYTES of ``X``):
#: a block's Hessian is a Gram matrix, n_features^2 numbers from rows * n_features^2 products,
#: added to the others', and with fewer rows than columns (a 1 MB block of a 1,000-column design has
#: 131) making, writing and adding the Gram matrices costs more than the products; with more, a
#: block outgrows the caches, and a gradient pass reads it from memory twice (``X @ b``, then
#: ``X.T @ r``). Bernoulli passes on 2 threads (gradient / Hessian), row-major blocks: 10,000 x
#: 1,001, 0.0036 / 0.15 s in 512-row blocks, 0.0053 / 0.136 s in 4,096, 0.0077 / 0.18 s in 8,008;
#: 20,000 x 501, 0.0051 / 0.081 s in 1,024, 0.0058 / 0.077 s in 2,048, 0.0072 / 0.087 s in 4,008.
WIDE_ROWS_PER_FEATURE = 4
WIDE_BLOCK_BYTES = 1 << 25
#: A gradient pass whose BLOCK_BYTES blocks would have fewer than WIDE_GRADIENT_ROWS rows (a design
#: of more than 128 columns) takes blocks of WIDE_GRADIENT_BYTES: a block's dozen vector operations
#: of a few hundred values each cost their calls rather than their arithmetic, two threads' calls
#: take turns at the interpreter, and 4 MB still stays in cache between ``X @ b`` and ``X.T @ r``
#: (interleaved fits, median of 8-10: 20,000 x 501 0.270 s instead of 0.292 s, 100,000 x 201
#: 0.303 s instead of 0.336 s; 10,000 x 1,001 keeps its blocks of 512 rows, 4 MB).
WIDE_GRADIENT_ROWS = 1024
WIDE_GRADIENT_BYTES = 1 << 22


def block_rows(n_features: int, hessian: bool = True) -> int:
    """Rows per block: about :data:`BLOCK_BYTES` of ``X`` (a wide design's gradient passes:
    :data:`WIDE_GRADIENT_BYTES`); more for a wide design's blocks whose sums include a Hessian
    (``hessian``; see :data:`WIDE_ROWS_PER_FEATURE`), whose gradient passes keep the smaller blocks
    (10,000 x 1,001: 0.0041 s a pass in 512-row blocks, 0.0055 s in 4,004)."""
    n_features = max(n_features, 1)
    rows = max(MIN_BLOCK_ROWS, BLOCK_BYTES // (8 * n_features))
    if not hessian:
        if rows < WIDE_GRADIENT_ROWS:
            rows = max(rows, WIDE_GRADIENT_BYTES // (8 * n_features))
        return rows
    return max(rows, min(WIDE_ROWS_PER_FEATURE * n_features, WIDE_BLOCK_BYTES // (8 * n_features)))


def even_rows(n_obs: int, rows: int) -> int:
    """Rows per block for an evaluation of ``n_obs`` rows in blocks of at most ``rows``: fewer than
    MAX_TASKS blocks (but more than one) are made a multiple of ``parallel.MAX_THREADS`` in number,
    of equal size, so that the threads finish together. Uneven, the last round of tasks leaves
    threads idle: a bernoulli Hessian pass at 10,000 x 1,001 took 0.136 s in 3 blocks of at most
    4,004 rows on 2 threads and 0.113 s in 4 of 2,501; at 5,070 x 1,001 (a subsample), 0.089 s in
    blocks of 4,004 and 1,066 rows and 0.058-0.064 s in 2 or 4 equal ones."""
    n_blocks = -(-n_obs // max(rows, 1))
    if n_blocks <= 1 or n_blocks >= MAX_TASKS:
        return rows
    n_blocks = -(-n_blocks // parallel.MAX_THREADS) * parallel.MAX_THREADS
    return -(-n_obs // n_blocks)


def task_count(n_blocks: int, n_params: int) -> int:
    """How many runs of consecutive blocks an evaluation is split into (a function of the data's
    shape only, so the order of the additions never depends on the threads)."""
    by_memory = MAX_TASK_BYTES // (8 * max(n_params, 1) ** 2)
    return max(1, min(n_blocks, MAX_TASKS, max(by_memory, 4)))


def _take(spare: list, n_rows: int, new) -> np.ndarray:
    """A buffer of at least ``n_rows`` rows from ``spare`` (given back by a finished task), else
    ``new(n_rows)``. A pass's tasks share as many buffers as run at once, not one each (a fresh
    buffer per task of 1 MB blocks, 64 tasks a pass, cost a bernoulli fit at 1,000,000 x 21
    0.27-0.30 s instead of 0.24 s, poisson 0.28-0.31 s instead of 0.23-0.24 s), and the next
    passes take them again: a wide Hessian pass's blocks are 4 rows per column (20 MB at 1,001
    columns), whose first touch cost every pass 0.137 s instead of 0.121-0.125 s at 10,000 rows."""
    while True:
        try:
            buffer = spare.pop()  # (atomic: another thread may have taken the last one)
        except IndexError:
            return new(n_rows)
        if buffer.shape[0] >= n_rows:
            return buffer


class MemoryRows:
    """Rows in memory: ``X`` of shape (n_obs, n_features) (any layout; see :meth:`block`), the encoded
    target ``y``, optional frequency ``weights`` and ``offset`` of shape (n_obs,), and optionally
    ``X_lo``, a low-order part of the design (``X + X_lo`` exact; see ``mlefit.data.Dataset``).

    ``ones``: the design is a column of ones followed by the columns given as ``X`` (any layout),
    and the ones are not stored: each block of rows is copied with its column of ones into a
    buffer of the block's size, in cache, as it is evaluated. Arrays handed to ``mlefit.fit`` are
    fitted so, without the copy of the whole matrix that adding the column would take (0.10 s of a
    0.46 s poisson fit on a million rows: mostly the first touch of 168 MB of fresh pages), for
    about 0.01 s a pass. The whole design is formed only where a computation needs it at once
    (:attr:`X`: gaussian least squares, the exact separation check, extended precision), and at
    the first pass of a wide design that is not row-major (:func:`mlefit.data.forms_whole`).
    ``ranges``: each design column's largest magnitude, when already known.

    :meth:`map_sum` evaluates blocks of :func:`block_rows` rows, evened out (:func:`even_rows`);
    runs of consecutive blocks are tasks for :func:`mlefit.parallel.map_tasks` (several threads).
    The runs depend only on the shape of the data and are added up in order, so the sums are the
    same to the last bit whatever the number of threads. ``rows`` overrides the block size (tests).
    """

    def __init__(
        self, X, y, weights=None, offset=None, X_lo=None, *, rows: int | None = None, ones: bool = False,
        ranges: np.ndarray | None = None,
    ):
        self.columns, self.ones = X, ones
        self.y, self.weights, self.offset, self.X_lo = y, weights, offset, X_lo
        self.rows = rows
        self._X = None if ones else X
        self._ranges = ranges
        #: Block buffers that finished tasks gave back (:func:`_take`): at most one per thread, of
        #: at most WIDE_BLOCK_BYTES each, kept with the rows.
        self._spare: list[np.ndarray] = []

    @property
    def X(self) -> np.ndarray:
        """The design matrix (formed on first use when its column of ones is not stored)."""
        if self._X is None:
            self._X = as_design_array(self.columns, True)
        return self._X

    def design(self) -> "np.ndarray | OnesFirst":
        """The design matrix, or where its ones are not stored, an operator for its products with
        vectors (:class:`OnesFirst`; ``np.asarray`` of it forms the matrix)."""
        return OnesFirst(self) if self._X is None else self._X

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def n_features(self) -> int:
        return self.columns.shape[1] + self.ones

    @property
    def weighted(self) -> bool:
        return self.weights is not None

    @property
    def has_offset(self) -> bool:
        return self.offset is not None

    def map_sum(self, fn, *, design: bool = True, n_params: int | None = None, hessian: bool = True):
        y, w, o = self.y, self.weights, self.offset
        n_obs, p = len(y), self.n_features if design else 1
        rows = self.rows or even_rows(n_obs, block_rows(p, hessian))
        if design and self._X is None and n_obs > rows and forms_whole(self.columns):
            self._X = ones_first(self.columns)[0]  # (arrays given to mlefit.fit come formed: dataset_from_arrays)
        if n_obs <= rows:
            return fn(self.block(slice(None)) if design else None, y, w, o)
        starts = range(0, n_obs, rows)
        size = n_params if n_params is not None else p
        per_task = -(-len(starts) // task_count(len(starts), size))

        copies = design and not self._contiguous_rows()
        spare = self._spare

        def task(i: int):
            parts = []
            buffer = _take(spare, rows, self.buffer) if copies else None
            for start in starts[i * per_task:(i + 1) * per_task]:
                b = slice(start, start + rows)
                X = self.block(b, buffer) if design else None
                parts.append(fn(X, y[b], None if w is None else w[b], None if o is None else o[b]))
            if buffer is not None:
                spare.append(buffer)
            return add_up(parts)

        with one_blas_thread():
            parts = parallel.map_tasks(task, -(-len(starts) // per_task))
        return add_up(parts)

    def _contiguous_rows(self) -> bool:
        return self._X is not None and self._X.flags.c_contiguous

    def buffer(self, n_rows: int) -> np.ndarray:
        """An empty block of ``n_rows`` rows of the design (for :meth:`block`), laid out as the
        stored columns are (row-major columns copy into a row-major block as whole rows, 1.5x
        faster a pass than through a column-major one; column-major ones column by column)."""
        order = "F" if self.columns.flags.f_contiguous and not self.columns.flags.c_contiguous else "C"
        return np.empty((n_rows, self.n_features), order=order)

    def block(self, rows: slice, buffer: np.ndarray | None = None) -> np.ndarray:
        """The design's rows ``rows``: a view of the stored design, or with the ones not stored,
        those rows of the columns copied after a column of ones; into ``buffer`` (from
        :meth:`buffer`, at least as many rows) when given, and then also the stored design's rows
        when they are not contiguous (the rows of a column-major matrix: ``np.dot`` would copy
        them on every product, where one copy serves the block's products; a poisson gradient pass
        on one thread 0.024 s instead of 0.037 s a million rows of 21 columns). A block function
        must not keep the block it is given (the buffer is reused for the next)."""
        if self._X is not None:
            part = self._X[rows]
            if buffer is None or part.flags.c_contiguous or part.flags.f_contiguous:
                return part
            out = buffer[:part.shape[0]]
            out[...] = part
            return out
        part = self.columns[rows]
        k = part.shape[0]
        out = (self.buffer(k) if buffer is None else buffer)[:k]
        out[:, 0] = 1.0
        out[:, 1:] = part
        return out

    def arrays(self) -> "MemoryRows":
        return self

    def target_chunks(self):
        yield self.y, self.weights

    def scaled(self, scale: np.ndarray) -> "MemoryRows":
        """The same rows with design column j multiplied by ``scale[j]`` (copied)."""
        X = np.asfortranarray(self.X * scale)
        X_lo = None if self.X_lo is None else self.X_lo * scale
        return MemoryRows(X, self.y, self.weights, self.offset, X_lo, rows=self.rows)

    def column_range(self) -> np.ndarray:
        """The largest absolute value of each design column."""
        if self._ranges is None:
            top = column_range(self.columns)
            self._ranges = np.concatenate([[1.0], top]) if self.ones else top
        return self._ranges

    def sample(self) -> "MemoryRows":
        return self

    def gather(self, limit: int | None) -> "MemoryRows":
        return self

    def check_rank(self, names, intercept: bool):
        from .. import checks

        if self._X is not None:
            return checks.check_rank(self.X, names, self.weights, intercept=intercept)
        gram = self.map_sum(_weighted_gram)
        return checks.check_rank(OnesFirst(self), names, self.weights, intercept=intercept, gram=gram)

    def subsample(self, which: int) -> "MemoryRows":
        """Every WARM_START_STRIDE-th run of WARM_START_RUN consecutive rows, from run 0 (or half a
        stride on, for ``which`` = 1): spread over all the data like single rows, but copied as
        contiguous pieces (5x faster)."""
        first = which * (WARM_START_STRIDE // 2)
        starts = np.arange(first * WARM_START_RUN, self.n_obs, WARM_START_STRIDE * WARM_START_RUN)
        return self.runs(starts, WARM_START_RUN)

    def spread(self, n_rows: int) -> "MemoryRows":
        """About ``n_rows`` rows in evenly spaced runs (:func:`mlefit.engines.base.spread_runs`), copied."""
        return self.runs(*spread_runs(self.n_obs, n_rows))

    def runs(self, starts: np.ndarray, length: int) -> "MemoryRows":
        """The runs of ``length`` rows from each of ``starts`` (increasing), copied, in the stored
        columns' layout (:meth:`buffer`: row-major rows copy as whole rows, and the copy's blocks
        are then evaluated in place)."""
        stops = np.minimum(starts + length, self.n_obs)
        m = int(np.sum(stops - starts))
        X = self.buffer(m)
        if self.ones:
            X[:, 0] = 1.0
        y = np.empty(m, dtype=self.y.dtype)
        w = None if self.weights is None else np.empty(m)
        o = None if self.offset is None else np.empty(m)
        n = 0
        for start, stop in zip(starts, stops):
            rows = slice(int(start), int(stop))
            k = int(stop - start)
            X[n:n + k, int(self.ones):], y[n:n + k] = self.columns[rows], self.y[rows]
            if w is not None:
                w[n:n + k] = self.weights[rows]
            if o is not None:
                o[n:n + k] = self.offset[rows]
            n += k
        return MemoryRows(X, y, w, o)


class OnesFirst:
    """A design whose column of ones is not stored (``MemoryRows(..., ones=True)``), as an operator:
    its ``shape``, rows sliced on demand (what ``checks.check_rank`` reads of a design it does not
    hold whole), products with vectors ``A @ x`` and ``A.T @ r`` from the stored columns (what
    least squares by the normal equations reads), and any other use through ``np.asarray``, which
    forms the whole matrix (:attr:`MemoryRows.X`)."""

    def __init__(self, rows: MemoryRows):
        self.rows = rows
        self.shape = (rows.n_obs, rows.n_features)

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice):
            return self.rows.X[key]
        return self.rows.block(key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.rows.X if dtype is None else self.rows.X.astype(dtype)

    def __matmul__(self, x):
        x = np.asarray(x)
        if x.ndim != 1:
            return self.rows.X @ x
        return self.rows.columns @ x[1:] + x[0]

    @property
    def T(self) -> "_OnesFirstTransposed":
        return _OnesFirstTransposed(self)


class _OnesFirstTransposed:
    """``OnesFirst(...).T``: products with vectors ``A.T @ r``."""

    def __init__(self, design: OnesFirst):
        self.design = design
        self.shape = design.shape[::-1]

    def __matmul__(self, r):
        if not (isinstance(r, np.ndarray) and r.ndim == 1):
            return np.asarray(self.design).T @ r
        return np.concatenate([[r.sum()], self.design.rows.columns.T @ r])


def _weighted_gram(X, y, w, offset) -> np.ndarray:
    return gram(X, np.ones(len(y)) if w is None else w)
