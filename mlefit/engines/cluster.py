"""``--engine dask``: the rows in a Dask cluster's memory, one partition per task.

dask.dataframe.read_csv splits the CSV into partitions of ``blocksize`` bytes on the workers
(``dask.dataframe.read_parquet`` a Parquet file or folder into its row groups); a CSV of numbers
only is split into the same byte ranges by ``dask.bytes.read_bytes`` and parsed by pyarrow, without
importing ``dask.dataframe`` and pandas (:func:`_load_numeric_arrow`). The
same per-chunk functions as the streamed engine (:mod:`mlefit.engines.stream`) run there: the first
pass summarises each partition (levels, missing values, bad values with their data row), the client
combines the summaries and fixes the encoding, every partition is encoded once and kept in the
workers' memory (``persist``), and :meth:`DaskParts.map_sum` maps a block function over the
partitions (each summed in cache-sized blocks, as in memory) and adds the results on the client,
where the optimiser runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import csvformat, progress
from ..errors import DataError, UsageError
from ..families.base import Family
from .base import Source, add_up
from .memory import MemoryRows

#: Bytes of CSV per partition when --chunk-rows is not given (185 MB of 21 numeric columns on 2
#: threads: 6 partitions read in 0.7 s with a peak of 0.65 GB, where 3 of 64 MB took 1.0-1.5 s and
#: 1.2 GB; each pass of the fit costs a few ms more per partition).
DEFAULT_BLOCKSIZE = 32 << 20


def _require_dask():
    """The ``distributed`` module; a usage error naming the extra when dask is not installed.
    ``dask.dataframe`` (0.7 s to import, with pandas) is imported only by the readers that use it
    (:func:`_dataframe`): a numeric CSV's partitions are read without it."""
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError:
        raise UsageError(
            "--engine dask needs the dask and distributed packages, which are not installed.",
            "Install them with: pip install 'mlefit[dask]'.",
        ) from None
    return distributed


def _dataframe():
    """``dask.dataframe``, for the readers of any CSV or Parquet data (see :func:`_require_dask`)."""
    import dask.dataframe as dd

    return dd


