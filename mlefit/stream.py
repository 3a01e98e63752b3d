"""Fits of CSVs larger than memory: the rows stream through in chunks, the sums add up.

The NLL, its gradient and its Hessian are sums over rows (``Family.evaluate`` returns
:class:`~mlefit.families.base.BlockSums`), so a fit never needs all rows at once:

1. A CSV whose features (and weights) are all complete numbers is read once: pandas' C parser
   types every chunk's features float64, and the chunk goes straight to a binary cache
   (``cache_dir``; by default a temporary folder removed afterwards) as the float64 design, the
   target's codes and the weights. Classification targets are cached as codes into each chunk's
   own labels and mapped to the final codes once all labels are known.
2. Any other file (text features, missing values, a bad value anywhere) takes two passes: the first
   finds everything that depends on all rows (the target's levels, the levels of text features,
   missing values, bad labels and other input errors, reported with the in-memory message, naming
   the data row); the second encodes every chunk the same way and writes the cache. Standard
   input is first copied to the cache folder, so it too can be read twice.
3. :class:`ChunkedObjective` reads the cache chunk by chunk and adds the family's block sums;
   Newton's method runs over passes (one pass per iteration, one row of the trace per pass). Like
   the in-memory fit, a large fit starts from a fit to runs of rows spread over the cache
   (:func:`_warm_start`), which saves two to four passes.

What needs all rows in memory in :func:`mlefit.fit.fit_dataset` is replaced by a sum: the rank
check accumulates the Gram matrix over the cache, the null model is fitted from the class counts
(or the mean and variance of a gaussian target), and the robust covariance adds
``Family.score_outer`` over chunks. The exact separation check (linear programmes over all rows)
runs on the rows read back from the cache when the fit shows the symptoms and the rows fit within
the memory limit (:func:`_check_separation`). Not supported when streaming: ``--formula``, and
gaussian's closed form (Newton from the normal equations finds the same estimate) with its exact-fit
case.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import DataError, UsageError
from .families.base import BlockSums, Family, label_text
from .objective import ScreenMemory

#: Rows per chunk when none is given: about 8 MB of a 32-column design.
DEFAULT_CHUNK_ROWS = 1 << 15
#: Without --memory-limit, files larger than this fraction of the machine's memory are streamed.
MEMORY_FRACTION = 0.25


def machine_memory() -> int:
    """Physical memory in bytes (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def default_memory_limit() -> int:
    return int(MEMORY_FRACTION * machine_memory())


def should_stream(data: Any, memory_limit: int | None) -> bool:
    """True when ``data`` is a CSV path larger than ``memory_limit`` bytes (default: a fraction of memory)."""
    if not isinstance(data, (str, Path)) or str(data) == "-":
        return False
    limit = default_memory_limit() if memory_limit is None else memory_limit
    try:
        return limit > 0 and Path(data).stat().st_size > limit
    except OSError:
        return False


# -- the cache ------------------------------------------------------------------------------------


@dataclass
class Cache:
    """The parsed rows on disk: ``X.bin`` (float64, row-major), ``y.bin``, optional ``w.bin``."""

    folder: Path
    n_obs: int
    n_features: int
    y_dtype: np.dtype
    weighted: bool
    chunk_rows: int

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        p = self.n_features
        m = stop - start
        # Mapped rather than copied: the pages come straight from the page cache (a pass over a 4M-row
        # cache in 0.05 s instead of 0.11 s), and are unmapped when the chunk is dropped.
        if m > 0 and p > 0:
            X = np.memmap(self.folder / "X.bin", dtype=np.float64, mode="r", offset=8 * start * p, shape=(m, p))
        else:
            X = np.empty((m, p))
        y = np.fromfile(self.folder / "y.bin", dtype=self.y_dtype, count=m, offset=self.y_dtype.itemsize * start)
        w = None
        if self.weighted:
            w = np.fromfile(self.folder / "w.bin", dtype=np.float64, count=m, offset=8 * start)
        return X, y, w

    def runs(self, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The runs of ``length`` rows from each of ``starts`` (increasing), concatenated."""
        p, n = self.n_features, self.n_obs
        stops = np.minimum(np.asarray(starts) + length, n)
        m = int(np.sum(stops - starts))
        X = np.empty((m, p))
        y = np.empty(m, dtype=self.y_dtype)
        w = np.empty(m) if self.weighted else None
        files = [(X, p, open(self.folder / "X.bin", "rb")), (y, 1, open(self.folder / "y.bin", "rb"))]
        if w is not None:
            files.append((w, 1, open(self.folder / "w.bin", "rb")))
        try:
            for out, width, fh in files:
                flat = out.reshape(-1)
                at = 0
                for start, stop in zip(starts, stops):
                    k = int(stop - start) * width
                    fh.seek(int(start) * width * out.itemsize)
                    fh.readinto(memoryview(flat[at : at + k]).cast("B"))
                    at += k
        finally:
            for _, _, fh in files:
                fh.close()
        return X, y, w

    def all_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return self.read(0, self.n_obs)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        for start in range(0, self.n_obs, self.chunk_rows):
            yield self.read(start, min(start + self.chunk_rows, self.n_obs))

    def target_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """``(y, w)`` of each chunk in row order (for :func:`mlefit.fingerprint.rows_fingerprint`)."""
        for _, y, w in self.chunks():
            yield y, w

    def map_sum(self, fn):
        """``fn(X, y, w)`` summed over the chunks (one pass over the cache), BLAS on one thread
        (see :func:`mlefit.objective.one_blas_thread`)."""
        from .objective import one_blas_thread

        total = None
        with one_blas_thread():
            for X, y, w in self.chunks():
                s = fn(X, y, w)
                total = s if total is None else total + s
        return total

    def check_rank(self, names, intercept: bool) -> None:
        from . import checks

        weights = CachedRows(self, "w") if self.weighted else None
        checks.check_rank(CachedRows(self, "X"), names, weights, intercept=intercept)


class CachedRows:
    """Rows of the cached design (or weights) sliced on demand: what ``checks.check_rank`` needs."""

    def __init__(self, cache: Cache, what: str):
        self.cache, self.what = cache, what
        self.shape = (cache.n_obs, cache.n_features) if what == "X" else (cache.n_obs,)

    def __getitem__(self, key) -> np.ndarray:
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        start, stop, _ = rows.indices(self.cache.n_obs)
        X, _, w = self.cache.read(start, stop)
        out = X if self.what == "X" else np.sqrt(w) if self.what == "sqrtw" else w
        return out[(slice(None), *rest)] if rest else out

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # check_rank takes np.sqrt of the weights: the square roots, sliced on demand as well
        if ufunc is np.sqrt and method == "__call__" and self.what == "w" and len(inputs) == 1:
            return CachedRows(self.cache, "sqrtw")
        return NotImplemented


class ChunkedObjective(ScreenMemory):
    """NLL, gradient and Hessian of ``family`` summed over the cache, one chunk at a time."""

    def __init__(self, family: Family, cache: Cache):
        self.family, self.cache = family, cache
        self.passes = 0

    def sums(self, params: np.ndarray, order: int) -> BlockSums:
        self.passes += 1
        return self._remember(params, self.cache.map_sum(partial(block_sums, self.family, params, order)))

    def value(self, params):
        return self.sums(params, 0).nll

    def value_grad(self, params):
        s = self.sums(params, 1)
        return s.nll, s.grad

    def value_grad_hess(self, params, precise: bool = False):
        s = self.sums(params, 2)
        return s.nll, s.grad, s.hess

    def score_outer(self, params: np.ndarray) -> np.ndarray:
        return self.cache.map_sum(partial(_score_outer, self.family, params))


def block_sums(family: Family, params: np.ndarray, order: int, X, y, w) -> BlockSums:
    """The family's sums over one chunk, in cache-sized blocks (the per-block function of every engine)."""
    from .objective import DataObjective

    return DataObjective(family, X, y, w).sums(params, order)


def _score_outer(family, params, X, y, w):
    return family.score_outer(params, X, y, w)


def _normal_equations(X, y, w):
    Xw = X if w is None else X * w[:, None]
    return np.concatenate([(Xw.T @ X).ravel(), Xw.T @ y])


def _rss(coef, X, y, w):
    r = y - X @ coef
    return float(r @ r) if w is None else float(w @ (r * r))


# -- reading: one pass over a numeric CSV ----------------------------------------------------------


def _class_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct values, each row's index into them)`` of one chunk's target; numbers with at
    most two values take two comparisons instead of a sort."""
    if values.dtype.kind in "iufb" and values.size:
        lo, hi = values.min(), values.max()
        is_hi = values == hi
        if lo == hi:
            return values[:1], np.zeros(len(values), dtype=np.intp)
        if np.all(is_hi | (values == lo)):
            return np.array([lo, hi], dtype=values.dtype), is_hi.astype(np.intp)
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.reshape(-1)


def _load_numeric(path: Path, fam: Family, target, features, intercept, weights, chunk_rows, folder):
    """One pass over a CSV whose feature (and weight) columns are all complete numbers: every chunk
    parsed once, typed float64 by pandas' C parser, and written straight to the cache.

    The target's levels are only known at the end, so a classification target is cached as each
    chunk's codes into its own distinct values, then mapped to the final codes (in place, and
    only for the chunks where the two differ: usually none). Returns None when the file is not
    that clean case (text, a missing value, a negative weight, targets typed differently from chunk
    to chunk, ...): the two-pass reader then reports exactly what is wrong, naming the row.
    """
    import pandas as pd

    from . import data

    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
        target, wanted, used = _header(columns, target, features, intercept, weights)
    except (DataError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    floats = [c for c in used if c != target]
    classes = fam.name in ("bernoulli", "categorical")
    y_dtype = np.dtype(np.intp if fam.name == "categorical" else np.float64)
    offset = 1 if intercept else 0
    p = offset + len(wanted)
    pieces = []  # classification: (rows, distinct values, their weighted counts) per chunk
    stats = []  # gaussian: chunk_stats per chunk
    kinds = set()
    n_obs = 0
    n_distinct = 0
    try:
        reader = pd.read_csv(
            path, usecols=used, dtype={c: np.float64 for c in floats}, chunksize=chunk_rows, engine="c",
        )
        with reader, open(folder / "X.bin", "wb") as fx, open(folder / "y.bin", "wb") as fy, \
                (open(folder / "w.bin", "wb") if weights else open(os.devnull, "wb")) as fw:
            for chunk in reader:
                chunk = chunk.set_axis([str(c) for c in chunk.columns], axis=1)
                m = len(chunk)
                X = np.empty((m, p))
                if intercept:
                    X[:, 0] = 1.0
                if wanted:
                    X[:, offset:] = chunk[wanted].to_numpy(dtype=np.float64)
                if not np.all(np.isfinite(X)):
                    return None
                w = None
                if weights:
                    w = chunk[weights].to_numpy(dtype=np.float64)
                    if not np.all(np.isfinite(w) & (w >= 0)):
                        return None
                values = chunk[target].to_numpy()
                kinds.add(data._kind(values))
                if len(kinds) > 1 or (values.dtype.kind in "fO" and pd.isna(values).any()):
                    return None
                if classes:
                    uniq, y = _class_codes(values)
                    n_distinct += len(uniq)
                    if n_distinct > 4 * data.MAX_LEVELS:
                        return None  # a continuous target: the general path says what is wrong
                    pieces.append((m, uniq, np.bincount(y, weights=w, minlength=len(uniq))))
                else:
                    if values.dtype.kind not in "iuf":
                        return None
                    y = fam.encode_target(values, target).y
                    stats.append(chunk_stats(y, w, None))
                X.tofile(fx)
                y.astype(y_dtype).tofile(fy)
                if w is not None:
                    w.tofile(fw)
                n_obs += m
    except (ValueError, TypeError, pd.errors.ParserError, UnicodeDecodeError):
        return None  # a feature that is not a number, unsortable labels, a malformed file
    if n_obs == 0:
        return None
    encoded = counts = None
    if classes:
        uniq = np.unique(np.concatenate([u for _, u, _ in pieces]))
        encoded = fam.encode_target(uniq, target)
        codes = encoded.y.astype(y_dtype)
        counts = np.zeros(len(uniq))
        start = 0
        with open(folder / "y.bin", "r+b") as fy:
            for m, u, c in pieces:
                mapping = codes[np.searchsorted(uniq, u)]
                np.add.at(counts, mapping.astype(np.intp), c)
                if not np.array_equal(mapping, np.arange(len(u))):
                    fy.seek(start * y_dtype.itemsize)
                    local = np.fromfile(fy, dtype=y_dtype, count=m).astype(np.intp)
                    fy.seek(start * y_dtype.itemsize)
                    mapping[local].tofile(fy)
                start += m
        sw = float(counts.sum())
        mean = var = 0.0
    else:
        sw, mean, m2, _ = merge_stats(stats)
        var = m2 / sw if sw > 0 else 0.0
    if weights and not sw > 0:
        raise DataError(f"weights column '{weights}' is zero in every row.")
    names = ((data.INTERCEPT,) if intercept else ()) + tuple(wanted)
    design = {
        "kind": "columns", "intercept": intercept,
        "columns": [{"column": c, "type": "numeric"} for c in wanted], "features": list(names),
    }
    cache = Cache(folder, n_obs, p, y_dtype, weights is not None, chunk_rows)
    return Streamed(
        cache, names, target, None if encoded is None else encoded.levels,
        None if encoded is None else encoded.note, intercept, weights, 0, design, counts, mean, var, sw,
    )


# -- reading: two passes over the CSV -------------------------------------------------------------


@dataclass
class _Column:
    """What the first pass learns about one feature column."""

    numeric: bool = True
    texts: set = field(default_factory=set)
    n_values: int = 0
    n_numbers: int = 0
    first_word: tuple | None = None  # (row, value) of the first value that is not a number


@dataclass
class Streamed:
    """The metadata of a streamed dataset: what :func:`mlefit.fit._build` reads from a Dataset."""

    cache: Cache
    feature_names: tuple
    target: str
    levels: tuple | None
    target_note: str | None
    intercept: bool
    weights_name: str | None
    n_dropped: int
    design: dict
    class_counts: np.ndarray | None
    y_mean: float
    y_var: float
    total_weight: float

    @property
    def n_obs(self) -> int:
        return self.cache.n_obs

    @property
    def weights(self):  # only tested against None by fit._n_obs
        return True if self.cache.weighted else None


def _chunks(path: Path, chunk_rows: int):
    import pandas as pd

    name = f"'{path}'"
    try:
        reader = pd.read_csv(path, chunksize=chunk_rows)
        first = True
        for chunk in reader:
            first = False
            yield chunk.set_axis([str(c) for c in chunk.columns], axis=1)
        if first:
            raise DataError(f"{name} has a header but no data rows.")
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty: no header and no rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{name} is not a readable CSV file ({first_line}).") from None


def _numeric_weights(series, name: str, rows: np.ndarray) -> np.ndarray:
    from .data import _weights

    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        w = series.to_numpy(dtype=np.float64)
        if np.all(np.isfinite(w)) and np.all(w >= 0):
            return w
    return _weights(series, name, rows)  # raises the in-memory message for this chunk's bad row


def _header(columns: list[str], target, features, intercept, weights):
    from . import data

    if weights is not None and weights not in columns:
        raise DataError(
            f"weights column '{weights}' not found; available: {', '.join(columns)}.",
            "Check --weights.",
        )
    target, wanted = data._select_columns(columns, target, features, intercept, weights)
    used = list(dict.fromkeys([target, *wanted] + ([weights] if weights else [])))
    return target, wanted, used


def summarise_chunk(chunk, offset: int, target: str, wanted: list[str], used: list[str]) -> dict:
    """What the first pass learns from one chunk whose first row is data row ``offset + 1``."""
    import pandas as pd

    from . import data

    chunk = chunk.set_axis([str(c) for c in chunk.columns], axis=1)
    rows = np.arange(offset + 1, offset + len(chunk) + 1)
    isna = chunk[used].isna()
    mask = isna.any(axis=1).to_numpy()
    out = {"n": len(chunk), "n_na_rows": int(mask.sum()), "na_counts": {}, "na_first": {}, "cols": {}}
    for c in used:
        col_na = isna[c].to_numpy()
        out["na_counts"][c] = int(col_na.sum())
        if col_na.any():
            out["na_first"][c] = int(rows[np.flatnonzero(col_na)[0]])
    part = chunk.iloc[np.flatnonzero(~mask)] if mask.any() else chunk
    kept_rows = rows[~mask]
    t = part[target].to_numpy()
    try:
        out["target"] = np.unique(t)
    except TypeError:
        out["target"] = t
    for c in wanted:
        info = _Column()
        series = part[c]
        if data._is_numeric(series):
            info.n_values = info.n_numbers = len(series)
        else:
            info.numeric = False
            values = data._text_values(series)
            isnum = pd.to_numeric(pd.Series(values), errors="coerce").notna().to_numpy()
            info.n_values, info.n_numbers = len(values), int(isnum.sum())
            if not isnum.all():
                k = int(np.flatnonzero(~isnum)[0])
                info.first_word = (int(kept_rows[k]), values[k])
            info.texts = set(np.unique(values).tolist()[: data.MAX_LEVELS + 1])
        out["cols"][c] = info
    return out


def combine_summaries(summaries: list[dict], wanted: list[str], used: list[str], dropna: bool):
    """The first pass's findings over all chunks (in order); raises the in-memory missing-value error."""
    from . import data

    cols = {c: _Column() for c in wanted}
    na_counts = {c: 0 for c in used}
    na_first: dict[str, int] = {}
    n_na_rows = n_rows = 0
    target_values = []
    for s in summaries:
        n_rows += s["n"]
        n_na_rows += s["n_na_rows"]
        for c in used:
            na_counts[c] += s["na_counts"][c]
            if c in s["na_first"]:
                na_first.setdefault(c, s["na_first"][c])
        if len(s["target"]):
            target_values.append(s["target"])
        for c, info in s["cols"].items():
            acc = cols[c]
            acc.numeric = acc.numeric and info.numeric
            acc.n_values += info.n_values
            acc.n_numbers += info.n_numbers
            if acc.first_word is None:
                acc.first_word = info.first_word
            if len(acc.texts) <= data.MAX_LEVELS:
                acc.texts |= info.texts
    bad = [c for c in used if na_counts[c] > 0]
    if bad and not dropna:
        col = bad[0]
        others = f" (also: {', '.join(f'{c} ({na_counts[c]})' for c in bad[1:])})" if len(bad) > 1 else ""
        in_all = f"; {n_na_rows} rows in all have a missing value" if len(bad) > 1 else ""
        raise DataError(
            f"column '{col}' has {na_counts[col]} missing value(s), the first in data row {na_first[col]}{others}{in_all}.",
            "Remove or fill those rows, or use --dropna to drop them.",
        )
    if bad and n_na_rows == n_rows:
        raise DataError(f"every row has a missing value in {', '.join(bad)}: nothing is left after dropping them.")
    if not target_values:
        raise DataError("the data have no rows.")
    return cols, target_values, n_na_rows if dropna else 0


def _first_pass(path, fam, target, features, intercept, weights, dropna, chunk_rows):
    summaries = []
    offset = 0
    header = None
    for chunk in _chunks(path, chunk_rows):
        if header is None:
            target, wanted, used = header = _header(list(chunk.columns), target, features, intercept, weights)
        summaries.append(summarise_chunk(chunk, offset, target, wanted, used))
        offset += len(chunk)
    cols, target_values, n_dropped = combine_summaries(summaries, wanted, used, dropna)
    return target, wanted, cols, target_values, n_dropped


@dataclass(frozen=True)
class Encoding:
    """How every chunk is encoded: found by the first pass, the same for all chunks."""

    fam: Family
    target: str
    used: list
    weights: str | None
    dropna: bool
    design: dict
    uniq: Any  # the target's distinct raw values, sorted (classification families)
    codes: Any  # their codes
    as_text: bool


def encode_chunk(chunk, offset: int, enc: Encoding):
    """``(X, y, w)`` of one chunk whose first row is data row ``offset + 1``; raises DataError naming the row."""
    from . import data

    chunk = chunk.set_axis([str(c) for c in chunk.columns], axis=1)
    rows = np.arange(offset + 1, offset + len(chunk) + 1)
    if enc.dropna:
        mask = chunk[enc.used].isna().any(axis=1).to_numpy()
        if mask.any():
            chunk, rows = chunk.iloc[np.flatnonzero(~mask)], rows[~mask]
    w = _numeric_weights(chunk[enc.weights], enc.weights, rows) if enc.weights and len(chunk) else None
    if enc.weights and w is None:
        w = np.zeros(0)
    values = chunk[enc.target].to_numpy()
    if enc.as_text:
        values = values.astype(str).astype(object)
    if enc.codes is not None:
        y = enc.codes[np.searchsorted(enc.uniq, values)] if len(values) else enc.codes[:0]
    else:
        y = enc.fam.encode_target(values, enc.target).y if len(values) else np.zeros(0)
    X = data._build_columns(enc.design, chunk, rows)
    return np.ascontiguousarray(X), y, w


def chunk_stats(y: np.ndarray, w: np.ndarray | None, n_classes: int | None) -> tuple:
    """``(weight, mean, m2, counts)`` of the encoded target of one chunk, for the null model."""
    cw = float(len(y) if w is None else w.sum())
    counts = None if n_classes is None else np.bincount(y.astype(np.intp), weights=w, minlength=n_classes)
    if not cw > 0:
        return 0.0, 0.0, 0.0, counts
    mean = float(np.average(y, weights=w))
    m2 = float(np.sum((y - mean) ** 2 * (1.0 if w is None else w)))
    return cw, mean, m2, counts


def merge_stats(stats) -> tuple:
    """Chan et al.'s pairwise merge of chunk means and sums of squared deviations, and the class counts."""
    sw = mean = m2 = 0.0
    counts = None
    for cw, cmean, cm2, c in stats:
        if c is not None:
            counts = c.astype(float) if counts is None else counts + c
        if cw > 0:
            delta = cmean - mean
            tot = sw + cw
            mean += delta * cw / tot
            m2 += cm2 + delta**2 * sw * cw / tot
            sw = tot
    return sw, mean, m2, counts


def make_encoding(fam, target, wanted, cols, target_values, weights, dropna, intercept) -> Encoding:
    uniq = np.concatenate(target_values)
    as_text = False  # numbers in some chunks and words in others: in memory, one text column
    try:
        uniq = np.unique(uniq)
    except TypeError:
        as_text = True
        uniq = np.unique(uniq.astype(str).astype(object))
    classes = fam.name in ("bernoulli", "categorical")
    encoded = fam.encode_target(uniq, target) if classes else None
    design = _design(cols, wanted, intercept)
    used = list(dict.fromkeys([target, *wanted] + ([weights] if weights else [])))
    return Encoding(fam, target, used, weights, dropna, design, uniq if classes else None,
                    encoded.y if classes else None, as_text), encoded


def _design(cols: dict, wanted: list[str], intercept: bool) -> dict:
    from . import data

    specs: list[dict] = []
    names = [data.INTERCEPT] if intercept else []
    for col in wanted:
        info = cols[col]
        if info.numeric:
            specs.append({"column": col, "type": "numeric"})
            names.append(col)
            continue
        if info.n_numbers and info.n_numbers < info.n_values and 2 * info.n_numbers >= info.n_values:
            row, value = info.first_word
            raise DataError(
                f"feature column '{col}' is not numeric: data row {row} has '{value}'.",
                "Fix or remove those values, or leave the column out with --features.",
            )
        spec, columns = data.one_hot_spec(col, sorted(info.texts), counted=False)
        specs.append(spec)
        names += columns
    return {"kind": "columns", "intercept": intercept, "columns": specs, "features": names}


def load_streamed(
    source: "str | Path", fam: Family, *, target=None, features=None, intercept=True, weights=None,
    formula=None, dropna=False, chunk_rows: int | None = None, folder: Path,
) -> Streamed:
    """The binary cache in ``folder``: one pass over a numeric CSV, else two (levels and validation, then the cache)."""
    if formula is not None:
        raise UsageError("--formula is not supported when streaming.", "Drop --stream, or build the columns beforehand.")
    chunk_rows = chunk_rows or DEFAULT_CHUNK_ROWS
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be 1 or more; got {chunk_rows}.")
    if str(source) == "-":
        path = folder / "stdin.csv"
        with open(path, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        if path.stat().st_size == 0:
            raise DataError("standard input is empty: no header and no rows.")
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"file '{source}' not found.")
        if path.is_dir():
            raise DataError(f"'{source}' is a directory, not a CSV file.")
    found = _load_numeric(path, fam, target, features, intercept, weights, chunk_rows, folder)
    if found is not None:
        return found
    target, wanted, cols, target_values, n_dropped = _first_pass(
        path, fam, target, features, intercept, weights, dropna, chunk_rows
    )
    enc, encoded = make_encoding(fam, target, wanted, cols, target_values, weights, dropna, intercept)
    design = enc.design
    p = len(design["features"])
    n_classes = len(encoded.levels) if encoded is not None else None
    n_obs = 0
    y_dtype = np.dtype(np.intp if fam.name == "categorical" else np.float64)
    stats = []
    offset = 0
    with open(folder / "X.bin", "wb") as fx, open(folder / "y.bin", "wb") as fy, \
            (open(folder / "w.bin", "wb") if weights else open(os.devnull, "wb")) as fw:
        for chunk in _chunks(path, chunk_rows):
            X, y, w = encode_chunk(chunk, offset, enc)
            offset += len(chunk)
            if not len(y):
                continue
            X.tofile(fx)
            y.astype(y_dtype).tofile(fy)
            if w is not None:
                w.tofile(fw)
            n_obs += len(y)
            stats.append(chunk_stats(y, w, n_classes))
    sw, mean, m2, counts = merge_stats(stats)
    if weights and not sw > 0:
        raise DataError(f"weights column '{weights}' is zero in every row.")
    cache = Cache(folder, n_obs, p, y_dtype, weights is not None, chunk_rows)
    return Streamed(
        cache, tuple(design["features"]), target, None if encoded is None else encoded.levels,
        None if encoded is None else encoded.note, intercept, weights, n_dropped, design, counts,
        mean, m2 / sw if sw > 0 else 0.0, sw,
    )


# -- the fit --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NullData:
    """A few weighted rows with the same intercept-only likelihood as all rows (for the null model;
    none without an intercept, as in memory)."""

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    intercept: bool = True


def _null_data(sd: Streamed, fam: Family) -> _NullData:
    if sd.class_counts is not None:
        k = len(sd.class_counts)
        y = np.arange(k, dtype=np.intp if fam.name == "categorical" else np.float64)
        return _NullData(np.ones((k, 1)), y, sd.class_counts.astype(float), sd.intercept)
    # gaussian: two rows at mean -/+ sd, each with half the weight, have the same mean and variance
    s = math.sqrt(sd.y_var)
    rows = np.array([sd.y_mean - s, sd.y_mean + s])
    return _NullData(np.ones((2, 1)), rows, np.full(2, sd.total_weight / 2), sd.intercept)


def fit_streamed(
    source, fam: Family, *, target=None, features=None, intercept=True, weights=None, formula=None,
    dropna=False, l2=None, cov="model", method="newton", gradient="analytic", tol, max_iter,
    chunk_rows=None, cache_dir=None, memory_limit=None, extras=None,
):
    """The streamed counterpart of :func:`mlefit.fit.fit_dataset`: the same FitResult."""
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="mlefit-cache-") as folder:
            return _fit_streamed(
                source, fam, Path(folder), target=target, features=features, intercept=intercept,
                weights=weights, formula=formula, dropna=dropna, l2=l2, cov=cov, method=method,
                gradient=gradient, tol=tol, max_iter=max_iter, chunk_rows=chunk_rows,
                memory_limit=memory_limit, extras=extras,
            )
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return _fit_streamed(
        source, fam, folder, target=target, features=features, intercept=intercept, weights=weights,
        formula=formula, dropna=dropna, l2=l2, cov=cov, method=method, gradient=gradient, tol=tol,
        max_iter=max_iter, chunk_rows=chunk_rows, memory_limit=memory_limit, extras=extras,
    )


