"""The in-memory engine: rows held as arrays, summed in cache-sized blocks on a few threads."""

from __future__ import annotations

import numpy as np

from .. import parallel
from ..parallel import one_blas_thread
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
#: 131) making, writing and adding the Gram matrices costs more than the products. CPU time of a
#: bernoulli Hessian pass on one thread, 10,000 x 1,001: 0.34 s in 512-row blocks, 0.24 s in
#: 4,004-row blocks (one call on all rows: 0.36 s); 20,000 x 501: 0.27 s and 0.14 s; the gradient
#: passes take the same time either way (the blocks' second read, for ``X.T @ r``, is from cache).
WIDE_ROWS_PER_FEATURE = 8
WIDE_BLOCK_BYTES = 1 << 25


def block_rows(n_features: int) -> int:
    """Rows per block: about :data:`BLOCK_BYTES` of ``X`` (more for a wide design, see
    :data:`WIDE_ROWS_PER_FEATURE`)."""
    n_features = max(n_features, 1)
    rows = max(MIN_BLOCK_ROWS, BLOCK_BYTES // (8 * n_features))
    return max(rows, min(WIDE_ROWS_PER_FEATURE * n_features, WIDE_BLOCK_BYTES // (8 * n_features)))


def task_count(n_blocks: int, n_params: int) -> int:
    """How many runs of consecutive blocks an evaluation is split into (a function of the data's
    shape only, so the order of the additions never depends on the threads)."""
    by_memory = MAX_TASK_BYTES // (8 * max(n_params, 1) ** 2)
    return max(1, min(n_blocks, MAX_TASKS, max(by_memory, 4)))


class MemoryRows:
    """Rows in memory: ``X`` of shape (n_obs, n_features) (column-major is fastest), the encoded
    target ``y``, optional frequency ``weights`` and ``offset`` of shape (n_obs,), and optionally
    ``X_lo``, a low-order part of the design (``X + X_lo`` exact; see ``mlefit.data.Dataset``).

    :meth:`map_sum` evaluates blocks of :func:`block_rows` rows; runs of consecutive blocks are
    tasks for :func:`mlefit.parallel.map_tasks` (several threads). The runs depend only on the
    shape of the data and are added up in order, so the sums are the same to the last bit whatever
    the number of threads. ``rows`` overrides the block size (tests).
    """

    def __init__(self, X, y, weights=None, offset=None, X_lo=None, *, rows: int | None = None):
        self.X, self.y, self.weights, self.offset, self.X_lo = X, y, weights, offset, X_lo
        self.rows = rows

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def weighted(self) -> bool:
        return self.weights is not None

    @property
    def has_offset(self) -> bool:
        return self.offset is not None

    def map_sum(self, fn, *, design: bool = True, n_params: int | None = None):
        X, y, w, o = self.X if design else None, self.y, self.weights, self.offset
        n_obs, rows = len(y), self.rows or block_rows(self.X.shape[1] if design else 1)
        if n_obs <= rows:
            return fn(X, y, w, o)
        starts = range(0, n_obs, rows)
        size = n_params if n_params is not None else (self.X.shape[1] if design else 1)
        per_task = -(-len(starts) // task_count(len(starts), size))

        def task(i: int):
            parts = []
            for start in starts[i * per_task:(i + 1) * per_task]:
                b = slice(start, start + rows)
                parts.append(fn(
                    None if X is None else X[b], y[b], None if w is None else w[b], None if o is None else o[b]
                ))
            return add_up(parts)

        with one_blas_thread():
            parts = parallel.map_tasks(task, -(-len(starts) // per_task))
        return add_up(parts)

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
        return np.maximum(np.abs(self.X.max(axis=0, initial=0.0)), np.abs(self.X.min(axis=0, initial=0.0)))

    def sample(self) -> "MemoryRows":
        return self

    def gather(self, limit: int | None) -> "MemoryRows":
        return self

    def check_rank(self, names, intercept: bool):
        from .. import checks

        return checks.check_rank(self.X, names, self.weights, intercept=intercept)

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
        """The runs of ``length`` rows from each of ``starts`` (increasing), copied."""
        stops = np.minimum(starts + length, self.n_obs)
        m = int(np.sum(stops - starts))
        X = np.empty((m, self.X.shape[1]), order="F")
        y = np.empty(m, dtype=self.y.dtype)
        w = None if self.weights is None else np.empty(m)
        o = None if self.offset is None else np.empty(m)
        n = 0
        for start, stop in zip(starts, stops):
            rows = slice(int(start), int(stop))
            k = int(stop - start)
            X[n:n + k], y[n:n + k] = self.X[rows], self.y[rows]
            if w is not None:
                w[n:n + k] = self.weights[rows]
            if o is not None:
                o[n:n + k] = self.offset[rows]
            n += k
        return MemoryRows(X, y, w, o)