class DaskParts:
    """Encoded partitions ``(X, y, w, o)`` held on the workers; sums come back to the client.
    The Dask engine's :class:`~mlefit.engines.base.Rows`."""

    def __init__(
        self, client, parts: list, n_obs: int, n_features: int, weighted: bool, has_offset: bool,
        scale: np.ndarray | None = None,
    ):
        self.client, self.parts = client, parts
        self.n_obs, self.n_features, self.weighted, self.has_offset = n_obs, n_features, weighted, has_offset
        #: Design column j is multiplied by ``scale[j]`` on the workers (see :meth:`scaled`).
        self.scale = scale

    def scaled(self, scale: np.ndarray) -> "DaskParts":
        both = scale if self.scale is None else self.scale * scale
        return DaskParts(self.client, self.parts, self.n_obs, self.n_features, self.weighted, self.has_offset, both)

    def map_sum(self, fn, *, design: bool = True, n_params: int | None = None, hessian: bool = True):
        n = len(self.parts)
        futures = self.client.map(
            _apply, [fn] * n, self.parts, [design] * n, [n_params] * n, [self.scale] * n, [hessian] * n, pure=False
        )
        return add_up(self.client.gather(futures))

    def arrays(self) -> None:
        return None

    def target_chunks(self):
        """Each partition's ``(y, w)`` in row order, brought to the client one at a time."""
        for future in self.client.map(_targets, self.parts, pure=False):
            yield future.result()

    def subsample(self, which: int) -> MemoryRows | None:
        """A warm start's subsample (``mlefit.fit.warm_start``), as the in-memory engine's
        (:meth:`MemoryRows.subsample`) from each partition, brought to the client: a fit of a
        million rows then takes three Newton passes over the partitions instead of six. None when
        it would exceed :data:`SUBSAMPLE_BYTES` (the client fits it alone)."""
        from .memory import WARM_START_STRIDE

        if self.n_obs * self.n_features * 8 / WARM_START_STRIDE > SUBSAMPLE_BYTES:
            return None
        parts = self.client.gather(self.client.map(_subsample, self.parts, which=which, pure=False))
        X = np.concatenate([part[0] for part in parts])
        y = np.concatenate([part[1] for part in parts])
        w = np.concatenate([part[2] for part in parts]) if self.weighted else None
        o = np.concatenate([part[3] for part in parts]) if self.has_offset else None
        rows = MemoryRows(np.asfortranarray(X), y, w, o)
        return rows if self.scale is None else rows.scaled(self.scale)

    def spread(self, n_rows: int) -> None:
        return None

    def sample(self) -> MemoryRows:
        """The first :data:`SAMPLE_ROWS` rows of the first partition with rows, brought to the
        client once (a start is computed from them)."""
        if getattr(self, "_sample", None) is None:
            for part in self.parts:
                X, y, w, o = self.client.submit(_head, part, SAMPLE_ROWS, pure=False).result()
                if len(y):
                    self._sample = MemoryRows(np.asfortranarray(X), y, w, o)
                    break
            else:
                raise DataError("the data have no rows.")
        s = self._sample
        return s if self.scale is None else s.scaled(self.scale)

    def gather(self, limit: int | None) -> MemoryRows | None:
        """Every partition's rows, brought to the client (for the exact separation check), or None
        when they need more than ``limit`` bytes."""
        from .stream import default_memory_limit

        need = self.n_obs * (self.n_features + 3) * 8
        limit = default_memory_limit() if limit is None else limit
        if limit > 0 and need > limit:
            return None
        parts = [part for part in self.client.gather(self.parts) if len(part[1])]
        X = np.concatenate([part[0] for part in parts])
        y = np.concatenate([part[1] for part in parts])
        w = np.concatenate([part[2] for part in parts]) if self.weighted else None
        o = np.concatenate([part[3] for part in parts]) if self.has_offset else None
        if self.scale is not None:
            X = X * self.scale
        return MemoryRows(np.asfortranarray(X), y, w, o)

    def check_rank(self, names, intercept: bool) -> None:
        """The Gram matrix summed over the partitions; a rank defect names the first dependent column."""
        from .. import checks

        gram = self.map_sum(_weighted_gram)
        # checks.check_rank on the p x p Cholesky factor of the Gram matrix: R'R = X'WX, so the
        # columns of R have the same linear dependencies as those of the design.
        try:
            R = np.linalg.cholesky(gram).T
        except np.linalg.LinAlgError:
            import scipy.linalg

            R = scipy.linalg.sqrtm(gram).real
        checks.check_rank(R, names, intercept=intercept)


#: Rows of the sample a start is computed from (:meth:`DaskParts.sample`).
SAMPLE_ROWS = 1 << 16
#: The largest warm-start subsample brought to the client (:meth:`DaskParts.subsample`), in bytes of its design.
SUBSAMPLE_BYTES = 1 << 27


def _head(part, k: int):
    X, y, w, o = part
    return X[:k], y[:k], None if w is None else w[:k], None if o is None else o[:k]


def _apply(fn, part, design, n_params, scale=None, hessian=True):
    X, y, w, o = part
    if not len(y):
        return None
    if scale is not None and design:
        X = X * scale
    return MemoryRows(X, y, w, o).map_sum(fn, design=design, n_params=n_params, hessian=hessian)


def _subsample(part, which: int):
    rows = MemoryRows(*part).subsample(which)
    return rows.X, rows.y, rows.weights, rows.offset


def _targets(part):
    return part[1], part[2]


def _weighted_gram(X, y, w, o):
    Xw = X if w is None else X * w[:, None]
    return np.dot(Xw.T, X)


def _client(scheduler: str | None):
    distributed = _require_dask()
    if scheduler is None or scheduler == "local":
        # one worker in this process with a thread per usable core (numpy and the parsers release
        # the GIL), reached in memory (inproc://) and without the HTTP dashboard: no port is
        # opened, and it starts in milliseconds where two worker processes took 3-4 s to start and
        # 2-3 s to close (measured on two cores). Serialisation between processes is what a real
        # cluster (--scheduler tcp://HOST:PORT) adds.
        from .. import parallel

        cluster = distributed.LocalCluster(
            n_workers=1, threads_per_worker=parallel.n_threads(), processes=False, dashboard_address=None,
            silence_logs=40,
        )
        return distributed.Client(cluster), cluster
    if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise UsageError(f"--scheduler must be tcp://HOST:PORT or local; got '{scheduler}'.")
    try:
        return distributed.Client(scheduler, timeout="10s"), None
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({exc}).") from None