def _fit_streamed(source, fam, folder, *, target, features, intercept, weights, formula, dropna, l2, cov,
                  method, gradient, tol, max_iter, chunk_rows, memory_limit, extras):
    sd = load_streamed(
        source, fam, target=target, features=features, intercept=intercept, weights=weights,
        formula=formula, dropna=dropna, chunk_rows=chunk_rows, folder=folder,
    )
    return fit_source(
        sd, fam, l2=l2, cov=cov, method=method, gradient=gradient, tol=tol, max_iter=max_iter,
        memory_limit=memory_limit, extras=extras,
    )


def fit_source(
    sd: Streamed, fam: Family, *, l2, cov, method, gradient, tol, max_iter, memory_limit=None, extras=None,
):
    """Optimiser and inference on rows that are never all in memory: ``sd.cache`` sums over them.

    ``sd.cache`` is a :class:`Cache` (chunks on this machine) or any object with ``n_obs``,
    ``n_features``, ``weighted``, ``map_sum(fn)``, ``check_rank(names, intercept)`` and
    ``all_rows()`` (a Dask cluster's partitions), and ``target_chunks()`` for a fingerprint.
    ``memory_limit`` (bytes; default a fraction of the machine's memory) bounds the rows read back
    for the exact separation check. ``extras`` (:class:`mlefit.fit.Extras`): intervals and
    fingerprint.
    """
    from . import inference
    from .fit import Extras, _finish
    from .objective import NumericObjective, PenalizedObjective
    from .optimize import OPTIMIZERS

    intercept = sd.intercept
    n_classes = len(sd.levels) if sd.levels is not None else None
    p = len(sd.feature_names)
    n_params = fam.n_params(p, n_classes)
    n_weight = float(sd.total_weight)
    if n_weight <= n_params:
        raise DataError(
            f"{sd.n_obs} rows are too few for {n_params} parameters; "
            "a maximum-likelihood fit needs more rows than parameters."
        )
    if l2 is None:
        sd.cache.check_rank(sd.feature_names, intercept)
    if sd.class_counts is not None and np.any(sd.class_counts <= 0):
        label = label_text(sd.levels[int(np.flatnonzero(sd.class_counts <= 0)[0])])
        raise DataError(f"class '{label}' has no rows with a positive weight, so its probability cannot be estimated.")

    analytic = ChunkedObjective(fam, sd.cache)
    exact = analytic
    if l2 is not None:
        exact = PenalizedObjective(analytic, fam.l2_matrix(p, n_classes, intercept=intercept), l2)
    objective = exact if gradient == "analytic" else NumericObjective(exact)
    if fam.name == "gaussian":
        x0 = _normal_equations_start(sd, p)
    else:
        null = _null_data(sd, fam)
        x0 = np.zeros(n_params)
        x0_null = fam.start_params(null.X, null.y, null.weights, intercept=intercept, n_classes=n_classes)
        if intercept:  # the intercept-only fit, padded with zero coefficients (as start_params does)
            x0 = np.zeros((max(n_classes or 2, 2) - 1, p))
            x0[:, 0] = x0_null.reshape(-1)
            x0 = x0.ravel()
        if method == "newton" and gradient == "analytic" and l2 is None and isinstance(sd.cache, Cache):
            x0 = _warm_start(sd.cache, fam, x0)
    opt = OPTIMIZERS[method](objective, x0, tol=tol, max_iter=max_iter)
    hess = opt.hess if gradient == "analytic" and opt.hess is not None else exact.value_grad_hess(opt.params)[2]
    cov_model = inference.covariance(hess)
    if n_classes is not None and l2 is None:
        opt = _check_separation(sd, fam, analytic, opt, cov_model, n_classes, memory_limit)
    return _finish(
        sd, fam, opt, cov_model, lambda: analytic.score_outer(opt.params), analytic,
        method, gradient, tol, n_weight, l2, cov, extras=extras or Extras(), null_data=_null_data(sd, fam),
    )


