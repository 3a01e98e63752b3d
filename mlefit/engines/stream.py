"""The streamed engine: CSVs larger than memory, read once into a binary cache and summed chunk by chunk.

The NLL, its gradient and its Hessian are sums over rows (``Family.evaluate`` returns
:class:`~mlefit.families.base.BlockSums`), so a fit never needs all rows at once:

1. A CSV whose features (weights, offset and exposure) are all complete numbers is read once:
   pandas' C parser types every chunk's features float64, and the chunk goes straight to a binary
   cache (``cache_dir``; by default a temporary folder removed afterwards) as the float64 design,
   the target's codes, the weights and the offset. Classification targets are cached as codes into
   each chunk's own labels and mapped to the final codes once all labels are known.
2. Any other file (text features, missing values, a bad value anywhere) takes two passes: the first
   finds everything that depends on all rows (the target's levels, the levels of text features,
   missing values, bad labels and other input errors, reported with the in-memory message, naming
   the data row); the second encodes every chunk the same way and writes the cache. Standard
   input is first copied to the cache folder, so it too can be read twice.
3. :class:`Cache` is the engine's :class:`~mlefit.engines.base.Rows`: it reads the cache chunk by
   chunk (memory-mapped) and adds a function's sums over each chunk's cache-sized blocks; a pass
   over the target alone (the intercept-only model) reads neither the design nor its pages.

What the in-memory fit does with all rows at hand is a sum here too: the rank check accumulates the
Gram matrix, the robust covariance adds ``Family.score_outer`` over chunks, a family's closed form
comes from sums (``Family.start_from_sums``). The exact separation check reads the rows back when
they fit within the memory limit (:meth:`Cache.gather`).

Parquet files and folders (:mod:`mlefit.readers.parquet`) are read by record batches into the same
cache: in one pass when the columns used are numbers or booleans and have no nulls, else in two.
A formula (``--formula``) takes two passes: its design is learned in the first
(:mod:`mlefit.readers.formula`) and every chunk is encoded with it in the second.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import csvformat, progress
from ..errors import DataError, UsageError
from ..families.base import Family
from .base import Source, add_up, spread_runs
from .memory import WARM_START_RUN, MemoryRows

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


def should_stream(data: Any, memory_limit: int | None, size: int | None = None) -> bool:
    """True when ``data`` is a CSV path larger than ``memory_limit`` bytes (default: a fraction of
    memory); ``size``: the data's size in bytes when it is not the file's (a Parquet table's
    uncompressed size)."""
    if not isinstance(data, (str, Path)) or str(data) == "-":
        return False
    limit = default_memory_limit() if memory_limit is None else memory_limit
    try:
        return limit > 0 and (Path(data).stat().st_size if size is None else size) > limit
    except OSError:
        return False


# -- the cache ------------------------------------------------------------------------------------

#: The warm start's subsample has at most this many rows, so its memory does not grow with the file.
SUBSAMPLE_MAX_ROWS = 1 << 17
#: A Hessian approximation's subsample (:meth:`Cache.spread`) has at most SUBSAMPLE_MAX_ROWS rows
#: and SPREAD_MAX_BYTES of design.
SPREAD_MAX_BYTES = 1 << 28
#: Runs of rows in the subsample: one in this many.
SUBSAMPLE_STRIDE = 16


@dataclass
class Cache:
    """The parsed rows on disk: ``X.bin`` (float64, row-major), ``y.bin``, optional ``w.bin``
    (weights) and ``o.bin`` (offset). The streamed engine's :class:`~mlefit.engines.base.Rows`."""

    folder: Path
    n_obs: int
    n_features: int
    y_dtype: np.dtype
    weighted: bool
    chunk_rows: int
    has_offset: bool = False
    #: Design column j is multiplied by ``scale[j]`` as it is read (see :meth:`scaled`).
    scale: np.ndarray | None = None

    def read(self, start: int, stop: int, design: bool = True):
        """``(X, y, w, o)`` of rows ``start:stop`` (``X`` None unless ``design``)."""
        p = self.n_features
        m = stop - start
        X = None
        if design:
            # Mapped rather than copied: the pages come straight from the page cache (a pass over a
            # 4M-row cache in 0.05 s instead of 0.11 s), and are unmapped when the chunk is dropped.
            if m > 0 and p > 0:
                X = np.memmap(self.folder / "X.bin", dtype=np.float64, mode="r", offset=8 * start * p, shape=(m, p))
            else:
                X = np.empty((m, p))
            if self.scale is not None:
                X = X * self.scale
        y = np.fromfile(self.folder / "y.bin", dtype=self.y_dtype, count=m, offset=self.y_dtype.itemsize * start)
        w = np.fromfile(self.folder / "w.bin", dtype=np.float64, count=m, offset=8 * start) if self.weighted else None
        o = np.fromfile(self.folder / "o.bin", dtype=np.float64, count=m, offset=8 * start) if self.has_offset else None
        return X, y, w, o

    def runs(self, starts: np.ndarray, length: int) -> MemoryRows:
        """The runs of ``length`` rows from each of ``starts`` (increasing), concatenated in memory."""
        p, n = self.n_features, self.n_obs
        stops = np.minimum(np.asarray(starts) + length, n)
        m = int(np.sum(stops - starts))
        X = np.empty((m, p))
        y = np.empty(m, dtype=self.y_dtype)
        w = np.empty(m) if self.weighted else None
        o = np.empty(m) if self.has_offset else None
        files = [(X, p, "X.bin"), (y, 1, "y.bin")] + ([(w, 1, "w.bin")] if w is not None else [])
        files += [(o, 1, "o.bin")] if o is not None else []
        for out, width, name in files:
            flat = out.reshape(-1)
            at = 0
            with open(self.folder / name, "rb") as fh:
                for start, stop in zip(starts, stops):
                    k = int(stop - start) * width
                    fh.seek(int(start) * width * out.itemsize)
                    fh.readinto(memoryview(flat[at : at + k]).cast("B"))
                    at += k
        if self.scale is not None:
            X *= self.scale
        return MemoryRows(np.asfortranarray(X), y, w, o)

    def scaled(self, scale: np.ndarray) -> "Cache":
        """The same cache, design column j multiplied by ``scale[j]`` as it is read."""
        from dataclasses import replace

        return replace(self, scale=scale if self.scale is None else self.scale * scale)

    def chunks(self, design: bool = True):
        for start in range(0, self.n_obs, self.chunk_rows):
            yield self.read(start, min(start + self.chunk_rows, self.n_obs), design)

    def map_sum(self, fn, *, design: bool = True, n_params: int | None = None, hessian: bool = True):
        """``fn(X, y, w, o)`` summed over the chunks' cache-sized blocks, chunk after chunk (one
        pass over the cache), BLAS on one thread (see :func:`mlefit.parallel.one_blas_thread`)."""
        from ..parallel import one_blas_thread

        with one_blas_thread():
            return add_up(
                MemoryRows(X, y, w, o).map_sum(fn, design=design, n_params=n_params, hessian=hessian)
                for X, y, w, o in self.chunks(design)
            )

    def arrays(self) -> None:
        return None

    def target_chunks(self):
        for _, y, w, _ in self.chunks(design=False):
            yield y, w

    def subsample(self, which: int) -> MemoryRows | None:
        """Runs of ``WARM_START_RUN`` rows spread evenly over the file, 1 in
        :data:`SUBSAMPLE_STRIDE` of them but at most :data:`SUBSAMPLE_MAX_ROWS` rows (``which`` = 1:
        the runs half a spacing on), or None when the file is too small to subsample. Read once
        (the start and the warm start share them)."""
        memo = self.__dict__.setdefault("_subsamples", {})
        if which not in memo:
            memo[which] = self._subsample(which)
        return memo[which]

    def _subsample(self, which: int) -> MemoryRows | None:
        n_runs = -(-self.n_obs // WARM_START_RUN)
        k = min(n_runs // SUBSAMPLE_STRIDE, SUBSAMPLE_MAX_ROWS // WARM_START_RUN)
        if k < 1:
            return None
        spacing = n_runs / k
        starts = np.floor((np.arange(k) + 0.5 * which) * spacing).astype(np.int64) * WARM_START_RUN
        return self.runs(starts, WARM_START_RUN)

    def spread(self, n_rows: int) -> MemoryRows:
        """About ``n_rows`` rows in evenly spaced runs (:func:`mlefit.engines.base.spread_runs`),
        at most :data:`SUBSAMPLE_MAX_ROWS` and :data:`SPREAD_MAX_BYTES` of them, read from the cache."""
        n_rows = min(n_rows, SUBSAMPLE_MAX_ROWS, max(1, SPREAD_MAX_BYTES // (8 * (self.n_features + 3))))
        return self.runs(*spread_runs(self.n_obs, n_rows))

    def sample(self) -> MemoryRows:
        """The subsample, or every row when the file is small."""
        found = self.subsample(0) if self.n_obs > SUBSAMPLE_MAX_ROWS else None
        return found if found is not None else self.runs(np.array([0]), self.n_obs)

    def gather(self, limit: int | None) -> MemoryRows | None:
        """Every row in memory, or None when that needs more than ``limit`` bytes."""
        need = self.n_obs * (self.n_features + 3) * 8
        limit = default_memory_limit() if limit is None else limit
        if limit > 0 and need > limit:
            return None
        return self.runs(np.array([0]), self.n_obs)

    def check_rank(self, names, intercept: bool) -> None:
        from .. import checks

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
        X, _, w, _ = self.cache.read(start, stop, design=self.what == "X")
        out = X if self.what == "X" else np.sqrt(w) if self.what == "sqrtw" else w
        return out[(slice(None), *rest)] if rest else out

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # check_rank takes np.sqrt of the weights: the square roots, sliced on demand as well
        if ufunc is np.sqrt and method == "__call__" and self.what == "w" and len(inputs) == 1:
            return CachedRows(self.cache, "sqrtw")
        return NotImplemented


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


def _load_numeric(
    path: Path, fam: Family, target, features, intercept, roles, chunk_rows, folder, sep=",", names=None
) -> Source | None:
    """One pass over a CSV whose feature (weight, offset and exposure) columns are all complete
    numbers: every chunk parsed once, typed float64 (by pyarrow when it reads the file plainly,
    :func:`_load_numeric_arrow`, else by pandas' C parser), and written straight to the cache.

    The target's levels are only known at the end, so a classification target is cached as each
    chunk's codes into its own distinct values, then mapped to the final codes (in place, and
    only for the chunks where the two differ: usually none). Returns None when the file is not
    that clean case (text, a missing value, a negative weight, a target the family refuses, targets
    typed differently from chunk to chunk, ...): the two-pass reader then reports exactly what is
    wrong, naming the row.
    """
    if names is not None:
        found = _load_numeric_arrow(path, fam, target, features, intercept, roles, chunk_rows, folder, sep, names)
        if found is not None:
            return found
    import pandas as pd

    from .. import data

    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0, sep=sep).columns]
        target, wanted, used = header_columns(columns, target, features, intercept, roles)
    except (DataError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    floats = [c for c in used if c != target]

    def chunks():
        size = path.stat().st_size
        with open(path, "rb") as source, pd.read_csv(
            source, sep=sep, usecols=used, dtype={c: np.float64 for c in floats}, chunksize=chunk_rows, engine="c",
            float_precision=data.FLOAT_PRECISION,
        ) as reader:
            for chunk in reader:
                progress.read(source.tell(), size)
                yield frame_columns(chunk)

    return cache_numeric(chunks(), fam, target, wanted, intercept, roles, chunk_rows, folder)


def _load_numeric_arrow(path: Path, fam: Family, target, features, intercept, roles, chunk_rows, folder, sep, names):
    """:func:`_load_numeric` with pyarrow's CSV reader (:mod:`mlefit.readers.csvfast`) on blocks of
    whole lines of about ``chunk_rows`` rows, read one after another (the memory stays that of a
    few blocks however long the file). None when pyarrow is not installed, the header's ``names``
    are not plain or a block is not plainly numeric: the caller then reads the file with pandas."""
    from ..readers import csvfast

    names = list(names)
    if not csvfast.plain_names(names) or not csvfast.available():
        return None
    try:
        target, wanted, used = header_columns(names, target, features, intercept, roles)
    except DataError:
        return None
    floats = [c for c in used if c != target]
    with open(path, "rb") as fh:
        start = len(fh.readline())
    size = path.stat().st_size

    def chunks():
        for done, text in csvfast.line_blocks(path, csvfast.block_bytes(path, chunk_rows, start), start):
            columns = csvfast.parse(text, names, floats, target, sep, threads=True)
            if columns is None:
                raise ValueError("not plainly numeric")
            progress.read(done, size)
            yield columns

    return cache_numeric(chunks(), fam, target, wanted, intercept, roles, chunk_rows, folder)


def frame_columns(frame) -> dict[str, np.ndarray]:
    """A DataFrame chunk as :func:`cache_numeric` reads chunks: each column's values by its name."""
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def cache_numeric(chunks, fam: Family, target, wanted, intercept, roles, chunk_rows, folder) -> Source | None:
    """The one-pass reader's work on chunks (``{column: values}`` of consecutive rows, whose
    features, weights, offset and exposure are numbers, whatever the file's format; from pyarrow's
    parser as it gives them, from a DataFrame by :func:`frame_columns`): each chunk checked and
    written straight to the cache, without pandas for a numeric target (its import took 0.3 s of
    a 2 s streamed fit). None when a chunk is not the clean numeric case (see
    :func:`_load_numeric`); the parser's own errors raised by ``chunks`` (ValueError, pandas'
    ParserError, ...) mean the same."""
    from .. import data
    from ..errors import FamilyError

    weights, offset, exposure = roles.get("weights"), roles.get("offset"), roles.get("exposure")
    event = roles.get("event")
    shifted = offset is not None or exposure is not None
    classes = fam.classes
    y_dtype = np.dtype(fam.target_dtype)
    first = 1 if intercept else 0
    p = first + len(wanted)
    pieces = []  # classification: (rows, distinct values) per chunk
    kinds = set()
    n_obs = 0
    n_distinct = 0
    total_weight = 0.0
    try:
        with open(folder / "X.bin", "wb") as fx, open(folder / "y.bin", "wb") as fy, \
                (open(folder / "w.bin", "wb") if weights else open(os.devnull, "wb")) as fw, \
                (open(folder / "o.bin", "wb") if shifted else open(os.devnull, "wb")) as fo:
            for chunk in chunks:
                values = chunk[target]
                m = len(values)
                X = np.empty((m, p))
                if intercept:
                    X[:, 0] = 1.0
                for j, name in enumerate(wanted):
                    X[:, first + j] = chunk[name]
                if not np.all(np.isfinite(X)):
                    return None
                w = None
                if weights:
                    w = np.asarray(chunk[weights], dtype=np.float64)
                    if not np.all(np.isfinite(w) & (w >= 0)):
                        return None
                    total_weight += float(w.sum())
                o = None
                if shifted:
                    o = np.zeros(m)
                    if offset:
                        o += np.asarray(chunk[offset], dtype=np.float64)
                    if exposure:
                        e = np.asarray(chunk[exposure], dtype=np.float64)
                        if not np.all(e > 0):
                            return None
                        o += np.log(e)
                    if not np.all(np.isfinite(o)):
                        return None
                kinds.add(data.value_kind(values))
                if len(kinds) > 1 or _any_missing(values):
                    return None
                if classes:
                    uniq, y = _class_codes(values)
                    n_distinct += len(uniq)
                    if n_distinct > 4 * data.MAX_LEVELS:
                        return None  # a continuous target: the general path says what is wrong
                    pieces.append((m, uniq))
                else:
                    if values.dtype.kind not in "iuf":
                        return None
                    ev = None
                    if event:
                        ev = np.asarray(chunk[event], dtype=np.float64)
                        if not np.all((ev == 0) | (ev == 1)):
                            return None
                        ev = ev == 1
                    y = fam.encode(values, target, event=ev).y
                X.tofile(fx)
                y.astype(y_dtype).tofile(fy)
                if w is not None:
                    w.tofile(fw)
                if o is not None:
                    o.tofile(fo)
                n_obs += m
    except (ValueError, TypeError, FamilyError, UnicodeDecodeError):  # pandas' ParserError is a ValueError
        return None  # a feature that is not a number, unsortable labels, a malformed file
    finally:
        getattr(chunks, "close", lambda: None)()
    if n_obs == 0:
        return None
    encoded = None
    if classes:
        uniq = np.unique(np.concatenate([u for _, u in pieces]))
        encoded = fam.encode_target(uniq, target)
        codes = encoded.y.astype(y_dtype)
        start = 0
        with open(folder / "y.bin", "r+b") as fy:
            for m, u in pieces:
                mapping = codes[np.searchsorted(uniq, u)]
                if not np.array_equal(mapping, np.arange(len(u))):
                    fy.seek(start * y_dtype.itemsize)
                    local = np.fromfile(fy, dtype=y_dtype, count=m).astype(np.intp)
                    fy.seek(start * y_dtype.itemsize)
                    mapping[local].tofile(fy)
                start += m
    if weights and not total_weight > 0:
        raise DataError(f"weights column '{weights}' is zero in every row.")
    names = ((data.INTERCEPT,) if intercept else ()) + tuple(wanted)
    design = {
        "kind": "columns", "intercept": intercept,
        "columns": [{"column": c, "type": "numeric"} for c in wanted], "features": list(names),
    }
    cache = Cache(folder, n_obs, p, y_dtype, weights is not None, chunk_rows, shifted)
    return Source(
        cache, names, target, None if encoded is None else encoded.levels,
        None if encoded is None else encoded.note, intercept, weights, offset, exposure, 0, design,
    )


def _stdin_file(path: Path, nothing: str) -> Path:
    """Standard input copied to ``path`` (a streamed fit reads its data more than once); DataError
    saying ``nothing`` when it is empty."""
    with open(path, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    if path.stat().st_size == 0:
        raise DataError(f"standard input is empty: {nothing}.")
    return path


def _any_missing(values: np.ndarray) -> bool:
    """Whether a target chunk has a value pandas reads as missing (NaN; None and the like in text)."""
    if values.dtype.kind == "f":
        return bool(np.isnan(values).any())
    if values.dtype.kind == "O":
        import pandas as pd

        return bool(pd.isna(values).any())
    return False


# -- reading: two passes over the CSV -------------------------------------------------------------


@dataclass
class _Column:
    """What the first pass learns about one feature column."""

    numeric: bool = True
    texts: set = field(default_factory=set)
    n_values: int = 0
    n_numbers: int = 0
    first_word: tuple | None = None  # (row, value) of the first value that is not a number


def _chunks(path: Path, chunk_rows: int, sep: str = ",", what: str = "reading"):
    import pandas as pd

    from .. import data

    name = f"'{path}'"
    try:
        first, size = True, path.stat().st_size
        with open(path, "rb") as source, pd.read_csv(
            source, sep=sep, chunksize=chunk_rows, float_precision=data.FLOAT_PRECISION
        ) as reader:
            for chunk in reader:
                progress.read(source.tell(), size, what)
                first = False
                yield data.numbers_beyond_range(chunk.set_axis([str(c) for c in chunk.columns], axis=1))
        if first:
            raise DataError(f"{name} has a header but no data rows.")
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty: no header and no rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{name} is not a readable CSV file ({first_line}).") from None


def header_columns(columns: list[str], target, features, intercept, roles):
    """``(target, features, used columns)`` of a header, with the in-memory reader's checks."""
    from .. import data

    target, wanted = data.select_columns(columns, target, features, intercept, roles)
    extra = [c for c in roles.values() if c is not None]
    used = list(dict.fromkeys([target, *wanted, *extra]))
    return target, wanted, used


def summarise_chunk(chunk, offset: int, target: str, wanted: list[str], used: list[str]) -> dict:
    """What the first pass learns from one chunk whose first row is data row ``offset + 1``."""
    import pandas as pd

    from .. import data

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
        if data.is_numeric(series):
            info.n_values = info.n_numbers = len(series)
        else:
            info.numeric = False
            values = data.text_values(series)
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
    from .. import data

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


def _first_pass(chunks, target, features, intercept, roles, dropna):
    summaries = []
    offset = 0
    header = None
    for chunk in chunks:
        if header is None:
            target, wanted, used = header = header_columns(list(chunk.columns), target, features, intercept, roles)
        summaries.append(summarise_chunk(chunk, offset, target, wanted, used))
        offset += len(chunk)
    cols, target_values, n_dropped = combine_summaries(summaries, wanted, used, dropna)
    return target, wanted, cols, target_values, n_dropped


@dataclass(frozen=True)
class Encoding:
    """How every chunk is encoded: found by the first pass, the same for all chunks. ``encoder``
    and ``lhs``: a formula's design and left side (``mlefit.data.FormulaEncoder``), None otherwise."""

    fam: Family
    target: str
    used: list
    roles: dict
    dropna: bool
    design: dict
    uniq: Any  # the target's distinct raw values, sorted (families with classes)
    codes: Any  # their codes
    as_text: bool
    encoder: Any = None
    lhs: Any = None


def encode_chunk(chunk, offset: int, enc: Encoding):
    """``(X, y, w, o)`` of one chunk whose first row is data row ``offset + 1``; raises DataError
    naming the row."""
    from .. import data

    chunk = chunk.set_axis([str(c) for c in chunk.columns], axis=1)
    rows = np.arange(offset + 1, offset + len(chunk) + 1)
    if enc.dropna:
        mask = chunk[enc.used].isna().any(axis=1).to_numpy()
        if mask.any():
            chunk, rows = chunk.iloc[np.flatnonzero(~mask)], rows[~mask]
    weights = enc.roles.get("weights")
    w = data.check_weights(chunk[weights], weights, rows, all_zero=False) if weights else None
    o = data.offset_values(chunk, enc.roles.get("offset"), enc.roles.get("exposure"), rows)
    event = enc.roles.get("event")
    ev = data.event_values(chunk[event], event, rows) if event else None
    if enc.lhs is not None:  # a formula's transformed left side
        values = enc.lhs.matrix(chunk, rows)[:, 0] if len(chunk) else np.zeros(0)
        if not np.all(np.isfinite(values)):
            first = int(np.flatnonzero(~np.isfinite(values))[0])
            raise DataError(
                f"the target '{enc.target}' has a missing or infinite value after the transformation, in data row "
                f"{rows[first]}."
            )
    else:
        values = chunk[enc.target].to_numpy()
    if enc.as_text:
        values = values.astype(str).astype(object)
    if enc.codes is not None:
        y = enc.codes[np.searchsorted(enc.uniq, values)] if len(values) else enc.codes[:0]
    else:
        y = enc.fam.encode(values, enc.target, rows, event=ev).y if len(values) else np.zeros(0)
    if enc.encoder is not None:
        X = enc.encoder.matrix(chunk, rows) if len(chunk) else np.zeros((0, len(enc.design["features"])))
    else:
        X = data.build_columns(enc.design, chunk, rows)
    return np.ascontiguousarray(X), y, w, o


def target_codes(fam, target, target_values) -> tuple[Any, Any, bool, Any]:
    """``(uniq, codes, as_text, encoded)``: the target's distinct values over all chunks, their codes
    and labels (families with classes; None otherwise), and whether they are read as text."""
    uniq = np.concatenate(target_values)
    as_text = False  # numbers in some chunks and words in others: in memory, one text column
    try:
        uniq = np.unique(uniq)
    except TypeError:
        as_text = True
        uniq = np.unique(uniq.astype(str).astype(object))
    if not fam.classes:
        return None, None, as_text, None
    encoded = fam.encode_target(uniq, target)
    return uniq, encoded.y, as_text, encoded


def make_encoding(fam, target, wanted, cols, target_values, roles, dropna, intercept) -> tuple[Encoding, Any]:
    uniq, codes, as_text, encoded = target_codes(fam, target, target_values)
    design = _design(cols, wanted, intercept)
    extra = [c for c in roles.values() if c is not None]
    used = list(dict.fromkeys([target, *wanted, *extra]))
    return Encoding(fam, target, used, roles, dropna, design, uniq, codes, as_text), encoded


def _design(cols: dict, wanted: list[str], intercept: bool) -> dict:
    from .. import data

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


# -- formulas: the design learned from the first pass ---------------------------------------------


def formula_chunk_summary(chunk, offset: int, plan) -> tuple[dict, dict]:
    """The first pass's findings in one chunk of a formula fit: missing values and the target's
    values (:func:`summarise_chunk`), and what the formula's design is learned from
    (:func:`mlefit.readers.formula.summarise`)."""
    from ..readers import formula as formulas

    target = plan.target if plan.target_column else plan.variables[0]
    return summarise_chunk(chunk, offset, target, [], plan.used), formulas.summarise(plan, chunk)


def formula_encoding(fam, plan, summaries, columns, dropna) -> tuple[Encoding, Any, int, Any]:
    """``(encoding, encoded target, rows dropped, learned design)`` of a formula fit from the first
    pass's :func:`formula_chunk_summary` of every chunk, in order."""
    from ..readers import formula as formulas

    _, target_values, n_dropped = combine_summaries([s for s, _ in summaries], [], plan.used, dropna)
    learned = formulas.learn(plan, [f for _, f in summaries], columns)
    if plan.target_column:
        uniq, codes, as_text, encoded = target_codes(fam, plan.target, target_values)
    else:
        uniq = codes = encoded = None
        as_text = False
    enc = Encoding(
        fam, plan.target, plan.used, plan.roles, dropna, learned.design, uniq, codes, as_text, learned.encoder,
        learned.lhs,
    )
    return enc, encoded, n_dropped, learned


def exact_powers_note(fam: Family, learned) -> str | None:
    """The result's note when a formula's power columns would have been formed exactly in memory."""
    if not learned.powers or type(fam).closed_form is Family.closed_form:
        return None
    shown = ", ".join(f"'{c}'" for c in list(learned.powers)[:3])
    return (
        f"the power column(s) {shown} of the formula are rounded to float64 here; an in-memory fit forms them "
        "exactly (double-double), which an ill-conditioned polynomial needs for its last digits"
    )


def watches_powers(fam: Family, learned) -> bool:
    """Whether the rows must be read for :func:`exact_powers_note` (a family with a closed form that
    uses exact powers, and a formula with power columns)."""
    return exact_powers_note(fam, learned) is not None


# -- the readers of a streamed fit -----------------------------------------------------------------


class _CsvChunks:
    """A CSV file read in chunks of rows by pandas."""

    def __init__(self, path: Path, header, chunk_rows: int):
        self.path, self.header, self.chunk_rows = path, header, chunk_rows
        self.separator, self.separator_detected = header.sep, header.detected

    def names(self) -> list[str]:
        """pandas' names of the columns (a blank one numbered), from the first row's chunk."""
        for chunk in _chunks(self.path, 1, self.header.sep):
            return [str(c) for c in chunk.columns]
        raise DataError(f"'{self.path}' has a header but no data rows.")  # (_chunks says so first)

    def chunks(self, what: str, columns=None):
        return _chunks(self.path, self.chunk_rows, self.header.sep, what)

    def numeric(self, fam, target, features, intercept, roles, folder) -> Source | None:
        return _load_numeric(
            self.path, fam, target, features, intercept, roles, self.chunk_rows, folder, self.header.sep,
            self.header.names,
        )

    def columns(self, target, features, intercept, roles):
        """The target, the features and the columns to read: resolved from the first chunk's header."""
        return target, features, None


class _ParquetChunks:
    """A Parquet file or folder read in record batches (:class:`mlefit.readers.parquet.ParquetSource`)."""

    separator, separator_detected = None, False

    def __init__(self, table, chunk_rows: int):
        self.table, self.chunk_rows = table, chunk_rows

    def names(self) -> list[str]:
        return list(self.table.names)

    def chunks(self, what: str, columns=None):
        return self.table.frames(self.table.names if columns is None else columns, self.chunk_rows, what)

    def numeric(self, fam, target, features, intercept, roles, folder) -> Source | None:
        try:
            target, wanted, used = header_columns(self.table.names, target, features, intercept, roles)
        except DataError:
            return None
        if not self.table.numeric([c for c in used if c != target]):
            return None
        chunks = (frame_columns(frame) for frame in self.chunks("reading", used))
        return cache_numeric(chunks, fam, target, wanted, intercept, roles, self.chunk_rows, folder)

    def columns(self, target, features, intercept, roles):
        """The target, the features and the columns to read, resolved against every column (only
        those used are read)."""
        return header_columns(self.table.names, target, features, intercept, roles)


def _reader(source, folder: Path, chunk_rows: int, sep, input_format, parquet=None):
    from ..readers import is_parquet

    if parquet is not None:
        return _ParquetChunks(parquet, chunk_rows)
    if is_parquet(source, input_format):
        from ..readers.parquet import ParquetSource

        if str(source) == "-":
            table = ParquetSource(_stdin_file(folder / "stdin.parquet", "no Parquet data"))
            table.name = "standard input"
        else:
            table = ParquetSource(source)
        return _ParquetChunks(table, chunk_rows)
    if str(source) == "-":
        path = _stdin_file(folder / "stdin.csv", "no header and no rows")
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"file '{source}' not found.")
        if path.is_dir():
            raise DataError(f"'{source}' is a directory, not a CSV file.")
    header = csvformat.read_header(path, sep, csvformat.describe(source))
    return _CsvChunks(path, header, chunk_rows)


def _write_cache(chunks, enc: Encoding, folder: Path, watch: dict | None = None) -> tuple[int, float, bool]:
    """The second pass: every chunk encoded (:func:`encode_chunk`) and appended to the cache.
    Returns the rows written, their total weight, and (``watch``: a formula's power columns)
    whether an in-memory fit would have formed them exactly (:func:`mlefit.readers.formula.low_parts`)."""
    shifted = enc.roles.get("offset") is not None or enc.roles.get("exposure") is not None
    weights = enc.roles.get("weights")
    y_dtype = np.dtype(enc.fam.target_dtype)
    n_obs = start = 0
    total_weight = 0.0
    inexact = False
    with open(folder / "X.bin", "wb") as fx, open(folder / "y.bin", "wb") as fy, \
            (open(folder / "w.bin", "wb") if weights else open(os.devnull, "wb")) as fw, \
            (open(folder / "o.bin", "wb") if shifted else open(os.devnull, "wb")) as fo:
        for chunk in chunks:
            X, y, w, o = encode_chunk(chunk, start, enc)
            start += len(chunk)
            if watch and not inexact:
                from ..readers.formula import low_parts

                inexact = low_parts(watch, chunk)
            if not len(y):
                continue
            X.tofile(fx)
            y.astype(y_dtype).tofile(fy)
            if w is not None:
                w.tofile(fw)
                total_weight += float(w.sum())
            if o is not None:
                o.tofile(fo)
            n_obs += len(y)
    if weights and not total_weight > 0:
        raise DataError(f"weights column '{weights}' is zero in every row.")
    return n_obs, total_weight, inexact


def load_streamed(
    source: "str | Path", fam: Family, *, target=None, features=None, intercept=True, weights=None,
    offset=None, exposure=None, formula=None, dropna=False, chunk_rows: int | None = None, folder: Path,
    sep: str | None = None, event=None, input_format: str | None = None, parquet=None,
) -> Source:
    """The binary cache in ``folder``: one pass over a numeric file, else two (levels and validation,
    then the cache); a formula's design is learned in the first pass (:mod:`mlefit.readers.formula`).
    ``sep``: the CSV's separator (default: detected from the header, see :mod:`mlefit.csvformat`);
    ``input_format``: ``csv`` or ``parquet`` (default: from the name, see :func:`mlefit.readers.input_format`);
    ``parquet``: the :class:`mlefit.readers.parquet.ParquetSource` of ``source`` when it is already open."""
    chunk_rows = chunk_rows or DEFAULT_CHUNK_ROWS
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be 1 or more; got {chunk_rows}.")
    sep = csvformat.check_sep(sep)
    roles = {"weights": weights, "offset": offset, "exposure": exposure, "event": event}
    reader = _reader(source, folder, chunk_rows, sep, input_format, parquet)
    separator = dict(separator=reader.separator, separator_detected=reader.separator_detected)
    if formula is not None:
        return _load_formula(reader, fam, formula, target, features, intercept, roles, dropna, chunk_rows, folder, separator)
    found = reader.numeric(fam, target, features, intercept, roles, folder)
    if found is not None:
        return replace(found, **separator)
    target, features, used = reader.columns(target, features, intercept, roles)
    target, wanted, cols, target_values, n_dropped = _first_pass(
        reader.chunks("reading (pass 1 of 2)", used), target, features, intercept, roles, dropna
    )
    enc, encoded = make_encoding(fam, target, wanted, cols, target_values, roles, dropna, intercept)
    n_obs, _, _ = _write_cache(reader.chunks("reading (pass 2 of 2)", enc.used), enc, folder)
    design = enc.design
    cache = Cache(folder, n_obs, len(design["features"]), np.dtype(fam.target_dtype), weights is not None, chunk_rows,
                  offset is not None or exposure is not None)
    return Source(
        cache, tuple(design["features"]), target, None if encoded is None else encoded.levels,
        None if encoded is None else encoded.note, intercept, weights, offset, exposure, n_dropped, design,
        **separator,
    )


def _load_formula(reader, fam, formula, target, features, intercept, roles, dropna, chunk_rows, folder, separator) -> Source:
    """Two passes of a formula fit: the design learned from the first, the cache written by the second."""
    from ..readers.formula import plan_formula

    names = reader.names()
    plan = plan_formula(formula, names, fam, target=target, features=features, intercept=intercept, roles=roles)
    summaries = []
    offset = 0
    for chunk in reader.chunks("reading (pass 1 of 2)", plan.used):
        summaries.append(formula_chunk_summary(chunk, offset, plan))
        offset += len(chunk)
    enc, encoded, n_dropped, learned = formula_encoding(fam, plan, summaries, names, dropna)
    summaries = None
    watch = learned.powers if watches_powers(fam, learned) else None
    n_obs, _, inexact = _write_cache(reader.chunks("reading (pass 2 of 2)", plan.used), enc, folder, watch)
    cache = Cache(
        folder, n_obs, len(learned.features), np.dtype(fam.target_dtype), roles["weights"] is not None, chunk_rows,
        roles["offset"] is not None or roles["exposure"] is not None,
    )
    notes = (exact_powers_note(fam, learned),) if inexact else ()
    return Source(
        cache, learned.features, plan.target, None if encoded is None else encoded.levels,
        None if encoded is None else encoded.note, learned.intercept, roles["weights"], roles["offset"],
        roles["exposure"], n_dropped, learned.design, notes=notes, **separator,
    )


@contextmanager
def streamed_source(source, fam: Family, *, cache_dir=None, **options) -> Iterator[Source]:
    """The :class:`Source` of a streamed fit (see :func:`load_streamed` for ``options``), its
    cache in ``cache_dir`` or in a temporary folder removed afterwards."""
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="mlefit-cache-") as folder:
            yield load_streamed(source, fam, folder=Path(folder), **options)
        return
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    yield load_streamed(source, fam, folder=folder, **options)