@contextmanager
def dask_source(
    path, fam: Family, *, scheduler=None, client=None, target=None, features=None, intercept=True,
    weights=None, offset=None, exposure=None, formula=None, dropna=False, chunk_rows=None, blocksize=None,
    sep=None, event=None, input_format=None,
) -> Iterator[Source]:
    """The :class:`Source` of a CSV, or of a Parquet file or folder (``input_format``, default from
    the name, see :func:`mlefit.readers.input_format`), read on a Dask cluster (``scheduler``:
    ``tcp://HOST:PORT`` or ``local``), or with ``client``; a cluster started here is closed
    afterwards. ``sep``: the CSV's separator (default: detected from the header, see
    :mod:`mlefit.csvformat`). A formula's design is learned from a first pass over the partitions
    (:mod:`mlefit.readers.formula`)."""
    from ..readers import is_parquet

    _require_dask()
    table = header = None
    if is_parquet(path, input_format):
        from ..readers.parquet import ParquetSource

        table = ParquetSource(path)
        path = Path(path)
    else:
        path = Path(path)
        header = csvformat.read_header(path, csvformat.check_sep(sep))
    cluster = None
    own = client is None
    if own:
        client, cluster = _client(scheduler)
    try:
        yield load_dask(
            client, path, fam, target=target, features=features, intercept=intercept,
            roles={"weights": weights, "offset": offset, "exposure": exposure, "event": event}, dropna=dropna,
            blocksize=blocksize or (None if table is not None else _blocksize(path, chunk_rows)), header=header,
            formula=formula, table=table, chunk_rows=chunk_rows,
        )
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


def _blocksize(path: Path, chunk_rows: int | None) -> int:
    """Partition size in bytes: about ``chunk_rows`` rows (from the first lines' length)."""
    if chunk_rows is None:
        return DEFAULT_BLOCKSIZE
    with open(path, "rb") as f:
        f.readline()
        head = f.read(1 << 16)
    lines = max(head.count(b"\n"), 1)
    return max(1024, int(chunk_rows * len(head) / lines))


def load_dask(
    client, path, fam, *, target, features, intercept, roles, dropna, blocksize, header=None, formula=None,
    table=None, chunk_rows=None,
) -> Source:
    """The encoded partitions of a CSV (``header``) or of a Parquet file or folder (``table``, a
    :class:`mlefit.readers.parquet.ParquetSource`) on the cluster."""
    if table is None:
        return _load(client, path, fam, target, features, intercept, roles, dropna, blocksize, header, formula)
    from ..readers.parquet import arrow_errors, unreadable

    try:
        return _load(client, path, fam, target, features, intercept, roles, dropna, blocksize, header, formula,
                     table, chunk_rows)
    except arrow_errors() as exc:
        if isinstance(exc, DataError):
            raise
        raise unreadable(table.name, exc) from None