def _suspect_rows(fam: Family, params: np.ndarray, X, y, w) -> float:
    """1.0 when some row of the chunk shows :func:`mlefit.checks.suspect_separation`'s symptom."""
    from . import checks
    from .fit import _class_eta

    eta = _class_eta(fam, params, X)
    # A class log-probability is at least -(spread + log K), so only rows whose linear predictors
    # spread wider than this can fall below the threshold: the exact test runs on those alone.
    wide = eta.max(axis=1) - eta.min(axis=1) > -checks.SUSPECT_LOG_PROB - math.log(eta.shape[1])
    if not wide.any():
        return 0.0
    return float(checks.suspect_separation(eta[wide], None if w is None else w[wide]))


def _suspect(objective: ChunkedObjective, sd: Streamed, fam: Family, params: np.ndarray) -> bool:
    """The separation screen at ``params``: from the optimiser's last pass when it was there (the
    families report the smallest class log-probability with the Hessian), else one more pass."""
    from . import checks

    low = objective.min_log_prob(params)
    if low is not None:
        return low < checks.SUSPECT_LOG_PROB
    return bool(sd.cache.map_sum(partial(_suspect_rows, fam, params)))


def _check_separation(
    sd: Streamed, fam: Family, objective: ChunkedObjective, opt, cov_model, n_classes: int, memory_limit: int | None,
):
    """The in-memory fit's separation check (:func:`mlefit.checks.check_separation`, exit 4) on the
    rows read back from the cache, when the fit shows the symptoms: no convergence, a singular
    Hessian, or a class probability below ``exp(-20)`` in some row (:func:`_suspect`). The linear
    programmes need every row in memory: when those are larger than ``memory_limit``, the check is
    not run and the result's message says so.
    """
    from dataclasses import replace

    from . import checks

    if not opt.converged:
        symptom = "it did not converge"
    elif cov_model is None:
        symptom = "its Hessian is singular"
    elif _suspect(objective, sd, fam, opt.params):
        symptom = "a class probability is below exp(-20)"
    else:
        return opt
    need = sd.n_obs * (sd.cache.n_features + 2) * 8
    limit = default_memory_limit() if memory_limit is None else memory_limit
    if limit > 0 and need > limit:
        return replace(opt, message=(
            f"{opt.message}; the fit shows a symptom of separation ({symptom}), but the exact check "
            f"needs all {sd.n_obs:,} rows in memory ({_megabytes(need)}, more than the memory limit of "
            f"{_megabytes(limit)}), so it was not run (use --l2, or a larger --memory-limit)"
        ))
    X, y, w = sd.cache.all_rows()
    checks.check_separation(
        X, y.astype(np.intp), n_classes, sd.feature_names, [label_text(v) for v in sd.levels], w,
        intercept=sd.intercept,
    )
    return opt


def _megabytes(n: int) -> str:
    mb = n / 2**20
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.2g} MB"


def _normal_equations_start(sd: Streamed, p: int) -> np.ndarray:
    """Gaussian: least squares from ``X'WX`` and ``X'Wy`` summed over the cache, sigma from the RSS."""
    import scipy.linalg

    sums = sd.cache.map_sum(_normal_equations)
    G, b = sums[: p * p].reshape(p, p), sums[p * p:]
    coef = scipy.linalg.cho_solve(scipy.linalg.cho_factor(G), b)
    rss = sd.cache.map_sum(partial(_rss, coef))
    sigma2 = rss / sd.total_weight
    if not sigma2 > 0:
        raise DataError(
            "every residual is zero (an exact fit), which is not supported when streaming.",
            "Fit it in memory without --stream.",
        )
    return np.append(coef, 0.5 * math.log(sigma2))


#: The warm start's subsample has at most this many rows, so its memory does not grow with the file.
WARM_START_MAX_ROWS = 1 << 17


def _warm_start(cache: Cache, fam: Family, x0: np.ndarray) -> np.ndarray:
    """The in-memory fit's warm start (:func:`mlefit.fit.warm_start`) from runs of rows of the cache.

    Newton on runs of ``WARM_START_RUN`` rows spread evenly over the file, 1 in
    ``WARM_START_STRIDE`` of them but at most :data:`WARM_START_MAX_ROWS` rows, held out against
    as many other runs. Its optimum is a few (at 16M rows about a dozen) standard errors of the
    full fit from the full one, well inside Newton's quadratic region, so the full fit takes about
    3 passes over the cache instead of 5-7. (The subsample's Hessian, which the in-memory fit
    passes on to its first step, is not used here yet.)
    """
    from .fit import WARM_START_ROWS_PER_PARAM, WARM_START_RUN, WARM_START_STRIDE, wants_warm_start, warm_start
    from .objective import DataObjective

    n = cache.n_obs
    if not wants_warm_start(n, x0.size):
        return x0
    n_runs = -(-n // WARM_START_RUN)
    k = min(n_runs // WARM_START_STRIDE, WARM_START_MAX_ROWS // WARM_START_RUN)
    if k * WARM_START_RUN < WARM_START_ROWS_PER_PARAM * x0.size:
        return x0
    spacing = n_runs / k

    def subsample(which: int) -> DataObjective:
        starts = np.floor((np.arange(k) + 0.5 * which) * spacing).astype(np.int64) * WARM_START_RUN
        return DataObjective(fam, *cache.runs(starts, WARM_START_RUN))

    return warm_start(subsample, x0)[0]