def _load(client, path, fam, target, features, intercept, roles, dropna, blocksize, header, formula,
          table=None, chunk_rows=None) -> Source:
    from dask import delayed

    from . import stream

    if formula is None:
        if table is None:
            header = header or csvformat.read_header(path)
            found, read = _load_numeric_arrow(client, path, fam, target, features, intercept, roles, blocksize, header)
            if not read:
                found = _load_numeric(client, path, fam, target, features, intercept, roles, blocksize, header)
        else:
            found = _load_numeric_parquet(client, table, fam, target, features, intercept, roles, chunk_rows)
        if found is not None:
            return found
    dd = _dataframe()
    import pandas as pd

    plan = None
    if table is not None:
        columns = list(table.names)
        if formula is not None:
            from ..readers.formula import plan_formula

            plan = plan_formula(formula, columns, fam, target=target, features=features, intercept=intercept, roles=roles)
            used = plan.used
        else:
            target, wanted, used = stream.header_columns(columns, target, features, intercept, roles)
        ddf = table.dask_frame(dd, used, chunk_rows)
        from ..readers.parquet import from_dask_partition

        parts = [delayed(from_dask_partition)(p) for p in ddf.to_delayed()]
    else:
        try:
            ddf = dd.read_csv(str(path), blocksize=blocksize, dtype=object, sep=header.sep)
        except (pd.errors.EmptyDataError, ValueError) as exc:
            raise DataError(f"'{path}' is not a readable CSV file ({str(exc).splitlines()[0]}).") from None
        columns = [str(c) for c in ddf.columns]
        if formula is not None:
            from ..readers.formula import plan_formula

            plan = plan_formula(formula, columns, fam, target=target, features=features, intercept=intercept, roles=roles)
        else:
            target, wanted, used = stream.header_columns(columns, target, features, intercept, roles)
        # dtype=object: every partition as text, parsed the way pandas parses a whole file
        parts = [delayed(_parse)(p) for p in ddf.to_delayed()]
    parts = client.persist(parts)
    lengths = _gather_reporting(
        client, client.compute([delayed(len)(p) for p in parts]), path if table is None else table.n_bytes
    )
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    notes = ()
    if plan is not None:
        summaries = client.gather(client.compute([
            delayed(stream.formula_chunk_summary)(p, o, plan) for p, o in zip(parts, offsets)
        ]))
        enc, encoded, n_dropped, learned = stream.formula_encoding(fam, plan, summaries, columns, dropna)
        del summaries
        if stream.watches_powers(fam, learned):
            from ..readers.formula import low_parts

            if any(client.gather(client.compute([delayed(low_parts)(learned.powers, p) for p in parts]))):
                notes = (stream.exact_powers_note(fam, learned),)
        target, intercept = plan.target, learned.intercept
    else:
        summaries = client.gather(client.compute([
            delayed(stream.summarise_chunk)(p, o, target, wanted, used) for p, o in zip(parts, offsets)
        ]))
        cols, target_values, n_dropped = stream.combine_summaries(summaries, wanted, used, dropna)
        enc, encoded = stream.make_encoding(fam, target, wanted, cols, target_values, roles, dropna, intercept)
    encoded_parts = client.persist([
        delayed(_column_major)(delayed(stream.encode_chunk)(p, o, enc)) for p, o in zip(parts, offsets)
    ])
    del parts
    futures = client.compute(encoded_parts)
    sizes = client.gather(client.map(_size, futures))
    n_obs = int(sum(n for n, _ in sizes))
    weights = roles.get("weights")
    if weights and not sum(w for _, w in sizes) > 0:
        raise DataError(f"weights column '{weights}' is zero in every row.")
    p = len(enc.design["features"])
    shifted = roles.get("offset") is not None or roles.get("exposure") is not None
    source = DaskParts(client, futures, n_obs, p, weights is not None, shifted)
    separator = (header.sep, header.detected) if header is not None else (None, False)
    return Source(
        source, tuple(enc.design["features"]), target, None if encoded is None else encoded.levels,
        None if encoded is None else encoded.note, intercept, weights, roles.get("offset"),
        roles.get("exposure"), n_dropped, enc.design, *separator, notes,
    )


def _load_numeric_arrow(
    client, path, fam, target, features, intercept, roles, blocksize, header,
) -> tuple[Source | None, bool]:
    """:func:`_load_numeric` without pandas or ``dask.dataframe``: the same partitions (the byte
    ranges of ``dask.bytes.read_bytes`` at line ends, which ``dd.read_csv`` splits by), each parsed
    by pyarrow on its worker straight into the partition's arrays (:class:`_ArrowPart`).

    Returns ``(source, read)``. Without reading the file (``(None, False)``: :func:`_load_numeric`
    may read it) when pyarrow is not installed, the header's names are not plain
    (:func:`csvfast.header_names`), or the first 64 KiB of rows are not the plain numeric case.
    After reading it, ``(None, True)`` when a partition was not (the general reader then says
    what is wrong, naming the row, with the same values wherever both read the file)."""
    from dask import delayed
    from dask.bytes import read_bytes

    from ..readers import csvfast
    from . import stream

    sep = header.sep
    if not (isinstance(sep, str) and len(sep) == 1 and csvfast.available()):
        return None, False
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    names = csvfast.header_names(head, sep)
    if names is None:
        return None, False
    try:
        target, wanted, used = stream.header_columns(names, target, features, intercept, roles)
    except DataError:
        return None, False
    task = _ArrowPart(_NumericPart(fam, target, wanted, intercept, roles), names, used, sep)
    if task(head[: head.rfind(b"\n") + 1], True) is None:
        return None, False
    _, blocks = read_bytes(str(path), delimiter=b"\n", blocksize=blocksize, sample=False)
    parts = client.compute([delayed(task)(block, i == 0) for i, block in enumerate(blocks[0])])
    return _numeric_source(client, parts, path, fam, target, wanted, intercept, roles, sep, header.detected), True


def _load_numeric(client, path, fam, target, features, intercept, roles, blocksize, header) -> Source | None:
    """One pass for a CSV whose columns are all complete numbers: every partition parsed once with
    float64 columns (``dd.read_csv``'s partitions, parsed by :func:`read_block`), encoded on its worker into a column-major
    design (the streamed engine's one-pass reader, :func:`mlefit.engines.stream._load_numeric`, on
    the workers); a family with classes learns its labels from every partition's distinct values,
    then the workers map their codes. Returns None for anything else (text, a missing value, a bad
    weight, a target the family refuses, ...): the general path then reports exactly what is
    wrong, naming the row."""
    from .. import data
    from . import stream

    import pandas as pd

    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0, sep=header.sep).columns]
        target, wanted, used = stream.header_columns(columns, target, features, intercept, roles)
        # class labels as text (each partition reads them as numbers when they all are)
        dtype = {c: (object if c == target and fam.classes else np.float64) for c in used}
        # dd.read_csv's partitions, each parsed by pyarrow when it reads them plainly (read_block)
        from dask.dataframe.io.csv import read_pandas  # imports dask.dataframe

        ddf = read_pandas(
            read_block, str(path), blocksize=blocksize, sep=header.sep, usecols=used, dtype=dtype,
            float_precision=data.FLOAT_PRECISION,
        )
    except (DataError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    task = _NumericPart(fam, target, wanted, intercept, roles)
    parts = client.compute([_delayed(task, part) for part in ddf.to_delayed()])
    return _numeric_source(client, parts, path, fam, target, wanted, intercept, roles, header.sep, header.detected)


def _load_numeric_parquet(client, table, fam, target, features, intercept, roles, chunk_rows) -> Source | None:
    """:func:`_load_numeric` for a Parquet file or folder whose used columns are numbers and booleans:
    each partition read by ``dask.dataframe.read_parquet`` and encoded on its worker."""
    from dask import delayed

    from ..readers.parquet import from_dask_partition
    from . import stream

    try:
        target, wanted, used = stream.header_columns(table.names, target, features, intercept, roles)
    except DataError:
        return None
    if not table.numeric([c for c in used if c != target]):
        return None
    ddf = table.dask_frame(_dataframe(), used, chunk_rows)
    task = _NumericPart(fam, target, wanted, intercept, roles)
    parts = client.compute([delayed(task)(delayed(from_dask_partition)(part)) for part in ddf.to_delayed()])
    return _numeric_source(client, parts, table.n_bytes, fam, target, wanted, intercept, roles, None, False)


def _numeric_source(client, parts, path, fam, target, wanted, intercept, roles, sep, detected) -> Source | None:
    try:
        summaries = _gather_reporting(client, client.map(_summary, parts), path)
    except (ValueError, TypeError, UnicodeDecodeError):  # pandas' ParserError is a ValueError
        return None  # a value that is not a number
    if any(summary is None for summary in summaries):
        return None
    if len({kind for _, _, _, kind in summaries if kind is not None}) > 1:
        return None  # labels that are numbers in some partitions and text in others: one text column in memory
    encoded = None
    if fam.classes:
        uniq = np.unique(np.concatenate([u for _, _, u, _ in summaries]))
        if uniq.dtype.kind == "f" and np.all(uniq == np.floor(uniq)):
            uniq = uniq.astype(np.int64)  # labels written as whole numbers are integers, as in memory
        encoded = fam.encode_target(uniq, target)
        parts = client.map(_recode, parts, uniq=uniq, codes=encoded.y.astype(np.dtype(fam.target_dtype)))
    n_obs = int(sum(n for n, _, _, _ in summaries))
    weights = roles.get("weights")
    if weights and not sum(w for _, w, _, _ in summaries) > 0:
        raise DataError(f"weights column '{weights}' is zero in every row.")
    parts = [part for part, (n, _, _, _) in zip(parts, summaries) if n]
    names = (("intercept",) if intercept else ()) + tuple(wanted)
    design = {
        "kind": "columns", "intercept": intercept,
        "columns": [{"column": c, "type": "numeric"} for c in wanted], "features": list(names),
    }
    shifted = roles.get("offset") is not None or roles.get("exposure") is not None
    rows = DaskParts(client, parts, n_obs, len(names), weights is not None, shifted)
    return Source(
        rows, names, target, None if encoded is None else encoded.levels, None if encoded is None else encoded.note,
        intercept, weights, roles.get("offset"), roles.get("exposure"), 0, design, sep, detected,
    )


def _delayed(task, part):
    from dask import delayed

    return delayed(task)(part)


class _NumericPart:
    """Encodes one numeric partition on its worker: ``(X, y, w, o)`` with a column-major ``X``,
    or None when the partition is not the clean numeric case (see :func:`_load_numeric`)."""

    def __init__(self, fam, target, wanted, intercept, roles):
        self.fam, self.target, self.wanted, self.intercept, self.roles = fam, target, wanted, intercept, roles

    def __call__(self, frame):
        import pandas as pd

        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        values = frame[self.target]
        if self.fam.classes:  # labels: numbers if every one is, else text
            if values.isna().any():
                return None
            numbers = pd.to_numeric(values, errors="coerce")
            values = numbers.to_numpy(dtype=np.float64) if numbers.notna().all() else values.to_numpy(dtype=object)
        else:
            values = values.to_numpy(dtype=np.float64)
        others = [c for c in frame.columns if c != self.target]
        return self.encode({self.target: values, **{c: frame[c].to_numpy(dtype=np.float64) for c in others}}, len(frame))

    def encode(self, columns: dict[str, np.ndarray], m: int):
        """The partition from its ``m`` rows' ``columns``: the features (and weights, offset,
        exposure, event) float64, the target numbers (float64) or text (object)."""
        from ..errors import FamilyError

        first = 1 if self.intercept else 0
        X = np.empty((m, first + len(self.wanted)), order="F")
        if self.intercept:
            X[:, 0] = 1.0
        for j, c in enumerate(self.wanted, first):
            X[:, j] = columns[c]
        if not np.all(np.isfinite(X)):
            return None
        values = columns[self.target]
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            return None
        roles = self.roles
        w = o = ev = None
        if roles.get("weights"):
            w = columns[roles["weights"]]
            if not np.all(np.isfinite(w) & (w >= 0)):
                return None
        if roles.get("offset") or roles.get("exposure"):
            o = np.zeros(m)
            if roles.get("offset"):
                o += columns[roles["offset"]]
            if roles.get("exposure"):
                e = columns[roles["exposure"]]
                if not np.all(e > 0):
                    return None
                o += np.log(e)
            if not np.all(np.isfinite(o)):
                return None
        if roles.get("event"):
            ev = columns[roles["event"]]
            if not np.all((ev == 0) | (ev == 1)):
                return None
            ev = ev == 1
        if self.fam.classes:
            return X, values, w, o  # codes mapped once every partition's labels are known
        try:
            y = self.fam.encode(values, self.target, event=ev).y
        except FamilyError:
            return None
        return X, y, w, o


class _ArrowPart:
    """Parses one partition's bytes (whole lines; the first partition's begin with the header) with
    pyarrow (:func:`mlefit.readers.csvfast.parse`: the ``used`` columns float64, a family's class
    labels typed as pandas types them) and encodes them (:class:`_NumericPart`); None when pyarrow
    does not read them plainly."""

    def __init__(self, numeric: _NumericPart, names: list[str], used: list[str], sep: str):
        self.numeric, self.names, self.sep = numeric, names, sep
        self.labels = numeric.target if numeric.fam.classes else None
        self.floats = [c for c in used if c != self.labels]

    def __call__(self, block: bytes, first: bool):
        from ..readers import csvfast

        start = block.find(b"\n") + 1 if first else 0
        if (first and start == 0) or (len(block) - start < 4096 and not block[start:].strip()):  # no rows
            columns = {c: np.empty(0) for c in self.floats}
            if self.labels is not None:
                columns[self.labels] = np.empty(0)
            return self.numeric.encode(columns, 0)
        columns = csvfast.parse(block, self.names, self.floats, self.labels, self.sep, header=first)
        if columns is None:
            return None
        if self.labels is not None and columns[self.labels].dtype.kind in "iu":
            columns[self.labels] = columns[self.labels].astype(np.float64)  # numbers, as pandas' to_numeric gives
        return self.numeric.encode(columns, len(next(iter(columns.values()))))


def _column_major(part):
    """The partition's design column-major, as the families evaluate fastest."""
    X, y, w, o = part
    return np.asfortranarray(X), y, w, o


def _summary(part) -> tuple[int, float, np.ndarray, str | None] | None:
    """Rows, total weight, distinct target values and their kind ("number" or "text"; None for an
    empty partition) of an encoded partition; None when it is not numeric."""
    if part is None:
        return None
    _, y, w, _ = part
    kind = None if not len(y) else "text" if y.dtype.kind == "O" else "number"
    return len(y), float(len(y) if w is None else w.sum()), np.unique(y), kind


def _recode(part, uniq, codes):
    X, values, w, o = part
    return X, codes[np.searchsorted(uniq, values)], w, o


def _size(part) -> tuple[int, float]:
    """Rows and total weight of an encoded partition."""
    _, y, w, _ = part
    return len(y), float(len(y) if w is None else w.sum())


#: The arguments of ``pandas.read_csv`` that :func:`read_block` parses with pyarrow.
_ARROW_ARGUMENTS = {"sep", "usecols", "dtype", "float_precision", "header"}


def read_block(source, **options):
    """``pandas.read_csv(source, **options)`` of a partition's bytes (its header line first), as
    dask's ``read_csv`` would parse them; pyarrow's CSV reader first (:mod:`mlefit.readers.csvfast`)
    when the options are those of the numeric reader (``usecols``, each typed float64, or object for
    at most one) and pyarrow reads the partition plainly; the same values either way."""
    import pandas as pd

    from ..readers import csvfast

    usecols, dtype, sep = options.get("usecols"), options.get("dtype"), options.get("sep", ",")
    if set(options) <= _ARROW_ARGUMENTS and options.get("header", "infer") in ("infer", 0) and usecols and dtype \
            and hasattr(source, "getbuffer") and isinstance(sep, str) and len(sep) == 1:
        text = source.getbuffer()
        names = csvfast.header_names(bytes(text[: 1 << 16]), sep)
        texts = [c for c in usecols if dtype.get(c) is object]
        floats = [c for c in usecols if c not in texts]
        if names is not None and set(usecols) <= set(names) and len(texts) <= 1 \
                and all(np.dtype(dtype.get(c)) == np.float64 for c in floats):
            columns = csvfast.parse(text, names, floats, texts[0] if texts else None, sep, header=True, text_target=True)
            if columns is not None:
                return pd.DataFrame({
                    c: pd.Series(columns[c], dtype=object if c in texts else np.float64, copy=False)
                    for c in names if c in columns
                })
    return pd.read_csv(source, **options)


def _parse(frame):
    """A partition read as text, re-read with pandas' type inference (as a whole file would be)."""
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    import pandas as pd

    from .. import data

    return data.numbers_beyond_range(pd.read_csv(buffer, float_precision=data.FLOAT_PRECISION))


def _gather_reporting(client, futures: list, path: "Path | int") -> list:
    """``client.gather(futures)``, telling :mod:`mlefit.progress` of each partition read: the
    first pass parses the file on the workers in partitions of (nearly) equal byte ranges.
    ``path``: the file, or the size of the data in bytes."""
    from distributed import as_completed

    size = path if isinstance(path, int) else Path(path).stat().st_size
    for k, _ in enumerate(as_completed(futures), 1):
        progress.read(size * k // len(futures), size)
    return client.gather(futures)
